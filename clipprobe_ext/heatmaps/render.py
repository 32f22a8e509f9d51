"""Heatmaps drawn over the picture: one overlay per phrase and a labelled contact sheet.

The map covers only the centre square CLIP saw; the overlay keeps the whole picture at
its aspect, colours the square and dims what CLIP did not see, with the square outlined
and labelled, so a wide picture never looks as if its edges were measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clipprobe_ext.heatmaps.compute import Heatmap

DEFAULT_OPACITY = 0.5
DEFAULT_COLORMAP = "jet"
CROP_NOTE = "CLIP saw the outlined centre square"


def colorize(
    grid: np.ndarray, size: tuple[int, int], colormap: str = DEFAULT_COLORMAP
) -> Image.Image:
    """The [0, 1] map smoothly resized to ``size`` and coloured with a matplotlib colormap."""
    import matplotlib

    heat = Image.fromarray(np.asarray(grid, np.float32), mode="F").resize(size, Image.BICUBIC)
    values = np.clip(np.asarray(heat), 0.0, 1.0)
    rgba = matplotlib.colormaps[colormap](values)
    return Image.fromarray((rgba[..., :3] * 255).round().astype(np.uint8), "RGB")


def overlay(
    image: Image.Image,
    heatmap: Heatmap,
    opacity: float = DEFAULT_OPACITY,
    colormap: str = DEFAULT_COLORMAP,
) -> Image.Image:
    """The picture with the phrase's heat blended in at ``opacity`` (0 = picture only)."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"The opacity must be between 0 and 1, not {opacity}.")
    picture = image.convert("RGB")
    left, top, right, bottom = heatmap.crop_box
    cropped = picture.crop(heatmap.crop_box)
    heat = colorize(heatmap.grid, cropped.size, colormap)
    out = picture.copy()
    if (left, top, right, bottom) != (0, 0, *picture.size):
        out = Image.blend(out, Image.new("RGB", out.size, (0, 0, 0)), 0.55)  # not seen: dimmed
        out.paste(Image.blend(cropped, heat, opacity), (left, top))
        line = max(1, round(min(picture.size) / 150))
        ImageDraw.Draw(out).rectangle(
            (left, top, right - 1, bottom - 1), outline=(255, 255, 255), width=line
        )
        _label(out, "CLIP saw this square", (left + line + 2, top + line + 2))
    else:
        out = Image.blend(picture, heat, opacity)
    return out


def contact_sheet(
    image: Image.Image,
    heatmaps: Sequence[Heatmap],
    opacity: float = DEFAULT_OPACITY,
    colormap: str = DEFAULT_COLORMAP,
    tile: int = 224,
    columns: int | None = None,
) -> Image.Image:
    """All phrases' overlays in a grid, each labelled with its phrase and similarity."""
    if not heatmaps:
        raise ValueError("A contact sheet needs at least one heatmap.")
    columns = columns or min(len(heatmaps), max(1, math.ceil(math.sqrt(len(heatmaps)))))
    rows = math.ceil(len(heatmaps) / columns)
    font = ImageFont.load_default()
    caption = 14
    width, height = image.size
    scale = tile / max(width, height)
    thumb_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for n, heatmap in enumerate(heatmaps):
        x, y = (n % columns) * tile, (n // columns) * (tile + caption)
        thumb = overlay(image, heatmap, opacity, colormap).resize(thumb_size, Image.LANCZOS)
        sheet.paste(
            thumb, (x + (tile - thumb_size[0]) // 2, y + caption + (tile - thumb_size[1]) // 2)
        )
        text = _fit(draw, f"{heatmap.phrase} ({heatmap.score:.2f})", font, tile - 4)
        draw.text((x + 2, y + 1), text, fill=(0, 0, 0), font=font)
    return sheet


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _label(image: Image.Image, text: str, at: tuple[int, int]) -> None:
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    box = draw.textbbox(at, text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text(at, text, fill=(255, 255, 255), font=font)
