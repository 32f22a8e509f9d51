"""Which phrases made a region: ranked from maps the trained tiny CLIP computed."""

from __future__ import annotations

import numpy as np
import pytest
from test_heatmaps import PHRASES, two_shapes

from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.heatmaps import phrase_heatmaps
from clipprobe_ext.heatmaps.region import rank_region


@pytest.fixture(scope="module")
def maps(trained_clip_dir):
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    return phrase_heatmaps(encoder, two_shapes(), PHRASES[:2], "chefer-2")


def pixel_share(heatmap, box) -> float:
    """Independent: the map blown up to one value per picture pixel, summed in the box."""
    left, top, right, bottom = heatmap.crop_box
    g = heatmap.grid.shape[0]
    side = right - left
    assert side % g == 0
    pixels = np.kron(heatmap.grid.astype(np.float64), np.ones((side // g, side // g)))
    x0, y0, x1, y1 = (int(v) for v in box)
    inside = pixels[y0 - top : y1 - top, x0 - left : x1 - left].sum()
    return inside / pixels.sum()


def test_the_shape_under_the_click_ranks_first(maps):
    left = rank_region(maps, [24, 48])
    right = rank_region(maps, [72, 48])
    assert [s.phrase for s in left] == ["a red circle", "a blue square"]
    assert [s.phrase for s in right] == ["a blue square", "a red circle"]
    assert left[0].lift > 1 > left[1].lift


def test_a_box_share_equals_the_pixel_level_sum(maps):
    box = [12, 24, 60, 84]  # patch edges of a 96-px picture: 12-px cells
    for score in rank_region(maps, box):
        heatmap = next(h for h in maps if h.phrase == score.phrase)
        assert score.share == pytest.approx(pixel_share(heatmap, box), rel=1e-9)
        area = (60 - 12) * (84 - 24) / 96**2
        assert score.lift == pytest.approx(score.share / area, rel=1e-9)


def test_the_whole_picture_has_lift_one(maps):
    for score in rank_region(maps, [0, 0, 96, 96]):
        assert score.share == pytest.approx(1.0) and score.lift == pytest.approx(1.0)


@pytest.mark.parametrize("region", [[500, 500], [1, 2, 3], ["a", 1], [float("nan"), 3]])
def test_bad_regions_are_refused(maps, region):
    with pytest.raises(ClipProbeError):
        rank_region(maps, region)
