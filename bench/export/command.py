"""`python -m bench export MODEL --format onnx|torchscript|state_dict --out FILE`.

Builds MODEL in training form, in eval mode, and converts it with `bench.reparam.to_deploy` (the form a
sweep times as 'deploy'). The exported weights are left as built (a factory may load trained ones). Before
the file takes the `--out` name it is checked (`bench.export.checks`): a deploy form against the training
form, as the sweep's gate does, and an ONNX file with ONNX Runtime against the PyTorch training form, all
under the gate's tolerance (`bench.models.agreement.TOLERANCES`); each check is printed with its error.
Node counts by op type are printed for both forms of an ONNX export.

Exit status: 0 written and every check passed; 1 written but a check failed (the output says which);
2 bad input, nothing written: arguments, a model that cannot be built, exits, returns no single tensor or
does not fit in memory at the batch, an `--out` that cannot be written; 130 on Ctrl-C, nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from bench.export import checks, onnx_check
from bench.measure.memory import MIB, host_memory_bytes, is_out_of_memory
from bench.measure.precision_switches import dtype_for
from bench.results.precision import PRECISIONS as TABLE, QUANTIZED, TORCH_PRECISIONS
from bench.usage import UsageError, unknown

FORMS: tuple[str, ...] = ("deploy", "train")
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as the shell reports a command Ctrl-C stopped."""
ONNX_PRECISIONS: tuple[str, ...] = tuple(p.name for p in TABLE if p.torch_runs and p.numpy and not p.tf32)
"""fp32, fp16: bf16 has no numpy dtype for ONNX Runtime's inputs; tf32 is a CUDA switch, not a tensor type."""


def _write_state_dict(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    with open(path, "wb") as handle:  # opened here: a folder that takes no file is an OSError, not torch's
        torch.save(model.state_dict(), handle)  # RuntimeError


def _write_torchscript(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model, (x,))
    with open(path, "wb") as handle:
        torch.jit.save(traced, handle)


WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, Path], None]] = {
    "state_dict": _write_state_dict, "torchscript": _write_torchscript,
}
FORMATS: tuple[str, ...] = ("onnx", *WRITERS)


PRECISIONS: tuple[str, ...] = TORCH_PRECISIONS
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


class ExportRefused(UsageError):
    """Bad input found while exporting (a model that exits or does not fit, an unwritable `--out`):
    nothing is written, exit 2."""


def _out_problem(out: Path, force: bool) -> str | None:
    """Why `--out` cannot be written, checked before anything is built."""
    try:
        return _out_folder_problem(out, force)
    except OSError as exc:  # a name too long, a loop of links
        return f"cannot write {out}: {exc.strerror or exc}"


def _out_folder_problem(out: Path, force: bool) -> str | None:
    if out.exists() and not out.is_file():
        return f"{out} exists and is not a file"
    if out.exists() and not force:
        return f"{out} exists; pass --force to overwrite it"
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"cannot write {out}: {folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {out}: {folder} is not writable; pass --out in a folder you can write to"
    return None


