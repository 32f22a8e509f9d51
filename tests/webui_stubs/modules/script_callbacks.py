"""Mirrors modules/script_callbacks.py of AUTOMATIC1111 v1.10.1 (registration and firing).

``on_*`` register a callback under the same category names as 1.10 (``callbacks_app_started``,
``callbacks_ui_tabs``, ...); the ``*_callback`` functions fire them the way the WebUI does,
so tests can run e.g. ``app_started_callback(None, app)`` or ``ui_tabs_callback()``.
"""

import dataclasses
from collections import namedtuple
from typing import Any

ScriptCallback = namedtuple("ScriptCallback", ["script", "callback", "name"])


@dataclasses.dataclass
class ImageSaveParams:
    image: Any = None
    p: Any = None
    filename: str = ""
    pnginfo: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BeforeTokenCounterParams:
    prompt: str
    steps: int
    styles: list
    is_positive: bool = True


callback_map = {
    name: []
    for name in (
        "callbacks_app_started",
        "callbacks_before_reload",
        "callbacks_model_loaded",
        "callbacks_ui_tabs",
        "callbacks_ui_train_tabs",
        "callbacks_ui_settings",
        "callbacks_before_image_saved",
        "callbacks_image_saved",
        "callbacks_before_component",
        "callbacks_after_component",
        "callbacks_image_grid",
        "callbacks_infotext_pasted",
        "callbacks_script_unloaded",
        "callbacks_before_ui",
        "callbacks_before_token_counter",
    )
}


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None):
    callbacks.append(ScriptCallback(filename or "test", fun, name or "unnamed"))


def clear_callbacks():
    for callback_list in callback_map.values():
        callback_list.clear()


def _fire(category, *args):
    return [c.callback(*args) for c in callback_map["callbacks_" + category]]


def app_started_callback(demo, app):
    _fire("app_started", demo, app)


def app_reload_callback():
    _fire("before_reload")


def model_loaded_callback(sd_model):
    _fire("model_loaded", sd_model)


def ui_tabs_callback():
    res = []
    for c in callback_map["callbacks_ui_tabs"]:
        res += c.callback() or []
    return res


def ui_settings_callback():
    _fire("ui_settings")


def before_image_saved_callback(params):
    _fire("before_image_saved", params)


def image_saved_callback(params):
    _fire("image_saved", params)


def before_component_callback(component, **kwargs):
    for c in callback_map["callbacks_before_component"]:
        c.callback(component, **kwargs)


def after_component_callback(component, **kwargs):
    for c in callback_map["callbacks_after_component"]:
        c.callback(component, **kwargs)


def infotext_pasted_callback(infotext, params):
    _fire("infotext_pasted", infotext, params)


def script_unloaded_callback():
    _fire("script_unloaded")


def before_ui_callback():
    _fire("before_ui")


def before_token_counter_callback(params):
    _fire("before_token_counter", params)


def _register(category):
    def on(callback, *, name=None):
        add_callback(callback_map["callbacks_" + category], callback, name=name, category=category)

    on.__name__ = "on_" + category
    return on


on_app_started = _register("app_started")
on_before_reload = _register("before_reload")
on_model_loaded = _register("model_loaded")
on_ui_tabs = _register("ui_tabs")
on_ui_train_tabs = _register("ui_train_tabs")
on_ui_settings = _register("ui_settings")
on_before_image_saved = _register("before_image_saved")
on_image_saved = _register("image_saved")
on_before_component = _register("before_component")
on_after_component = _register("after_component")
on_image_grid = _register("image_grid")
on_infotext_pasted = _register("infotext_pasted")
on_script_unloaded = _register("script_unloaded")
on_before_ui = _register("before_ui")
on_before_token_counter = _register("before_token_counter")
