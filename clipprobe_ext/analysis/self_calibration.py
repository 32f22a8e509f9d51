"""Where "seen" begins for a model, measured on the user's own pictures, without labels.

A folder of generated pictures with their prompts holds two populations for every
phrase of the folder: on pictures whose prompts asked for it (present or not: a mixture)
and on pictures that did not ask for it (nearly always absent).  Each asked pair's rank
among the pictures that did not ask for the phrase, ``u``, is uniform when the phrase is
absent, so the share of absent pairs is estimated per phrase (Storey's estimator), and the
absent part of the asked population is the not-asked population of the same phrases,
weighted so.  Subtracting it leaves the present part, whose middle (quartiles) is
estimated well; "not seen" is set ``TAIL`` interquartile ranges under its median (a
present phrase's score rarely falls that far: measured on the benchmark's zoo of models),
"seen" where 5 % of the absent part rises above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from clipprobe_ext.analysis.calibration import PresenceCalibration
from clipprobe_ext.errors import ClipProbeError

#: Saved with every fit made here (``clipprobe calibrate``): which estimator made it.
VERSION = 2
#: Fewer pictures, or fewer distinct asked phrases, and the populations are too small.
MIN_PICTURES = 40
MIN_PHRASES = 10
#: At least this share of the absent part must score under the present part's median,
#: and at least this share of the asked pairs must be estimated present.
MIN_SEPARATION = 0.8
MIN_PRESENT_SHARE = 0.05
#: "Not seen" this many interquartile ranges under the present part's median; "clearly
#: not seen" (the pruned prompt's guard yields) further down.  Chosen on the zoo
#: (bench/README.md, "Does a fit transfer?"): a Gaussian's 0.5 % quantile lies 1.9 IQR
#: under its median; present scores have longer tails than that.
TAIL = 3.0
CLEAR_TAIL = 3.5
ABSENT_ABOVE = 0.95
#: ``u`` above this is taken as absent when the absent share is estimated.
STOREY_LAMBDA = 0.5
#: A phrase's own absent share is pulled towards the folder's by this many pairs' worth.
SHRINK = 2.0
GRID = 1001


class CalibrationRefused(ClipProbeError):
    """The folder cannot calibrate the model; the message says why and what to do."""


@dataclass(frozen=True)
class FolderEvidence:
    """Every picture of a folder against every distinct phrase of its prompts."""

    cosine: np.ndarray  # [pictures, phrases]
    cosine_z: np.ndarray  # [pictures, phrases] (analysis.presence.cosine_z)
    phrase_z: np.ndarray  # [pictures, phrases] (analysis.presence.phrase_z)
    asked: np.ndarray  # [pictures, phrases] bool: the picture's prompt holds the phrase
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FolderFit:
    fit: PresenceCalibration
    pictures: int
    phrases: int
    asked_pairs: int
    absent_share: float  # estimated share of asked pairs not in their picture
    diagnostics: dict = field(default_factory=dict)


def asked_ranks(evidence: FolderEvidence) -> np.ndarray:
    """[pictures, phrases]: for an asked pair, the share of the pictures that did not ask
    for the phrase and score at least as high on it (NaN elsewhere, or when every picture
    asked for it)."""
    cosine, asked = np.asarray(evidence.cosine), np.asarray(evidence.asked, dtype=bool)
    out = np.full(cosine.shape, np.nan)
    for k in np.flatnonzero(asked.any(0)):
        others = np.sort(cosine[~asked[:, k], k])
        if len(others):
            rows = np.flatnonzero(asked[:, k])
            below = np.searchsorted(others, cosine[rows, k], side="left")
            out[rows, k] = (len(others) - below) / len(others)
    return out


def absent_shares(evidence: FolderEvidence) -> tuple[np.ndarray, float]:
    """Per phrase, the estimated share of its asked pairs that are absent, and the
    folder's (pairs with ``u`` above ``STOREY_LAMBDA`` are absent; present ones rarely
    rank that low)."""
    u, asked = asked_ranks(evidence), np.asarray(evidence.asked, dtype=bool)
    known = asked & ~np.isnan(u)
    high = (u > STOREY_LAMBDA) & known
    overall = min(1.0, high.sum() / max(1, known.sum()) / (1 - STOREY_LAMBDA))
    counts = known.sum(0)
    own = high.sum(0) / (1 - STOREY_LAMBDA)
    shares = np.minimum(1.0, (own + SHRINK * overall) / (counts + SHRINK))
    return shares, overall


def present_cdf(
    scores: np.ndarray, asked: np.ndarray, shares: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, float]:
    """The present part's CDF on ``grid`` (running maximum, so it never decreases), and
    its estimated number of pairs: the asked pairs' CDF minus each phrase's absent pairs
    spread like the phrase's not-asked pairs."""
    asked_values = np.sort(scores[asked])
    below = np.searchsorted(asked_values, grid).astype(np.float64)
    absent_below = np.zeros(len(grid))
    absent_total = 0.0
    for k in np.flatnonzero(asked.any(0)):
        others = np.sort(scores[~asked[:, k], k])
        if not len(others):
            continue
        count = shares[k] * asked[:, k].sum()
        absent_below += count * np.searchsorted(others, grid) / len(others)
        absent_total += count
    present = len(asked_values) - absent_total
    if present <= 0:
        return np.zeros(len(grid)), 0.0
    return np.maximum.accumulate((below - absent_below) / present), present


