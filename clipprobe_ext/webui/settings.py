"""ClipProbe's section in the WebUI's Settings, and getters that always answer.

Every analysis option marked ``setting`` in ``clipprobe_ext.options.OPTIONS`` (rounds,
threshold, tolerance) becomes an ``OptionInfo`` whose default, bounds, step, label and
help come from its ``OptionSpec``; percent options are stored there in percent (under
``spec.settings_key``, e.g. ``clipprobe_threshold_percent``), as the tab shows them.

Public API:

- ``on_ui_settings() -> None``: register the options (pass it to
  ``script_callbacks.on_ui_settings``), each with ``section=SECTION``
  (``("clipprobe", "ClipProbe")``); like the WebUI's own "Interrogate" section it has no
  ``category_id``, so 1.10 lists it after the categories.
- ``value(name) -> int | float``: the setting of option ``name`` in stored units
  (fractions), within the spec's bounds; the spec's default when it is missing, not a
  number, or when there is no WebUI at all.  ``shown(name)``: the same in shown units.
- ``default_model() -> str``, ``keep_on_gpu() -> bool`` (False),
  ``probe_after_generation() -> bool`` (False).
- ``probe_options(**overrides) -> ProbeOptions``: options from the settings, any field
  overridden by a keyword that is not None.
"""

from __future__ import annotations

from typing import Any

from clipprobe_ext.options import OPTIONS, ProbeOptions
from clipprobe_ext.webui import host, model_choices

SECTION = ("clipprobe", "ClipProbe")

SETTING_OPTIONS = tuple(name for name, spec in OPTIONS.items() if spec.setting)
KEY_MODEL = "clipprobe_default_model"
KEY_KEEP_ON_GPU = "clipprobe_keep_clip_on_gpu"
KEY_AFTER_GENERATION = "clipprobe_probe_after_generation"


def key(name: str) -> str:
    """The Settings key of analysis option ``name``."""
    return OPTIONS[name].settings_key


def on_ui_settings() -> None:
    import gradio as gr

    host.add_option(
        KEY_MODEL,
        model_choices.WEBUI_CLIP,
        "Default CLIP model (WebUI Interrogate CLIP, a transformers hub name or a local folder)",
        gr.Dropdown,
        # Only what Dropdown.update() takes: 1.10 applies these args as an update on every
        # page load (modules/ui_settings.py), and gradio 3.41's update has no
        # allow_custom_value (a custom folder can still be typed in the tab).
        lambda: {"choices": model_choices.list_models(default_model())},
        section=SECTION,
        info="the Interrogate CLIP is the model the WebUI's 'Interrogate CLIP' button uses",
    )
    for name in SETTING_OPTIONS:
        keywords = OPTIONS[name].slider()
        args = {k: keywords[k] for k in ("minimum", "maximum", "step")}
        host.add_option(
            key(name),
            keywords["value"],
            keywords["label"],
            gr.Slider,
            args,
            section=SECTION,
            info=keywords["info"],
        )
    host.add_option(
        KEY_KEEP_ON_GPU,
        False,
        "Keep the CLIP model on the GPU between runs",
        section=SECTION,
        info="faster repeated runs; uses about 1 GB of VRAM for ViT-L/14",
    )
    host.add_option(
        KEY_AFTER_GENERATION,
        False,
        "Probe after generation: enabled by default in txt2img/img2img",
        section=SECTION,
    )


def _opt(setting_key: str, default: Any) -> Any:
    opts = host.opts()
    if opts is None:
        return default
    try:
        found = getattr(opts, setting_key)
    except AttributeError:
        return default
    return default if found is None else found


def value(name: str) -> Any:
    """Setting of option ``name`` in stored units, clamped to its bounds."""
    spec = OPTIONS[name]
    raw = _opt(spec.settings_key, None)
    if raw is None or isinstance(raw, bool):
        return spec.default
    try:
        number = spec.from_display(float(raw))
    except (TypeError, ValueError):
        return spec.default
    return spec.clamp(number)


def shown(name: str) -> Any:
    """Setting of option ``name`` in shown units (the tab's slider value)."""
    spec = OPTIONS[name]
    number = spec.to_display(value(name))
    return int(number) if spec.kind is int else round(number, 6)


def default_model() -> str:
    found = _opt(KEY_MODEL, None)
    if isinstance(found, str) and found.strip():
        return found.strip()
    return model_choices.WEBUI_CLIP


def keep_on_gpu() -> bool:
    return bool(_opt(KEY_KEEP_ON_GPU, False))


def probe_after_generation() -> bool:
    return bool(_opt(KEY_AFTER_GENERATION, False))


def probe_options(**overrides: Any) -> ProbeOptions:
    """``ProbeOptions`` with the Settings' options, then the overrides that are not None."""
    values: dict[str, Any] = {name: value(name) for name in SETTING_OPTIONS}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ProbeOptions(**values)
