"""Plain result types of an analysis: numbers and codes, never sentences.

They hold no tensors, so a report serialises as it is and can be built, compared and
rendered without torch.  Every "why" is a code with the numbers behind it; the words
are written once, by ``clipprobe_ext.report``.  Phrase indices refer to
``ProbeReport.phrases``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from clipprobe_ext.options import ProbeOptions

if TYPE_CHECKING:  # plain dataclasses too; imported lazily so results stays torch-free
    from clipprobe_ext.analysis.tokens import TokenBudget, TokenSaving

#: cannot_judge: a claim CLIP cannot check (``analysis.judgeable``): never pruned.
Verdict = Literal["keep", "weak", "prune", "cannot_judge"]


@dataclass(frozen=True)
class PhraseInfo:
    """One phrase of the prompt as the analysis parsed it, with its share of the tokens.

    The renderers and the token budget read these fields; nothing parses the prompt again.
    """

    index: int
    text: str  # the clean text CLIP reads (no weights, no brackets)
    weight: float  # attention weight from ``(x:1.3)``, ``((x))``, ``[x]``
    start: int  # span in the original prompt string: prompt[start:end]
    end: int
    measurable: bool = True  # False for extra-network tags such as <lora:x:0.8>
    tokens: int | None = None  # CLIP tokens of its text (0 for tags; None: not counted)
    chunks: tuple[int, ...] = ()  # 75-token chunks (0-based, within its AND part) it is in
    subprompt: int = 0  # which ``AND`` part it belongs to

    @property
    def straddles(self) -> bool:
        """A chunk boundary cuts the phrase: CLIP reads its halves apart."""
        return len(self.chunks) > 1


@dataclass(frozen=True)
class RankingRound:
    """One round of the elimination ranking."""

    round: int  # 1-based
    candidates: list[int]  # phrase indices still in play, in prompt order
    probabilities: list[float]  # softmax over the candidates, same order
    top: int  # phrase index with the highest probability, removed after this round

    def above(self, threshold: float) -> list[tuple[int, float]]:
        """(phrase index, probability) of the candidates above the threshold."""
        return [(i, p) for i, p in zip(self.candidates, self.probabilities) if p > threshold]


@dataclass(frozen=True)
class RankingResult:
    threshold: float
    rounds: list[RankingRound]

    def max_probability(self, index: int) -> float:
        """The highest probability the phrase reached in any round (0 when never a candidate)."""
        best = 0.0
        for r in self.rounds:
            for i, p in zip(r.candidates, r.probabilities):
                if i == index:
                    best = max(best, p)
        return best


@dataclass(frozen=True)
class SynonymGroupResult:
    """A group of alternatives ranked against each other (softmax within the group)."""

    texts: list[str]
    similarities: list[float]  # cosine similarity image vs each text
    probabilities: list[float]


@dataclass(frozen=True)
class ContributionResult:
    """Leave-one-out: what each phrase adds to the whole prompt's similarity."""

    full_similarity: float
    # per phrase index; None for phrases that are not measurable
    similarity_without: list[float | None]
    contributions: list[float | None]  # full_similarity - similarity_without


@dataclass(frozen=True)
class PruneStep:
    removed: int  # phrase index
    similarity: float  # similarity of the prompt after this removal


# Why the pruning search kept a candidate: removing it would take the similarity under
# the floor; it is the last phrase (at least one stays); its cut would not be clean.
HoldCode = Literal["below_floor", "last_phrase", "cannot_cut_cleanly"]


@dataclass(frozen=True)
class HeldPhrase:
    """A candidate the pruned prompt keeps, why, and the search's own numbers for it.

    ``removed_before``: what the search had removed when it last measured the phrase (or
    refused its cut); ``similarity_before`` is the prompt's similarity then, and
    ``similarity_without`` the measured similarity with this phrase cut too.
    """

    index: int
    code: HoldCode
    removed_before: tuple[int, ...] = ()
    similarity_before: float | None = None
    similarity_without: float | None = None
    floor: float | None = None  # the lowest similarity the search allowed
    blocker: str | None = None  # cannot_cut_cleanly: ``prompt.removal_blocker``'s clause


@dataclass(frozen=True)
class PruneResult:
    original_similarity: float
    tolerance: float  # allowed relative loss, 0.01 == 1 %
    steps: list[PruneStep]
    pruned_prompt: str  # the user's prompt with exactly those phrases cut out
    full_encodes: int  # prompt variants encoded by the search (cost measure)
    held: list[HeldPhrase] = field(default_factory=list)  # every candidate it kept
    # Removed first, without the similarity guard: clearly not seen (``absent_z`` of the
    # model's calibration).  The guard's tolerance then counts from ``guard_similarity``,
    # the similarity of the prompt without them.
    clearly_absent: list[int] = field(default_factory=list)
    guard_similarity: float | None = None

    @property
    def removed(self) -> list[int]:
        return [s.removed for s in self.steps]

    @property
    def final_similarity(self) -> float:
        return self.steps[-1].similarity if self.steps else self.original_similarity

    @property
    def kept(self) -> list[HeldPhrase]:
        """The candidates kept only because their cut would not be clean."""
        return [h for h in self.held if h.code == "cannot_cut_cleanly"]


