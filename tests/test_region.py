"""Which phrases made a region: ranked from maps the trained tiny CLIP computed."""

from __future__ import annotations

import numpy as np
import pytest
from test_heatmaps import PHRASES, two_shapes

from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.heatmaps import DEFAULT_METHOD, phrase_heatmaps
from clipprobe_ext.heatmaps.region import rank_region


@pytest.fixture(scope="module")
def maps(trained_clip_dir):
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    return phrase_heatmaps(encoder, two_shapes(), PHRASES[:2], DEFAULT_METHOD)


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


# -- the command line and the maps' JSON --------------------------------------------------


def test_the_command_line_ranks_a_clicked_point(capsys, trained_clip_dir, tmp_path, maps):
    import json

    from test_cli import model_args, run

    path = tmp_path / "two shapes.png"
    two_shapes().save(path)
    out_dir = tmp_path / "maps"
    argv = [str(path), "--prompt", ", ".join(PHRASES[:2]), "--json", "-q"]
    code, out, err = run(
        capsys,
        *argv,
        "--region",
        "72,48",
        "--heatmaps",
        str(out_dir),
        *model_args(trained_clip_dir),
    )
    assert code == 0, err
    [note] = [n for n in json.loads(out)["notes"] if n.startswith("Which phrases")]
    assert "around (72, 48)" in note and note.index("a blue square") < note.index("a red circle")
    # the JSON beside the maps holds the same ranking, as rank_region gives it on the
    # engine's own maps of this picture
    [data_file] = out_dir.glob("*-heatmaps.json")
    region = json.loads(data_file.read_text())["region"]
    expected = rank_region(maps, [72, 48])
    assert [r["phrase"] for r in region["ranking"]] == [s.phrase for s in expected]
    for got, want in zip(region["ranking"], expected):
        assert got["lift"] == pytest.approx(want.lift, rel=1e-3, abs=1e-5)
        assert got["share"] == pytest.approx(want.share, abs=1e-4)


@pytest.mark.parametrize("bad", ["72", "1,2,3", "a,b"])
def test_a_bad_region_argument_is_a_usage_error(capsys, bad, tmp_path):
    from test_cli import run

    path = tmp_path / "x.png"
    two_shapes().save(path)
    code, _, err = run(capsys, str(path), "--prompt", "a cat", "--region", bad)
    assert code == 2 and "a point X,Y or a box X0,Y0,X1,Y1" in err


def test_a_region_outside_the_picture_is_said_not_fatal(capsys, trained_clip_dir, tmp_path):
    import json

    from test_cli import model_args, run

    path = tmp_path / "x.png"
    two_shapes().save(path)
    argv = [str(path), "--prompt", "a red circle", "--json", "-q", "--region", "500,500"]
    code, out, err = run(capsys, *argv, *model_args(trained_clip_dir))
    assert code == 0, err
    assert any("outside the centre square CLIP saw" in n for n in json.loads(out)["notes"])


# -- trust ------------------------------------------------------------------------------------


def test_shared_peaks_against_a_direct_computation():
    from clipprobe_ext.heatmaps.trust import shared_peaks

    rng = np.random.default_rng(3)
    grids = [rng.random((4, 4)) for _ in range(3)]
    grids[1][2, 2] = grids[2][2, 2] = 5.0  # two maps share their hottest patch
    grids[0][0, 0] = 5.0
    assert shared_peaks(grids) == [False, True, True]
    assert shared_peaks([np.zeros((4, 4)), np.zeros((4, 4))]) == [False, False]
