"""'Probe after generation': the always-visible Script, on real images and the tiny CLIP."""

from __future__ import annotations

import importlib
import logging
import sys
import types

import gradio as gr
import pytest

from clipprobe_ext import probe, render
from clipprobe_ext.webui import model_source, settings

PROMPTS = ["a girl, red umbrella, rain", "a cat, blue sofa, <lora:x:1>, sunlight"]
PARAMS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: 64x48"


@pytest.fixture()
def always_visible(webui):
    """The module, imported against this test's stand-in ``modules.scripts``."""
    sys.modules.pop("clipprobe_ext.webui.always_visible", None)
    module = importlib.import_module("clipprobe_ext.webui.always_visible")
    yield module
    sys.modules.pop("clipprobe_ext.webui.always_visible", None)


@pytest.fixture()
def tiny_default(webui, tiny_hf_clip_dir):
    settings.on_ui_settings()
    webui.shared.opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    webui.shared.opts.clipprobe_threshold = 0.0
    return str(tiny_hf_clip_dir)


def fake_processed(images, grid=None):
    """What 1.10's process_images hands to ``postprocess``: a grid first when there is one."""
    infotexts = [
        f"{prompt}\nNegative prompt: blurry\n{PARAMS.format(seed=k)}"
        for k, prompt in enumerate(PROMPTS[: len(images)])
    ]
    out_images = list(images)
    first = 0
    if grid is not None:
        out_images.insert(0, grid)
        infotexts.insert(0, infotexts[0])
        first = 1
    processed = types.SimpleNamespace(
        images=out_images,
        infotexts=infotexts,
        info=infotexts[0],
        index_of_first_image=first,
        all_prompts=PROMPTS[: len(images)],
        prompt=PROMPTS[0],
    )
    p = types.SimpleNamespace(prompt=PROMPTS[0], all_prompts=PROMPTS[: len(images)])
    return p, processed


def test_is_an_always_visible_script(always_visible, webui):
    script = always_visible.ClipProbeScript()
    assert isinstance(script, webui.scripts.Script)
    assert script.show(False) is webui.scripts.AlwaysVisible
    assert script.show(True) is webui.scripts.AlwaysVisible
    assert script.title() == "ClipProbe"


def test_ui_is_an_accordion_checkbox_off_by_default(always_visible, webui):
    script = always_visible.ClipProbeScript()
    with gr.Blocks():
        [enabled] = script.ui(False)
    assert isinstance(enabled, webui.ui_components.InputAccordion)
    assert enabled.value is False
    assert enabled.accordion.label == "ClipProbe: probe after generation"
    assert enabled.do_not_save_to_config and enabled.accordion.do_not_save_to_config


def test_ui_default_follows_the_setting(always_visible, webui):
    settings.on_ui_settings()
    webui.shared.opts.clipprobe_probe_after_generation = True
    with gr.Blocks():
        [enabled] = always_visible.ClipProbeScript().ui(True)
    assert enabled.value is True


def test_off_does_nothing(always_visible, monkeypatch, images):
    calls = []
    monkeypatch.setattr(model_source, "run_analysis", lambda *a, **k: calls.append(a))
    p, processed = fake_processed(images[:2])
    before = list(processed.infotexts)
    always_visible.ClipProbeScript().postprocess(p, processed, False)
    always_visible.ClipProbeScript().postprocess(p, processed)
    assert calls == []
    assert processed.infotexts == before


def test_on_appends_the_real_summary_to_each_image(
    always_visible, webui, tiny_default, hf_encoder, images
):
    grid = images[2]
    p, processed = fake_processed(images[:2], grid=grid)
    before = list(processed.infotexts)
    lock = webui.call_queue.queue_lock
    lock.acquire()  # the generation job holds the queue lock: the probe must not take it again
    try:
        always_visible.ClipProbeScript().postprocess(p, processed, True)
    finally:
        lock.release()
    assert processed.infotexts[0] == before[0]  # the grid is left alone
    options = settings.probe_options()
    parse = webui.infotext_utils.parse_generation_parameters
    for k, image in enumerate(images[:2]):
        expected = render.summary_text(probe.analyze([image], PROMPTS[k], hf_encoder, options))
        text = processed.infotexts[k + 1]
        assert text.startswith(before[k + 1])
        params = parse(text)
        assert params["ClipProbe"] == expected  # still one parseable parameter line
        assert params["Prompt"] == PROMPTS[k] and params["Seed"] == str(k)
    assert processed.info == before[0]


def test_without_grid_info_follows_the_first_image(always_visible, tiny_default, images):
    p, processed = fake_processed(images[:1])
    always_visible.ClipProbeScript().postprocess(p, processed, True)
    assert "ClipProbe: " in processed.infotexts[0]
    assert processed.info == processed.infotexts[0]


def test_failure_logs_a_warning_and_keeps_the_generation(
    always_visible, webui, images, caplog, tmp_path
):
    settings.on_ui_settings()
    webui.shared.opts.clipprobe_default_model = str(tmp_path / "missing-model")
    p, processed = fake_processed(images[:2])
    before = list(processed.infotexts)
    with caplog.at_level(logging.WARNING, logger="clipprobe"):
        always_visible.ClipProbeScript().postprocess(p, processed, True)
    assert processed.infotexts == before
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "probe after generation failed" in warnings[0].getMessage()


def test_unexpected_errors_never_escape(always_visible, monkeypatch, images):
    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(always_visible, "probe_processed", boom)
    p, processed = fake_processed(images[:1])
    always_visible.ClipProbeScript().postprocess(p, processed, True)  # no exception


def test_append_to_infotext_keeps_a_parseable_line(always_visible, webui):
    parse = webui.infotext_utils.parse_generation_parameters
    text = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7"
    out = always_visible.append_to_infotext(text, "2 keep, 1 weak (sofa, red), 0 prune")
    assert parse(out)["ClipProbe"] == "2 keep, 1 weak (sofa, red), 0 prune"
    assert parse(out)["Prompt"] == "a cat"
    assert always_visible.append_to_infotext("", "1 keep") == "ClipProbe: 1 keep"


def test_entry_file_exposes_the_script_and_registers(webui, always_visible):
    import runpy
    from pathlib import Path

    entry = Path(__file__).resolve().parents[2] / "scripts" / "clipprobe.py"
    namespace = runpy.run_path(str(entry))
    classes = [
        v for v in namespace.values() if isinstance(v, type) and issubclass(v, webui.scripts.Script)
    ]
    assert [c.__name__ for c in classes] == ["ClipProbeScript"]
    cm = webui.script_callbacks.callback_map
    assert len(cm["callbacks_ui_tabs"]) == 1 and len(cm["callbacks_after_component"]) == 1
