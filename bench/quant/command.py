"""`python -m bench quant`: per network, the deploy kernels' widest range and the int8 error of both forms.

What QARepVGG (Chu et al. 2022) is about: a re-parameterized kernel sums a 3x3, a 1x1 and an identity
branch, each scaled by its own BN, so its weight range widens and standard int8 post-training
quantization loses accuracy; QARepVGG's blocks keep the range small. For each network this prints and
(with `--out`) writes as CSV and a figure, RepVGG next to QARepVGG next to MobileOne:
- the widest deploy conv kernel, [min, max] of its weights (`bench.reparam.fold_report.kernel_ranges`);
- both forms through each `--quantizer` (`bench.quant.quantizers`): exported, gated in fp32 against the
  PyTorch training form (the sweep's exact gate; a form that fails it gets no int8 numbers), quantized
  (`onnxruntime`: `bench.quant.onnx_static`, QDQ, MinMax calibration; `openvino`: NNCF,
  `bench.quant.openvino_static`, where installed; int8 weights per channel or, `--weights per-tensor`,
  per tensor; calibration on seeded N(0,1) inputs) and measured on inputs the calibration never saw
  against the training form's fp32 output (`bench.quant.error`: SQNR, top-1 agreement, max relative
  error).
Nothing is timed: `bench run --precision int8 --runtime onnxruntime` times.

Weights: seeded random weights with random BN statistics (as the sweep builds them), which need not show
the paper's effect, or `--checkpoint MODEL=PATH`: an official-layout training-form state dict, loaded
strictly (`bench.models.load_checkpoint`). Nothing is downloaded.

Exit status: 0 every network measured; 1 a form failed its fp32 gate; 2 bad input (before anything runs).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch

from bench.usage import UsageError, pick, unknown

DEFAULT_MODELS = "repvgg_a0,qarepvgg_a0,mobileone_s0"
WEIGHT_GRANULARITY: dict[str, bool] = {"per-channel": True, "per-tensor": False}
"""`--weights` -> `quantize_onnx`'s per_channel."""


