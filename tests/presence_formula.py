"""The presence mapping written from its definition, for tests that recompute presence.

A logistic curve through two points: presence ``NOT_SEEN`` at ``not_seen_z`` and ``SEEN``
at ``seen_z``, solved here without ClipProbe's own code.  With a phrase-level pair the
presence is the smaller of the mapped ``cosine_z`` and the mapped ``phrase_z``."""

from __future__ import annotations

import numpy as np

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN, PresenceCalibration

#: The fit the tests' small CLIPs are given on purpose (``conftest``): the first
#: benchmark-world CLIP's, which the engine once applied to every model without its own.
TEST_FIT = PresenceCalibration(
    not_seen_z=1.4701,
    seen_z=1.8008,
    source="the tests' fit (made on a small CLIP of the benchmark world)",
)


def mapped(z, not_seen_z: float = TEST_FIT.not_seen_z, seen_z: float = TEST_FIT.seen_z):
    lo, hi = np.log(NOT_SEEN / (1 - NOT_SEEN)), np.log(SEEN / (1 - SEEN))
    # logit(presence) is linear in z and passes through both points
    t = (np.asarray(z) - not_seen_z) / (seen_z - not_seen_z)
    return 1 / (1 + np.exp(-(lo + t * (hi - lo))))


def expected_presence(z, own_z, fit=TEST_FIT):
    """``z``: cosine in units of the unrelated pairs; ``own_z``: against the phrase's own
    cosines on the pictures of nothing."""
    out = mapped(z, fit.not_seen_z, fit.seen_z)
    if fit.phrase_not_seen_z is not None:
        out = np.minimum(out, mapped(own_z, fit.phrase_not_seen_z, fit.phrase_seen_z))
    return out