def _validate(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, or None; checked before anything is built or written."""
    if args.format not in FORMATS:
        return str(unknown("format", args.format, FORMATS))
    if args.form not in FORMS:
        return str(unknown("form", args.form, FORMS))
    if args.precision in QUANTIZED:
        return (f"precision '{args.precision}' is not an export dtype: {args.precision} graphs are the fp32 export "
                f"quantized at run time (`bench quant`, `bench run --precision {args.precision} --runtime "
                f"onnxruntime`); valid: {', '.join(PRECISIONS)}")
    if args.precision not in PRECISIONS:
        return str(unknown("precision", args.precision, PRECISIONS))
    if args.format == "onnx" and args.precision not in ONNX_PRECISIONS:
        return f"precision '{args.precision}' cannot be checked with ONNX Runtime; valid: {', '.join(ONNX_PRECISIONS)}"
    if args.batch < 1 or (args.resolution is not None and args.resolution < 1):
        return "--batch and --resolution must be positive integers"
    return _out_problem(args.out, args.force)


@contextlib.contextmanager
def _refusing(args: argparse.Namespace, stage: str) -> Iterator[None]:
    """While the model's code runs (its forward, its conversion, a tracer over it): what it raises, a
    sys.exit() and running out of memory included, becomes ExportRefused naming the model and the stage.
    OSError passes through: writing `--out` says which file could not be written."""
    from bench.models.user import MODEL_CODE_FAILURES, raised

    try:
        yield
    except (ExportRefused, checks.UncheckableOutput, OSError):
        raise
    except MODEL_CODE_FAILURES as exc:
        if is_out_of_memory(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportRefused(f"model '{args.model}' does not fit in memory at batch {args.batch} while "
                                f"{stage} ({first}); pass a smaller --batch (1 is enough for an export)") from exc
        raise ExportRefused(f"model '{args.model}' failed while {stage}: {raised(exc)}") from exc


def _build(args: argparse.Namespace) -> tuple[dict[str, nn.Module], int]:
    """The training form and (for a deploy export, or ONNX, which counts both graphs' nodes) its deploy
    form, in eval mode and the export dtype; and the model's default resolution."""
    from bench.models import create, info
    from bench.reparam import to_deploy

    dtype = dtype_for(args.precision)
    forms = {"train": create(args.model).eval()}
    if args.form == "deploy" or args.format == "onnx":
        forms["deploy"] = to_deploy(forms["train"]).to(dtype)
    forms["train"] = forms["train"].to(dtype)
    return forms, info(args.model).default_resolution


def _print_counts(label: str, graph: onnx_check.OnnxGraph) -> None:
    counts = ", ".join(f"{op} {n}" for op, n in graph.op_counts.items())
    print(f"  {label:<6} graph: {sum(graph.op_counts.values())} nodes ({counts})")


def _writer(args: argparse.Namespace, forms: dict[str, nn.Module], x: torch.Tensor,
            reference: torch.Tensor, found: list[checks.Check]) -> Callable[[Path], None]:
    """What writes the temporary file (and, for ONNX, checks it there, appending to `found`)."""
    if args.format != "onnx":
        return lambda tmp: WRITERS[args.format](forms[args.form], x, tmp)
    with _refusing(args, "exporting to ONNX"):
        graphs = {form: onnx_check.export_onnx(forms[form], x) for form in FORMS}
    for form in FORMS[::-1]:
        _print_counts(form, graphs[form])

    def write_and_check(tmp: Path) -> None:
        tmp.write_bytes(graphs[args.form].data)
        with _refusing(args, "running the file with ONNX Runtime"):
            found.append(checks.onnx_runtime_check(tmp, args.form, x, args.precision, reference))

    return write_and_check


def _export(args: argparse.Namespace, forms: dict[str, nn.Module], side: int) -> int:
    """Check, write to a temporary name, rename: a file at `--out` has been through every check."""
    from bench.results.io import atomic_write

    needed, memory = args.batch * 3 * side * side * dtype_for(args.precision).itemsize, host_memory_bytes()
    if memory is not None and needed > memory:
        raise ExportRefused(f"the example input alone ({args.batch}x3x{side}x{side}) needs "
                            f"{needed / 1024 / MIB:.0f} GiB, more than this machine's {memory / 1024 / MIB:.0f} "
                            "GiB of memory; pass a smaller --batch (1 is enough for an export)")
    with _refusing(args, "making the example input"):
        x = torch.randn(args.batch, 3, side, side, generator=torch.Generator().manual_seed(0))
        x = x.to(dtype_for(args.precision))
    with _refusing(args, "running the training form"):
        reference = checks.output_of(forms["train"], x)
    found: list[checks.Check] = []
    if args.form == "deploy":
        with _refusing(args, "checking the deploy form"):
            found += checks.conversion_checks(forms["train"], forms["deploy"], x, args.precision, reference)
    write = _writer(args, forms, x, reference, found)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with _refusing(args, f"writing {args.format}"):
            atomic_write(args.out, write)
    except OSError as exc:
        raise ExportRefused(f"cannot write {args.out}: {exc.strerror or exc}; pass --out in a folder you can "
                            "write to") from exc
    print(f"checks ({args.precision}, tolerances of bench.models.agreement):" if found else
          "no checks: the training form is written as built")
    for check in found:
        print(check.line())
    failed = [c for c in found if not c.passed]
    if failed:
        print(f"bench export: {args.out} written, but {len(failed)} of {len(found)} check(s) failed (FAILED "
              "above): its output differs from the training form's; do not ship it", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from bench.models.user import USER_CODE_RAISES, raised

    problem = _validate(args)
    if problem is None and args.format == "onnx":
        try:
            onnx_check.require_onnx()
        except onnx_check.MissingExtra as exc:
            problem = str(exc)
    if problem is None:
        try:
            forms, default_resolution = _build(args)
        except (ValueError, ImportError, TypeError) as exc:
            problem = str(exc)
        except USER_CODE_RAISES as exc:  # the model's own conversion code (switch_to_deploy) ran too
            problem = f"model '{args.model}' could not be built and converted: {raised(exc)}"
    if problem is not None:
        print(f"bench export: {problem}; nothing written", file=sys.stderr)
        return 2
    side = args.resolution or default_resolution
    if args.form == "train":
        print(f"note: exporting the TRAINING form of {args.model} (not re-parameterized); "
              "pass --form deploy for the converted one")
    print(f"exporting {args.model} ({args.form} form, {args.format}, {args.precision}, "
          f"input {args.batch}x3x{side}x{side}) to {args.out}")
    try:
        return _export(args, forms, side)
    except (ExportRefused, checks.UncheckableOutput) as exc:
        print(f"bench export: {exc}; nothing written", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the temporary file is gone (atomic_write); --out is as it was
        print("bench export: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
