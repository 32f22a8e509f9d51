"""Recognise a WebUI image grid and cut it back into the images it was made of.

With a batch and nothing selected, the WebUI's "Send to" buttons send the grid (its
gallery shows it first); analysed as one picture, a collage of four would be measured as
"1 image".  A grid carries the infotext of the batch's first image (``use_main_prompt``),
whose ``Size`` (and ``Hires upscale``/``Hires resize``) give the size of one image, so
an image that is an exact multiple of that size, larger than one cell, is a grid.

The layout is ``modules/images.py`` ``image_grid`` of 1.10.1: ``cols`` × ``rows`` cells of
the largest image's size, filled row by row from the top left, cells after the last image
left in the grid's background colour (so empty cells are uniform and at the end).

Every entry point (command line, audit, tab, API, regeneration) recognises grids through
``clipprobe_ext.inputs``, which calls this module; it imports neither gradio nor the WebUI.

Public API: ``Grid`` (cell size, columns, rows, count) and ``detect(image, settings) ->
Grid | None`` (``settings``: the parsed infotext's key/values), ``Grid.cells(image) ->
list[Image]``, ``Grid.describe() -> str``; ``could_be_grid(size, settings) -> bool``: the
size test alone, for a caller that has read a file's header but not its pixels.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from PIL import Image

MAX_CELLS = 100  # the WebUI's batch size times batch count stays far below this
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


@dataclass(frozen=True)
class Grid:
    cell_width: int
    cell_height: int
    cols: int
    rows: int
    count: int  # images in the grid (empty trailing cells left out)

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """(left, top, right, bottom) of each image, in the order the WebUI placed them."""
        w, h = self.cell_width, self.cell_height
        return [
            (i % self.cols * w, i // self.cols * h, i % self.cols * w + w, i // self.cols * h + h)
            for i in range(self.count)
        ]

    def cells(self, image: Image.Image) -> list[Image.Image]:
        return [image.crop(box) for box in self.boxes()]

    def describe(self, subject: str = "This image", prompt_given: bool = False) -> str:
        against = "" if prompt_given else ", against the grid's prompt (the batch's first prompt)"
        return (
            f"{subject} is a WebUI grid of {self.count} images ({self.cols}×{self.rows} cells "
            f"of {self.cell_width}×{self.cell_height}): each was analysed as an image of a "
            f"batch{against}."
        )


def _size(text: str | None) -> tuple[int, int] | None:
    match = _SIZE.match(text or "")
    if not match:
        return None
    w, h = int(match.group(1)), int(match.group(2))
    return (w, h) if w > 0 and h > 0 else None


def cell_sizes(settings: dict[str, str]) -> list[tuple[int, int]]:
    """Sizes one image of the batch may have: ``Size``, the size after hires fix, and the
    size after an Extras upscale (``Postprocess upscale by``/``to``, which keep the infotext)."""
    base = _size(settings.get("Size"))
    if base is None:
        return []
    sizes = [base]
    resize = _size(settings.get("Hires resize"))
    if resize is not None:
        sizes.insert(0, resize)
    scale = _scale(settings.get("Hires upscale"))
    if scale > 0:
        sizes.insert(0, (int(base[0] * scale), int(base[1] * scale)))
    upscaled = _size(settings.get("Postprocess upscale to"))
    by = _scale(settings.get("Postprocess upscale by"))
    if by > 0:
        sizes[:0] = [(round(w * by), round(h * by)) for w, h in sizes]
    if upscaled is not None:
        sizes.insert(0, upscaled)
    return sizes


def _scale(text: str | None) -> float:
    try:
        value = float(text or "")
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and 0 < value <= MAX_CELLS else 0.0


def _uniform(image: Image.Image) -> bool:
    low, high = zip(*image.convert("RGB").getextrema())
    return low == high


def _layout(size: tuple[int, int], settings: dict[str, str]) -> Grid | None:
    """The full grid (every cell counted) that ``size`` is a multiple of, or None."""
    width, height = size
    sizes = cell_sizes(settings)
    if tuple(size) in sizes:
        return None  # the size of one picture (hires fix, upscaled): not a grid of smaller ones
    for w, h in sizes:
        if width % w or height % h:
            continue
        cols, rows = width // w, height // h
        if 2 <= cols * rows <= MAX_CELLS:
            return Grid(w, h, cols, rows, cols * rows)
    return None


def could_be_grid(size: tuple[int, int], settings: dict[str, str]) -> bool:
    """Whether a picture of ``size`` with these settings may be a grid (no pixels read)."""
    return _layout(size, settings) is not None


def detect(image: Image.Image, settings: dict[str, str]) -> Grid | None:
    """The grid ``image`` is, going by its infotext's settings, or None."""
    full = _layout(image.size, settings)
    if full is None:
        return None
    boxes = full.boxes()
    count = full.count
    # image_grid leaves the cells after the last image in its background colour
    while count > 1 and _uniform(image.crop(boxes[count - 1])):
        count -= 1
    return Grid(full.cell_width, full.cell_height, full.cols, full.rows, count)
