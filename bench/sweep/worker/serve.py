"""A persistent worker: `python -m bench.sweep.worker.serve`, serving units of work (`UnitSpec`, one JSON line
each on stdin) for one model and runtime, so torch is imported and the model built and converted once.

A unit marked `prebuild` is only built into the worker's model cache (see `UnitSpec`). For every
other unit it writes the `UnitOutcome` atomically (temp + fsync + rename) to the unit's
`outcome_path`, which the executor waits for. After a unit in which any cell failed (oom, error) the
worker leaves, so the next unit starts in a fresh process: isolation holds where state may be damaged
(a fragmented allocator, a sticky CUDA error). It leaves with `os._exit` once its last outcome is on disk:
interpreter teardown (module finalizers, CUDA context destruction) costs about a second and could only
lose data that is already safe.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Optional

from bench.measure.compile_cache import apply_compile_cache
from bench.sweep.local.orphans import watch_parent
from bench.sweep.protocol import UnitSpec, write_atomic


def main(argv: Optional[list[str]] = None) -> int:
    watch_parent()
    apply_compile_cache()  # before torch: inductor reads its cache folder from the environment
    from bench.sweep.worker.unit import ModelCache, prebuild, run_unit  # imports torch before the first unit arrives
    from bench import models, reparam  # noqa: F401
    from bench.measure import flops, memory, nvml, timing  # noqa: F401

    # The imports' objects live as long as the worker: frozen, the collections a unit makes between its
    # phases (gate, memory passes) scan only what units allocate, 0.1 s -> 5 ms each.
    gc.freeze()

    cache: Optional[ModelCache] = None
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = UnitSpec.from_json(line)
        if cache is None or cache.seed != spec.seed:
            cache = ModelCache(seed=spec.seed)
        if spec.prebuild:
            prebuild(spec, cache)
            continue
        outcome = run_unit(spec, cache)
        write_atomic(Path(str(spec.outcome_path)), outcome.to_json())
        if outcome.failed_any:
            break
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
