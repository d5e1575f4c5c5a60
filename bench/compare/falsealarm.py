"""A/A false-alarm rate of the comparison, estimated from recorded samples.

Each trial splits every cell's recorded samples into two halves, treats one as the baseline and the other
as the new run, and runs the same verdicts as `bench compare`. Both halves measure the same code on the
same machine, so any SLOWER is a false alarm; the rate is the fraction of trials (whole comparisons, as a
CI job sees them) with at least one SLOWER, with a 95% Wilson interval.

Splits:
- `random` (default): a fresh random half per trial. Treats samples as exchangeable, which ignores drift
  within a cell (clock ramps, thermal), so it estimates the method's false-alarm rate under noise alone.
- `halves`: first half of the samples (in `sample_index` order) against the second, one trial. Keeps the
  drift, so it is the harsher check of whether a cell's own timeline would already trip the gate.
Two real runs minutes apart see more between-run variation than either split; a rate from repeated real
A/A runs is the honest figure for a given machine.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.results.schema import AXES
from bench.compare.stats import wilson_interval
from bench.compare.verdicts import AMBIGUOUS, FASTER, SLOWER, Settings, timing_verdicts
from bench.usage import unknown

SPLITS: tuple[str, ...] = ("random", "halves")


@dataclass(frozen=True)
class FalseAlarmEstimate:
    """Result of `false_alarm_rate`."""

    n_trials: int
    n_cells: int
    split: str
    trials_with_slower: int
    trials_with_faster: int
    slower_cells: int
    ambiguous_cells: int
    settings: Settings

    @property
    def rate(self) -> float:
        return self.trials_with_slower / self.n_trials if self.n_trials else float("nan")

    @property
    def rate_interval(self) -> tuple[float, float]:
        return wilson_interval(self.trials_with_slower, self.n_trials)

    @property
    def ambiguous_fraction(self) -> float:
        total = self.n_trials * self.n_cells
        return self.ambiguous_cells / total if total else float("nan")

    def __str__(self) -> str:
        lo, hi = self.rate_interval
        return (f"A/A false-alarm rate ({self.split} split, {self.n_cells} cells, {self.n_trials} trials, "
                f"threshold {self.settings.threshold:.0%}, FDR q={self.settings.fdr}): "
                f"{self.trials_with_slower}/{self.n_trials} comparisons with any SLOWER = {self.rate:.1%} "
                f"(95% CI {lo:.1%}..{hi:.1%}); any FASTER in {self.trials_with_faster}; "
                f"AMBIGUOUS cells {self.ambiguous_fraction:.1%}")


def cell_samples(samples_df: pd.DataFrame, min_samples: int = 6) -> list[np.ndarray]:
    """Raw samples per (run_id, cell) in `sample_index` order, cells with fewer than `min_samples` dropped."""
    keys = ["run_id", *AXES]
    ordered = samples_df.sort_values([*keys, "sample_index"], kind="stable")
    values = ordered["latency_ms"].to_numpy(float)
    groups = ordered.groupby(keys, sort=True).indices
    return [values[idx] for idx in groups.values() if len(idx) >= min_samples]


def false_alarm_rate(samples_df: pd.DataFrame, n_trials: int = 200, settings: Settings | None = None,
                     split: str = "random", min_samples: int = 6, seed: int = 0) -> FalseAlarmEstimate:
    """Estimate how often an A/A comparison of these cells reports any SLOWER (see the module docstring).

    `samples_df`: rows with SAMPLE_COLUMNS (what `bench.results.load_samples` returns), any number of runs.
    """
    if split not in SPLITS:
        raise unknown("split", split, SPLITS)
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    settings = settings or Settings()
    cells = cell_samples(samples_df, min_samples)
    if not cells:
        raise ValueError(f"no cell has {min_samples} or more samples; nothing to split")
    rng = np.random.default_rng(seed)
    n_trials = 1 if split == "halves" else n_trials
    slower_trials = faster_trials = slower_cells = ambiguous = 0
    for _ in range(n_trials):
        halves = [_split(x, split, rng) for x in cells]
        verdict = timing_verdicts([a for a, _ in halves], [b for _, b in halves], settings, rng).verdict
        slower = int(np.sum(verdict == SLOWER))
        slower_trials += slower > 0
        faster_trials += bool(np.any(verdict == FASTER))
        slower_cells += slower
        ambiguous += int(np.sum(verdict == AMBIGUOUS))
    return FalseAlarmEstimate(n_trials, len(cells), split, slower_trials, faster_trials, slower_cells,
                              ambiguous, settings)


def _split(x: np.ndarray, split: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = len(x) // 2
    if split == "halves":
        return x[:half], x[half: 2 * half]
    order = rng.permutation(len(x))
    return x[order[:half]], x[order[half: 2 * half]]


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.compare.falsealarm PATH`: the estimate for the samples of any results path."""
    from bench.results.read import load_samples

    parser = argparse.ArgumentParser(prog="python -m bench.compare.falsealarm", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run folder, a hardware folder, results/ or a baseline .parquet")
    parser.add_argument("--trials", type=int, default=200, help="A/A comparisons (default 200)")
    parser.add_argument("--split", choices=SPLITS, default="random", help="how samples are halved")
    parser.add_argument("--threshold", type=float, default=0.05, help="practical threshold (default 0.05)")
    parser.add_argument("--fdr", type=float, default=0.05, help="Benjamini-Hochberg q (default 0.05)")
    args = parser.parse_args(argv)
    settings = Settings(threshold=args.threshold, fdr=args.fdr)
    print(false_alarm_rate(load_samples(args.path), args.trials, settings, split=args.split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
