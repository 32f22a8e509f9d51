"""Plain result types of an audit: numbers and strings only, so they serialise as is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

#: cannot_judge: a claim CLIP cannot check (``analysis.judgeable``): never pruned, never a
#: habit word.
AuditVerdict = Literal["keep", "weak", "prune", "cannot_judge"]
#: The writing effect of a phrase: measured (None), ``confounded`` (measured, but always
#: written with ``written_with``: the effect is theirs together), ``everywhere`` (in every
#: picture's prompt: nothing to compare with), ``too_few`` (fewer than
#: ``writing_effect.MIN_PICTURES`` pictures on a side).
WritingNote = Literal["confounded", "everywhere", "too_few"]


@dataclass(frozen=True)
class PhraseSummary:
    """One normalised phrase across the folder.  The seen and presence fields are None
    for an uncalibrated model (no presence to tell by)."""

    phrase: str  # normalised: lower case, single spaces, no weight syntax
    prompts: int  # distinct prompts that hold it
    pictures: int  # pictures of those prompts
    seen: int | None  # pictures in which it was seen
    seen_rate: float | None  # seen / pictures
    seen_rate_std: float | None  # spread of the per-prompt seen rates
    seen_rate_min: float | None
    seen_rate_max: float | None
    not_seen: int | None  # pictures in which it is not seen (presence under NOT_SEEN)
    not_seen_rate: float | None
    mean_presence: float | None  # mean calibrated presence over its pictures, [0, 1]
    presence_std: float | None  # spread of the presence over its pictures
    mean_probability: float  # mean best probability in the elimination ranking
    probability_std: float
    mean_contribution: float | None  # mean leave-one-out contribution
    tokens_per_prompt: float  # CLIP tokens it spends per prompt that holds it, on average
    verdict: AuditVerdict
    habit: bool  # frequent and rarely seen
    # Does writing it change what CLIP sees?  AUROC of its cosine on the pictures whose
    # prompt holds it against those whose prompt does not (``writing_effect``).
    writing_auroc: float | None = None
    written_in: int = 0  # pictures whose prompt holds it (of those the effect rests on)
    not_written_in: int = 0  # pictures whose prompt does not
    written_with: list[str] = field(default_factory=list)  # phrases (nearly) always with it
    writing_note: WritingNote | None = None
    cannot_judge: str | None = None  # the kind of claim CLIP cannot judge (``judgeable``)
    cannot_judge_cue: str | None = None  # the words that make it


@dataclass(frozen=True)
class PromptSummary:
    """One distinct prompt and how much of it its pictures show."""

    prompt: str
    pictures: int
    phrases: int  # measurable phrases
    seen_share: float  # mean over its pictures of the share of its phrases seen
    missed: list[str]  # normalised phrases seen in fewer than half of its pictures
    example: str  # one of its files


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class AuditStats:
    files: int = 0  # files considered (after --since and --limit)
    files_found: int = 0  # image files found in the folders
    read: int = 0  # files handled so far
    pictures: int = 0  # pictures audited (with parameters and readable)
    encoded: int = 0  # image embeddings computed in this run
    from_store: int = 0  # image embeddings taken from the store
    text_encodes: int = 0  # text chunks run through the text tower in this run
    waited_s: float = 0.0  # seconds the encoding thread waited for the reader threads
    seconds: float = 0.0


@dataclass
class AuditReport:
    model_id: str
    store: str
    folders: list[str]
    stats: AuditStats
    phrases: list[PhraseSummary]  # most frequent first
    habit_words: list[str]  # normalised phrases, most frequent first
    worst_prompts: list[PromptSummary]  # least seen first
    no_parameters: list[Skipped] = field(default_factory=list)
    unreadable: list[Skipped] = field(default_factory=list)
    vanished: list[Skipped] = field(default_factory=list)
    unmeasurable: list[Skipped] = field(default_factory=list)  # prompts of only <lora:...> tags
    grids: list[Skipped] = field(default_factory=list)  # WebUI grids whose pictures were audited
    prompts: int = 0  # distinct prompts audited
    interrupted: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reference: str | None = None  # what the presence score compares each phrase against
    calibration: str | None = None  # the fit "seen" rests on (its source); None: uncalibrated
    writing_pictures: int = 0  # pictures the writing effect rests on (a sample when fewer
    # than ``stats.pictures``: ``audit.folder.MAX_PICTURES``)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def phrase(self, text: str) -> PhraseSummary | None:
        """The summary of a phrase, by its normalised text."""
        return next((p for p in self.phrases if p.phrase == text), None)
