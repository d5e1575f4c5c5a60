"""Sweeps: configs (TOML presets or CLI), cells with skip reasons, units of work in worker processes, resume.

A config declares axes; their cartesian product is the list of cells (NVBench's habit), each cell may carry
a skip reason, and every cell, skipped or run, becomes one `Result` row. Cells run as units (a train/deploy
pair timed side by side, or a lone cell) in worker processes apart from the sweep's (`bench.sweep.worker.serve`:
one per model and runtime, replaced after a failure; a hard timeout per unit), so an OOM, a CUDA error or a
hang is a row, not the end of the sweep.

One folder per concern (docs/layout.md): plan/ (what to run), driver/ (the parent's run loop), local/ and
ray/ (where units run), worker/ (what runs inside a worker, with torch), tools/ (max-batch, selfbench).
"""
