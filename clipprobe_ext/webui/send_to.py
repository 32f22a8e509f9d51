"""The "Send to ClipProbe" buttons in other tabs (txt2img/img2img galleries, PNG Info).

Public API: ``SendToClipProbe``, an ``on_after_component`` callback object that adds a
"Send to ClipProbe" button next to the WebUI's own "Send to" buttons and registers it with
the WebUI's paste mechanism (``host.register_paste_button``, to tab ``"clipprobe"``).
When the WebUI connects the bindings (``connect_paste_params_buttons``, after all tabs
exist) a click sends the selected image into the tab's image box, the prompt and negative
prompt into its boxes (gallery: from the source tab's "Prompt"/"Negative prompt" fields;
PNG Info: parsed from the image's infotext), then calls the JS ``switch_to_clipprobe()``
(``javascript/clipprobe.js``).  With a batch and nothing selected the WebUI sends the
grid: the tab recognises it (``clipprobe_ext.inputs``) and analyses its images.
"""

from __future__ import annotations

import logging
from typing import Any

from clipprobe_ext.webui import host
from clipprobe_ext.webui.tab import TABNAME

log = logging.getLogger("clipprobe")


class SendToClipProbe:
    """``on_after_component`` callback adding "Send to ClipProbe" buttons to other tabs.

    1.10 creates, in this order: the result gallery ``{tab}_gallery``, then the tool
    buttons ``{tab}_send_to_img2img/inpaint/extras`` in the row ``image_buttons_{tab}``
    (``ui_common.create_output_panel``); PNG Info creates ``pnginfo_image``,
    ``pnginfo_generation_info``, then the buttons ``txt2img_tab`` ... ``extras_tab`` in one
    row.  Our button is created right after the last WebUI button, so it lands in the same
    row; its binding is registered at once (the WebUI connects all bindings later, in
    ``create_ui``, once ``paste_fields["clipprobe"]`` exists).
    """

    GALLERY_TABS = ("txt2img", "img2img")

    def __init__(self) -> None:
        self.galleries: dict[str, Any] = {}
        self.pnginfo_image: Any = None
        self.pnginfo_text: Any = None
        self.buttons: dict[str, Any] = {}

    def __call__(self, component: Any, **kwargs: Any) -> None:
        elem_id = getattr(component, "elem_id", None) or kwargs.get("elem_id")
        if not elem_id:
            return
        try:
            self._on(elem_id, component)
        except Exception:
            log.exception("ClipProbe: could not add a 'Send to ClipProbe' button")

    def _on(self, elem_id: str, component: Any) -> None:
        for tab in self.GALLERY_TABS:
            if elem_id == f"{tab}_gallery":
                self.galleries[tab] = component
                self.buttons.pop(tab, None)  # a new UI is being built (Reload UI)
            elif (
                elem_id == f"{tab}_send_to_extras"
                and tab in self.galleries
                and tab not in self.buttons
            ):
                self._add(tab, self.galleries[tab], source_tabname=tab)
        if elem_id == "pnginfo_image":
            self.pnginfo_image = component
            self.buttons.pop("pnginfo", None)
        elif elem_id == "pnginfo_generation_info":
            self.pnginfo_text = component
        elif (
            elem_id == "extras_tab"
            and self.pnginfo_image is not None
            and self.pnginfo_text is not None
            and "pnginfo" not in self.buttons
        ):
            self._add("pnginfo", self.pnginfo_image, source_text=self.pnginfo_text)

    def _add(
        self,
        where: str,
        image: Any,
        *,
        source_tabname: str | None = None,
        source_text: Any = None,
    ) -> None:
        import gradio as gr

        if where == "pnginfo":
            button = gr.Button("Send to ClipProbe", elem_id="pnginfo_send_to_clipprobe")
        else:
            button = host.tool_button("🔎", elem_id=f"{where}_send_to_clipprobe")
        button.webui_tooltip = "Send image and prompt to the ClipProbe tab."
        host.register_paste_button(
            button,
            TABNAME,
            image=image,
            source_tabname=source_tabname,
            source_text=source_text,
        )
        self.buttons[where] = button
