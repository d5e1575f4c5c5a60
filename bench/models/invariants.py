"""Deterministic CPU invariants of every registered model, checked in CI against a committed file.

No timing: only quantities that change when a model definition or the fold changes, so a mismatch is never
noise. Per registered non-external model:

- `params`: parameters of the training form and of the deploy form built directly (`create(deploy=True)`),
  and of the converted form (`to_deploy` of the training form), which must equal the direct one;
- `macs`: multiply-accumulates per image at 224x224 of both forms (`bench.models.complexity`, meta device);
- `ops_per_forward`: top-level ATen operators per inference forward of each form by category, counted
  exactly as `bench profile` counts CPU launches (`bench.measure.ops.summarize`), at a tiny input;
- `equivalence`: max relative error of the converted form against the training form with random weights
  and random BN statistics (`bench.models.equivalence.check_model`); it must stay within its tolerance.

Models whose training form exceeds `heavy_params` parameters (RepVGG-B2, B3, B3g4, D2se) are counted on the
meta device (same operators, no arithmetic) and skip the equivalence forward, to keep CI fast; their
blocks are the same classes as the smaller RepVGGs', whose conversion is checked.

    python -m bench invariants                 # check; exit 1 naming every change
    python -m bench invariants --write         # rewrite the file after an intended change
    python -m bench invariants --models repvgg_a0,resnet18 --write   # refresh some entries
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from bench.models.build import FORMS
from bench.results.layout import baselines_dir, results_root
from bench.usage import unknown

EXPECTATIONS = baselines_dir(results_root()) / "cpu_invariants.json"
"""Default expectation file, relative to the repository root."""
FORMAT_VERSION = 1
REGENERATE = "python -m bench invariants --write"


@dataclass(frozen=True)
class Settings:
    """How the invariants are measured; stored in the file so a check recomputes them the same way."""

    macs_resolution: int = 224
    ops_resolution: int = 32
    ops_batch: int = 1
    equivalence_resolution: int = 32
    equivalence_dtype: str = "float32"
    heavy_params: int = 80_000_000
    seed: int = 0


def model_names() -> list[str]:
    """Every registered built-in model (external `torchvision:` / `timm:` names are open-ended)."""
    from bench.models import info, names

    return [n for n in names() if not info(n).external]


def _device_for(params_train: int, settings: Settings) -> str:
    return "meta" if params_train > settings.heavy_params else "cpu"


def op_counts(name: str, form: str, settings: Settings, device: str = "cpu") -> tuple[dict[str, int], int]:
    """Top-level ATen ops per forward by category (`bench profile`'s CPU count), and the built model's params.

    The model is built as a sweep cell builds it (`bench.models.build.build_form`: seeded weights, random
    BN statistics, the deploy form by `to_deploy`), and called as a cell's inference call is (fp32,
    contiguous, under `torch.inference_mode`); one warm-up call precedes the profiled one on the CPU.
    """
    from bench.measure.ops import summarize
    from bench.models.build import build_form
    from bench.models.complexity import count_params

    with torch.device(device):
        model = build_form(name, form, settings.seed)
        x = torch.randn(settings.ops_batch, 3, settings.ops_resolution, settings.ops_resolution)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    if device != "meta":
        forward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward()
    _, categories = summarize(prof, active=1, on_gpu=False)
    counts = {}
    for row in categories.itertuples(index=False):
        value = float(row.count_per_forward)
        if not value.is_integer():
            raise RuntimeError(f"{name} {form}: {value} '{row.category}' ops in one forward is not a count")
        counts[str(row.category)] = int(value)
    return counts, count_params(model)


def equivalence(name: str, settings: Settings) -> dict[str, float]:
    """Max abs/rel error of the converted form (random weights and BN statistics) and its tolerance."""
    from bench.models.equivalence import DTYPES, check_model

    eq = check_model(name, DTYPES[settings.equivalence_dtype], resolution=settings.equivalence_resolution,
                     seed=settings.seed)
    return {"max_abs_err": eq.max_abs, "max_rel_err": eq.max_rel, "tolerance": eq.tolerance}


def measure(name: str, settings: Settings) -> dict[str, Any]:
    """All invariants of one model (the record stored under its name)."""
    from bench.models.complexity import model_complexity

    sizes = {form: model_complexity(name, deploy=form == "deploy", resolution=settings.macs_resolution)
             for form in FORMS}
    device = _device_for(sizes["train"].params, settings)
    ops, params = {}, {form: sizes[form].params for form in FORMS}
    for form in FORMS:
        ops[form], built = op_counts(name, form, settings, device)
        if form == "deploy":
            params["converted"] = built
    if device == "meta":
        eq: dict[str, Any] = {"skipped": f"training form has {params['train'] / 1e6:.1f} M parameters, more "
                              f"than {settings.heavy_params / 1e6:.0f} M: sizes and op counts only"}
    else:
        eq = equivalence(name, settings)
    return {"params": params, "macs": {form: sizes[form].macs for form in FORMS}, "ops_device": device,
            "ops_per_forward": ops, "equivalence": eq}


def measure_all(names: list[str], settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: measure(name, settings) for name in names}


def document(models: dict[str, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The expectation file's content."""
    return {"format_version": FORMAT_VERSION, "torch_version": torch.__version__, "regenerate": REGENERATE,
            "settings": asdict(settings), "models": dict(sorted(models.items()))}


