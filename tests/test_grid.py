"""Recognising a WebUI grid and cutting it back into its pictures (``clipprobe_ext.grid``).

The grids are built with the WebUI's own layout (``webui_grids.webui_grid``); a cut is
right when every cell is, pixel for pixel, the picture that was pasted there.
"""

from __future__ import annotations

import numpy as np
import pytest
from webui_grids import grid_infotext, noisy_picture, webui_grid

from clipprobe_ext.grid import could_be_grid, detect
from clipprobe_ext.infotext import parse_parameters


def settings(width, height, extra=""):
    return parse_parameters(grid_infotext("a cat", "blurry", width, height, extra)).settings


@pytest.mark.parametrize(
    ("count", "rows", "extra", "cell"),
    [
        (4, 2, "", None),  # a batch of 4: 2x2 (image_grid's default rows, round(sqrt(4)))
        (3, 2, "", None),  # 3 in 2x2: the last cell is background
        (2, 1, "", None),  # 2 side by side
        (6, 2, "", None),  # 3x2
        (4, 2, ", Hires upscale: 2", (32, 24)),  # infotext Size is the first pass
        (4, 2, ", Hires resize: 64x48", (16, 12)),
    ],
)
def test_a_grid_is_cut_into_the_pictures_pasted_into_it(count, rows, extra, cell):
    pictures = [noisy_picture(seed=10 + i) for i in range(count)]
    grid = webui_grid(pictures, rows)
    found = detect(grid, settings(*(cell or pictures[0].size), extra))
    assert found is not None
    cols = -(-count // rows)
    assert (found.count, found.cols, found.rows) == (count, cols, rows)
    assert (found.cell_width, found.cell_height) == pictures[0].size
    cells = found.cells(grid)
    assert len(cells) == count
    for got, want in zip(cells, pictures):
        assert np.array_equal(np.asarray(got), np.asarray(want))
    assert could_be_grid(grid.size, settings(*(cell or pictures[0].size), extra))
    assert f"WebUI grid of {count} images ({cols}×{rows} cells" in found.describe()


def test_a_picture_that_is_not_a_grid_stays_one_picture():
    picture = noisy_picture(seed=1)
    # the size its infotext gives is its own size, or does not divide it
    for size in (picture.size, (40, 40), (128, 96)):
        assert detect(picture, settings(*size)) is None
        assert not could_be_grid(picture.size, settings(*size))
    assert detect(picture, {}) is None  # no Size at all


@pytest.mark.parametrize(
    "extra",
    [
        ", Hires upscale: 2",
        ", Hires resize: 128x96",
        ", Postprocess upscale by: 2",
        ", Postprocess upscale to: 128x96",
    ],
)
def test_one_upscaled_picture_is_not_a_grid_of_four(extra):
    """Before: a hires-fixed or Extras-upscaled 128x96 picture of ``Size: 64x48`` was a
    multiple of that size, so it was cut into four quarters."""
    picture = noisy_picture(seed=2, size=(128, 96))
    assert detect(picture, settings(64, 48, extra)) is None
    assert not could_be_grid(picture.size, settings(64, 48, extra))


def test_a_grid_of_upscaled_pictures_is_still_a_grid():
    pictures = [noisy_picture(seed=20 + i, size=(128, 96)) for i in range(2)]
    found = detect(webui_grid(pictures, 1), settings(64, 48, ", Postprocess upscale by: 2"))
    assert found is not None and (found.count, found.cell_width) == (2, 128)


@pytest.mark.parametrize("scale", ["inf", "nan", "-2", "0", "lots"])
def test_broken_scales_are_ignored(scale):
    picture = noisy_picture(seed=3)
    assert detect(picture, settings(*picture.size, f", Hires upscale: {scale}")) is None
    grid = webui_grid([picture, noisy_picture(seed=4)], 1)
    found = detect(grid, settings(*picture.size, f", Postprocess upscale by: {scale}"))
    assert found is not None and found.count == 2
