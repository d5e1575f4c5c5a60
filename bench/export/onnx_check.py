"""ONNX export of a module and its check with ONNX Runtime, with the gate's tolerance policy.

Uses `torch.onnx.export`'s default exporter, which since torch 2.9 is the `torch.export`-based (dynamo)
one; it needs `onnxscript` beside `onnx`. The graph is built in memory, so the node counts of both forms
can be read without writing the one not asked for. Note that the exporter's graph optimizer already folds
a Conv directly followed by a BatchNorm, so a training-form graph shows only the BatchNorms that follow
no conv (RepVGG's identity branches): the count still tells a folded graph (0) from an unfolded one.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.models.gate import GateResult, compare_outputs

ONNX_EXTRA = "onnx"
ONNX_MODULES: tuple[str, ...] = ("onnx", "onnxruntime", "onnxscript")
CPU_PROVIDER = "CPUExecutionProvider"


class MissingExtra(RuntimeError):
    """An optional dependency is not installed."""


def require_onnx() -> None:
    """Raise naming the extra when any of onnx, onnxruntime, onnxscript cannot be imported."""
    missing = []
    for name in ONNX_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtra(
            f"ONNX export needs {', '.join(missing)}: install the '{ONNX_EXTRA}' extra "
            f"(pip install -e \".[{ONNX_EXTRA}]\", or pip install {' '.join(ONNX_MODULES)})"
        )


@dataclass(frozen=True)
class OnnxGraph:
    """An exported graph: its serialized bytes and how many nodes of each op type it has."""

    data: bytes
    op_counts: dict[str, int]

    def count(self, op_type: str) -> int:
        return self.op_counts.get(op_type, 0)


def export_onnx(model: nn.Module, x: torch.Tensor) -> OnnxGraph:
    """Export `model` (eval mode) traced on `x`; no file is written."""
    require_onnx()
    from bench.measure.precision_switches import legacy_readable_tf32

    with contextlib.redirect_stdout(io.StringIO()), legacy_readable_tf32():  # it prints its progress steps
        program = torch.onnx.export(model, (x,), verbose=False)
    proto = program.model_proto
    counts = collections.Counter(node.op_type for node in proto.graph.node)
    return OnnxGraph(data=proto.SerializeToString(), op_counts=dict(sorted(counts.items())))


def run_onnx(path_or_bytes: Path | bytes, x: torch.Tensor, provider: str = CPU_PROVIDER) -> torch.Tensor:
    """Run an ONNX graph once with ONNX Runtime on `x`; the output as a CPU tensor."""
    require_onnx()
    import onnxruntime as ort

    source = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    session = ort.InferenceSession(source, providers=[provider])
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}
    return torch.from_numpy(session.run(None, feed)[0])


def check_onnx(path: Path, model: nn.Module, x: torch.Tensor, precision: str) -> GateResult:
    """The gate's comparison, PyTorch output as the reference and ONNX Runtime's as the candidate."""
    with torch.inference_mode():
        reference = model(x)
    return compare_outputs(reference.cpu(), run_onnx(path, x), precision)
