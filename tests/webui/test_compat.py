"""compat: each helper answers for the installed gradio (3.41 in A1111 1.10, 4.x in Forge),
and what it answers is accepted by that gradio."""

from __future__ import annotations

import gradio as gr
import pytest

from clipprobe_ext.webui import compat

GRADIO_MAJOR = int(gr.__version__.split(".", 1)[0])


def test_gradio_major_is_the_installed_gradio():
    assert compat.gradio_major() == GRADIO_MAJOR


def test_image_kwargs_are_accepted_by_gradio():
    with gr.Blocks():
        image = gr.Image(type="pil", **compat.image_source_kwargs(), **compat.image_format_kwargs())
    if GRADIO_MAJOR >= 4:
        assert image.sources == ["upload", "clipboard"] and image.format == "png"
    else:
        assert image.source == "upload"


def test_js_kwarg_is_recorded_as_the_event_js():
    with gr.Blocks() as blocks:
        button = gr.Button("x")
        text = gr.Textbox()
        button.click(fn=None, inputs=[text], outputs=[], **compat.js_kwarg("my_js_function"))
    if GRADIO_MAJOR >= 4:
        [event] = blocks.fns.values()
        assert event.js == "my_js_function"
    else:
        [dependency] = blocks.dependencies
        assert dependency["js"] == "my_js_function"


@pytest.mark.filterwarnings("ignore:The `style` method is deprecated")  # gradio 3.41 says so
def test_style_is_harmless_on_every_gradio():
    with gr.Blocks():
        box = gr.Textbox()
        assert compat.style(box, container=False) is box
