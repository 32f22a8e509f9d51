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
"seen" where 5 % of the absent part rises above.  A small folder's cuts move with the
pictures drawn, so each cut is taken on the cautious side of seeded resamples of the
folder's pictures, and the folder is refused unless nearly all of them separate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from clipprobe_ext.analysis.calibration import PresenceCalibration
from clipprobe_ext.errors import ClipProbeError

#: Saved with every fit made here (``clipprobe calibrate``): which estimator made it.
VERSION = 3
#: Fewer pictures, or fewer distinct asked phrases, and the populations are too small.
MIN_PICTURES = 60
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
#: The folder's pictures are resampled this many times.  The separation must hold in
#: ``SEPARATION_CONFIDENCE`` of the resamples, and each cut is taken at the cautious
#: ``CONFIDENCE`` quantile of the resamples' cuts (bench/README.md, "Small folders").
RESAMPLES = 50
SEPARATION_CONFIDENCE = 0.95
CONFIDENCE = 0.6
RESAMPLE_SEED = 0
#: A big folder's cuts move little: it gets fewer resamples, as many as keep the work
#: under this many (picture, phrase) pairs in all, and never fewer than MIN_RESAMPLES.
RESAMPLE_PAIRS = 20_000_000
MIN_RESAMPLES = 20
#: A phrase's own absent share is pulled towards the folder's by this many pairs' worth.
SHRINK = 2.0
GRID = 1001
#: progress(done, in all, message), as the audit reports its pictures.
Progress = Callable[[int, int, str], None]
RESAMPLING = "Checking the fit on resamples of the pictures"
_BINS = 4096


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

    def of_pictures(self, rows: np.ndarray) -> FolderEvidence:
        """The evidence of the pictures ``rows`` (a subset, or a resample with repeats)."""
        return FolderEvidence(
            np.asarray(self.cosine)[rows],
            np.asarray(self.cosine_z)[rows],
            np.asarray(self.phrase_z)[rows],
            np.asarray(self.asked, dtype=bool)[rows],
            self.phrases,
        )

    def compares(self) -> bool:
        """Whether some asked phrase has a picture that did not ask for it."""
        asked = np.asarray(self.asked, dtype=bool)
        return bool((~asked[:, asked.any(0)]).any())


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


@dataclass(frozen=True)
class AbsentPart:
    """The absent part of the asked pairs, as the folder shows it: every not-asked pair of
    every asked phrase, weighted so that a phrase's pairs add up to its estimated number
    of absent asked pairs."""

    values: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, asked: np.ndarray, shares: np.ndarray) -> AbsentPart:
        columns = np.flatnonzero(asked.any(0))
        others = ~asked[:, columns]
        count = others.sum(0)
        per_pair = np.divide(
            shares[columns] * asked[:, columns].sum(0),
            count,
            out=np.zeros(len(columns)),
            where=count > 0,
        )
        return cls(scores[:, columns][others], np.broadcast_to(per_pair, others.shape)[others])

    @property
    def total(self) -> float:
        return float(self.weights.sum())

    def below(self, grid: np.ndarray) -> np.ndarray:
        """The weight of the values under each point of ``grid`` (sorted)."""
        slot = np.searchsorted(grid, self.values, side="right")
        return np.bincount(slot, self.weights, minlength=len(grid) + 1).cumsum()[: len(grid)]

    def quantile(self, q: float) -> float:
        """The weighted quantile: the smallest value under which, with itself, ``q`` of the
        weight lies.  A histogram finds the bin, a sort inside it the value."""
        target = q * self.total
        low, high = float(self.values.min()), float(self.values.max())
        scale = _BINS / (high - low) if high > low else 0.0
        slot = np.minimum(((self.values - low) * scale).astype(np.int64), _BINS - 1)
        cumulative = np.bincount(slot, self.weights, minlength=_BINS).cumsum()
        b = min(int(np.searchsorted(cumulative, target)), _BINS - 1)
        inside = np.flatnonzero(slot == b)
        order = inside[np.argsort(self.values[inside])]
        before = cumulative[b - 1] if b else 0.0
        running = before + np.cumsum(self.weights[order])
        return float(self.values[order][min(int(np.searchsorted(running, target)), len(order) - 1)])

    def share_under(self, value: float) -> float:
        return float(np.average(self.values < value, weights=self.weights))


def present_cdf(
    scores: np.ndarray, asked: np.ndarray, shares: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, float]:
    """The present part's CDF on ``grid`` (running maximum, so it never decreases), and
    its estimated number of pairs: the asked pairs' CDF minus each phrase's absent pairs
    spread like the phrase's not-asked pairs."""
    return _present_cdf(scores[asked], AbsentPart.of(scores, asked, shares), grid)


def _present_cdf(
    asked_values: np.ndarray, absent: AbsentPart, grid: np.ndarray
) -> tuple[np.ndarray, float]:
    below = np.searchsorted(np.sort(asked_values), grid).astype(np.float64)
    present = len(asked_values) - absent.total
    if present <= 0:
        return np.zeros(len(grid)), 0.0
    return np.maximum.accumulate((below - absent.below(grid)) / present), present


def _quantile(grid: np.ndarray, cdf: np.ndarray, q: float) -> float:
    return float(grid[min(int(np.searchsorted(cdf, q)), len(grid) - 1)])


@dataclass(frozen=True)
class _Part:
    """The present part of one score: quartiles and the estimated number of pairs."""

    q25: float
    median: float
    q75: float
    pairs: float

    def under(self, tail: float) -> float:
        return self.median - tail * (self.q75 - self.q25)


