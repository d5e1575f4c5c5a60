"""`bench gpu-check`: the first minutes on a new GPU. Runs the existing commands (`pytest -m gpu`, `bench run`,
`bench profile`), a few small probes and, on request, the presets worth keeping, as subprocesses within one
time budget planned from the code's own caps (`plan.py`), and writes a folder with `summary.md` (the presets'
results first, then PASS / WARN / FAIL / SKIP per check with the numbers behind each) and one archive of it
all. Subprocesses keep it independent of the harness's internals."""