def _quantile(grid: np.ndarray, cdf: np.ndarray, q: float) -> float:
    return float(grid[min(int(np.searchsorted(cdf, q)), len(grid) - 1)])


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def _absent_quantile(scores: np.ndarray, asked: np.ndarray, shares: np.ndarray, q: float) -> float:
    """The quantile of the absent part: each phrase's not-asked pairs, weighted by its
    estimated number of absent asked pairs."""
    values, weights = [], []
    for k in np.flatnonzero(asked.any(0)):
        column = scores[~asked[:, k], k]
        if len(column):
            values.append(column)
            weights.append(np.full(len(column), shares[k] * asked[:, k].sum() / len(column)))
    return _weighted_quantile(np.concatenate(values), np.concatenate(weights), q)


@dataclass(frozen=True)
class _Part:
    """The present part of one score: quartiles and the estimated number of pairs."""

    q25: float
    median: float
    q75: float
    pairs: float

    def under(self, tail: float) -> float:
        return self.median - tail * (self.q75 - self.q25)


def _present_part(scores: np.ndarray, asked: np.ndarray, shares: np.ndarray) -> _Part:
    grid = np.quantile(scores[asked], np.linspace(0, 1, GRID))
    cdf, pairs = present_cdf(scores, asked, shares, grid)
    return _Part(*(_quantile(grid, cdf, q) for q in (0.25, 0.5, 0.75)), pairs)


def _separation(part: _Part, scores: np.ndarray, asked: np.ndarray, shares: np.ndarray) -> float:
    """How far the present part stands from the absent part: the share of the absent
    part under the present part's median (0.5: they do not separate)."""
    values, weights = [], []
    for k in np.flatnonzero(asked.any(0)):
        column = scores[~asked[:, k], k]
        if len(column):
            values.append(column < part.median)
            weights.append(np.full(len(column), shares[k] * asked[:, k].sum() / len(column)))
    return float(np.average(np.concatenate(values), weights=np.concatenate(weights)))


def fit_from_folder(evidence: FolderEvidence, when: date | None = None) -> FolderFit:
    """The model's fit from a folder's evidence; ``CalibrationRefused`` when it cannot."""
    asked = np.asarray(evidence.asked, dtype=bool)
    pictures = int(asked.any(1).sum())
    phrases = int((asked.sum(0) > 0).sum())
    if pictures < MIN_PICTURES:
        raise CalibrationRefused(
            f"Only {pictures} pictures with prompts: calibration needs at least {MIN_PICTURES} "
            "generated pictures whose generation parameters hold their prompt."
        )
    if phrases < MIN_PHRASES:
        raise CalibrationRefused(
            f"The prompts hold only {phrases} distinct phrases: calibration needs at least "
            f"{MIN_PHRASES}, from prompts that differ (pictures of one prompt cannot tell "
            "what is asked for from what is not)."
        )
    if (~asked[:, asked.sum(0) > 0]).sum() == 0:
        raise CalibrationRefused("Every picture asks for every phrase: nothing to compare.")
    cz = np.asarray(evidence.cosine_z, dtype=np.float64)
    pz = np.asarray(evidence.phrase_z, dtype=np.float64)
    shares, absent = absent_shares(evidence)
    own = _present_part(cz, asked, shares)
    level = _present_part(pz, asked, shares)
    separation = _separation(own, cz, asked, shares)
    if 1 - absent < MIN_PRESENT_SHARE or separation < MIN_SEPARATION:
        raise CalibrationRefused(
            "On these pictures the phrases a prompt asked for score hardly higher than phrases "
            f"it did not (estimated share seen {1 - absent:.0%}; {separation:.0%} of the absent "
            "ones score under the seen ones' median): this model does not see what the prompts "
            "ask for here, so no cut can be fitted. Try more pictures from varied prompts, or "
            "another model."
        )
    not_seen = own.under(TAIL)
    seen = max(_absent_quantile(cz, asked, shares, ABSENT_ABOVE), not_seen + 0.05)
    own_not_seen = level.under(TAIL)
    own_seen = max(_absent_quantile(pz, asked, shares, ABSENT_ABOVE), own_not_seen + 0.05)
    day = (when or date.today()).isoformat()
    fit = PresenceCalibration(
        not_seen,
        seen,
        f"calibrated on {pictures} of your pictures, {day}",
        own_not_seen,
        own_seen,
        min(own.under(CLEAR_TAIL), not_seen),
    )
    return FolderFit(
        fit,
        pictures,
        phrases,
        int(asked.sum()),
        absent,
        {
            "separation": separation,
            "estimated_present": 1 - absent,
            "present_quartiles": [own.q25, own.median, own.q75],
            "present_level_quartiles": [level.q25, level.median, level.q75],
        },
    )
