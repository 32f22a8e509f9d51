"""The negative prompt, checked: which of its phrases does CLIP still see in the picture?

A negative phrase that CLIP still clearly sees ("blurry", "text", a colour) is flagged
"not suppressed": the negative prompt did not remove it.  That is all the picture can
say.  It does not say the negative prompt did nothing (the thing may be fainter than it
would have been), and a phrase CLIP does not see is "suppressed" only in the sense of
absent: whether the negative prompt or something else kept it out, one picture cannot
tell.  Extra-network tags and textual-inversion embeddings are "not measurable": CLIP
would read an embedding's file name as ordinary words, not what the embedding means.

How "clearly sees" is decided is pluggable (``PresenceScorer``).  The analysis
(``probe.analyze``) uses ``CalibratedPresence``: the calibrated presence score the
positive phrases get (``analysis.presence``, against the model's reference banks), with
the verdicts' bounds: "not suppressed" where a positive phrase would be "seen" (keep),
"suppressed" under the bound where it would be "not seen", and in between suppressed
with an "unsure" reason.  ``RelativePresence`` (the default of ``check_negative`` without
banks) is round 1 of the elimination ranking (``softmax(logit_scale * cosine)``) over the
distinct phrases of the positive and the negative prompt together; a phrase is clearly
visible when its probability is above both ``min_probability`` and the uniform share
``1/n``.  Being relative, it answers "does the picture show this more than the other
things the prompts name", not an absolute yes/no.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from clipprobe_ext.analysis.presence import presence
from clipprobe_ext.analysis.ranking import softmax
from clipprobe_ext.analysis.references import ReferenceBanks
from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ImageError
from clipprobe_ext.prompt import parse_prompt

NegativeStatus = Literal["not suppressed", "suppressed", "not measurable"]

NOT_SUPPRESSED = (
    "CLIP still sees it in the picture: the negative prompt did not remove it "
    "(it may still have made it weaker)"
)
SUPPRESSED = (
    "CLIP does not clearly see it: it is absent from the picture (one picture cannot tell "
    "whether the negative prompt is why)"
)
TAG = "an extra-network tag: not text CLIP can compare with a picture"
ONE_PHRASE = (
    "not measurable with the relative score: it compares a phrase with the other phrases "
    "of both prompts, and there is only one"
)
UNSURE = (
    "CLIP does not clearly see it, nor clearly not (its presence is between the bounds): "
    "not flagged"
)
EMBEDDING = (
    "a textual-inversion embedding: CLIP would read its name as ordinary words, "
    "not what the embedding means"
)


@dataclass(frozen=True)
class PresenceScores:
    """What a scorer says about every (image, phrase) pair."""

    scores: np.ndarray  # [images, phrases], higher = more clearly present; NaN: cannot judge
    visible: np.ndarray  # bool [images, phrases]: clearly present by the scorer's own rule
    cosines: np.ndarray  # [images, phrases] raw cosine similarities
    method: str  # one sentence for reports: what the score is and what it is compared with
    unsure: np.ndarray | None = None  # bool [images, phrases]: neither seen nor clearly not


#: (encoder, unit image embeddings [images, dim], phrases to score, the other phrases of
#: the prompts for context) -> scores of the phrases to score.
PresenceScorer = Callable[[ClipEncoder, np.ndarray, Sequence[str], Sequence[str]], PresenceScores]


@dataclass(frozen=True)
class RelativePresence:
    """Round-1 softmax over the distinct phrases of both prompts (see the module doc)."""

    min_probability: float = 0.01

    def __call__(
        self,
        encoder: ClipEncoder,
        image_embs: np.ndarray,
        texts: Sequence[str],
        context: Sequence[str] = (),
    ) -> PresenceScores:
        candidates = list(dict.fromkeys([*texts, *context]))
        embs, _ = encoder.encode_texts(candidates)
        if len(candidates) < 2:  # a softmax over one phrase is 1 whatever the picture shows
            cos = np.asarray(image_embs, dtype=np.float64) @ embs.numpy().astype(np.float64).T
            cos = cos[:, [candidates.index(t) for t in texts]]
            return PresenceScores(
                scores=np.full(cos.shape, np.nan),
                visible=np.zeros(cos.shape, dtype=bool),
                cosines=cos,
                method=ONE_PHRASE,
            )
        cos_all = np.asarray(image_embs, dtype=np.float64) @ embs.numpy().astype(np.float64).T
        probs = np.stack([softmax(encoder.logit_scale * row) for row in cos_all])
        columns = [candidates.index(t) for t in texts]
        scores = probs[:, columns]
        floor = max(self.min_probability, 1.0 / len(candidates))
        return PresenceScores(
            scores=scores,
            visible=scores > floor,
            cosines=cos_all[:, columns],
            method=(
                "round-1 softmax of CLIP's cosine over the distinct phrases of the prompt and "
                f"the negative prompt ({len(candidates)} phrases); clearly visible above "
                f"{floor:.3f} (the larger of {self.min_probability:g} and 1/{len(candidates)})"
            ),
        )


@dataclass(frozen=True)
class CalibratedPresence:
    """The positive phrases' calibrated presence (``analysis.presence``) and bounds."""

    banks: ReferenceBanks

    def __call__(
        self,
        encoder: ClipEncoder,
        image_embs: np.ndarray,
        texts: Sequence[str],
        context: Sequence[str] = (),
    ) -> PresenceScores:
        embs, _ = encoder.encode_texts(list(texts))
        phrases = embs.numpy().astype(np.float64)
        images = np.asarray(image_embs, dtype=np.float64)
        scores = presence(images, phrases, self.banks)
        return PresenceScores(
            scores=scores,
            visible=scores >= SEEN,
            cosines=images @ phrases.T,
            method=(
                f"calibrated presence, the score of the prompt's phrases ({self.banks.describe()}); "
                f"not suppressed from {SEEN:.2f} (where a prompt phrase is seen), suppressed "
                f"under {NOT_SEEN:.2f}"
            ),
            unsure=(scores >= NOT_SEEN) & (scores < SEEN),
        )


