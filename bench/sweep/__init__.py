"""Sweeps: configs (TOML presets or CLI), cells with skip reasons, a subprocess per cell, resume.

A config declares axes; their cartesian product is the list of cells (NVBench's habit), each cell may carry
a skip reason, and every cell, skipped or run, becomes one `Result` row. Cells run in their own
subprocess (fresh allocator and cuDNN state, a hard timeout), so an OOM, a CUDA error or a hang is a row,
not the end of the sweep.
"""