def load(path: Path = EXPECTATIONS) -> tuple[dict[str, Any], Settings]:
    """(the file's content, its settings); errors name the file and what to run."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no CPU invariants file; create it with `{REGENERATE}`")
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {doc.get('format_version')!r}, this code reads "
                         f"{FORMAT_VERSION}; regenerate it with `{REGENERATE}`")
    return doc, Settings(**doc["settings"])


def write(doc: dict[str, Any], path: Path = EXPECTATIONS) -> None:
    from bench.results.io import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8"))


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def record_differences(name: str, expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What changed for one model: exact for counts, tolerance for the conversion error."""
    out = []
    exp_eq, act_eq = expected.get("equivalence", {}), actual.get("equivalence", {})
    if "max_rel_err" in act_eq and not act_eq["max_rel_err"] <= act_eq["tolerance"]:
        recorded = f" (recorded {exp_eq['max_rel_err']:.2g})" if "max_rel_err" in exp_eq else ""
        out.append(f"{name}: converted form differs from the training form: max rel err "
                   f"{act_eq['max_rel_err']:.3g} > tolerance {act_eq['tolerance']:.0e}{recorded}")
    if ("skipped" in exp_eq) != ("skipped" in act_eq):
        out.append(f"{name}: equivalence {'skipped' if 'skipped' in act_eq else 'measured'} now, "
                   f"{'skipped' if 'skipped' in exp_eq else 'measured'} in the file")
    flat_exp = {k: v for k, v in _flatten(expected).items() if not k.startswith("equivalence.")}
    flat_act = {k: v for k, v in _flatten(actual).items() if not k.startswith("equivalence.")}
    for key in sorted(set(flat_exp) | set(flat_act)):
        old, new = flat_exp.get(key), flat_act.get(key)
        if old != new:
            delta = f" ({new - old:+d})" if isinstance(old, int) and isinstance(new, int) else ""
            out.append(f"{name}: {key} {old} -> {new}{delta}")
    params = actual.get("params", {})
    if "converted" in params and params["converted"] != params.get("deploy"):
        out.append(f"{name}: to_deploy(train) has {params['converted']} parameters, create(deploy=True) "
                   f"{params.get('deploy')}: the two deploy forms disagree")
    return out


def model_set_differences(expected: list[str], registered: list[str]) -> list[str]:
    """Models registered without expectations, and expectations for models no longer registered."""
    out = [f"{n}: registered but not in the invariants file" for n in sorted(set(registered) - set(expected))]
    out += [f"{n}: in the invariants file but no longer registered" for n in sorted(set(expected) - set(registered))]
    return out


def failure_message(differences: list[str], path: Path | str = EXPECTATIONS) -> str:
    """The CI failure text: every change, then how to accept it if it is intended."""
    doc_torch = ""
    try:
        recorded = json.loads(Path(path).read_text(encoding="utf-8")).get("torch_version")
        if recorded and recorded != torch.__version__:
            doc_torch = (f"\nNote: the file was written with torch {recorded}, this is torch {torch.__version__}; "
                         "a new ATen can change top-level op counts.")
    except (OSError, ValueError):
        pass
    return ("CPU invariants changed:\n  " + "\n  ".join(differences) + doc_torch
            + f"\nIf the change is intended, regenerate with `{REGENERATE}` and commit {path}.")


def check(path: Path = EXPECTATIONS, names: list[str] | None = None) -> list[str]:
    """Recompute the invariants of `names` (default: all registered) and list every difference."""
    doc, settings = load(path)
    expected = doc["models"]
    out = model_set_differences(list(expected), model_names()) if names is None else []
    for name in names or model_names():
        if name not in expected:
            out += [] if names is None else [f"{name}: not in the invariants file"]
            continue
        out += record_differences(name, expected[name], measure(name, settings))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", action="store_true",
                        help="measure and (re)write the file instead of checking it")
    parser.add_argument("--file", type=Path, default=EXPECTATIONS, help=f"default: {EXPECTATIONS}")
    parser.add_argument("--models", default="", metavar="LIST",
                        help="comma list of models (default: every registered non-external model)")


def run(args: argparse.Namespace) -> int:
    known = model_names()
    names = [n for n in args.models.split(",") if n] or None
    missing = [n for n in names or [] if n not in known]
    if missing:
        raise unknown("model", missing, known)
    if args.write:
        return _write(args.file, names)
    try:
        differences = check(args.file, names)
    except (FileNotFoundError, ValueError) as exc:
        print(f"invariants: {exc}", file=sys.stderr)
        return 2
    if differences:
        print(failure_message(differences, args.file), file=sys.stderr)
        return 1
    print(f"CPU invariants match {args.file} ({len(names or known)} models)")
    return 0


def _write(path: Path, names: list[str] | None) -> int:
    """Rewrite all entries, or only `names` keeping the others and the file's settings."""
    settings, models = Settings(), {}
    if names is not None and Path(path).is_file():
        doc, settings = load(path)
        models = {n: r for n, r in doc["models"].items() if n in model_names()}
    models.update(measure_all(names or model_names(), settings))
    write(document(models, settings), path)
    print(f"wrote {path}: {len(models)} models")
    return 0

