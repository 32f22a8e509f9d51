"""A regeneration's ``Comparison`` in words: its JSON with sentences, its lines, its HTML
fragment and the side-by-side picture with the numbers drawn under it."""

from __future__ import annotations

import html
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from clipprobe_ext.compare import Comparison
from clipprobe_ext.report.data import clean
from clipprobe_ext.report.numbers import (
    change,
    clip_tokens,
    fixed,
    presence,
    signed,
    similarity,
)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def presence_method(result: Comparison) -> str:
    """What the phrases' score is and where "seen" begins."""
    if result.bounds is None:
        return f"none ({result.reference})"
    return (
        f"calibrated presence, the analysis' score ({result.reference}); seen from "
        f"{presence(result.bounds.seen_from)}"
    )


def notes(result: Comparison) -> list[str]:
    if result.original_size == result.regenerated_size:
        return []
    return [
        f"The pictures differ in size ({_size(result.original_size)} and "
        f"{_size(result.regenerated_size)}): SSIM was computed at {_size(result.ssim_size)}."
    ]


def comparison_data(result: Comparison) -> dict[str, Any]:
    """The comparison as JSON-safe data: its numbers, plus ``presence_method`` and
    ``notes`` in words."""
    data = result.to_dict()
    data["presence_method"] = presence_method(result)
    data["notes"] = notes(result)
    return clean(data)


def summary_lines(result: Comparison) -> list[str]:
    """The numbers in a few plain lines (the side-by-side picture's caption)."""
    t = result.tokens
    original = similarity(result.original_similarity)
    lines = [
        f"similarity to the analysed prompt: "
        f"{change(original, similarity(result.regenerated_similarity))} "
        f"({signed(result.similarity_change)})",
        f"SSIM {fixed(result.ssim, 3)} at {_size(result.ssim_size)}",
        f"{clip_tokens(t.tokens_saved)} saved "
        f"({change(str(t.original_tokens), str(t.pruned_tokens))}), "
        f"chunks {change(str(t.original_chunks), str(t.pruned_chunks))}",
    ]
    lost = result.kept_lost
    if lost:
        lines.append("kept but no longer seen: " + ", ".join(p.text for p in lost))
    return [line.replace("→", "->") for line in lines]  # PIL's default font has no arrow


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
        f"original  similarity {similarity(result.original_similarity)}",
        f"pruned prompt  similarity {similarity(result.regenerated_similarity)}",
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


def _row(label: str, original: str, regenerated: str, difference: str = "") -> str:
    return (
        f'<tr><th>{_e(label)}</th><td class="cp-num">{_e(original)}</td>'
        f'<td class="cp-num">{_e(regenerated)}</td><td class="cp-num">{_e(difference)}</td></tr>'
    )


def _numbers_table(result: Comparison) -> str:
    """Both pictures' numbers side by side: similarity, tokens, chunks, SSIM."""
    t = result.tokens
    rows = [
        _row(
            "similarity to the analysed prompt",
            similarity(result.original_similarity),
            similarity(result.regenerated_similarity),
            signed(result.similarity_change),
        ),
        _row(
            "similarity to the pruned prompt",
            similarity(result.original_pruned_similarity),
            similarity(result.regenerated_pruned_similarity),
            signed(result.regenerated_pruned_similarity - result.original_pruned_similarity),
        ),
        _row("CLIP tokens of the prompt", str(t.original_tokens), str(t.pruned_tokens),
             signed(-t.tokens_saved, 0)),
    ]  # fmt: skip
    if t.original_webui_count is not None and t.pruned_webui_count is not None:
        rows.append(
            _row(
                "WebUI count",
                str(t.original_webui_count),
                str(t.pruned_webui_count),
                signed(t.pruned_webui_count - t.original_webui_count, 0),
            )
        )
    rows.append(_row("75-token chunks", str(t.original_chunks), str(t.pruned_chunks)))
    rows.append(
        _row(
            "SSIM (1: the same picture)",
            "",
            fixed(result.ssim, 3),
            f"at {_size(result.ssim_size)}",
        )
    )
    return (
        '<table class="cp-compare-table cp-compare-numbers"><thead><tr><th></th>'
        "<th>original</th><th>regenerated</th><th>change</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(result: Comparison) -> str:
    """The comparison's numbers as HTML tables (the tab shows the pictures beside them);
    every text is escaped."""
    rows = []
    for p in result.phrases:
        state = "kept" if p.kept else "removed"
        rows.append(
            f'<tr class="cp-{state}"><td>{_e(p.text)}</td><td>{_e(state)}</td>'
            f'<td class="cp-num">{_e(presence(p.original))}</td>'
            f'<td class="cp-num">{_e(presence(p.regenerated))}</td>'
            f'<td class="cp-num">{_e(signed(p.change, 2))}</td>'
            f"<td>{_e('yes' if p.original_visible else 'no')} / "
            f"{_e('yes' if p.regenerated_visible else 'no')}</td></tr>"
        )
    items = "".join(f"<li>{_e(n)}</li>" for n in notes(result))
    lost = result.kept_lost
    warning = (
        f'<p class="cp-warning">Kept but no longer seen: {_e(", ".join(p.text for p in lost))}</p>'
        if lost
        else ""
    )
    return (
        '<div class="clipprobe-compare">'
        f"{warning}{_numbers_table(result)}"
        '<table class="cp-compare-table cp-compare-phrases"><thead><tr><th>phrase</th><th></th>'
        "<th>presence, original</th><th>regenerated</th><th>change</th><th>seen</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="cp-method">Presence: {_e(presence_method(result))}</p>'
        + (f'<ul class="cp-notes">{items}</ul>' if items else "")
        + "</div>"
    )
