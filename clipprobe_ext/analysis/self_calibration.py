"""Where "seen" begins for a model, measured on the user's own pictures, without labels.

A folder of generated pictures with their prompts holds two populations for every
phrase of the folder: on a picture whose prompt asked for it (present or not: a mixture)
and on pictures that did not ask for it (nearly always absent).  For each asked pair the
rank of the picture among the pictures that did not ask for the phrase, ``u``, is
uniform when the phrase is absent: so the share of absent asked pairs is estimated
without labels (Storey's estimator), and each asked pair gets the probability that it is
present (one minus the local false discovery rate of its ``u``).  The fit's points are
then read off the two populations: "seen" where 5 % of the not-asked pairs rise above,
"not seen" under the low quantile of the asked pairs weighted by that probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from clipprobe_ext.analysis.calibration import PresenceCalibration
from clipprobe_ext.errors import ClipProbeError

#: Saved with every fit made here (``clipprobe calibrate``): which estimator made it.
VERSION = 1
#: Fewer pictures, or fewer distinct asked phrases, and the populations are too small.
MIN_PICTURES = 40
MIN_PHRASES = 10
#: The asked pairs must stand out from the not-asked ones at least this much (AUROC of
#: the cosine), and at least this share of them must be estimated present.
MIN_SEPARATION = 0.6
MIN_PRESENT_SHARE = 0.05
#: Quantiles of the fit (as for a fit from the truth: bench/bench_advice.py ``suggest``).
PRESENT_SHARE = 0.005
ABSENT_ABOVE = 0.95
#: ``u`` above this is taken as absent when the absent share is estimated.
STOREY_LAMBDA = 0.5
U_BINS = 20


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


def present_probability(u: np.ndarray) -> tuple[np.ndarray, float]:
    """Per asked pair, the probability that the phrase is present, and the estimated
    share of absent pairs.  Absent: ``u`` uniform; the local false discovery rate is
    made non-decreasing in ``u`` (a higher rank never makes presence likelier)."""
    known = ~np.isnan(u)
    values = u[known]
    absent = min(1.0, float((values > STOREY_LAMBDA).mean()) / (1 - STOREY_LAMBDA))
    counts, _ = np.histogram(values, bins=U_BINS, range=(0, 1))
    density = counts / (len(values) / U_BINS)
    lfdr = np.maximum.accumulate(np.minimum(1.0, absent / np.maximum(density, 1e-12)))
    bins = np.minimum((values * U_BINS).astype(int), U_BINS - 1)
    out = np.zeros(len(u))
    out[known] = 1 - lfdr[bins]
    return out, absent


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def _absent_quantile(scores: np.ndarray, asked: np.ndarray, q: float) -> float:
    """The not-asked pairs' quantile, each phrase weighted by how often it is asked (the
    absent asked pairs have the phrase mix of the asked ones, not of the folder)."""
    counts = asked.sum(0)
    values, weights = [], []
    for k in np.flatnonzero(counts):
        column = scores[~asked[:, k], k]
        if len(column):
            values.append(column)
            weights.append(np.full(len(column), counts[k] / len(column)))
    return _weighted_quantile(np.concatenate(values), np.concatenate(weights), q)


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    from clipprobe_ext.audit.writing_effect import auroc

    return auroc(positive, negative)


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
    cz, pz = np.asarray(evidence.cosine_z), np.asarray(evidence.phrase_z)
    u = asked_ranks(evidence)[asked]
    weights, absent = present_probability(u)
    asked_cz, asked_pz = cz[asked], pz[asked]
    separation = _auroc(evidence.cosine[asked], evidence.cosine[~asked])
    if separation < MIN_SEPARATION or 1 - absent < MIN_PRESENT_SHARE:
        raise CalibrationRefused(
            "On these pictures the phrases a prompt asked for score hardly higher than phrases "
            f"it did not (AUROC {separation:.2f}; estimated share seen {1 - absent:.0%}): this "
            "model does not see what the prompts ask for here, so no cut can be fitted. Try "
            "more pictures from varied prompts, or another model."
        )
    not_seen = _weighted_quantile(asked_cz, weights, PRESENT_SHARE)
    seen = max(_absent_quantile(cz, asked, ABSENT_ABOVE), not_seen + 0.05)
    own_not_seen = _weighted_quantile(asked_pz, weights, PRESENT_SHARE)
    own_seen = max(_absent_quantile(pz, asked, ABSENT_ABOVE), own_not_seen + 0.05)
    day = (when or date.today()).isoformat()
    fit = PresenceCalibration(
        not_seen,
        seen,
        f"calibrated on {pictures} of your pictures, {day}",
        own_not_seen,
        own_seen,
    )
    return FolderFit(
        fit,
        pictures,
        phrases,
        int(asked.sum()),
        absent,
        {"separation": separation, "estimated_present": 1 - absent},
    )
