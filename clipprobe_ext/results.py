"""Plain result types of an analysis.

They hold numbers only (no tensors), so a report serialises to JSON and CSV as it is
and can be built, compared and rendered without torch.  Phrase indices refer to
``ProbeReport.phrases``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # plain dataclasses too; imported lazily so results stays torch-free
    from clipprobe_ext.analysis.negative import NegativeCheck
    from clipprobe_ext.analysis.tokens import TokenBudget, TokenSaving

Verdict = Literal["keep", "weak", "prune"]


@dataclass(frozen=True)
class PhraseInfo:
    """One phrase of the prompt as the analysis saw it."""

    index: int
    text: str  # the clean text CLIP reads (no weights, no brackets)
    weight: float  # attention weight from ``(x:1.3)``, ``((x))``, ``[x]``
    start: int  # span in the original prompt string: prompt[start:end]
    end: int
    measurable: bool = True  # False for extra-network tags such as <lora:x:0.8>


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


@dataclass(frozen=True)
class KeptPhrase:
    """A phrase the search would have removed, kept because the cut would not be clean."""

    index: int
    reason: str  # ``prompt.removal_blocker``'s reason, e.g. "an AND ... would be left dangling"


@dataclass(frozen=True)
class PruneResult:
    original_similarity: float
    tolerance: float  # allowed relative loss, 0.01 == 1 %
    steps: list[PruneStep]
    pruned_prompt: str  # the user's prompt with exactly those phrases cut out
    full_encodes: int  # prompt variants encoded by the search (cost measure)
    kept: list[KeptPhrase] = field(default_factory=list)  # refused: no clean removal
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
class PhraseVerdict:
    index: int
    text: str
    verdict: Verdict
    max_probability: float  # mean over images of the best round probability
    max_probability_std: float
    contribution: float | None  # mean over images
    contribution_std: float | None
    pruned: bool  # removed by the suggested pruned prompt
    reason: str
    presence: float | None = None  # mean over images of the calibrated presence, [0, 1]
    presence_std: float | None = None


@dataclass
class ProbeReport:
    model_id: str
    prompt: str
    phrases: list[PhraseInfo]
    images: list[ImageAnalysis]
    verdicts: list[PhraseVerdict]
    pruning: PruneResult | None
    options: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # e.g. "prompt longer than 75 tokens: ..."
    reference: str | None = None  # what the presence score is compared against
    tokens: TokenBudget | None = None  # the prompt's token budget (chunks, straddling phrases)
    token_saving: TokenSaving | None = None  # what the pruned prompt saves; None: nothing cut
    negative: NegativeCheck | None = None  # the negative prompt checked; None: none given

    @property
    def measurable(self) -> list[PhraseInfo]:
        return [p for p in self.phrases if p.measurable]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe plain data: what the API, the JSON download and the
        CLI's ``--json`` all send (NaN and infinities, e.g. from an fp16 overflow, are
        ``None``; numpy scalars are Python numbers)."""
        data = dataclasses.asdict(self)
        if self.pruning is not None:
            data["pruning"]["removed"] = self.pruning.removed
            data["pruning"]["final_similarity"] = self.pruning.final_similarity
        for key in ("tokens", "token_saving", "negative"):
            value = getattr(self, key)
            data[key] = value.to_dict() if value is not None else None
        return clean(data)


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars and tuples -> Python types."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalars
        return clean(value.item())
    return str(value)
