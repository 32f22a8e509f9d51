"""The verdict of a phrase when the model has no fit of its own ("uncalibrated").

Without a fit there is no presence (``calibration``: cut points fitted on another model
do not carry over), so nothing says a phrase is *not* seen: it is never pruned on
presence.  What remains is the elimination ranking, the article's own rule: keep a
phrase that rose above the threshold in some round, weak otherwise.  The whole rule is
``uncalibrated_rule``; a later rule (say, letting the pruned prompt's similarity guard
alone decide) changes only it: its ``candidate`` makes a phrase one the pruned prompt may
drop.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipprobe_ext.results import Verdict

#: The rule in words, for the reports (changes with ``uncalibrated_rule``).
RULE = (
    "keep when the phrase rose above the threshold in some elimination round, weak "
    "otherwise; nothing is pruned"
)


@dataclass(frozen=True)
class UncalibratedDecision:
    verdict: Verdict  # keep or weak
    candidate: bool  # the pruned prompt may drop it (its similarity guard decides)


def uncalibrated_rule(best_probability: float, threshold: float) -> UncalibratedDecision:
    """Keep above the ranking threshold in some round, weak otherwise; never a pruning
    candidate."""
    verdict: Verdict = "keep" if best_probability > threshold else "weak"
    return UncalibratedDecision(verdict, candidate=False)