@dataclass(frozen=True)
class NegativePhraseCheck:
    index: int  # phrase index in ``parse_prompt(negative_prompt)``
    text: str
    weight: float
    status: NegativeStatus
    reason: str
    score: float | None = None  # mean over the images
    cosine: float | None = None  # mean over the images
    visible_in: int = 0  # images in which CLIP clearly sees it
    per_image: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class NegativeCheck:
    negative_prompt: str
    images: list[str]  # labels
    method: str
    phrases: list[NegativePhraseCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def not_suppressed(self) -> list[NegativePhraseCheck]:
        return [p for p in self.phrases if p.status == "not suppressed"]

    def rows(self) -> list[dict]:
        """One flat row per negative phrase, for CSV."""
        return [
            {
                "index": p.index,
                "text": p.text,
                "status": p.status,
                "score": p.score,
                "cosine": p.cosine,
                "visible_in": p.visible_in,
                "reason": p.reason,
            }
            for p in self.phrases
        ]

    def text_lines(self) -> list[str]:
        """The check for the text report: one line per negative phrase."""
        lines = []
        for p in self.phrases:
            score = "" if p.score is None else f" ({100 * p.score:.1f}%)"
            lines.append(f"{p.status:>14}  {p.text}{score}: {p.reason}")
        if self.method:
            lines.append(f"presence: {self.method}")
        return lines + self.notes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["not_suppressed"] = [p.index for p in self.not_suppressed]
        return d


def check_negative(
    images: Sequence[Image.Image],
    negative_prompt: str,
    encoder: ClipEncoder,
    *,
    positive_prompt: str = "",
    scorer: PresenceScorer | None = None,
    embeddings: Collection[str] = (),
    labels: Sequence[str] | None = None,
) -> NegativeCheck:
    """Score every phrase of ``negative_prompt`` against RGB ``images``.

    ``embeddings``: names of textual-inversion embeddings the WebUI knows (case-insensitive);
    a phrase that is one of them is not measurable.  An empty negative prompt gives an
    empty check, not an error.
    """
    if not images:
        raise ImageError("No image to check the negative prompt against.")
    image_embs = encoder.encode_images(list(images)).numpy().astype(np.float64)
    return check_negative_embs(
        image_embs,
        negative_prompt,
        encoder,
        positive_prompt=positive_prompt,
        scorer=scorer,
        embeddings=embeddings,
        labels=labels,
    )


def check_negative_embs(
    image_embs: np.ndarray,
    negative_prompt: str,
    encoder: ClipEncoder,
    *,
    positive_prompt: str = "",
    scorer: PresenceScorer | None = None,
    embeddings: Collection[str] = (),
    labels: Sequence[str] | None = None,
) -> NegativeCheck:
    """``check_negative`` on image embeddings already computed (one image encode per run)."""
    scorer = scorer or RelativePresence()
    count = len(image_embs)
    labels = list(labels) if labels else [f"image {i + 1}" for i in range(count)]
    known = {e.strip().lower() for e in embeddings}
    negative = parse_prompt(negative_prompt or "")
    positive = [p.text for p in parse_prompt(positive_prompt or "").measurable]

    checks: dict[int, NegativePhraseCheck] = {}
    measured = []
    for p in negative.phrases:
        if not p.measurable:
            checks[p.index] = NegativePhraseCheck(p.index, p.text, p.weight, "not measurable", TAG)
        elif p.text.strip().lower() in known:
            checks[p.index] = NegativePhraseCheck(
                p.index, p.text, p.weight, "not measurable", EMBEDDING
            )
        else:
            measured.append(p)
    method = ""
    notes = []
    if measured:
        result = scorer(encoder, image_embs, [p.text for p in measured], positive)
        method = result.method
        for k, p in enumerate(measured):
            if np.isnan(result.scores[:, k]).any():  # the scorer cannot judge this phrase
                checks[p.index] = NegativePhraseCheck(
                    p.index,
                    p.text,
                    p.weight,
                    "not measurable",
                    result.method,
                    cosine=float(result.cosines[:, k].mean()),
                )
                continue
            seen = int(np.count_nonzero(result.visible[:, k]))
            status: NegativeStatus = "not suppressed" if seen else "suppressed"
            reason = NOT_SUPPRESSED if seen else SUPPRESSED
            if not seen and result.unsure is not None and result.unsure[:, k].any():
                reason = UNSURE
            if seen and count > 1:
                reason += f"; in {seen} of {count} pictures"
            checks[p.index] = NegativePhraseCheck(
                index=p.index,
                text=p.text,
                weight=p.weight,
                status=status,
                reason=reason,
                score=float(result.scores[:, k].mean()),
                cosine=float(result.cosines[:, k].mean()),
                visible_in=seen,
                per_image=[float(s) for s in result.scores[:, k]],
            )
    if not negative.phrases:
        notes.append("The negative prompt is empty.")
    return NegativeCheck(
        negative_prompt=negative_prompt or "",
        images=labels,
        method=method,
        phrases=[checks[i] for i in sorted(checks)],
        notes=notes,
    )
