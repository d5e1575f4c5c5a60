"""Sweep configuration: a dataclass, read from TOML presets or files, overridden from the command line.

The habit is optimum-benchmark's (one config dataclass beside the code it configures) with NVBench's axes:
a config declares the values of each axis in `[axes]`; the sweep is their cartesian product. A TOML file:

    name = "smoke"
    description = "..."
    [axes]                       # keys = bench.results.schema.AXES
    model = ["repvgg_a0"]
    batch_size = [8]
    [run]                        # how to run: device, per-cell timeout, seed, CPU threads
    device = "auto"
    [timing]                     # fields of bench.measure.timing.TimingConfig
    min_time_s = 0.3
    [[fault]]                    # test hooks only: inject a real failure into matching cells
    match = { model = "resnet18" }
    kind = "oom"

Unknown keys and values are rejected with the valid choices, before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import socket
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from bench.results.schema import AXES, AXIS_SPECS
from bench.sweep.plan.axes import CHOICES, ConfigError, check_axis, check_models
from bench.sweep.protocol import default_timing
from bench.usage import unknown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig

PRESET_DIR = Path(__file__).with_name("presets")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
TOP_KEYS: tuple[str, ...] = ("name", "description", "axes", "run", "timing", "fault")
FAULT_KEYS: tuple[str, ...] = ("match", "kind")

DEFAULT_AXES: dict[str, tuple] = {a.name: a.default for a in AXIS_SPECS if a.default is not None}
"""The values of an axis a config leaves out (`bench.results.schema.AXIS_SPECS`)."""


@dataclass(frozen=True)
class Fault:
    """A test hook: cells whose axes match `match` get the fault `kind` (see bench.sweep.worker.faults)."""

    kind: str
    match: Mapping[str, Any] = field(default_factory=dict)

    def applies(self, cell_axes: Mapping[str, Any]) -> bool:
        return all(cell_axes.get(k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep. `axes` maps every name in AXES to a tuple of values; `timing` is
    the `[timing]` table as the validated `TimingConfig` every unit is timed with, and `timing_keys` the
    keys that table spelled out (see `timing_identity`)."""

    name: str
    axes: Mapping[str, tuple]
    description: str = ""
    device: str = "auto"
    cell_timeout_s: float = 900.0
    seed: int = 0
    num_threads: int | None = None
    timing: TimingConfig = field(default_factory=default_timing)
    timing_keys: tuple[str, ...] = ()
    faults: tuple[Fault, ...] = ()

    def values(self, axis: str) -> tuple:
        return tuple(self.axes[axis])

    def digest(self, device: str, machine: str | None = None) -> str:
        """Short hash of what decides the measurements (not the timeout, not the output folder), and of
        the machine (`machine_id()` unless given: `bench gpu-check` gives the hardware id, so that the next
        lent machine of the same kind resumes its presets).

        The run id is `<name>-<digest>`, so the same command on the same machine maps to the same results
        folder and a re-run resumes it, while a changed axis or timing setting starts a new folder. The
        machine is in the hash so that a fresh clone on another machine measures anew instead of
        "resuming" runs committed from elsewhere.
        """
        payload = {
            "name": self.name,
            "machine": machine_id() if machine is None else machine,
            "axes": {axis: list(self.axes[axis]) for axis in AXES},
            "device": device,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "timing": self.timing_identity(),
            "faults": [[f.kind, dict(sorted(f.match.items()))] for f in self.faults],
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:8]

    def run_id(self, device: str, machine: str | None = None) -> str:
        return f"{self.name}-{self.digest(device, machine)}"

    def timing_identity(self) -> dict[str, Any]:
        """The timing settings the run id hashes: the keys `[timing]` spelled out and every field that
        differs from its default (a `replace`d timing), so a preset that spells out a default keeps its
        run id and any change of a setting starts a new folder."""
        default = default_timing()
        return {f.name: getattr(self.timing, f.name) for f in dataclasses.fields(self.timing)
                if f.name in self.timing_keys or getattr(self.timing, f.name) != getattr(default, f.name)}


def machine_id() -> str:
    """This machine's identity: /etc/machine-id where readable, else the host name."""
    try:
        with open("/etc/machine-id") as fh:
            value = fh.read().strip()
            if value:
                return value
    except OSError:
        pass
    return socket.gethostname()


