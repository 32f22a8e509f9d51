"""The options of an audit: shared by the pipeline that runs it and the aggregation that
sums it up, below both (so neither imports the other).

``rounds`` and ``threshold`` are the analysis' options and are checked against the same
``clipprobe_ext.options.OPTIONS`` specs: one bound and one message for both.  Light to
import (no numpy, no model code), so that the command line checks an audit's options
before it loads anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.options import OPTIONS

if TYPE_CHECKING:
    from clipprobe_ext.audit.evidence import SeenFunction


@dataclass
class AuditOptions:
    recursive: bool = False
    since: datetime | None = None  # only files modified at or after this time
    limit: int | None = None  # only the newest N files
    cache: str | None = None  # the store's path (default: the user's cache folder)
    rounds: int = OPTIONS["rounds"].default  # elimination rounds
    threshold: float = OPTIONS["threshold"].default  # ranking threshold
    contribution: bool = False  # leave-one-out per picture (needs prompt-variant encodes)
    workers: int = 2  # reading/decoding threads
    batch_size: int = 32  # pictures per image-tower call and per store commit
    habit_share: float = 0.2  # "frequent": in at least this share of the prompts...
    habit_min_prompts: int = 2  # ...and in at least this many
    habit_seen_rate: float = 0.25  # "rarely seen": seen in fewer than this share of pictures
    worst_prompts: int = 10
    seen: SeenFunction | None = field(default=None, repr=False)  # None: seen_by_presence

    def seen_function(self) -> SeenFunction:
        """The answer to "is this phrase seen in this picture?" (``audit.evidence``)."""
        from clipprobe_ext.audit.evidence import seen_by_presence

        return self.seen or seen_by_presence

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ClipProbeError(f"--limit must be at least 1, not {self.limit}.")
        for name in ("rounds", "threshold"):
            OPTIONS[name].check(getattr(self, name))
        if self.workers < 1 or self.batch_size < 1:
            raise ClipProbeError("Workers and batch size must be at least 1.")

    def public(self) -> dict:
        from clipprobe_ext.audit.evidence import NOT_SEEN, SEEN

        seen = self.seen_function()
        return {
            "recursive": self.recursive,
            "since": self.since.isoformat() if self.since else None,
            "limit": self.limit,
            "rounds": self.rounds,
            "threshold": self.threshold,
            "contribution": self.contribution,
            "habit_share": self.habit_share,
            "habit_min_prompts": self.habit_min_prompts,
            "habit_seen_rate": self.habit_seen_rate,
            "seen": getattr(seen, "__name__", repr(seen)),
            "seen_from": SEEN,
            "not_seen_under": NOT_SEEN,
        }
