"""ClipProbe's section in the WebUI's Settings, and getters that always answer.

Public API:

- ``on_ui_settings() -> None``: register the options (pass it to
  ``script_callbacks.on_ui_settings``).  Each is an ``OptionInfo`` with
  ``section=SECTION`` (``("clipprobe", "ClipProbe")``); like the WebUI's own
  "Interrogate" section it has no ``category_id``, so 1.10 lists it after the categories.
- Getters, each returning the documented default when the option is missing, invalid,
  or when there is no WebUI at all: ``default_model() -> str``, ``rounds() -> int``
  (1-20, default 5), ``threshold() -> float`` (in [0, 1), default 0.01),
  ``tolerance() -> float`` (in [0, 1), default 0.01), ``keep_on_gpu() -> bool`` (False),
  ``probe_after_generation() -> bool`` (False).
- ``probe_options(**overrides) -> ProbeOptions``: options from the settings, any field
  overridden by a keyword that is not None.
"""

from __future__ import annotations

from typing import Any

from clipprobe_ext.probe import ProbeOptions
from clipprobe_ext.webui import model_choices

SECTION = ("clipprobe", "ClipProbe")

KEY_MODEL = "clipprobe_default_model"
KEY_ROUNDS = "clipprobe_rounds"
KEY_THRESHOLD = "clipprobe_threshold"
KEY_TOLERANCE = "clipprobe_tolerance"
KEY_KEEP_ON_GPU = "clipprobe_keep_clip_on_gpu"
KEY_AFTER_GENERATION = "clipprobe_probe_after_generation"

ROUNDS_MIN, ROUNDS_MAX, ROUNDS_DEFAULT = 1, 20, 5
THRESHOLD_DEFAULT = 0.01
TOLERANCE_DEFAULT = 0.01


def on_ui_settings() -> None:
    import gradio as gr
    from modules import shared

    def option(default: Any, label: str, component: Any = None, args: Any = None) -> Any:
        return shared.OptionInfo(default, label, component, args, section=SECTION)

    options = {
        KEY_MODEL: option(
            model_choices.WEBUI_CLIP,
            "Default CLIP model (WebUI Interrogate CLIP, a transformers hub name or a local folder)",
            gr.Dropdown,
            # Only what Dropdown.update() takes: 1.10 applies these args as an update
            # on every page load (modules/ui_settings.py), and gradio 3.41's update has
            # no allow_custom_value (a custom folder can still be typed in the tab).
            lambda: {"choices": model_choices.list_models(default_model())},
        ).info("the Interrogate CLIP is the model the WebUI's 'Interrogate CLIP' button uses"),
        KEY_ROUNDS: option(
            ROUNDS_DEFAULT,
            "Elimination rounds",
            gr.Slider,
            {"minimum": ROUNDS_MIN, "maximum": ROUNDS_MAX, "step": 1},
        ),
        KEY_THRESHOLD: option(
            THRESHOLD_DEFAULT,
            "Probability threshold: report phrases above this in a round",
            gr.Slider,
            {"minimum": 0.0, "maximum": 0.5, "step": 0.001},
        ),
        KEY_TOLERANCE: option(
            TOLERANCE_DEFAULT,
            "Pruning tolerance: relative similarity a pruned prompt may lose",
            gr.Slider,
            {"minimum": 0.0, "maximum": 0.2, "step": 0.001},
        ),
        KEY_KEEP_ON_GPU: option(False, "Keep the CLIP model on the GPU between runs").info(
            "faster repeated runs; uses about 1 GB of VRAM for ViT-L/14"
        ),
        KEY_AFTER_GENERATION: option(
            False, "Probe after generation: enabled by default in txt2img/img2img"
        ),
    }
    for key, info in options.items():
        shared.opts.add_option(key, info)


def _opt(key: str, default: Any) -> Any:
    try:
        from modules import shared
    except ImportError:
        return default
    opts = getattr(shared, "opts", None)
    if opts is None:
        return default
    try:
        value = getattr(opts, key)
    except AttributeError:
        return default
    return default if value is None else value


def default_model() -> str:
    value = _opt(KEY_MODEL, None)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return model_choices.WEBUI_CLIP


def rounds() -> int:
    try:
        value = int(_opt(KEY_ROUNDS, ROUNDS_DEFAULT))
    except (TypeError, ValueError):
        return ROUNDS_DEFAULT
    return min(max(value, ROUNDS_MIN), ROUNDS_MAX)


def _fraction(key: str, default: float) -> float:
    try:
        value = float(_opt(key, default))
    except (TypeError, ValueError):
        return default
    return value if 0.0 <= value < 1.0 else default


def threshold() -> float:
    return _fraction(KEY_THRESHOLD, THRESHOLD_DEFAULT)


def tolerance() -> float:
    return _fraction(KEY_TOLERANCE, TOLERANCE_DEFAULT)


def keep_on_gpu() -> bool:
    return bool(_opt(KEY_KEEP_ON_GPU, False))


def probe_after_generation() -> bool:
    return bool(_opt(KEY_AFTER_GENERATION, False))


def probe_options(**overrides: Any) -> ProbeOptions:
    """``ProbeOptions`` with rounds/threshold/tolerance from the settings, then overrides."""
    values: dict[str, Any] = {
        "rounds": rounds(),
        "threshold": threshold(),
        "tolerance": tolerance(),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ProbeOptions(**values)
