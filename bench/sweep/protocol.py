"""What the parent hands a cell subprocess and what it gets back: two JSON files.

Files rather than stdout because torch, cuDNN and inductor print to stdout/stderr at will; a result file
written atomically (temp name + rename) at the very end is either complete or absent, and an absent file
means the process died (signal, abort, host OOM killer) or was killed on timeout.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.sweep.cells import Cell


@dataclass(frozen=True)
class CellSpec:
    """One cell to run, plus how: device type, seed, CPU threads, timing overrides, injected faults.

    `probe=True` only builds the model and runs one call (the `--max-batch` search): no timing.
    """

    cell: Cell
    device: str
    seed: int = 0
    num_threads: Optional[int] = None
    timing: dict = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    probe: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["faults"] = list(self.faults)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "CellSpec":
        data = json.loads(text)
        data["cell"] = Cell(**data["cell"])
        data["faults"] = tuple(data.get("faults", ()))
        return cls(**data)


@dataclass
class CellOutcome:
    """How a cell ended. `fields` are `Result` fields measured in the subprocess; `samples_ms` the raw
    timing samples (empty unless timed)."""

    status: str
    error: Optional[str] = None
    fields: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_jsonable)

    @classmethod
    def from_json(cls, text: str) -> "CellOutcome":
        return cls(**json.loads(text))


def _jsonable(value: Any) -> Any:
    """numpy / torch scalars -> Python numbers; anything else -> its string."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
