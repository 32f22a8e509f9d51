"""Two prompts compared over the same seeds: does the candidate keep each phrase?

One picture against one picture can differ by luck.  Over N seeds, each phrase's presence
in the original prompt's picture and in the candidate's picture (same seed, same
settings) form N pairs; the summary gives the mean paired difference with its spread and a
95 % interval, and on how many seeds the candidate kept a phrase the original showed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipprobe_ext.analysis.calibration import SEEN

#: Two-sided 95 % quantiles of Student's t for 1..7 degrees of freedom (N = 2..8 seeds).
_T95 = {
    1: 12.706204736,
    2: 4.302652730,
    3: 3.182446305,
    4: 2.776445105,
    5: 2.570581836,
    6: 2.446911851,
    7: 2.364624252,
}
MAX_SEEDS = 8


@dataclass(frozen=True)
class SeedComparison:
    """One phrase over the seeds (presence in 0-1, candidate minus original)."""

    phrase: str
    seeds: int
    mean_difference: float
    spread: float  # standard deviation of the paired differences (0 for one seed)
    interval: tuple[float, float] | None  # 95 % interval of the mean; None for one seed
    seen_before: int  # seeds whose original picture shows it
    kept: int  # of those, seeds whose candidate picture shows it too
    gained: int  # seeds where only the candidate picture shows it

    @property
    def lost(self) -> int:
        return self.seen_before - self.kept


def compare_over_seeds(
    phrases: Sequence[str], original: np.ndarray, candidate: np.ndarray
) -> list[SeedComparison]:
    """``original``/``candidate``: presence [seeds, phrases], row k of both from seed k."""
    before = np.asarray(original, dtype=np.float64)
    after = np.asarray(candidate, dtype=np.float64)
    if before.shape != after.shape or before.ndim != 2 or before.shape[1] != len(phrases):
        raise ValueError("presence arrays must both be [seeds, phrases]")
    n = before.shape[0]
    if not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"between 1 and {MAX_SEEDS} seeds, not {n}")
    out = []
    for k, phrase in enumerate(phrases):
        diff = after[:, k] - before[:, k]
        mean = float(diff.mean())
        spread = float(diff.std(ddof=1)) if n > 1 else 0.0
        interval = None
        if n > 1:
            half = _T95[n - 1] * spread / np.sqrt(n)
            interval = (mean - half, mean + half)
        seen_before = before[:, k] >= SEEN
        seen_after = after[:, k] >= SEEN
        out.append(
            SeedComparison(
                phrase,
                n,
                mean,
                spread,
                interval,
                int(seen_before.sum()),
                int((seen_before & seen_after).sum()),
                int((~seen_before & seen_after).sum()),
            )
        )
    return out
