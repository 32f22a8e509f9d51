"""The presence mapping written from its definition, for tests that recompute presence.

A logistic curve through two points: presence ``NOT_SEEN`` at ``not_seen_z`` and ``SEEN``
at ``seen_z`` (``cosine_z`` units), solved here without ClipProbe's own code."""

from __future__ import annotations

import numpy as np

from clipprobe_ext.analysis.calibration import DEFAULT, NOT_SEEN, SEEN


def mapped(z, not_seen_z: float = DEFAULT.not_seen_z, seen_z: float = DEFAULT.seen_z):
    lo, hi = np.log(NOT_SEEN / (1 - NOT_SEEN)), np.log(SEEN / (1 - SEEN))
    # logit(presence) is linear in z and passes through both points
    return 1 / (
        1 + np.exp(-(lo + (np.asarray(z) - not_seen_z) * (hi - lo) / (seen_z - not_seen_z)))
    )