def _present_part(scores: np.ndarray, asked: np.ndarray, absent: AbsentPart) -> _Part:
    grid = np.quantile(scores[asked], np.linspace(0, 1, GRID))
    cdf, pairs = _present_cdf(scores[asked], absent, grid)
    return _Part(*(_quantile(grid, cdf, q) for q in (0.25, 0.5, 0.75)), pairs)


@dataclass(frozen=True)
class _Points:
    """What one folder (or one resample of it) gives: the cuts and the evidence for them."""

    not_seen: float
    seen: float
    own_not_seen: float
    own_seen: float
    clear: float
    separation: float
    absent: float  # the folder's estimated absent share of asked pairs
    own: _Part
    level: _Part


def _points(evidence: FolderEvidence) -> _Points:
    cosine_z = np.asarray(evidence.cosine_z, dtype=np.float64)
    phrase_z = np.asarray(evidence.phrase_z, dtype=np.float64)
    asked = np.asarray(evidence.asked, dtype=bool)
    shares, absent = absent_shares(evidence)
    own_absent = AbsentPart.of(cosine_z, asked, shares)
    level_absent = AbsentPart.of(phrase_z, asked, shares)
    own = _present_part(cosine_z, asked, own_absent)
    level = _present_part(phrase_z, asked, level_absent)
    not_seen = own.under(TAIL)
    own_not_seen = level.under(TAIL)
    return _Points(
        not_seen,
        max(own_absent.quantile(ABSENT_ABOVE), not_seen + 0.05),
        own_not_seen,
        max(level_absent.quantile(ABSENT_ABOVE), own_not_seen + 0.05),
        min(own.under(CLEAR_TAIL), not_seen),
        # How far the present part stands from the absent part (0.5: not at all).
        own_absent.share_under(own.median),
        absent,
        own,
        level,
    )


def resampled_points(
    evidence: FolderEvidence, count: int | None = None, progress: Progress | None = None
) -> list[_Points]:
    """The points of ``count`` resamples of the folder's pictures (default: ``RESAMPLES``,
    fewer for a big folder), drawn with replacement and seeded: the same folder always
    gives the same fit.  A resample whose phrases are all asked everywhere, or that leaves
    no present part, is skipped."""
    rng = np.random.default_rng(RESAMPLE_SEED)
    asked = np.asarray(evidence.asked, dtype=bool)
    if count is None:
        count = min(RESAMPLES, max(MIN_RESAMPLES, RESAMPLE_PAIRS // max(1, asked.size)))
    out = []
    for done in range(count):
        if progress is not None:
            progress(done, count, RESAMPLING)
        sample = evidence.of_pictures(rng.integers(0, len(asked), len(asked)))
        if not sample.compares():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            points = _points(sample)
        if points.own.pairs > 0 and np.isfinite([points.not_seen, points.separation]).all():
            out.append(points)
    if progress is not None:
        progress(count, count, RESAMPLING)
    return out


def fit_from_folder(
    evidence: FolderEvidence, when: date | None = None, progress: Progress | None = None
) -> FolderFit:
    """The model's fit from a folder's evidence; ``CalibrationRefused`` when it cannot.

    A small folder's points move with the pictures drawn, and a "not seen" cut that lands
    high by chance prunes present phrases: every cut is the cautious side of what
    resamples of the folder's pictures give (lower for "not seen", higher for "seen"), and
    the folder is refused unless nearly all resamples agree that its populations
    separate."""
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
    if not evidence.compares():
        raise CalibrationRefused("Every picture asks for every phrase: nothing to compare.")
    point = _points(evidence)
    resamples = resampled_points(evidence, progress=progress)

    def cautious(name: str, upper: bool = False, confidence: float = CONFIDENCE) -> float:
        values = [getattr(p, name) for p in resamples] or [getattr(point, name)]
        bound = float(np.quantile(values, confidence if upper else 1 - confidence))
        return max(getattr(point, name), bound) if upper else min(getattr(point, name), bound)

    separation = cautious("separation", confidence=SEPARATION_CONFIDENCE)
    if 1 - point.absent < MIN_PRESENT_SHARE or separation < MIN_SEPARATION:
        raise CalibrationRefused(
            "On these pictures the phrases a prompt asked for score hardly higher than phrases "
            f"it did not (estimated share seen {1 - point.absent:.0%}; in "
            f"{1 - SEPARATION_CONFIDENCE:.0%} of {len(resamples)} resamples of the pictures, "
            f"{separation:.0%} or fewer of the absent ones score under the seen ones' median, "
            f"{MIN_SEPARATION:.0%} needed): this model does not see what the prompts ask for "
            "here, or the folder is too small to tell, so no cut can be fitted. Try more "
            "pictures from varied prompts, or another model."
        )
    not_seen, own_not_seen = cautious("not_seen"), cautious("own_not_seen")
    day = (when or date.today()).isoformat()
    fit = PresenceCalibration(
        not_seen,
        max(cautious("seen", upper=True), not_seen + 0.05),
        f"calibrated on {pictures} of your pictures, {day}",
        own_not_seen,
        max(cautious("own_seen", upper=True), own_not_seen + 0.05),
        min(cautious("clear"), not_seen),
    )
    return FolderFit(
        fit,
        pictures,
        phrases,
        int(asked.sum()),
        point.absent,
        {
            "separation": point.separation,
            "separation_cautious": separation,
            "resamples": len(resamples),
            "not_seen_point": point.not_seen,
            "estimated_present": 1 - point.absent,
            "present_quartiles": [point.own.q25, point.own.median, point.own.q75],
            "present_level_quartiles": [point.level.q25, point.level.median, point.level.q75],
        },
    )
