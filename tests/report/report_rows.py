"""Hand-built result rows for testing the drawing and table code (not measurements).

Latencies follow a simple rule so that expected speedups are known exactly: the training form of a model
takes `base_ms * batch`, the deploy form `base_ms * batch / gain`.
"""

from __future__ import annotations

import pandas as pd

from bench.results.schema import COLUMNS, Result

MODELS = {"repvgg_a0": (8.31, 1.0, 1.5), "repvgg_a1": (12.79, 1.6, 1.6), "resnet18": (11.69, 1.4, 1.0)}
"""name -> (params_m, base_ms per sample for the training form, deploy gain)."""


def row(model: str, form: str, batch: int, *, hardware: str = "test-cpu", precision: str = "fp32",
        memory_format: str = "contiguous", status: str = "ok", throttled: bool | None = None,
        device: str = "cpu", scale: float = 1.0, **extra) -> Result:
    params, base, gain = MODELS[model]
    median = base * batch * scale / (gain if form == "deploy" else 1.0)
    timed = status in ("ok", "mismatch")
    fields = dict(
        run_id="test-00000000", hardware=hardware, device=device, model=model, form=form, mode="infer",
        batch_size=batch, precision=precision, memory_format=memory_format, runtime="eager",
        resolution=224, status=status,
        error=None if timed else f"{status}: raised while building",
        latency_ms_median=median if timed else None, latency_ms_p5=median * 0.95 if timed else None,
        latency_ms_p90=median * 1.1 if timed else None,
        latency_ms_median_ci_low=median * 0.98 if timed else None,
        latency_ms_median_ci_high=median * 1.02 if timed else None, latency_ms_iqr=median * 0.08 if timed else None,
        throughput_samples_s=batch * 1000 / median if timed else None,
        params_m=params if form == "train" else params * 0.95, gmacs=params / 6,
        peak_rss_mib=300 + 10 * batch * (2 if form == "train" else 1) if timed else None,
        peak_allocated_mib=(50 + 5 * batch * (2 if form == "train" else 1))
        if device.startswith("cuda") and timed else None,
        pct_of_peak=(20 + batch / 8) if device.startswith("cuda") and timed and form == "deploy" else None,
        tflops_achieved=50.0 if device.startswith("cuda") and timed else None,
        throttled=throttled,
    )
    fields.update(extra)
    return Result(**fields)


def frame(rows: list[Result]) -> pd.DataFrame:
    return pd.DataFrame([r.to_dict() for r in rows], columns=list(COLUMNS))


def sweep_rows(hardware: str = "test-cpu", device: str = "cpu", scale: float = 1.0) -> list[Result]:
    """All models x both forms x batches 1, 8, 128; plus a few flagged and failed cells."""
    rows = [row(m, f, b, hardware=hardware, device=device, scale=scale)
            for m in MODELS for f in ("train", "deploy") for b in (1, 8, 128)
            if not (m == "repvgg_a1" and f == "deploy" and b == 8)]
    rows.append(row("repvgg_a1", "deploy", 8, hardware=hardware, device=device, status="mismatch",
                    max_abs_err=0.5, tolerance=1e-4, scale=scale))
    rows.append(row("repvgg_a0", "train", 256, hardware=hardware, device=device, status="oom"))
    rows.append(row("repvgg_a0", "deploy", 256, hardware=hardware, device=device, status="error"))
    return rows
