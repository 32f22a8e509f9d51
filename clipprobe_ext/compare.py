"""Did the pruned prompt still make the same picture?  The numbers for one regeneration.

ClipProbe suggests cutting phrases that carry no weight; the proof is to generate again
with the pruned prompt (same seed and settings) and compare.  For the original and the
regenerated picture this measures:

- each one's similarity to the original prompt (and to the pruned one), read the way
  ``probe.analyze`` reads a whole prompt (``layout.PromptLayout``: 75-token chunks,
  chunk embeddings averaged), so the original's number equals the analysis' own;
- the presence score of every phrase of the original prompt on both pictures, kept and
  removed ones marked (does what was kept still show? did what was cut disappear?); the
  scorer is pluggable (``analysis.negative.PresenceScorer``), the default being round 1
  of the elimination ranking over the original prompt's phrases;
- SSIM (``skimage.metrics.structural_similarity``, RGB, 7x7 window) on a common size: the
  larger picture is downscaled to the smaller one's size with Lanczos, so a hires-fixed
  original compares with a regeneration of another size without inventing detail;
- the tokens and 75-token chunks the pruned prompt saves (``analysis.tokens``).

``side_by_side`` draws both pictures with their numbers into one PNG; ``render_html``
gives the numbers as an HTML fragment (every text escaped).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clipprobe_ext.analysis.negative import PresenceScorer, RelativePresence
from clipprobe_ext.analysis.tokens import TokenSaving, token_budget, token_saving
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ImageError, PromptError
from clipprobe_ext.layout import PromptLayout
from clipprobe_ext.prompt import parse_prompt, require_measurable

MIN_SSIM_SIDE = 7  # structural_similarity's default window


@dataclass(frozen=True)
class PhrasePresence:
    index: int  # phrase index in ``parse_prompt(original_prompt)``
    text: str
    kept: bool  # still in the pruned prompt
    original: float | None  # presence score on the original picture (None: cannot judge)
    regenerated: float | None
    original_visible: bool
    regenerated_visible: bool

    @property
    def change(self) -> float | None:
        if self.original is None or self.regenerated is None:
            return None
        return self.regenerated - self.original


@dataclass(frozen=True)
class Comparison:
    original_prompt: str
    pruned_prompt: str
    model_id: str
    original_similarity: float  # original picture vs the original prompt
    regenerated_similarity: float  # regenerated picture vs the original prompt
    original_pruned_similarity: float  # both pictures vs the pruned prompt
    regenerated_pruned_similarity: float
    ssim: float
    ssim_size: tuple[int, int]  # (width, height) both pictures were compared at
    tokens: TokenSaving
    phrases: list[PhrasePresence]
    presence_method: str
    notes: list[str] = field(default_factory=list)

    @property
    def similarity_change(self) -> float:
        return self.regenerated_similarity - self.original_similarity

    @property
    def kept_lost(self) -> list[PhrasePresence]:
        """Kept phrases visible in the original but not in the regenerated picture."""
        return [
            p for p in self.phrases if p.kept and p.original_visible and not p.regenerated_visible
        ]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ssim_size"] = list(self.ssim_size)
        d["tokens"] = self.tokens.to_dict()
        d["similarity_change"] = self.similarity_change
        d["kept_lost"] = [p.index for p in self.kept_lost]
        for p, row in zip(self.phrases, d["phrases"]):
            row["change"] = p.change
        return d


def compare(
    original: Image.Image,
    regenerated: Image.Image,
    original_prompt: str,
    pruned_prompt: str,
    encoder: ClipEncoder,
    scorer: PresenceScorer | None = None,
) -> Comparison:
    """Measure RGB ``original`` and ``regenerated`` against the prompts (see the module doc)."""
    if original is None or regenerated is None:
        raise ImageError("Both the original and the regenerated picture are needed.")
    parsed = parse_prompt(original_prompt)
    measurable = [p.index for p in require_measurable(parsed)]
    pruned_parsed = parse_prompt(pruned_prompt)
    if not pruned_parsed.measurable:
        raise PromptError("The pruned prompt holds nothing CLIP can measure.")
    pictures = [original.convert("RGB"), regenerated.convert("RGB")]
    image_embs = encoder.encode_images(pictures).numpy().astype(np.float64)

    whole = PromptLayout(parsed, measurable, encoder, image_embs)
    full = whole.similarities([frozenset(measurable)])[:, 0]
    pruned_indices = [p.index for p in pruned_parsed.measurable]
    pruned_layout = PromptLayout(pruned_parsed, pruned_indices, encoder, image_embs)
    pruned_full = pruned_layout.similarities([frozenset(pruned_indices)])[:, 0]

    scorer = scorer or RelativePresence()
    texts = [parsed.phrases[i].text for i in measurable]
    presence = scorer(encoder, image_embs, texts, [])
    remaining = Counter(p.text for p in pruned_parsed.measurable)
    phrases = []
    for k, index in enumerate(measurable):
        text = parsed.phrases[index].text
        kept = remaining[text] > 0
        if kept:
            remaining[text] -= 1
        phrases.append(
            PhrasePresence(
                index=index,
                text=text,
                kept=kept,
                original=_score(presence.scores[0, k]),
                regenerated=_score(presence.scores[1, k]),
                original_visible=bool(presence.visible[0, k]),
                regenerated_visible=bool(presence.visible[1, k]),
            )
        )

    ssim, size = structural_similarity(*pictures)
    removed = [p.index for p in phrases if not p.kept]
    notes = []
    if pictures[0].size != pictures[1].size:
        notes.append(
            f"The pictures differ in size ({_size(pictures[0].size)} and "
            f"{_size(pictures[1].size)}): SSIM was computed at {_size(size)}."
        )
    return Comparison(
        original_prompt=original_prompt,
        pruned_prompt=pruned_prompt,
        model_id=encoder.model_id,
        original_similarity=float(full[0]),
        regenerated_similarity=float(full[1]),
        original_pruned_similarity=float(pruned_full[0]),
        regenerated_pruned_similarity=float(pruned_full[1]),
        ssim=ssim,
        ssim_size=size,
        tokens=token_saving(token_budget(original_prompt), token_budget(pruned_prompt), removed),
        phrases=phrases,
        presence_method=presence.method,
        notes=notes,
    )


def _score(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


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


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# ----------------------------------------------------------------------------- output


def summary_lines(result: Comparison) -> list[str]:
    """The numbers in a few plain lines (side-by-side caption, text report)."""
    t = result.tokens
    lines = [
        f"similarity to the original prompt: {result.original_similarity:.4f} -> "
        f"{result.regenerated_similarity:.4f} ({result.similarity_change:+.4f})",
        f"SSIM {result.ssim:.3f} at {_size(result.ssim_size)}",
        f"tokens {t.original_tokens} -> {t.pruned_tokens} (saved {t.tokens_saved}), "
        f"chunks {t.original_chunks} -> {t.pruned_chunks}",
    ]
    lost = result.kept_lost
    if lost:
        lines.append("kept but no longer clearly visible: " + ", ".join(p.text for p in lost))
    return lines


def side_by_side(
    result: Comparison, original: Image.Image, regenerated: Image.Image, height: int = 512
) -> Image.Image:
    """Both pictures at one height, labelled, with the numbers underneath (RGB)."""
    panels = []
    for image in (original, regenerated):
        image = image.convert("RGB")
        scale = height / image.height
        panels.append(image.resize((max(1, round(image.width * scale)), height), Image.LANCZOS))
    font = ImageFont.load_default()
    gap, margin, line = 8, 8, 14
    captions = [
        f"original  similarity {result.original_similarity:.4f}",
        f"pruned prompt  similarity {result.regenerated_similarity:.4f}",
    ]
    lines = summary_lines(result)
    width = sum(p.width for p in panels) + gap + 2 * margin
    total = margin + line + height + margin + line * len(lines) + margin
    canvas = Image.new("RGB", (width, total), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = margin
    for panel, caption in zip(panels, captions):
        draw.text((x, margin), caption, fill=(0, 0, 0), font=font)
        canvas.paste(panel, (x, margin + line))
        x += panel.width + gap
    y = margin + line + height + margin
    for text in lines:
        draw.text((margin, y), text, fill=(0, 0, 0), font=font)
        y += line
    return canvas


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "&ndash;" if value is None else f"{100 * value:.1f}%"


def render_html(result: Comparison) -> str:
    """The comparison's numbers as an HTML fragment; every text is escaped."""
    t = result.tokens
    rows = []
    for p in result.phrases:
        state = "kept" if p.kept else "removed"
        rows.append(
            f'<tr class="cp-{state}"><td>{_e(p.text)}</td><td>{_e(state)}</td>'
            f"<td>{_pct(p.original)}</td><td>{_pct(p.regenerated)}</td>"
            f"<td>{_e('yes' if p.original_visible else 'no')} / "
            f"{_e('yes' if p.regenerated_visible else 'no')}</td></tr>"
        )
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    lost = result.kept_lost
    warning = (
        '<p class="cp-warning">Kept but no longer clearly visible: '
        + _e(", ".join(p.text for p in lost))
        + "</p>"
        if lost
        else ""
    )
    return (
        '<div class="clipprobe-compare">'
        f"<p>Similarity to the original prompt: original {result.original_similarity:.4f}, "
        f"regenerated {result.regenerated_similarity:.4f} "
        f"({result.similarity_change:+.4f}). "
        f"To the pruned prompt: {result.original_pruned_similarity:.4f} and "
        f"{result.regenerated_pruned_similarity:.4f}.</p>"
        f"<p>SSIM {result.ssim:.3f} (at {_e(_size(result.ssim_size))}). "
        f"Tokens {t.original_tokens} &rarr; {t.pruned_tokens} (saved {t.tokens_saved}); "
        f"75-token chunks {t.original_chunks} &rarr; {t.pruned_chunks}.</p>"
        f"{warning}"
        '<table class="cp-compare-table"><thead><tr><th>phrase</th><th></th>'
        "<th>original</th><th>regenerated</th><th>clearly visible</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p class="cp-method">Presence: {_e(result.presence_method)}</p>'
        + (f'<ul class="cp-notes">{notes}</ul>' if notes else "")
        + "</div>"
    )
