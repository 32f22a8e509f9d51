"""Did the pruned prompt still make the same picture?  The numbers for one regeneration.

Measured against the ``ProbeReport`` the pruned prompt came from, with that report's
model, so every number means what it meant in the analysis:

- each picture's similarity to the analysed prompt (the report's prompt, read the way
  ``probe.analyze`` reads it: ``layout.PromptLayout``, 75-token chunks averaged, so the
  original's number equals the analysis' own) and to the pruned prompt;
- every measurable phrase's calibrated presence on both pictures (``analysis.presence``,
  the analysis' function and bounds: seen from ``SEEN``), kept and removed ones marked
  (no presence, and no bounds, for an uncalibrated model);
- SSIM (``skimage.metrics.structural_similarity``, RGB, 7x7 window) at a common size: the
  larger picture is downscaled to the smaller one's size with Lanczos;
- the tokens and chunks the pruned prompt saves, counted with the model's tokenizer.

The words and pictures of a comparison are ``report.comparison``'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN
from clipprobe_ext.analysis.presence import presence
from clipprobe_ext.analysis.references import reference_banks
from clipprobe_ext.analysis.tokens import TokenSaving, model_token_budget, token_saving
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ImageError, ModelError, PromptError
from clipprobe_ext.layout import PromptLayout
from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.results import PresenceBounds, ProbeReport

MIN_SSIM_SIDE = 7  # structural_similarity's default window


@dataclass(frozen=True)
class PhrasePresence:
    index: int  # phrase index in the report
    text: str
    kept: bool  # still in the pruned prompt
    original: float | None  # calibrated presence on the original picture (None: uncalibrated)
    regenerated: float | None
    original_visible: bool  # seen (presence from ``bounds.seen_from``)
    regenerated_visible: bool

    @property
    def change(self) -> float | None:
        if self.original is None or self.regenerated is None:
            return None
        return self.regenerated - self.original


@dataclass(frozen=True)
class Comparison:
    original_prompt: str  # the prompt the report analysed
    pruned_prompt: str
    model_id: str
    original_similarity: float  # original picture vs the original prompt
    regenerated_similarity: float  # regenerated picture vs the original prompt
    original_pruned_similarity: float  # both pictures vs the pruned prompt
    regenerated_pruned_similarity: float
    ssim: float
    ssim_size: tuple[int, int]  # (width, height) both pictures were compared at
    original_size: tuple[int, int]
    regenerated_size: tuple[int, int]
    tokens: TokenSaving
    phrases: list[PhrasePresence]
    reference: str  # what the presence compares each phrase with
    bounds: PresenceBounds | None  # None: the model is uncalibrated (no presence)

    @property
    def similarity_change(self) -> float:
        return self.regenerated_similarity - self.original_similarity

    @property
    def kept_lost(self) -> list[PhrasePresence]:
        """Kept phrases seen in the original but not in the regenerated picture."""
        return [
            p for p in self.phrases if p.kept and p.original_visible and not p.regenerated_visible
        ]

    def to_dict(self) -> dict:
        """Numbers and flags (``report.comparison.comparison_data`` adds the sentences)."""
        d = asdict(self)
        d["tokens"] = self.tokens.to_dict()
        d["similarity_change"] = self.similarity_change
        d["kept_lost"] = [p.index for p in self.kept_lost]
        for p, row in zip(self.phrases, d["phrases"]):
            row["change"] = p.change
        return d


def compare(
    report: ProbeReport,
    original: Image.Image,
    regenerated: Image.Image,
    pruned_prompt: str,
    encoder: ClipEncoder,
) -> Comparison:
    """Measure RGB ``original`` and ``regenerated`` against ``report``'s prompt and the
    pruned one, with ``encoder``, which must be the report's model (see the module doc)."""
    if original is None or regenerated is None:
        raise ImageError("Both the original and the regenerated picture are needed.")
    if encoder.model_id != report.model_id:
        raise ModelError(
            f"The analysis was made with {report.model_id}, not {encoder.model_id}: compare "
            "with the analysis' model, or analyse again with this one."
        )
    granularity = report.options.granularity
    parsed = parse_prompt(report.prompt, granularity)
    measurable = [p.index for p in report.measurable]
    pruned_parsed = parse_prompt(pruned_prompt, granularity)
    if not pruned_parsed.measurable:
        raise PromptError("The pruned prompt holds nothing CLIP can measure.")
    pictures = [original.convert("RGB"), regenerated.convert("RGB")]
    image_embs = encoder.encode_images(pictures).numpy().astype(np.float64)

    whole = PromptLayout(parsed, measurable, encoder, image_embs)
    full = whole.similarities([frozenset(measurable)])[:, 0]
    pruned_indices = [p.index for p in pruned_parsed.measurable]
    pruned_layout = PromptLayout(pruned_parsed, pruned_indices, encoder, image_embs)
    pruned_full = pruned_layout.similarities([frozenset(pruned_indices)])[:, 0]

    banks = reference_banks(encoder, image_embs.shape[1])
    texts = [p.text for p in report.measurable]
    embs, _ = encoder.encode_texts(texts)
    scores = presence(image_embs, embs.numpy().astype(np.float64), banks)  # [2, phrases]
    fit = banks.calibration
    remaining = Counter(p.text for p in pruned_parsed.measurable)
    phrases = []
    for k, index in enumerate(measurable):
        kept = remaining[texts[k]] > 0
        if kept:
            remaining[texts[k]] -= 1
        phrases.append(
            PhrasePresence(
                index=index,
                text=texts[k],
                kept=kept,
                original=None if scores is None else float(scores[0, k]),
                regenerated=None if scores is None else float(scores[1, k]),
                original_visible=scores is not None and bool(scores[0, k] >= SEEN),
                regenerated_visible=scores is not None and bool(scores[1, k] >= SEEN),
            )
        )

    ssim, size = structural_similarity(*pictures)
    removed = [p.index for p in phrases if not p.kept]
    budget = report.tokens
    tokenize = encoder.tokenize
    if budget is None:
        budget, tokenize, _ = model_token_budget(parsed, encoder.tokenize)
    pruned_budget, _, _ = model_token_budget(pruned_parsed, tokenize)
    return Comparison(
        original_prompt=report.prompt,
        pruned_prompt=pruned_prompt,
        model_id=encoder.model_id,
        original_similarity=float(full[0]),
        regenerated_similarity=float(full[1]),
        original_pruned_similarity=float(pruned_full[0]),
        regenerated_pruned_similarity=float(pruned_full[1]),
        ssim=ssim,
        ssim_size=size,
        original_size=pictures[0].size,
        regenerated_size=pictures[1].size,
        tokens=token_saving(budget, pruned_budget, removed),
        phrases=phrases,
        reference=banks.describe(),
        bounds=None if fit is None else PresenceBounds(SEEN, NOT_SEEN, fit.absent_z, fit.source),
    )


