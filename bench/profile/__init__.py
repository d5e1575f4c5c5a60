"""`bench profile`: what runs in one cell's forward (a trace, and launches by category), apart from timing.

`capture` builds and profiles a cell; `command` is the CLI. Categories live in `bench.measure.ops`.
"""
