"""`bench gpu-check`: the first minutes on a new GPU. Runs the existing commands (`pytest -m gpu`,
`bench run`, `bench profile`) and two small probes as subprocesses with timeouts, within one time budget,
and writes a folder with `summary.md` (PASS / WARN / FAIL / SKIP per check, the numbers behind each) and a
`.tar.gz` of it. Subprocesses keep it independent of the harness's internals."""
