"""The blog post's timer beside the harness's, on the post's network: `python -m bench.gpucheck.blog_timer`.

The post ("Implementing RepVGG in PyTorch") timed 32 forward calls per form with `time.perf_counter()`, no
`torch.cuda.synchronize()` and no warm-up, training form first, in a fresh process, and reported 108x at
batch 128 on a GTX 1080 Ti. On a GPU a call returns when its kernels are queued: the deploy form's 32 calls
fit in CUDA's launch queue, so its clock stops at the last launch, while the training form's overflow it
and its clock roughly measures GPU work plus the first call's initialisation. `measure()` runs that method
and the harness's (`bench.measure.timing.measure_latency`: warm-up, then per-call medians, events on CUDA)
on the same models and input, so the two ratios stand side by side; notebooks/03_blog_claim.ipynb shows it.
On a CPU calls are synchronous, and only the first-call part of the error appears.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch

CLAIMED_SPEEDUP = 1.45 / 0.0134
"""The post's figures at batch 128 on a GTX 1080 Ti: 1.45 s (training form) / 0.0134 s (deploy form)."""
NAIVE_CALLS = 32
HARNESS_TIMING: dict[str, Any] = {"min_samples": 10, "min_time_s": 0.2, "timeout_s": 2.0, "warmup_max_s": 1.0}
"""The harness's side: a short measurement, each form on its own (the sweep's `blog` preset times them
paired and longer)."""
GPU_SETTING, CPU_SETTING = (128, 224), (4, 32)
"""(batch, resolution): the post's on a GPU; a few seconds' worth on a CPU."""


@dataclass(frozen=True)
class BlogTimes:
    device: str
    batch: int
    resolution: int
    naive_train_s: float
    naive_deploy_s: float
    harness_train_ms: float
    harness_deploy_ms: float

    @property
    def naive_ratio(self) -> float:
        return self.naive_train_s / self.naive_deploy_s

    @property
    def harness_ratio(self) -> float:
        return self.harness_train_ms / self.harness_deploy_ms

    def lines(self) -> list[str]:
        return [f"{self.device}, batch {self.batch}, {self.resolution}x{self.resolution}: the post's timer: "
                f"train {self.naive_train_s * 1e3:.2f} ms, deploy {self.naive_deploy_s * 1e3:.2f} ms for "
                f"{NAIVE_CALLS} calls, so {self.naive_ratio:.2f}x (claimed {CLAIMED_SPEEDUP:.0f}x)",
                f"the harness (warmed-up medians per call): train {self.harness_train_ms:.3f} ms, deploy "
                f"{self.harness_deploy_ms:.3f} ms, so {self.harness_ratio:.2f}x"]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "naive_ratio": self.naive_ratio, "harness_ratio": self.harness_ratio})


def _drain(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def naive_seconds(model: torch.nn.Module, x: torch.Tensor) -> float:
    """The post's method: NAIVE_CALLS calls, perf_counter, no synchronisation, no warm-up. The queue is
    drained before the clock starts (outside the timed span), so one form's clock does not wait behind the
    other's kernels."""
    _drain(x.device)
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(NAIVE_CALLS):
            model(x)
        seconds = time.perf_counter() - start
    _drain(x.device)
    return seconds


def harness_ms(model: torch.nn.Module, x: torch.Tensor) -> float:
    from bench.measure.timing import TimingConfig, measure_latency

    def call() -> None:
        with torch.inference_mode():
            model(x)

    regime = "pipelined" if x.device.type == "cuda" else "cpu"
    return measure_latency(call, x.device, regime, TimingConfig(**HARNESS_TIMING)).median_ms


def measure(device: Optional[torch.device] = None) -> BlogTimes:
    """Both methods on the blog network, the training form first (as the post did) under the `blog`
    preset's switches (fp32 with TF32 off, cuDNN autotuning on; torch's defaults differ)."""
    from bench.measure.precision_switches import apply_precision_settings
    from bench.models import create
    from bench.reparam import to_deploy

    apply_precision_settings("fp32")
    torch.manual_seed(0)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, size = GPU_SETTING if device.type == "cuda" else CPU_SETTING
    train = create("blog_repvgg").eval().to(device)
    deploy = to_deploy(train)
    x = torch.randn(batch, 3, size, size, device=device)
    naive_train, naive_deploy = naive_seconds(train, x), naive_seconds(deploy, x)
    return BlogTimes(device.type, batch, size, naive_train, naive_deploy, harness_ms(train, x), harness_ms(deploy, x))


def main() -> None:
    times = measure()
    print("\n".join(times.lines()))
    print(times.to_json(), flush=True)


if __name__ == "__main__":
    main()