@dataclass(frozen=True)
class QuantRow:
    """One network's line: its weights, widest deploy kernel, fp32 gate and each form's int8 error
    against the training form's fp32 output."""

    model: str
    quantizer: str
    weights: str
    resolution: int
    batch_size: int
    quant_scheme: str
    kernel_layer: Optional[str]
    kernel_low: Optional[float]
    kernel_high: Optional[float]
    gate_max_rel_err: float
    gate_tolerance: float
    sqnr_db_train: Optional[float] = None
    sqnr_db_deploy: Optional[float] = None
    top1_agreement_train: Optional[float] = None
    top1_agreement_deploy: Optional[float] = None
    rel_err_train: Optional[float] = None
    rel_err_deploy: Optional[float] = None
    top1_classes: Optional[int] = None

    @property
    def gate_passed(self) -> bool:
        return self.gate_max_rel_err <= self.gate_tolerance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                        help="official-layout training-form state dict for MODEL (repeatable, split at the "
                        "last '='); others get seeded random weights")
    parser.add_argument("--checkpoint-source", default="official", help="key layout: official (default) or timm")
    parser.add_argument("--quantizer", default="onnxruntime", help="comma-separated, from onnxruntime (default) "
                        "and openvino (needs openvino and nncf)")
    parser.add_argument("--weights", default="per-channel", help="int8 weight scales: per-channel (default) or "
                        "per-tensor")
    parser.add_argument("--resolution", type=int, default=64, help="input side (default 64; the paper's is 224)")
    parser.add_argument("--batch", type=int, default=8, help="the exported graphs' batch (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="weights, calibration and evaluation inputs (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="folder for quant.csv and the figure")


def _checkpoints(specs: list[str], models: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs:
        model, sep, path = spec.rpartition("=")  # an own model's spec may hold '=' (file.py:build:width=8)
        if not sep or not model or not path:
            raise UsageError(f"--checkpoint '{spec}' is not MODEL=PATH")
        if model not in models:
            raise UsageError(f"--checkpoint names model '{model}', which is not in --models ({', '.join(models)})")
        if not Path(path).is_file():
            raise UsageError(f"--checkpoint {model}: '{path}' is not a file")
        out[model] = Path(path)
    return out


def _quantizers(spec: str) -> list[str]:
    from bench.quant.quantizers import QUANTIZERS

    chosen = pick("--quantizer", spec, QUANTIZERS)
    for name in chosen:
        reason = QUANTIZERS[name].skip_reason()
        if reason:
            raise UsageError(f"--quantizer {name}: {reason}")
    return chosen


def _validate(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, Path]]:
    from bench.models.checkpoint_sources import SOURCES
    from bench.models.registry import info

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise UsageError("--models is empty")
    for name in models:
        info(name)  # raises naming the known models
    if args.weights not in WEIGHT_GRANULARITY:
        raise unknown("--weights", args.weights, WEIGHT_GRANULARITY)
    if args.checkpoint_source not in SOURCES:
        raise unknown("--checkpoint-source", args.checkpoint_source, SOURCES)
    if args.resolution < 1 or args.batch < 1:
        raise UsageError("--resolution and --batch must be positive integers")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    return models, _quantizers(args.quantizer), _checkpoints(args.checkpoint, models)


def _training_form(name: str, seed: int, checkpoint: Optional[Path], source: str) -> tuple[torch.nn.Module, str]:
    from bench.models import create, load_checkpoint
    from bench.models.build import training_form

    if checkpoint is None:
        return training_form(name, seed), f"random (seed {seed}, random BN statistics)"
    model = create(name, deploy=False)
    load_checkpoint(model, checkpoint, source=source)
    return model.eval(), f"checkpoint {checkpoint.name}"


def measure(name: str, train: torch.nn.Module, weights: str, quantizer: str, args: argparse.Namespace) -> QuantRow:
    """One network (its training form `train`, eval mode) through one quantizer: its widest deploy
    kernel, both forms gated in fp32, quantized and measured."""
    from bench.models.build import deploy_form
    from bench.models.gate import compare_outputs
    from bench.quant.evaluate import measure_errors
    from bench.quant.quantizers import QUANTIZERS
    from bench.reparam.fold_report import kernel_ranges

    deploy = deploy_form(train)
    with torch.no_grad():
        widest = max(kernel_ranges(deploy), key=lambda r: r.width, default=None)
    x = torch.randn(args.batch, 3, args.resolution, args.resolution,
                    generator=torch.Generator().manual_seed(args.seed))
    with torch.inference_mode():
        reference = train(x)
    opened = [QUANTIZERS[quantizer].open(m, x, torch.get_num_threads(), args.seed, WEIGHT_GRANULARITY[args.weights])
              for m in (train, deploy)]
    gates = [compare_outputs(reference, fp32_output(), "fp32") for fp32_output, _ in opened]
    worst = max(gates, key=lambda g: g.max_rel_err)
    row = QuantRow(name, quantizer, weights, args.resolution, args.batch, opened[0][1].scheme.describe(),
                   widest.layer if widest else None, widest.low if widest else None,
                   widest.high if widest else None, worst.max_rel_err, worst.tolerance)
    if not row.gate_passed:
        return row
    (_, of_train), (_, of_deploy) = measure_errors([form for _, form in opened], train, tuple(x.shape), args.seed)
    return QuantRow(**{**asdict(row), "sqnr_db_train": of_train.sqnr_db, "sqnr_db_deploy": of_deploy.sqnr_db,
                       "top1_agreement_train": of_train.top1_agreement,
                       "top1_agreement_deploy": of_deploy.top1_agreement, "rel_err_train": of_train.rel_err,
                       "rel_err_deploy": of_deploy.rel_err, "top1_classes": of_train.reference_classes})


def _print(row: QuantRow) -> None:
    kernel = (f"{row.kernel_low:+.3g}..{row.kernel_high:+.3g} ({row.kernel_layer})"
              if row.kernel_low is not None else "no conv")
    if not row.gate_passed:
        print(f"{row.model:16s} {row.quantizer:12s} FP32 GATE FAILED: max_rel_err {row.gate_max_rel_err:.3g} > {row.gate_tolerance:g}; "
              f"no int8 numbers", flush=True)
        return
    print(f"{row.model:16s} {row.quantizer:12s} {row.sqnr_db_train:8.1f} {row.sqnr_db_deploy:8.1f} "
          f"{100 * row.top1_agreement_train:7.0f}% {100 * row.top1_agreement_deploy:7.0f}% "
          f"{row.top1_classes:>7d}  {kernel}  [{row.weights}]", flush=True)


def run(args: argparse.Namespace) -> int:
    models, quantizers, checkpoints = _validate(args)
    from bench.report.int8 import family_rank

    models = sorted(models, key=family_rank)
    print(f"int8 SQNR (dB) and top-1 agreement of each form vs the training form's fp32 output, "
          f"{args.batch}x3x{args.resolution}x{args.resolution}, weights {args.weights}")
    print(f"{'model':16s} {'quantizer':12s} {'SQNR tr':>8s} {'SQNR dp':>8s} {'top1 tr':>8s} {'top1 dp':>8s} {'classes':>7s}  "
          "widest deploy kernel")
    rows = []
    for name in models:
        try:  # a checkpoint that is no torch file or whose keys differ is bad input
            train, weights = _training_form(name, args.seed, checkpoints.get(name), args.checkpoint_source)
        except (ValueError, FileNotFoundError) as exc:
            print(f"bench quant: {name}: {exc}", file=sys.stderr)
            return 2
        for quantizer in quantizers:
            row = measure(name, train, weights, quantizer, args)
            _print(row)
            rows.append(row)
    for scheme in dict.fromkeys(r.quant_scheme for r in rows):
        print(f"scheme: {scheme}")
    if any(r.weights.startswith("random") for r in rows):
        from bench.report.int8 import WEIGHTS_CAVEAT

        print(f"note: {WEIGHTS_CAVEAT}")
    if args.out is not None:
        _write(rows, args.out)
    return 0 if all(r.gate_passed for r in rows) else 1


def _write(rows: list[QuantRow], out: Path) -> None:
    import pandas as pd

    from bench.report.int8 import quant_figure

    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([asdict(r) for r in rows])
    table.to_csv(out / "quant.csv", index=False)
    paths = quant_figure(table, out)
    print(f"wrote {out / 'quant.csv'} and {', '.join(str(p) for p in paths)}")
