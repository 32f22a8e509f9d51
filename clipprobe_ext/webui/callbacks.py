"""Everything ClipProbe hooks into the WebUI, registered by one call.

``register()`` (called by ``scripts/clipprobe.py`` each time the WebUI loads its scripts,
including "Reload UI", after the WebUI cleared all callbacks) wires:

- ``on_ui_settings``: the "ClipProbe" settings section (``settings.on_ui_settings``);
- ``on_ui_tabs``: the "ClipProbe" tab (``tab.on_ui_tabs``);
- ``on_after_component``: "Send to ClipProbe" buttons in txt2img/img2img/PNG Info
  (``send_to.SendToClipProbe``);
- ``on_app_started``: the ``/clipprobe/v1/*`` API routes (``api.on_app_started``).

The always-visible "probe after generation" section is a Script class, found by the WebUI
in the namespace of ``scripts/clipprobe.py``, not a callback.
"""

from __future__ import annotations

from typing import Any

from clipprobe_ext.webui import api, host, send_to, settings, tab


def register() -> Any:
    """Register the callbacks; returns the ``SendToClipProbe`` instance (for tests)."""
    buttons = send_to.SendToClipProbe()
    host.on_ui_settings(settings.on_ui_settings)
    host.on_ui_tabs(tab.on_ui_tabs)
    host.on_after_component(buttons)
    host.on_app_started(api.on_app_started)
    return buttons
