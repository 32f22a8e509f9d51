"""settings: the "ClipProbe" section in Settings and getters with safe defaults."""

from __future__ import annotations

import sys

import fake_host
import pytest

from clipprobe_ext.options import OPTIONS
from clipprobe_ext.webui import settings
from clipprobe_ext.webui.model_choices import WEBUI_CLIP

KEY_ROUNDS = settings.key("rounds")
KEY_THRESHOLD = settings.key("threshold")
KEY_TOLERANCE = settings.key("tolerance")
KEYS = (
    settings.KEY_MODEL,
    KEY_ROUNDS,
    KEY_THRESHOLD,
    KEY_TOLERANCE,
    settings.KEY_KEEP_ON_GPU,
    settings.KEY_AFTER_GENERATION,
)


def test_every_setting_option_of_the_spec_is_in_settings():
    assert settings.SETTING_OPTIONS == ("rounds", "threshold", "tolerance")
    # percent options live under their own keys, in percent
    assert (KEY_ROUNDS, KEY_THRESHOLD, KEY_TOLERANCE) == (
        "clipprobe_rounds",
        "clipprobe_threshold_percent",
        "clipprobe_tolerance_percent",
    )


def test_registers_a_clipprobe_section_through_the_callback(webui):
    webui.callbacks["ui_settings"].append(settings.on_ui_settings)  # callbacks.register
    webui.fire_ui_settings()
    labels = webui.opts.data_labels
    for key in KEYS:
        info = labels[key]
        assert isinstance(info, fake_host.OptionInfo)
        assert info.section == ("clipprobe", "ClipProbe")
        assert info.label
    assert webui.opts.clipprobe_rounds == 5
    assert webui.opts.clipprobe_threshold_percent == 1
    assert webui.opts.clipprobe_tolerance_percent == 1
    for name in settings.SETTING_OPTIONS:  # label and help from the options spec
        assert labels[settings.key(name)].label.startswith(OPTIONS[name].label)
        assert OPTIONS[name].help in labels[settings.key(name)].info
    assert webui.opts.clipprobe_keep_clip_on_gpu is False
    assert webui.opts.clipprobe_probe_after_generation is False
    assert webui.opts.clipprobe_default_model == WEBUI_CLIP


def test_components_match_the_values(webui):
    import gradio as gr

    settings.on_ui_settings()
    labels = webui.opts.data_labels
    rounds = labels[KEY_ROUNDS]
    assert rounds.component is gr.Slider
    spec = OPTIONS["rounds"]
    assert rounds.component_args == {
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "step": spec.step,
    }
    threshold = labels[KEY_THRESHOLD]  # in percent
    assert threshold.component_args["maximum"] == 100 * OPTIONS["threshold"].maximum
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
    for key, info in webui.opts.data_labels.items():
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
    assert settings.value("rounds") == 5
    assert settings.value("threshold") == 0.01
    assert settings.value("tolerance") == 0.01
    assert settings.keep_on_gpu() is False
    assert settings.probe_after_generation() is False


def test_getters_default_without_a_webui(monkeypatch):
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modules", None)  # import modules -> ImportError
    assert settings.default_model() == WEBUI_CLIP
    assert settings.value("rounds") == 5
    assert settings.keep_on_gpu() is False


def test_getters_read_the_settings(webui):
    settings.on_ui_settings()
    opts = webui.opts
    opts.clipprobe_rounds = 12.0  # sliders store floats
    opts.clipprobe_threshold_percent = 5.0
    opts.clipprobe_tolerance_percent = 2
    opts.clipprobe_keep_clip_on_gpu = True
    opts.clipprobe_probe_after_generation = True
    opts.clipprobe_default_model = "  openai/clip-vit-base-patch32 "
    assert settings.value("rounds") == 12
    assert settings.value("threshold") == pytest.approx(0.05)
    assert settings.value("tolerance") == pytest.approx(0.02)
    assert settings.shown("threshold") == 5
    assert settings.keep_on_gpu() is True
    assert settings.probe_after_generation() is True
    assert settings.default_model() == "openai/clip-vit-base-patch32"


@pytest.mark.parametrize(
    ("key", "value", "getter", "expected"),
    [  # out of bounds: clamped to the spec's bounds; not a number: the spec's default
        (KEY_ROUNDS, 1000, lambda: settings.value("rounds"), 20),
        (KEY_ROUNDS, 0, lambda: settings.value("rounds"), 1),
        (KEY_ROUNDS, "lots", lambda: settings.value("rounds"), 5),
        (KEY_THRESHOLD, -1, lambda: settings.value("threshold"), 0.0),
        (KEY_THRESHOLD, "x", lambda: settings.value("threshold"), 0.01),
        (KEY_TOLERANCE, 70, lambda: settings.value("tolerance"), 0.2),
        (KEY_TOLERANCE, float("nan"), lambda: settings.value("tolerance"), 0.01),
        (settings.KEY_MODEL, "", settings.default_model, WEBUI_CLIP),
        (settings.KEY_MODEL, None, settings.default_model, WEBUI_CLIP),
    ],
)
def test_invalid_values_fall_back(webui, key, value, getter, expected):
    settings.on_ui_settings()
    webui.opts.data[key] = value
    assert getter() == expected


def test_probe_options_from_settings_with_overrides(webui):
    settings.on_ui_settings()
    webui.opts.clipprobe_rounds = 7
    options = settings.probe_options(threshold=0.2, tolerance=None, granularity="word")
    assert options.rounds == 7
    assert options.threshold == 0.2
    assert options.tolerance == 0.01
    assert options.granularity == "word"
