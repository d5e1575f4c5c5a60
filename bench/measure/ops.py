"""Operator and kernel categories of a profiled forward: what a re-parameterization removes.

On CUDA every GPU kernel counts as a launch; on the CPU every top-level ATen operator (an `aten::` op not
called by another one: `aten::conv2d`, `aten::batch_norm`, `aten::add`, ...), which is what a launch is
there. Used by `bench profile` and by the CI invariants (`bench.models.invariants`), so both count alike.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pandas as pd
import torch

CATEGORIES: tuple[str, ...] = ("convolution", "batchnorm", "elementwise", "other")
OP_CATEGORY: dict[str, str] = {
    "aten::conv2d": "convolution", "aten::convolution": "convolution", "aten::_convolution": "convolution",
    "aten::batch_norm": "batchnorm", "aten::native_batch_norm": "batchnorm",
    "aten::add": "elementwise", "aten::add_": "elementwise", "aten::relu": "elementwise",
    "aten::relu_": "elementwise", "aten::mul": "elementwise", "aten::mul_": "elementwise",
    "aten::sigmoid": "elementwise", "aten::hardtanh": "elementwise", "aten::hardtanh_": "elementwise",
    "aten::clamp_min": "elementwise", "aten::silu": "elementwise", "aten::silu_": "elementwise",
}
"""Top-level ATen operator -> category (anything else: 'other')."""
KERNEL_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("batchnorm", re.compile(r"batch_?norm|bn_fw|bn_bw|bn_infer", re.I)),
    ("convolution", re.compile(r"conv|implicit_gemm|fprop|dgrad|wgrad|winograd|cudnn", re.I)),
    ("elementwise", re.compile(r"elementwise|vectorized|relu|add|mul|clamp|threshold|sigmoid", re.I)),
)
"""GPU kernel name -> category, first match wins, for kernels whose launching op is not linked. No bare
"xmma": cuBLAS GEMMs (the linear head, backward matmuls) are `sm90_xmma_gemm_*` too; cuDNN's xmma kernels
also say fprop/dgrad/wgrad/implicit_gemm."""


def _root_op(event):
    """The outermost `aten::` ancestor of an event (itself if none above it), or None outside any op."""
    root, node = None, event
    while node is not None:
        if node.name.startswith("aten::"):
            root = node
        node = node.cpu_parent
    return root


def _is_kernel(event) -> bool:
    """A device activity (kernel, memcpy, memset). Not a `record_function` range: kineto mirrors those on
    the GPU timeline (gpu_user_annotation, device type CUDA) spanning every kernel inside them."""
    return event.device_type != torch.autograd.DeviceType.CPU and not getattr(event, "is_user_annotation", False)


def kernel_name_category(name: str) -> str:
    """Category of a GPU kernel from its name alone (cuDNN/ATen naming), first pattern that matches."""
    return next((cat for cat, pattern in KERNEL_PATTERNS if pattern.search(name)), "other")


def _launcher_categories(events) -> dict[str, str]:
    """Kernel name -> category of the ATen op that launched it (via the profiler's kernel links)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if _is_kernel(e) or not e.kernels:
            continue
        root = _root_op(e)
        if root is not None and root.name in OP_CATEGORY:
            for kernel in e.kernels:
                votes[kernel.name][OP_CATEGORY[root.name]] += 1
    return {name: counter.most_common(1)[0][0] for name, counter in votes.items()}


def launches(events, on_gpu: bool) -> list[tuple[str, str, float]]:
    """(name, category, time_ms) per launch: GPU kernels on CUDA, top-level ATen ops on the CPU.

    A kernel's category is that of the ATen op that launched it when the profiler links them, else
    read from its name. CPU time of a top-level op is the self time of everything under it.
    """
    events = list(events)
    if on_gpu:
        launched_by = _launcher_categories(events)
        return [(e.name, launched_by.get(e.name) or kernel_name_category(e.name),
                 e.time_range.elapsed_us() / 1e3) for e in events if _is_kernel(e)]
    self_ms: dict[int, float] = defaultdict(float)
    roots = {}
    for e in events:
        if _is_kernel(e):
            continue
        root = _root_op(e)
        if root is not None:
            roots[id(root)] = root
            self_ms[id(root)] += e.self_cpu_time_total / 1e3
    return [(r.name, OP_CATEGORY.get(r.name, "other"), self_ms[key]) for key, r in roots.items()]


def summarize(prof: torch.profiler.profile, active: int, on_gpu: bool, top: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(top launches by time, per-category counts and times), both per forward (divided by `active`)."""
    rows = pd.DataFrame(launches(prof.events(), on_gpu), columns=["name", "category", "time_ms"])
    by_name = rows.groupby(["name", "category"], as_index=False).agg(
        count=("time_ms", "size"), time_ms=("time_ms", "sum"))
    total = max(float(rows["time_ms"].sum()), 1e-12)
    by_name["count_per_forward"] = by_name["count"] / active
    by_name["time_ms_per_forward"] = by_name["time_ms"] / active
    by_name["share_pct"] = 100 * by_name["time_ms"] / total
    top_table = (by_name.sort_values("time_ms", ascending=False).head(top)
                 [["name", "category", "count_per_forward", "time_ms_per_forward", "share_pct"]])
    cats = rows.groupby("category").agg(count=("time_ms", "size"), time_ms=("time_ms", "sum"))
    cats = cats.reindex(CATEGORIES, fill_value=0)
    categories = pd.DataFrame({
        "category": list(CATEGORIES),
        "count_per_forward": (cats["count"] / active).to_numpy(),
        "time_ms_per_forward": (cats["time_ms"] / active).to_numpy(),
        "share_pct": (100 * cats["time_ms"] / total).to_numpy(),
    })
    total_row = pd.DataFrame([{"category": "all", "count_per_forward": len(rows) / active,
                               "time_ms_per_forward": total / active, "share_pct": 100.0}])
    return top_table.reset_index(drop=True), pd.concat([categories, total_row], ignore_index=True)
