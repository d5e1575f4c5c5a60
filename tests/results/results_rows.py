"""Rows and raw samples for testing the files and the statistics (random draws, not measurements)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench.results.io import RunWriter
from bench.results.schema import Result

MODELS = ("repvgg_a0", "repvgg_a1", "repvgg_b0", "resnet18", "resnet50")
BATCHES = (1, 8, 32, 64, 128)


def row(model: str = "repvgg_a0", form: str = "deploy", batch: int = 8, *, run_id: str = "run-a",
        hardware: str = "test-cpu", status: str = "ok", samples: np.ndarray | None = None, **extra) -> Result:
    timed = status in ("ok", "mismatch") and samples is not None and len(samples) > 0
    fields = dict(run_id=run_id, hardware=hardware, device="cpu", model=model, form=form, mode="infer",
                  batch_size=batch, precision="fp32", memory_format="contiguous", runtime="eager",
                  resolution=224, status=status, error=None if status in ("ok", "mismatch") else f"{status}: x",
                  latency_ms_median=float(np.median(samples)) if timed else None,
                  n_samples=len(samples) if timed else None, **_median_ci(samples if timed else None))
    fields.update(extra)
    return Result(**fields)


def _median_ci(samples: np.ndarray | None) -> dict[str, float]:
    """The distribution-free 95% interval of the median (order statistics n/2 -/+ 1.96 sqrt(n)/2), as rows
    carry it."""
    if samples is None or len(samples) < 2:
        return {}
    ordered, n = np.sort(samples), len(samples)
    half = 1.96 * np.sqrt(n) / 2
    lo, hi = int(max(0, np.floor(n / 2 - half))), int(min(n - 1, np.ceil(n / 2 + half)))
    return {"latency_ms_median_ci_low": float(ordered[lo]), "latency_ms_median_ci_high": float(ordered[hi])}


def cells(n: int) -> list[tuple[str, str, int]]:
    """The first n (model, form, batch) cells in a fixed order; train and deploy of a config adjacent."""
    out: list[tuple[str, str, int]] = []
    for i in itertools.count():
        model = MODELS[i // len(BATCHES)] if i < len(MODELS) * len(BATCHES) else f"net{i // len(BATCHES)}"
        for form in ("train", "deploy"):
            out.append((model, form, BATCHES[i % len(BATCHES)]))
        if len(out) >= n:
            return out[:n]
    raise AssertionError("unreachable")


def lognormal(rng: np.random.Generator, median_ms: float, n: int = 30, sigma: float = 0.05) -> np.ndarray:
    """Timing-like samples: lognormal around `median_ms` with log-sd `sigma` (~5% spread)."""
    return median_ms * rng.lognormal(0.0, sigma, n)


def write_run(run_dir: Path, keys: Iterable[tuple[str, str, int]], rng: np.random.Generator, *,
              run_id: str = "run-a", hardware: str = "test-cpu", n: int = 30, sigma: float = 0.05,
              scale: dict[tuple[str, str, int], float] | None = None, **extra) -> Path:
    """One run folder: every cell ok, deploy 1.5x faster than train, `scale` multiplying chosen cells."""
    items = []
    for key in keys:
        model, form, batch = key
        median = 0.5 * batch * (1.5 if form == "train" else 1.0) * (scale or {}).get(key, 1.0)
        samples = lognormal(rng, median, n, sigma)
        items.append((row(model, form, batch, run_id=run_id, hardware=hardware, samples=samples, **extra), samples))
    RunWriter(run_dir).extend(items)
    return run_dir