def _reject_unknown(where: str, given: Mapping[str, Any], valid: Sequence[str]) -> None:
    extra = [k for k in given if k not in valid]
    if extra:
        raise unknown(f"{where}: key", extra, valid, error=ConfigError)


def _parse_faults(raw: Any) -> tuple[Fault, ...]:
    from bench.sweep.worker.faults import FAULTS

    if not isinstance(raw, list):
        raise ConfigError("[[fault]] must be an array of tables")
    faults = []
    for entry in raw:
        _reject_unknown("[[fault]]", entry, FAULT_KEYS)
        kind = entry.get("kind")
        if kind not in FAULTS:
            raise unknown("fault kind", kind, FAULTS, error=ConfigError)
        match = dict(entry.get("match", {}))
        _reject_unknown("[[fault]].match", match, AXES)
        faults.append(Fault(kind=kind, match=match))
    return tuple(faults)


def _parse_run(raw: Mapping[str, Any]) -> dict[str, Any]:
    _reject_unknown("[run]", raw, list(RUN_CHECKS))
    return _checked_run(raw)


def _checked_run(values: Mapping[str, Any]) -> dict[str, Any]:
    """Run settings with each value that has a check (`RUN_CHECKS`) checked and normalized."""
    return {key: RUN_CHECKS[key](value) if key in RUN_CHECKS else value for key, value in values.items()}


def check_device(device: Any) -> str:
    if device not in DEVICES:
        raise unknown("device", device, DEVICES, error=ConfigError)
    return str(device)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"cell_timeout_s must be a positive, finite number of seconds; got {value!r}")
    return float(value)


SEED_MAX = 2**64 - 2
"""torch's generators take seeds below 2**64, and a unit draws its gate input from seed + 1."""


def check_seed(value: Any) -> int:
    """A whole number from 0 to SEED_MAX (1.7 is refused rather than truncated to 1)."""
    if not _is_int(value) or not 0 <= value <= SEED_MAX:
        raise ConfigError(f"seed must be a whole number from 0 to 2**64 - 2 ({SEED_MAX}); got {value!r}")
    return int(value)


def check_threads(value: Any) -> int | None:
    """CPU threads per cell: a whole number >= 1 (0 or a negative count is refused, never read as
    "torch's default"; leave the key out for that)."""
    if not _is_int(value) or value < 1:
        raise ConfigError(f"num_threads must be a whole number >= 1 (omit it for torch's default); "
                          f"got {value!r}")
    return int(value)


RUN_CHECKS: dict[str, Callable[[Any], Any]] = {
    "device": check_device, "cell_timeout_s": check_timeout, "seed": check_seed, "num_threads": check_threads,
}
"""`[run]` key (and `override` setting) -> its check, which raises `ConfigError` or returns the value."""


FOLDER_NAME = re.compile(r"[\w-][\w.-]*")
"""A plain folder name: letters, digits, '-', '_', '.'; not starting with '.'."""


def _reserved_names() -> dict[str, str]:
    from bench.results.layout import TRACES_DIR
    from bench.results.read import HIDDEN_DIRS

    return {**{name: "readers skip folders of that name, so its rows would be hidden" for name in HIDDEN_DIRS},
            TRACES_DIR: "it holds `bench profile` traces beside the runs"}


def check_run_id(run_id: Any) -> str:
    """A run id names one folder under results/<hardware>/: a single plain name (`FOLDER_NAME`), not a
    path (that would write into the results root or beside it) and not a name readers hide."""
    text = run_id if isinstance(run_id, str) else ""
    if not FOLDER_NAME.fullmatch(text):
        raise ConfigError(f"run id {run_id!r} must be a single plain folder name (letters, digits, '-', '_', "
                          "'.'; not empty, not starting with '.', no '/', spaces or control characters)")
    reserved = _reserved_names()
    if text.lower() in reserved:
        raise ConfigError(f"run id {text!r} is reserved ({reserved[text.lower()]}); reserved: "
                          f"{', '.join(reserved)}; pick another name")
    return text