@dataclass(frozen=True)
class ImageAnalysis:
    """Everything measured against one image."""

    label: str  # file name or "image 1"
    ranking: RankingResult
    synonyms: list[SynonymGroupResult]
    contribution: ContributionResult | None
    # Calibrated presence per phrase index, in [0, 1] (``analysis.presence``); None for
    # phrases that are not measurable.
    presence: list[float | None] | None = None


@dataclass(frozen=True)
class PresenceBounds:
    """Where the calibrated presence says seen and not seen, the model's point of clear
    absence (``cosine_z`` units; None: the fit has none, the guard always holds) and the
    fit they come from (its ``source``).  A report of an uncalibrated model has none."""

    seen_from: float
    not_seen_under: float
    absent_z: float | None = None
    fit: str = ""


# seen / unsure: the presence alone; not_seen_*: not seen, and what the pruned prompt did
# with it; no_pruning: not seen, no pruned prompt asked for; uncalibrated: the model has no
# fit, so no presence (``analysis.uncalibrated``); cannot_judge: a claim CLIP cannot check
# (``kind`` and ``cue`` of ``analysis.judgeable``).
VerdictCode = Literal[
    "seen",
    "unsure",
    "not_seen_dropped",
    "not_seen_clearly",
    "not_seen_needed",
    "not_seen_last",
    "cannot_cut_cleanly",
    "no_pruning",
    "uncalibrated",
    "cannot_judge",
]


@dataclass(frozen=True)
class VerdictReason:
    """Why a phrase got its verdict: a code, and the numbers that code rests on beyond the
    verdict's own (``cosine_z`` for not_seen_clearly; the search's record when it kept a
    not-seen phrase; the kind of claim and its words for cannot_judge)."""

    code: VerdictCode
    cosine_z: float | None = None
    held: HeldPhrase | None = None
    kind: str | None = None  # cannot_judge: position / count / negation / text
    cue: str | None = None  # cannot_judge: the words that make the claim


@dataclass(frozen=True)
class PhraseVerdict:
    index: int
    text: str
    verdict: Verdict
    max_probability: float  # mean over images of the best round probability
    max_probability_std: float
    contribution: float | None  # mean over images
    contribution_std: float | None
    pruned: bool  # removed by the suggested pruned prompt
    why: VerdictReason
    presence: float | None = None  # mean over images of the calibrated presence, [0, 1]
    presence_std: float | None = None


# not suppressed: seen in at least one picture; unsure: between the bounds somewhere, seen
# in none; suppressed: not seen in any; not measurable: an extra-network tag; uncalibrated:
# the model has no fit, so no presence to tell.
NegativeStatus = Literal["not suppressed", "unsure", "suppressed", "not measurable", "uncalibrated"]


@dataclass(frozen=True)
class NegativePhraseCheck:
    index: int  # phrase index in the parsed negative prompt
    text: str
    weight: float
    status: NegativeStatus
    score: float | None = None  # calibrated presence, mean over the images
    cosine: float | None = None  # mean over the images
    visible_in: int = 0  # images in which CLIP sees it (presence from ``seen_from``)
    per_image: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class NegativeCheck:
    """The negative prompt's phrases, scored with the prompt's own presence and bounds."""

    negative_prompt: str
    images: list[str]  # labels
    phrases: list[NegativePhraseCheck]

    @property
    def not_suppressed(self) -> list[NegativePhraseCheck]:
        return [p for p in self.phrases if p.status == "not suppressed"]


# long_phrases: ``count`` phrases over ``limit`` tokens (chunks averaged); long_prompt: the
# prompt read in ``count`` chunks; extra_network_tags: tags not measured;
# tokenizer_fallback: tokens counted with CLIP's BPE (``detail``: why the model's did not fit);
# uncalibrated: the model has no fit, so no presence and nothing pruned by it.
NoteCode = Literal[
    "long_phrases", "long_prompt", "extra_network_tags", "tokenizer_fallback", "uncalibrated"
]


@dataclass(frozen=True)
class Note:
    code: NoteCode
    count: int | None = None
    limit: int | None = None
    detail: str | None = None


@dataclass
class ProbeReport:
    model_id: str
    prompt: str
    phrases: list[PhraseInfo]
    images: list[ImageAnalysis]
    verdicts: list[PhraseVerdict]
    pruning: PruneResult | None
    options: ProbeOptions
    notes: list[Note | str] = field(default_factory=list)  # str: a caller's own sentence
    reference: str | None = None  # the references the presence is compared with
    bounds: PresenceBounds | None = None  # None: no calibrated presence
    tokens: TokenBudget | None = None  # the prompt's token budget (chunks, straddling phrases)
    token_saving: TokenSaving | None = None  # what the pruned prompt saves; None: nothing cut
    negative: NegativeCheck | None = None  # the negative prompt checked; None: none given

    @property
    def measurable(self) -> list[PhraseInfo]:
        return [p for p in self.phrases if p.measurable]

    @property
    def full_similarity(self) -> float | None:
        """The whole prompt's similarity, mean over the images (None without contribution)."""
        full = [a.contribution.full_similarity for a in self.images if a.contribution is not None]
        return sum(full) / len(full) if full else None
