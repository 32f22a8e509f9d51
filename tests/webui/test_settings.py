"""settings: the "ClipProbe" section in Settings and getters with safe defaults."""

from __future__ import annotations

import sys

import pytest

from clipprobe_ext.webui import settings
from clipprobe_ext.webui.model_source import WEBUI_CLIP

KEYS = (
    settings.KEY_MODEL,
    settings.KEY_ROUNDS,
    settings.KEY_THRESHOLD,
    settings.KEY_TOLERANCE,
    settings.KEY_KEEP_ON_GPU,
    settings.KEY_AFTER_GENERATION,
)


def test_registers_a_clipprobe_section_through_the_callback(webui):
    webui.script_callbacks.on_ui_settings(settings.on_ui_settings)
    webui.script_callbacks.ui_settings_callback()
    labels = webui.shared.opts.data_labels
    for key in KEYS:
        info = labels[key]
        assert isinstance(info, webui.options.OptionInfo)
        assert info.section == ("clipprobe", "ClipProbe")
        assert info.label
    assert webui.shared.opts.clipprobe_rounds == 5
    assert webui.shared.opts.clipprobe_threshold == 0.01
    assert webui.shared.opts.clipprobe_tolerance == 0.01
    assert webui.shared.opts.clipprobe_keep_clip_on_gpu is False
    assert webui.shared.opts.clipprobe_probe_after_generation is False
    assert webui.shared.opts.clipprobe_default_model == WEBUI_CLIP


def test_components_match_the_values(webui):
    import gradio as gr

    settings.on_ui_settings()
    labels = webui.shared.opts.data_labels
    rounds = labels[settings.KEY_ROUNDS]
    assert rounds.component is gr.Slider
    assert rounds.component_args == {"minimum": 1, "maximum": 20, "step": 1}
    model = labels[settings.KEY_MODEL]
    assert model.component is gr.Dropdown
    args = model.component_args()  # a callable, evaluated when Settings is built
    assert args["choices"][0] == WEBUI_CLIP
    assert labels[settings.KEY_KEEP_ON_GPU].component is None  # a checkbox


def test_component_args_are_valid_updates(webui):
    """1.10 and Forge send ``gr.update(value=..., **args)`` for every option on each page
    load (modules/ui_settings.py): gradio must accept every arg as an update of that
    component.  gradio 3.41 checks them against the component's ``update()``; gradio 4 has
    no ``update()`` and rebuilds the component from its constructor arguments plus the update."""
    import inspect

    import gradio as gr

    gradio_4 = int(gr.__version__.split(".", 1)[0]) >= 4
    settings.on_ui_settings()
    for key, info in webui.shared.opts.data_labels.items():
        if info.component is None or not key.startswith("clipprobe"):
            continue
        args = info.component_args() if callable(info.component_args) else info.component_args
        method = info.component.__init__ if gradio_4 else info.component.update
        accepted = inspect.signature(method).parameters
        assert set(args or {}) <= set(accepted), (key, set(args) - set(accepted))
        with gr.Blocks():
            info.component(label=info.label, value=info.default, **(args or {}))


def test_getters_default_when_options_are_missing(webui):
    assert settings.default_model() == WEBUI_CLIP
    assert settings.rounds() == 5
    assert settings.threshold() == 0.01
    assert settings.tolerance() == 0.01
    assert settings.keep_on_gpu() is False
    assert settings.probe_after_generation() is False


def test_getters_default_without_a_webui(monkeypatch):
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modules", None)  # import modules -> ImportError
    assert settings.default_model() == WEBUI_CLIP
    assert settings.rounds() == 5
    assert settings.keep_on_gpu() is False


def test_getters_read_the_settings(webui):
    settings.on_ui_settings()
    opts = webui.shared.opts
    opts.clipprobe_rounds = 12.0  # sliders store floats
    opts.clipprobe_threshold = 0.05
    opts.clipprobe_tolerance = 0.02
    opts.clipprobe_keep_clip_on_gpu = True
    opts.clipprobe_probe_after_generation = True
    opts.clipprobe_default_model = "  openai/clip-vit-base-patch32 "
    assert settings.rounds() == 12
    assert settings.threshold() == 0.05
    assert settings.tolerance() == 0.02
    assert settings.keep_on_gpu() is True
    assert settings.probe_after_generation() is True
    assert settings.default_model() == "openai/clip-vit-base-patch32"


@pytest.mark.parametrize(
    ("key", "value", "getter", "expected"),
    [
        (settings.KEY_ROUNDS, 1000, settings.rounds, 20),
        (settings.KEY_ROUNDS, 0, settings.rounds, 1),
        (settings.KEY_ROUNDS, "lots", settings.rounds, 5),
        (settings.KEY_THRESHOLD, -1, settings.threshold, 0.01),
        (settings.KEY_THRESHOLD, "x", settings.threshold, 0.01),
        (settings.KEY_TOLERANCE, 7, settings.tolerance, 0.01),
        (settings.KEY_MODEL, "", settings.default_model, WEBUI_CLIP),
        (settings.KEY_MODEL, None, settings.default_model, WEBUI_CLIP),
    ],
)
def test_invalid_values_fall_back(webui, key, value, getter, expected):
    settings.on_ui_settings()
    webui.shared.opts.data[key] = value
    assert getter() == expected


def test_probe_options_from_settings_with_overrides(webui):
    settings.on_ui_settings()
    webui.shared.opts.clipprobe_rounds = 7
    options = settings.probe_options(threshold=0.2, tolerance=None, granularity="word")
    assert options.rounds == 7
    assert options.threshold == 0.2
    assert options.tolerance == 0.01
    assert options.granularity == "word"
