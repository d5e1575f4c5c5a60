"""`python -m bench export MODEL --format onnx|torchscript|state_dict --out FILE`.

Builds MODEL in training form, in eval mode, and converts it with `bench.reparam.to_deploy` (the form a
sweep times as 'deploy'). BatchNorm statistics are left as built: an export needs no random statistics.
ONNX exports are run with ONNX Runtime on the CPU and compared with the PyTorch output under the gate's
tolerance (`bench.models.agreement.TOLERANCES`); node counts by op type are printed for both forms.

Exit status: 0 written (and, for ONNX, checked); 1 written but the ONNX check failed; 2 bad input, nothing
written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bench.export import onnx_check
from bench.measure.repro import dtype_for
from bench.results.schema import AXIS_SPECS

FORMS: tuple[str, ...] = ("deploy", "train")
ONNX_PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
"""bf16 has no numpy dtype for ONNX Runtime's inputs; tf32 is a CUDA switch, not a tensor type."""


def _write_state_dict(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    torch.save(model.state_dict(), path)


def _write_torchscript(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    with torch.inference_mode(False), torch.no_grad():
        torch.jit.trace(model, (x,)).save(str(path))


WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, Path], None]] = {
    "state_dict": _write_state_dict, "torchscript": _write_torchscript,
}
FORMATS: tuple[str, ...] = ("onnx", *WRITERS)


PRECISIONS: tuple[str, ...] = tuple(p for p in next(a.choices for a in AXIS_SPECS if a.name == "precision")
                                    if p != "int8")
"""The sweep's float precisions (each has a gate tolerance in `bench.models.agreement.TOLERANCES`). int8
is not a dtype to export in but a runtime's quantization of the fp32 graph (`bench.quant`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a registered model name (see `bench models`) or an own model spec")
    parser.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)}")
    parser.add_argument("--out", required=True, type=Path, help="file to write")
    parser.add_argument("--form", default="deploy", help="deploy (default) or train")
    parser.add_argument("--batch", type=int, default=1, help="example batch size (default 1)")
    parser.add_argument("--resolution", type=int, default=None, help="input side (default: the model's)")
    parser.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)}")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")


def _validate(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, or None; checked before anything is built or written."""
    if args.format not in FORMATS:
        return f"format '{args.format}' is unknown; valid: {', '.join(FORMATS)}"
    if args.form not in FORMS:
        return f"form '{args.form}' is unknown; valid: {', '.join(FORMS)}"
    if args.precision == "int8":
        return ("precision 'int8' is not an export dtype: int8 graphs are the fp32 export quantized at run time "
                f"(`bench quant`, `bench run --precision int8 --runtime onnxruntime`); valid: {', '.join(PRECISIONS)}")
    if args.precision not in PRECISIONS:
        return f"precision '{args.precision}' is unknown; valid: {', '.join(PRECISIONS)}"
    if args.format == "onnx" and args.precision not in ONNX_PRECISIONS:
        return f"precision '{args.precision}' cannot be checked with ONNX Runtime; valid: {', '.join(ONNX_PRECISIONS)}"
    if args.batch < 1 or (args.resolution is not None and args.resolution < 1):
        return "--batch and --resolution must be positive integers"
    if args.out.exists() and not args.force:
        return f"{args.out} exists; pass --force to overwrite it"
    if args.out.exists() and not args.out.is_file():
        return f"{args.out} exists and is not a file"
    return None


def _build(name: str, form: str, precision: str) -> tuple[nn.Module, nn.Module, int]:
    """(training form, exported form, default resolution), both in eval mode and the export dtype."""
    from bench.models import create, info
    from bench.reparam import to_deploy

    train = create(name).eval()
    chosen = to_deploy(train) if form == "deploy" else train
    dtype = dtype_for(precision)
    return train.to(dtype), chosen.to(dtype), info(name).default_resolution


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`bench.results.io.atomic_write`: a failed export leaves `path` as it was."""
    from bench.results.io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


def _print_counts(label: str, graph: onnx_check.OnnxGraph) -> None:
    counts = ", ".join(f"{op} {n}" for op, n in graph.op_counts.items())
    print(f"  {label:<6} graph: {sum(graph.op_counts.values())} nodes ({counts})")


def _export_onnx(args: argparse.Namespace, train: nn.Module, chosen: nn.Module, x: torch.Tensor) -> int:
    from bench.reparam import to_deploy

    deploy = chosen if args.form == "deploy" else to_deploy(train)
    graphs = {"train": onnx_check.export_onnx(train, x), "deploy": onnx_check.export_onnx(deploy, x)}
    for form in FORMS[::-1]:
        _print_counts(form, graphs[form])
    _write_atomically(args.out, lambda tmp: tmp.write_bytes(graphs[args.form].data))
    result = onnx_check.check_onnx(args.out, chosen, x, args.precision)
    if not result.passed:
        print(f"bench export: {args.out} written, but ONNX Runtime's output differs from PyTorch's: "
              f"max_rel_err {result.max_rel_err:.3g} > tolerance {result.tolerance:g}", file=sys.stderr)
        return 1
    print(f"ONNX Runtime check passed: max_rel_err {result.max_rel_err:.3g} <= {result.tolerance:g}")
    return 0


def run(args: argparse.Namespace) -> int:
    problem = _validate(args)
    if problem is None and args.format == "onnx":
        try:
            onnx_check.require_onnx()
        except onnx_check.MissingExtra as exc:
            problem = str(exc)
    if problem is None:
        try:
            train, chosen, default_resolution = _build(args.model, args.form, args.precision)
        except (ValueError, ImportError, TypeError) as exc:
            problem = str(exc)
    if problem is not None:
        print(f"bench export: {problem}", file=sys.stderr)
        return 2
    generator = torch.Generator().manual_seed(0)
    side = args.resolution or default_resolution
    x = torch.randn(args.batch, 3, side, side, generator=generator).to(dtype_for(args.precision))
    if args.form == "train":
        print(f"note: exporting the TRAINING form of {args.model} (not re-parameterized); "
              "pass --form deploy for the converted one")
    print(f"exporting {args.model} ({args.form} form, {args.format}, {args.precision}, "
          f"input {args.batch}x3x{side}x{side}) to {args.out}")
    if args.format == "onnx":
        return _export_onnx(args, train, chosen, x)
    _write_atomically(args.out, lambda tmp: WRITERS[args.format](chosen, x, tmp))
    print(f"wrote {args.out}")
    return 0
