"""RepBench: structural re-parameterization and honest benchmarks of it.

`bench.reparam` folds multi-branch training-form blocks into single convolutions; `bench.models` builds
whole networks in both forms; `bench.measure`, `bench.sweep`, `bench.results` and `bench.report` time
them, sweep configurations, store rows and draw the figures.
"""

__version__ = "0.1.0"