def check_results_root(out: Any) -> Path:
    """`--out` must be a folder (or not exist yet), never a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out '{path}' is a file; give a folder for the results (default: results)")
    return path


def _timing_type_error(name: str, hint: Any, value: Any) -> str | None:
    """Why `value` does not fit the TimingConfig field type `hint` (int / float / bool / str), or None."""
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if value is None and type(None) in typing.get_args(hint):
        return None
    if base is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if base is int:
        return None if _is_int(value) else "must be a whole number"
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be finite"
    if base is str:
        return None if isinstance(value, str) else "must be a string"
    return None


def check_timing(timing: Mapping[str, Any]) -> TimingConfig:
    """The `[timing]` table as a `bench.measure.timing.TimingConfig`. Keys must be its fields and values of
    the field's type (both read from the real class); then the class's own range checks run, so
    `timeout_s = -1` or `min_time_s` above `timeout_s` is refused here, not in every cell."""
    from bench.measure.timing import TimingConfig

    if not isinstance(timing, Mapping):
        raise ConfigError(f"[timing] must be a table; got {timing!r}")
    hints = typing.get_type_hints(TimingConfig)
    valid = [f.name for f in dataclasses.fields(TimingConfig)]
    _reject_unknown("[timing]", timing, valid)
    problems = [f"[timing] {name} = {value!r} {why}" for name, value in timing.items()
                if (why := _timing_type_error(name, hints[name], value)) is not None]
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        return TimingConfig(**timing)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[timing]: {exc}") from None


def from_dict(raw: Mapping[str, Any], default_name: str = "custom") -> SweepConfig:
    """Build a config from parsed TOML, rejecting unknown keys and values (models checked later)."""
    _reject_unknown("config", raw, TOP_KEYS)
    for table in ("axes", "run", "timing"):
        if not isinstance(raw.get(table, {}), Mapping):
            raise ConfigError(f"[{table}] must be a table (a [{table}] section with key = value lines); "
                              f"got {raw[table]!r}")
    axes_raw = raw.get("axes", {})
    _reject_unknown("[axes]", axes_raw, AXES)
    if "model" not in axes_raw:
        raise ConfigError("[axes] needs 'model' (a list of model names)")
    axes = {axis: check_axis(axis, axes_raw.get(axis, DEFAULT_AXES.get(axis))) for axis in AXES}
    name = str(raw.get("name", default_name))
    if not FOLDER_NAME.fullmatch(name):
        raise ConfigError(f"name {name!r} starts the run id, a folder name: letters, digits, '-', '_', '.'; "
                          "not empty, not starting with '.', no spaces, slashes or control characters")
    return SweepConfig(
        name=name,
        axes=axes,
        description=str(raw.get("description", "")),
        timing=check_timing(raw.get("timing", {})),
        timing_keys=tuple(raw.get("timing", {})),
        faults=_parse_faults(raw.get("fault", [])),
        **_parse_run(raw.get("run", {})),
    )


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_file(path: str | Path) -> SweepConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "TOML files must be UTF-8") from None
    return load_text(text, path.stem, where=f"config file '{path}'")


def load_text(text: str, default_name: str, where: str = "config text") -> SweepConfig:
    """A sweep config from TOML text (the format of bench/sweep/plan/presets/*.toml)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return from_dict(raw, default_name=default_name)


def load_preset(name: str) -> SweepConfig:
    if name not in preset_names():
        raise unknown("preset", name, preset_names(), error=ConfigError)
    return load_file(PRESET_DIR / f"{name}.toml")


def with_overrides(config: SweepConfig, axes: Mapping[str, Sequence[Any]] | None = None,
                   **run: Any) -> SweepConfig:
    """Replace whole axes (e.g. {'batch_size': [1, 64]}) and run settings; None values are ignored."""
    new_axes = dict(config.axes)
    for axis, values in (axes or {}).items():
        if values is not None:
            new_axes[axis] = check_axis(axis, list(values))
    changes = {k: v for k, v in run.items() if v is not None}
    _reject_unknown("override", changes, [f.name for f in dataclasses.fields(SweepConfig)])
    return dataclasses.replace(config, axes=new_axes, **_checked_run(changes))


def validate(config: SweepConfig, known_models: Sequence[str] | None = None) -> SweepConfig:
    """The checks that need the model registry; call before anything runs."""
    check_models(config.values("model"), known_models)
    for fault in config.faults:
        if "model" in fault.match:
            check_models([fault.match["model"]], known_models)
    for axis in CHOICES:
        check_axis(axis, config.values(axis))
    return config