def phrase_presence(
    report: ProbeReport, pictures: list[Image.Image], encoder: ClipEncoder
) -> np.ndarray | None:
    """Calibrated presence [pictures, measurable phrases of ``report``], as ``compare``
    measures it; None for an uncalibrated model."""
    image_embs = encoder.encode_images([p.convert("RGB") for p in pictures])
    image_embs = image_embs.numpy().astype(np.float64)
    banks = reference_banks(encoder, image_embs.shape[1])
    embs, _ = encoder.encode_texts([p.text for p in report.measurable])
    return presence(image_embs, embs.numpy().astype(np.float64), banks)


def structural_similarity(a: Image.Image, b: Image.Image) -> tuple[float, tuple[int, int]]:
    """SSIM of two pictures on a common size (the smaller width and height), RGB, 0-255."""
    from skimage.metrics import structural_similarity as ssim

    width = min(a.width, b.width)
    height = min(a.height, b.height)
    if min(width, height) < MIN_SSIM_SIDE:
        raise ImageError(
            f"The pictures are too small for SSIM (at least {MIN_SSIM_SIDE}x{MIN_SSIM_SIDE})."
        )
    arrays = [
        np.asarray(_resized(image.convert("RGB"), (width, height)), dtype=np.float64)
        for image in (a, b)
    ]
    value = ssim(arrays[0], arrays[1], channel_axis=-1, data_range=255.0)
    return float(value), (width, height)


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.LANCZOS)
