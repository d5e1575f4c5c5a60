"""Turn a cell's axes into a prepared model, an input and the zero-arg callable that gets timed.

Precision (why casting): fp16/bf16 inference casts model and input with `.to(dtype)`, which is how a
deployed network runs in reduced precision (every conv, BN and linear in that dtype, no per-op casts);
autocast would keep some ops in fp32 and time the casts too. `train_step` in fp16/bf16 uses
`torch.autocast` instead, because that is how networks are trained (fp32 master weights); no GradScaler,
whose cost is a few element-wise kernels. tf32 and fp32 keep fp32 tensors and differ only in the TF32
switches set by `bench.measure.precision_switches.apply_precision_settings`.

Runtimes: `eager` times the module as is; `cudagraph` times the eager callable under the measure
package's CUDA-graph replay regime; every other runtime of a sweep opens the form itself on the timing
input (`bench.sweep.worker.runtimes`). `make_fn` also serves `bench profile`, whose `compile` is a plain
`torch.compile(model)`, and a `--max-batch` probe. A cell is anything with the axes of
`bench.results.cell.Cell`; which runtime casts is the caller's to say (`harness_casts`), so nothing here
knows the sweep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.measure.precision_switches import autocast_context, dtype_for
from bench.results.precision import precision

if TYPE_CHECKING:
    from bench.results.cell import Cell

MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "contiguous": torch.contiguous_format, "channels_last": torch.channels_last,
}
SGD_LR, SGD_MOMENTUM = 1e-3, 0.9


def cast_for_infer(cell: Cell, harness_casts: bool = True) -> bool:
    """fp16/bf16 inference casts module and input, unless the runtime takes the precision as a build flag
    of its own on the fp32 module (`harness_casts` False: the sweep's `Runtime.harness_casts`, TensorRT)."""
    return cell.mode == "infer" and precision(cell.precision).reduced and harness_casts


def prepare_model(model: nn.Module, cell: Cell, device: torch.device, harness_casts: bool = True) -> nn.Module:
    """Move to the device, cast for fp16/bf16 inference (`cast_for_infer`), apply the memory format (4-D
    params only)."""
    model = model.to(device)
    if cast_for_infer(cell, harness_casts):
        model = model.to(dtype_for(cell.precision))
    if cell.memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model


def make_input(cell: Cell, device: torch.device, batch_size: int | None = None,
               seed: int = 0, harness_casts: bool = True) -> torch.Tensor:
    """A random NCHW image batch (3 channels, resolution x resolution) in the cell's dtype and format.

    Drawn on the device itself (a generator of the device's type), so a large `--max-batch` probe never
    builds its batch in host memory first."""
    device = torch.device(device)
    drawn_on = device if device.type == "cuda" else torch.device("cpu")  # meta has no generator
    generator = torch.Generator(device=drawn_on).manual_seed(seed)
    n = batch_size or cell.batch_size
    x = torch.randn(n, 3, cell.resolution, cell.resolution, generator=generator, device=drawn_on)
    dtype = dtype_for(cell.precision) if cast_for_infer(cell, harness_casts) else torch.float32
    return x.to(device=device, dtype=dtype).contiguous(memory_format=MEMORY_FORMATS[cell.memory_format])


def infer_fn(model: Callable, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return call


def train_step_fn(module: nn.Module, model: Callable, x: torch.Tensor, cell: Cell,
                  device: torch.device) -> Callable[[], None]:
    """One SGD step: zero grads, forward, cross-entropy on random labels, backward, optimizer step.

    Networks without a head (the blog's returns its feature map) get their map averaged over space into
    per-channel logits, so every model has a loss of the same kind.
    """
    module.eval()
    with torch.no_grad(), autocast_context(cell.precision, device):
        num_classes = int(module(x[:1]).shape[1])
    module.train()
    target = torch.randint(0, num_classes, (x.shape[0],), device=device,
                           generator=torch.Generator(device=device).manual_seed(0))
    optimizer = torch.optim.SGD(module.parameters(), lr=SGD_LR, momentum=SGD_MOMENTUM)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(cell.precision, device):
            out = model(x)
        logits = out.float().flatten(2).mean(-1) if out.dim() > 2 else out.float()
        F.cross_entropy(logits, target).backward()
        optimizer.step()

    return step


RUNTIMES: dict[str, Callable[[nn.Module], Callable]] = {
    "eager": lambda module: module,
    "cudagraph": lambda module: module,
    "compile": lambda module: torch.compile(module),
}


def make_fn(module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device) -> Callable:
    """The zero-arg callable timed for this cell (runtime applied, mode chosen)."""
    if cell.runtime not in RUNTIMES:
        raise ValueError(f"runtime '{cell.runtime}' has no torch callable; torch runtimes: {', '.join(RUNTIMES)}"
                         " (a sweep opens the others: bench.sweep.worker.runtimes)")
    model = RUNTIMES[cell.runtime](module)
    if cell.mode == "train_step":
        return train_step_fn(module, model, x, cell, device)
    return infer_fn(model, x)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
