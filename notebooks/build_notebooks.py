"""Write the notebooks of this folder from the cell texts below, without outputs.

    python notebooks/build_notebooks.py

The notebooks are thin: they find runs with `bench.report.runs` (the newest run of each preset under
$REPBENCH_RESULTS, default the repository's results/) and call `bench.report` to draw. Editing a cell here
and re-running keeps the stored .ipynb files reviewable and output-free.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

FIND_RESULTS = '''\
from bench.report import notebook as nb
from bench.report import paper_table, speedup_table
from bench.report.runs import find_runs, load_runs, newest_of, results_root
from bench.report.tables import excluded_table, flagged_table

root = results_root()
print(f"results folder: {root}")
'''

SPEED_MEMORY = [
    new_markdown_cell("""\
# Speed and memory: training form vs deploy form

The newest run under `$REPBENCH_RESULTS` (default: the repository's `results/`) of the `paper` preset, else
`full`, else `smoke`, else any run. Every timing figure shows the median throughput with error bars from
the latency's p5..p90 carried through `throughput = batch / latency`. Cells whose clocks were throttled are
hatched (bars) or ringed (points); deploy cells whose output did not match the training form are crossed
and never enter a speedup. Cells that failed (oom, error, timeout, skipped) are left out and listed at the
end."""),
    new_code_cell(FIND_RESULTS + '''
run = newest_of(("paper", "full", "smoke"), root)
if run is None:
    df = None
    print(nb.no_results_message(root))
else:
    df = load_runs([run])
    print(f"run: {run}")
    print(df["status"].value_counts().to_string())'''),
    new_markdown_cell("## Throughput and speedup"),
    new_code_cell('''\
if df is not None:
    nb.show(nb.draw(df, ["throughput_forms", "speedup_heatmap", "throughput_vs_batch"]))'''),
    new_markdown_cell("## The paper's Figure 1, measured here"),
    new_code_cell('''\
if df is not None:
    nb.show(nb.draw(df, ["speed_vs_params", "speed_vs_top1"]))'''),
    new_markdown_cell("""\
## Memory

On CUDA: `peak_allocated_mib` (`torch.cuda.max_memory_allocated`, tensors only). On a CPU:
`peak_rss_mib` (the whole process). The y-axis label says which one is drawn."""),
    new_code_cell('''\
if df is not None:
    nb.show(nb.draw(df, ["memory_forms"]))'''),
    new_markdown_cell("## Precision, memory format and percent of peak (GPU runs)"),
    new_code_cell('''\
if df is not None:
    nb.show(nb.draw(df, ["precision_format", "pct_of_peak"]))'''),
    new_markdown_cell("## Tables: the paper's Table 4, speedups, flagged and excluded cells"),
    new_code_cell('''\
if df is not None:
    for table in (paper_table(df), speedup_table(df), flagged_table(df), excluded_table(df)):
        nb.show_table(table)'''),
]

HARDWARE = [
    new_markdown_cell("""\
# Hardware comparison

The newest run of each preset on every hardware folder under `$REPBENCH_RESULTS`, side by side: the same
cells (model, form, batch, precision, ...) measured on each machine. The deploy/train speedup is the number
that transfers between machines; absolute throughput does not."""),
    new_code_cell(FIND_RESULTS + '''
runs = find_runs(root)
if runs.empty:
    df = None
    print(nb.no_results_message(root))
else:
    newest = runs.drop_duplicates(["hardware", "preset"])
    df = load_runs(list(newest["path"]))
    print(newest[["hardware", "preset", "run_id"]].to_string(index=False))
    hardware = sorted(df["hardware"].unique())
    if len(hardware) < 2:
        print(f"Only one hardware folder ({hardware[0]}): nothing to compare yet. Copy another machine's "
              "results/<hardware>/ folder here to see them side by side; its speedups are listed below.")'''),
    new_code_cell('''\
if df is not None:
    if df["hardware"].nunique() > 1:
        nb.show(nb.draw(df, ["hardware_comparison"]))
    else:
        nb.show(nb.draw(df, ["speedup_heatmap"]))'''),
    new_code_cell('''\
if df is not None:
    nb.show_table(speedup_table(df))'''),
]

BLOG = [
    new_markdown_cell("""\
# The blog's 108x claim, measured

The post *Implementing RepVGG in PyTorch* timed its network (two RepVGG blocks per stage, widths
64-128-256-512) at batch 128 on a GTX 1080 Ti: 1.45 s for the training form, 0.0134 s for the
re-parameterized form, so "108x faster".

Arithmetic says otherwise. A training-form block runs a 3x3 conv, a 1x1 conv, two or three BNs and the
branch additions; the deploy form runs the one 3x3 conv. The 1x1 branch adds 1/9 of the 3x3's
multiply-adds, and BN and additions are memory-bound passes over the activations: a speedup of roughly
1.1x to 2x, not 100x.

Where the 108x came from. The post's `benchmark.py` builds the network in a fresh process, times 32
forward calls of the training form with `perf_counter()`, converts the same model in place and times 32
calls of the deploy form the same way, with no `torch.cuda.synchronize()` before either clock stops and no
warm-up. On a GPU a PyTorch call returns when its kernels are **queued**, not when they have run:
- the training form launches several kernels per block (two convs, two or three BNs, the additions), so 32
  forwards overflow CUDA's launch queue and the host must wait for the GPU: its clock roughly measures GPU
  work, plus the one-off costs of the first call (CUDA context and cuDNN initialisation, the caching
  allocator growing its pool);
- the deploy form launches one conv and one ReLU per block, so its 32 forwards fit in the queue: the clock
  stops after the launches, while the GPU is still busy (partly with the training form's leftover work).

The ratio measures the timing method, not the network.

The `blog` preset of this harness times both forms with warm-up, CUDA-event (or synchronized) timing and
repeated samples until the spread is small; its speedups are below."""),
    new_code_cell(FIND_RESULTS + '''
run = newest_of(("blog",), root)
df = None
if run is None:
    print(nb.no_results_message(root, "the blog preset"))
else:
    df = load_runs([run])
    if "blog_repvgg" in set(df["model"]):
        df = df[df["model"].eq("blog_repvgg")]
        print(f"run: {run}")
    else:
        print(f"The newest run ({run}) has no blog_repvgg cells; run `python -m bench run --preset blog`.")
        df = None'''),
    new_code_cell('''\
CLAIMED = 1.45 / 0.0134
if df is not None:
    speedups = speedup_table(df)
    nb.show_table(speedups)
    if speedups.empty:
        print("No valid (train, deploy) pair: both cells of a pair must have status ok.")
    else:
        best = speedups.loc[speedups["batch_size"].idxmax()]
        print(f"measured at batch {best['batch_size']} on {best['hardware']}: {best['speedup']:.2f}x "
              f"(p5-p90 bounds {best['speedup_lo']:.2f}-{best['speedup_hi']:.2f}x); "
              f"claimed: {CLAIMED:.0f}x")'''),
    new_code_cell('''\
if df is not None:
    nb.show(nb.draw(df, ["throughput_vs_batch", "speedup_heatmap", "memory_forms"]))'''),
    new_markdown_cell("""\
## What an unsynchronized timer sees (GPU runs)

On CUDA the sweep also records `host_enqueue_ms_median`: the host time to return from the call, which is
what `time.time()` without synchronization measures. Beside it, `latency_ms_median` is the time the GPU
took. Where the first is much smaller than the second, a naive timer reports launch speed, not compute."""),
    new_code_cell('''\
if df is not None:
    cols = ["hardware", "form", "batch_size", "host_enqueue_ms_median", "latency_ms_median", "first_call_ms"]
    gpu = df[df["host_enqueue_ms_median"].notna()] if "host_enqueue_ms_median" in df else df.iloc[0:0]
    if gpu.empty:
        print("This run has no host enqueue times (a CPU run: calls are synchronous there).")
    else:
        nb.show_table(gpu[cols].sort_values(["batch_size", "form"]))'''),
    new_markdown_cell("""\
## A live demonstration on the CPU (a few seconds)

The post's method (32 calls per form, wall clock, no synchronisation, no warm-up, training form first)
against the harness's timer (`bench/gpucheck/blog_timer.py`, which `bench gpu-check` runs too). On a GPU
(batch 128 at 224x224) this reproduces the inflated ratio; on a CPU calls are synchronous, so only the
first-call part of the error appears (allocation and oneDNN primitive creation). Set
`REPBENCH_LIVE_DEMO=0` to skip it."""),
    new_code_cell('''\
import os

if os.environ.get("REPBENCH_LIVE_DEMO", "1") != "0":
    from bench.gpucheck.blog_timer import measure

    print("\\n".join(measure().lines()))'''),
]

NOTEBOOKS = {
    "01_speed_memory.ipynb": SPEED_MEMORY,
    "02_hardware_comparison.ipynb": HARDWARE,
    "03_blog_claim.ipynb": BLOG,
}


def build(name: str, cells: list) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{Path(name).stem}-{index:02d}"
    nbformat.validate(notebook)
    return notebook


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
