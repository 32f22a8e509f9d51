"""Recognise a WebUI image grid and cut it back into the images it was made of.

With a batch and nothing selected, the WebUI's "Send to" buttons send the grid (its
gallery shows it first); analysed as one picture, a collage of four would be measured as
"1 image".  A grid carries the infotext of the batch's first image (``use_main_prompt``),
whose ``Size`` (and ``Hires upscale``/``Hires resize``) give the size of one image, so
an image that is an exact multiple of that size, larger than one cell, is a grid.

The layout is ``modules/images.py`` ``image_grid`` of 1.10.1: ``cols`` × ``rows`` cells of
the largest image's size, filled row by row from the top left, cells after the last image
left in the grid's background colour (so empty cells are uniform and at the end).

Public API: ``Grid`` (cell size, columns, rows, count) and ``detect(image, settings) ->
Grid | None`` (``settings``: the parsed infotext's key/values), ``Grid.cells(image) ->
list[Image]``, ``Grid.describe() -> str``.
"""

from __future__ import annotations

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

    def describe(self) -> str:
        return (
            f"This image is a WebUI grid of {self.count} images ({self.cols}×{self.rows} cells "
            f"of {self.cell_width}×{self.cell_height}): each was analysed as an image of a "
            "batch, against the grid's prompt (the batch's first prompt)."
        )


def _size(text: str | None) -> tuple[int, int] | None:
    match = _SIZE.match(text or "")
    if not match:
        return None
    w, h = int(match.group(1)), int(match.group(2))
    return (w, h) if w > 0 and h > 0 else None


def cell_sizes(settings: dict[str, str]) -> list[tuple[int, int]]:
    """Sizes one image of the batch may have: ``Size``, and the size after hires fix."""
    base = _size(settings.get("Size"))
    if base is None:
        return []
    sizes = [base]
    resize = _size(settings.get("Hires resize"))
    if resize is not None:
        sizes.insert(0, resize)
    try:
        scale = float(settings.get("Hires upscale", ""))
    except ValueError:
        scale = 0.0
    if scale > 0:
        sizes.insert(0, (int(base[0] * scale), int(base[1] * scale)))
    return sizes


def _uniform(image: Image.Image) -> bool:
    low, high = zip(*image.convert("RGB").getextrema())
    return low == high


def detect(image: Image.Image, settings: dict[str, str]) -> Grid | None:
    """The grid ``image`` is, going by its infotext's settings, or None."""
    width, height = image.size
    for w, h in cell_sizes(settings):
        if width % w or height % h:
            continue
        cols, rows = width // w, height // h
        total = cols * rows
        if total < 2 or total > MAX_CELLS:
            continue
        boxes = Grid(w, h, cols, rows, total).boxes()
        count = total
        # image_grid leaves the cells after the last image in its background colour
        while count > 1 and _uniform(image.crop(boxes[count - 1])):
            count -= 1
        return Grid(w, h, cols, rows, count)
    return None
