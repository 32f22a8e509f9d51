"""The tab's heatmaps: computed with the analysis only when asked, kept in the state, the
clicked phrase's overlay drawn from the stored map at the slider's opacity."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageChops

from clipprobe_ext.heatmaps import compute as heatmap_compute
from clipprobe_ext.heatmaps.compute import phrase_heatmaps
from clipprobe_ext.heatmaps.render import overlay
from clipprobe_ext.webui import heatmap_tab, tab, tab_handlers

PROMPT = "a girl, red umbrella, <lora:rainy:0.7>, rain, city at night"


def _analyze(image, model, heatmaps):
    return tab_handlers.analyze("", image, PROMPT, "", 3, 0.0, 2, "phrase", model, "", heatmaps)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return (
        a.size == b.size
        and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
    )


@pytest.fixture()
def wide(images):
    """A wide picture: CLIP sees only its centre square, the map covers that crop."""
    return images[0].resize((96, 48))


def test_heatmaps_are_computed_only_when_asked(webui, wide, tiny_hf_clip_dir, monkeypatch):
    calls = []
    real = heatmap_compute.HeatmapRun.maps

    def counting(self, phrases, method):
        calls.append(list(phrases))
        return real(self, phrases, method)

    monkeypatch.setattr(heatmap_compute.HeatmapRun, "maps", counting)
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), False)))
    assert calls == [] and out["heatmap_state"] is None
    assert out["heatmap_gallery"]["visible"] is False and out["heatmap_column"]["visible"] is False
    assert out["heatmap_view"] is None
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    # one run for all measurable phrases (the lora tag is not one)
    assert calls == [["a girl", "red umbrella", "rain", "city at night"]]
    assert isinstance(out["heatmap_state"], heatmap_tab.HeatmapState)


def test_clicked_phrase_shows_its_own_map(webui, wide, tiny_hf_clip_dir, hf_encoder):
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    state = out["heatmap_state"]
    assert "centre" in out["heatmap_note"]  # a wide picture: the note says what CLIP saw
    # the maps, computed independently on the same model and picture
    phrases = ["a girl", "red umbrella", "rain", "city at night"]
    maps = phrase_heatmaps(hf_encoder, wide.convert("RGB"), phrases)
    # the prompt's phrase indices: 0 a girl, 1 red umbrella, 2 <lora>, 3 rain, 4 city at night
    assert sorted(state.maps) == [0, 1, 3, 4]
    for index, expected in zip([0, 1, 3, 4], maps):
        got = state.maps[index]
        assert got.phrase == expected.phrase
        np.testing.assert_allclose(got.grid, expected.grid, atol=1e-4)
        shown, note = tab_handlers.show_heatmap(str(index), state, 50)
        assert _same(shown, overlay(wide, got, 0.5)) and expected.phrase in note
    # different phrases, different pictures; the slider redraws the same map
    a, _ = tab_handlers.show_heatmap("0", state, 50)
    b, _ = tab_handlers.show_heatmap("1", state, 50)
    assert not _same(a, b)
    faint, _ = tab_handlers.show_heatmap("1", state, 10)
    assert _same(faint, overlay(wide, state.maps[1], 0.1)) and not _same(faint, b)
    # every phrase in the gallery, captioned with what its map means (no label to squint at)
    gallery = out["heatmap_gallery"]["value"]
    assert [caption.split("”")[0].lstrip("“") for _, caption in gallery] == phrases
    for (picture, caption), index in zip(gallery, [0, 1, 3, 4]):
        assert _same(picture, overlay(wide, state.maps[index], 0.5))
        assert "cosine similarity of picture and phrase" in caption
        assert f"{state.maps[index].score:.4f}" in caption


def test_first_phrase_is_shown_next_to_the_prompt_with_its_unit(webui, wide, tiny_hf_clip_dir):
    """No click needed to find the heatmap: the first phrase's overlay is shown at once,
    marked in the coloured prompt, and its note says what the numbers are."""
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    state = out["heatmap_state"]
    assert out["heatmap_column"]["visible"] is True
    assert _same(out["heatmap_view"], overlay(wide, state.maps[0], 0.5))
    assert 'cp-selected" data-index="0"' in out["prompt_view"]
    report = out["report_state"]
    presence = report.images[0].presence[0]
    note = out["heatmap_note"]
    assert "“a girl”" in note and f"presence {presence:.2f}" in note
    assert f"seen from {report.bounds.seen_from:.2f}" in note
    assert f"cosine similarity of picture and phrase {state.maps[0].score:.4f}" in note
    # a click on another phrase: its own numbers
    _, note = tab_handlers.show_heatmap("3", state, 50)
    assert "“rain”" in note and f"presence {report.images[0].presence[3]:.2f}" in note


def test_unmeasurable_or_missing_phrases_say_so(webui, wide, tiny_hf_clip_dir):
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    state = out["heatmap_state"]
    image, note = tab_handlers.show_heatmap("2", state, 50)  # the lora tag
    assert image is None and "not measured" in note
    image, note = tab_handlers.show_heatmap("", state, 50)
    assert image is None and "Click a phrase" in note
    image, note = tab_handlers.show_heatmap("1", None, 50)
    assert image is None and "Heatmaps" in note


def _descendants(block):
    """Every block inside ``block`` (gradio 3 wraps form fields in a Form block of its own)."""
    for child in getattr(block, "children", []):
        yield child
        yield from _descendants(child)


def test_heatmap_events_are_wired(webui):
    from test_tab import _events, _handler, _ids, _parent_of

    t = tab.create_tab()
    events = [e for e in _events(t.blocks) if e["fn"] is tab_handlers.show_heatmap]
    assert sorted(e["targets"][0] for e in events) == sorted(
        [(t.show_heatmap._id, "click"), (t.heatmap_opacity._id, "change")]
    )
    for event in events:
        assert event["inputs"] == _ids([t.phrase_index, t.heatmap_state, t.heatmap_opacity])
        assert event["outputs"] == _ids([t.heatmap_view, t.heatmap_note])
    # the overlay, its note and opacity sit in one column beside the coloured prompt,
    # hidden until an analysis computed heatmaps
    assert t.heatmap_column.visible is False
    column = {c._id for c in _descendants(t.heatmap_column)}
    assert {t.heatmap_view._id, t.heatmap_note._id, t.heatmap_opacity._id} <= column
    row = _parent_of(t.blocks, t.heatmap_column)
    assert row.elem_id == "clipprobe_prompt_row"
    assert _parent_of(t.blocks, t.prompt_view) in row.children
    assert _parent_of(t.blocks, row).elem_id == "clipprobe_outputs"  # beside the inputs
    # the JS needs both hidden helpers in the page: hidden by CSS, not left out
    for component in (t.phrase_index, t.show_heatmap):
        assert component.visible is not False and "clipprobe-hidden" in component.elem_classes
    assert _handler(t.blocks, tab_handlers.analyze)


def test_a_click_on_the_map_ranks_the_phrases_there(webui, wide, tiny_hf_clip_dir):
    """The select event gets gradio's SelectData (the click's pixel), and answers the
    ranking ``rank_region`` gives on the stored maps; a new analysis clears it."""
    import gradio as gr
    from gradio.helpers import special_args
    from test_tab import _events, _ids

    from clipprobe_ext.heatmaps.region import rank_region
    from clipprobe_ext.report.region import region_text

    t = tab.create_tab()
    [event] = [e for e in _events(t.blocks) if e["targets"][0] == (t.heatmap_view._id, "select")]
    assert event["inputs"] == _ids([t.heatmap_state]) and event["outputs"] == _ids([t.region_note])
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    assert out["region_note"] == ""
    state = out["heatmap_state"]
    click = gr.SelectData(t.heatmap_view, {"index": [60, 20], "value": None})
    args, *_ = special_args(event["fn"], [state], None, click)  # as gradio calls it
    note = event["fn"](*args)
    expected = rank_region(state.distinct(), [60, 20])
    assert [s.phrase for s in expected] == sorted(
        ["a girl", "red umbrella", "rain", "city at night"],
        key=lambda p: -next(s.lift for s in expected if s.phrase == p),
    )
    assert region_text([60, 20], expected).split(": ", 1)[1] in note.replace("&quot;", '"')
    # outside the square CLIP saw (the wide picture's left margin): said, no ranking
    outside = tab_handlers.region_clicked([5, 20], state)
    assert "outside the centre square CLIP saw" in outside
    assert "Heatmaps" in tab_handlers.region_clicked([60, 20], None)


def test_a_map_that_peaks_with_another_says_so(webui, wide, tiny_hf_clip_dir):
    from clipprobe_ext.heatmaps.trust import shared_peaks

    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _analyze(wide, str(tiny_hf_clip_dir), True)))
    state = out["heatmap_state"]
    maps = state.distinct()
    shared = shared_peaks([h.grid for h in maps])
    for index, heatmap in state.maps.items():
        _, note = tab_handlers.show_heatmap(str(index), state, 50)
        k = [h.phrase for h in maps].index(heatmap.phrase)
        assert ("trust it less" in note) == shared[k]
    # the same stored maps with two peaks made to coincide: the warning names the other
    grid = np.zeros_like(state.maps[0].grid)
    grid[1, 1] = 1.0
    state.maps[0].grid, state.maps[1].grid = grid.copy(), grid.copy()
    _, note = tab_handlers.show_heatmap("0", state, 50)
    assert "trust it less" in note and "red umbrella" in note
