"""The negative prompt, checked: which of its phrases does CLIP still see in the picture?

Each phrase gets the calibrated presence the prompt's own phrases get, with the same
bounds: "not suppressed" where a prompt phrase would be seen (the negative prompt did not
remove it, though it may have made it fainter), "suppressed" where it would be not seen
(absent: one picture cannot tell whether the negative prompt is why), "unsure" in
between.  Extra-network tags are "not measurable"; every phrase is "uncalibrated" when the
model has no fit (no presence to tell by).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN
from clipprobe_ext.analysis.presence import presence
from clipprobe_ext.analysis.references import ReferenceBanks
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.results import NegativeCheck, NegativePhraseCheck, NegativeStatus


def negative_status(scores: np.ndarray) -> NegativeStatus:
    """The status of one phrase from its presence on each picture."""
    if (scores >= SEEN).any():
        return "not suppressed"
    if (scores >= NOT_SEEN).any():
        return "unsure"
    return "suppressed"


def check_negative(
    image_embs: np.ndarray,
    negative_prompt: str,
    encoder: ClipEncoder,
    banks: ReferenceBanks,
    labels: Sequence[str] | None = None,
) -> NegativeCheck:
    """Score every phrase of ``negative_prompt`` against the unit image embeddings
    [images, dim]; an empty negative prompt gives an empty check, not an error."""
    images = np.asarray(image_embs, dtype=np.float64)
    labels = list(labels) if labels else [f"image {i + 1}" for i in range(len(images))]
    parsed = parse_prompt(negative_prompt or "")
    checks = [
        NegativePhraseCheck(p.index, p.text, p.weight, "not measurable")
        for p in parsed.phrases
        if not p.measurable
    ]
    measured = parsed.measurable
    if measured:
        embs, _ = encoder.encode_texts([p.text for p in measured])
        phrases = embs.numpy().astype(np.float64)
        scores = presence(images, phrases, banks)  # [images, phrases]; None: uncalibrated
        cosines = images @ phrases.T
        for k, p in enumerate(measured):
            if scores is None:
                checks.append(
                    NegativePhraseCheck(
                        p.index,
                        p.text,
                        p.weight,
                        "uncalibrated",
                        cosine=float(cosines[:, k].mean()),
                    )
                )
                continue
            checks.append(
                NegativePhraseCheck(
                    index=p.index,
                    text=p.text,
                    weight=p.weight,
                    status=negative_status(scores[:, k]),
                    score=float(scores[:, k].mean()),
                    cosine=float(cosines[:, k].mean()),
                    visible_in=int(np.count_nonzero(scores[:, k] >= SEEN)),
                    per_image=[float(s) for s in scores[:, k]],
                )
            )
    return NegativeCheck(
        negative_prompt=negative_prompt or "",
        images=labels,
        phrases=sorted(checks, key=lambda c: c.index),
    )
