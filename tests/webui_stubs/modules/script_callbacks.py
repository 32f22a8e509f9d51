"""Stand-in for modules/script_callbacks.py of AUTOMATIC1111 v1.10.1: the four
registrations ClipProbe uses (``on_app_started``, ``on_ui_tabs``, ``on_ui_settings``,
``on_after_component``), kept in ``callback_map`` under 1.10's category names, and the
``*_callback`` functions that fire them as the WebUI does (tests call e.g.
``app_started_callback(None, app)``).  Nothing else.
"""

from collections import namedtuple

ScriptCallback = namedtuple("ScriptCallback", ["script", "callback", "name"])

_CATEGORIES = ("app_started", "ui_tabs", "ui_settings", "after_component")
callback_map = {f"callbacks_{name}": [] for name in _CATEGORIES}


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None):
    callbacks.append(ScriptCallback(filename or "test", fun, name or "unnamed"))


def clear_callbacks():
    for callback_list in callback_map.values():
        callback_list.clear()


def _fire(category, *args, **kwargs):
    return [c.callback(*args, **kwargs) for c in callback_map[f"callbacks_{category}"]]


def app_started_callback(demo, app):
    _fire("app_started", demo, app)


def ui_tabs_callback():
    res = []
    for tabs in _fire("ui_tabs"):
        res += tabs or []
    return res


def ui_settings_callback():
    _fire("ui_settings")


def after_component_callback(component, **kwargs):
    _fire("after_component", component, **kwargs)


def on_app_started(callback, *, name=None):
    add_callback(callback_map["callbacks_app_started"], callback, name=name, category="app_started")


def on_ui_tabs(callback, *, name=None):
    add_callback(callback_map["callbacks_ui_tabs"], callback, name=name, category="ui_tabs")


def on_ui_settings(callback, *, name=None):
    add_callback(callback_map["callbacks_ui_settings"], callback, name=name, category="ui_settings")


def on_after_component(callback, *, name=None):
    add_callback(
        callback_map["callbacks_after_component"], callback, name=name, category="after_component"
    )
