"""The layout of the "ClipProbe" tab of the WebUI.

Public API:

- ``on_ui_tabs() -> [(blocks, "ClipProbe", "clipprobe")]`` (pass to
  ``script_callbacks.on_ui_tabs``).  Builds the tab (``create_tab() -> ClipProbeTab``) and
  registers its image and prompt boxes as the paste target ``"clipprobe"``
  (``host.add_paste_fields``), so the WebUI's own paste mechanism ("Send to
  ClipProbe", ``send_to.SendToClipProbe``) can fill them.
- ``ClipProbeTab``: the components, by name; the Analyze click's inputs are the
  components named by ``tab_handlers.TabRequest.FIELDS``, its outputs those named by
  ``TabResult.OUTPUTS``, so the handler and the layout cannot disagree on an order.

The Analyze button sits at the top of the right column, as the WebUI's Generate does, so
it is above the fold at 1400×1000; the JSON/CSV downloads stay hidden until there is a
result.  Progress is the WebUI's own bar above the result (``session.Task``); gradio's
indicator is off (``show_progress=False``), so a pending run shows one timer, not one per
output.  Sliders, their bounds, labels and help come from ``clipprobe_ext.options``
(percent options in percent), their values from Settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clipprobe_ext.options import OPTIONS
from clipprobe_ext.report.messages import message_box
from clipprobe_ext.webui import (
    audit_tab,
    compat,
    host,
    model_source,
    regenerate_tab,
    settings,
    tab_handlers,
)
from clipprobe_ext.webui.tab_handlers import TabRequest, TabResult

log = logging.getLogger("clipprobe")

TABNAME = "clipprobe"
TITLE = "ClipProbe"


@dataclass(kw_only=True)
class ClipProbeTab:
    blocks: Any
    image: Any
    prompt: Any
    negative_prompt: Any
    synonyms: Any
    rounds: Any
    threshold: Any
    tolerance: Any
    granularity: Any
    model: Any
    analyze_button: Any
    status: Any
    result: Any
    pruned_prompt: Any
    json_file: Any
    csv_file: Any
    send_txt2img: Any
    send_img2img: Any
    task_id: Any
    heatmaps: Any
    heatmap_state: Any
    heatmap_view: Any
    heatmap_note: Any
    heatmap_opacity: Any
    phrase_index: Any
    show_heatmap: Any
    contact_sheet: Any
    allow_txt2img: Any
    regenerate_button: Any
    regenerate_preflight: Any
    regenerate_task_id: Any
    regenerate_result: Any
    side_by_side: Any
    regenerated: Any
    comparison_file: Any
    report_state: Any
    audit: Any = None

    @property
    def negative(self) -> Any:
        """``TabRequest.negative``'s component: the Negative prompt box."""
        return self.negative_prompt

    def inputs(self) -> list[Any]:
        return [self.task_id, *(getattr(self, name) for name in TabRequest.FIELDS)]

    def outputs(self) -> list[Any]:
        return [getattr(self, name) for name in TabResult.OUTPUTS]


def _slider(gr: Any, name: str) -> Any:
    keywords = OPTIONS[name].slider()
    keywords["value"] = settings.shown(name)
    return gr.Slider(elem_id=f"clipprobe_{name}", **keywords)


def model_info() -> str:
    """The dropdown's help: which choices work without network."""
    missing = [name for name, local in model_source.models_on_disk().items() if not local]
    if not missing:
        return "all choices are available on this machine"
    return "not on this machine (needs a download): " + ", ".join(missing)


def create_tab() -> ClipProbeTab:
    import gradio as gr

    parts: dict[str, Any] = {}
    with gr.Blocks(analytics_enabled=False, elem_id="clipprobe_interface") as blocks:
        with gr.Row(equal_height=False, elem_id="clipprobe_main"):
            with gr.Column(variant="panel", elem_id="clipprobe_inputs"):
                parts["image"] = gr.Image(
                    label="Image",
                    type="pil",
                    # gradio's own convert("RGB") clips 16-bit pictures to white and
                    # drops transparency onto black: keep the mode, convert in run().
                    image_mode=None,
                    elem_id="clipprobe_image",
                    interactive=True,
                    height=320,
                    **compat.image_source_kwargs(),
                    **compat.image_format_kwargs(),
                )
                parts["prompt"] = gr.Textbox(
                    label="Prompt",
                    lines=3,
                    elem_id="clipprobe_prompt",
                    placeholder="Filled from the image's generation parameters; edit freely",
                )
                parts["negative_prompt"] = gr.Textbox(
                    label="Negative prompt (checked: is what it names still visible?)",
                    lines=1,
                    elem_id="clipprobe_neg_prompt",
                )
                spec = OPTIONS["synonyms"]
                parts["synonyms"] = gr.Textbox(
                    label=spec.label,
                    placeholder="girl | woman; umbrella | parasol",
                    elem_id="clipprobe_synonyms",
                )
                with gr.Row():
                    parts["rounds"] = _slider(gr, "rounds")
                    parts["threshold"] = _slider(gr, "threshold")
                with gr.Row():
                    parts["tolerance"] = _slider(gr, "tolerance")
                    spec = OPTIONS["granularity"]
                    parts["granularity"] = gr.Radio(
                        choices=list(spec.choices),
                        value=spec.default,
                        label=spec.label,
                        elem_id="clipprobe_granularity",
                    )
                parts["model"] = gr.Dropdown(
                    choices=model_source.list_models(),
                    value=settings.default_model(),
                    label="CLIP model",
                    info=model_info(),
                    allow_custom_value=True,
                    elem_id="clipprobe_model",
                )
                parts["heatmaps"] = gr.Checkbox(
                    label="Heatmaps: where in the picture CLIP sees each phrase (slower)",
                    value=False,
                    elem_id="clipprobe_heatmaps",
                )
                parts["status"] = gr.HTML(elem_id="clipprobe_status")
                _regenerate_inputs(gr, parts)
            with gr.Column(elem_id="clipprobe_outputs"):
                parts["analyze_button"] = gr.Button(
                    "Analyze", variant="primary", elem_id="clipprobe_analyze"
                )
                parts["pruned_prompt"] = gr.Textbox(
                    visible=False, elem_id="clipprobe_pruned_prompt"
                )
                # filled by clipprobe_submit() with the task id of the WebUI's progress bar
                parts["task_id"] = gr.Textbox(visible=False, elem_id="clipprobe_task_id")
                with gr.Row(elem_id="clipprobe_send_row"):
                    parts["send_txt2img"] = gr.Button(
                        "Send pruned prompt to txt2img",
                        interactive=False,
                        elem_id="clipprobe_send_txt2img",
                    )
                    parts["send_img2img"] = gr.Button(
                        "Send pruned prompt to img2img",
                        interactive=False,
                        elem_id="clipprobe_send_img2img",
                    )
                # the WebUI's progress bar is placed above the result box (its CSS places
                # .progressDiv relative to a .progress-container)
                with gr.Row(elem_classes="progress-container", elem_id="clipprobe_result_row"):
                    parts["result"] = gr.HTML(
                        value=message_box("Results appear here."),
                        elem_id="clipprobe_result",
                    )
                with gr.Row(elem_id="clipprobe_exports"):
                    parts["json_file"] = gr.File(
                        label="JSON",
                        interactive=False,
                        visible=False,
                        height=60,
                        elem_id="clipprobe_json",
                    )
                    parts["csv_file"] = gr.File(
                        label="CSV",
                        interactive=False,
                        visible=False,
                        height=60,
                        elem_id="clipprobe_csv",
                    )
                _heatmap_outputs(gr, parts)
                _regenerate_outputs(gr, parts)
        parts["audit"] = audit_tab.create_section(
            gr, model_source.list_models(), settings.default_model()
        )
        tab = ClipProbeTab(blocks=blocks, **parts)
        _wire(tab)

    # Their defaults come from Settings -> ClipProbe: keep the WebUI's ui-config.json from
    # freezing the values of the first launch over later changes of those settings.
    for component in (tab.rounds, tab.threshold, tab.tolerance, tab.model):
        component.do_not_save_to_config = True
    _register_paste_fields(tab)
    return tab


def _regenerate_inputs(gr: Any, parts: dict[str, Any]) -> None:
    """Regenerate with the pruned prompt (what it will run shown before the click)."""
    with gr.Group(elem_id="clipprobe_regenerate"):
        parts["allow_txt2img"] = gr.Checkbox(
            label="Allow txt2img for img2img pictures (their input image is not available)",
            value=False,
            elem_id="clipprobe_allow_txt2img",
        )
        parts["regenerate_button"] = gr.Button(
            "Regenerate with the pruned prompt", elem_id="clipprobe_regenerate_button"
        )
        parts["regenerate_preflight"] = gr.HTML(elem_id="clipprobe_regenerate_preflight")
        parts["regenerate_task_id"] = gr.Textbox(
            visible=False, elem_id="clipprobe_regenerate_task_id"
        )


def _heatmap_outputs(gr: Any, parts: dict[str, Any]) -> None:
    """Overlay of the clicked phrase (opacity redraws it), the contact sheet beside."""
    parts["heatmap_state"] = gr.State(None)
    parts["report_state"] = gr.State(None)  # the last analysis: what Regenerate compares
    # JS (clipprobe_show_phrase) writes the clicked phrase's index here and clicks the
    # button; both are hidden by CSS, not visible=False, so they exist in the page.
    parts["phrase_index"] = gr.Textbox(
        elem_id="clipprobe_phrase_index", elem_classes=["clipprobe-hidden"], show_label=False
    )
    parts["show_heatmap"] = gr.Button(
        "show heatmap", elem_id="clipprobe_show_heatmap", elem_classes=["clipprobe-hidden"]
    )
    with gr.Row(elem_id="clipprobe_heatmap_row"):
        with gr.Column():
            parts["heatmap_view"] = gr.Image(
                label="Heatmap of the clicked phrase",
                type="pil",
                interactive=False,
                visible=False,
                height=320,
                elem_id="clipprobe_heatmap_view",
            )
            parts["heatmap_opacity"] = gr.Slider(
                minimum=0,
                maximum=100,
                step=5,
                value=50,
                label="Heatmap opacity (%)",
                visible=False,  # shown with the Heatmaps box (tab_handlers.heatmap_controls)
                elem_id="clipprobe_heatmap_opacity",
            )
            parts["heatmap_note"] = gr.HTML(elem_id="clipprobe_heatmap_note")
        parts["contact_sheet"] = gr.Image(
            label="All phrases",
            type="pil",
            interactive=False,
            visible=False,
            height=320,
            elem_id="clipprobe_contact_sheet",
        )


def _regenerate_outputs(gr: Any, parts: dict[str, Any]) -> None:
    with gr.Row(elem_classes="progress-container", elem_id="clipprobe_regenerate_row"):
        parts["regenerate_result"] = gr.HTML(elem_id="clipprobe_regenerate_result")
    with gr.Row():
        parts["side_by_side"] = gr.Image(
            label="Original | regenerated",
            type="pil",
            interactive=False,
            visible=False,
            height=320,
            elem_id="clipprobe_side_by_side",
        )
        parts["regenerated"] = gr.Image(
            label="Regenerated",
            type="pil",
            interactive=False,
            visible=False,
            height=320,
            elem_id="clipprobe_regenerated",
        )
    parts["comparison_file"] = gr.File(
        label="Comparison (PNG with the numbers inside, JSON beside it)",
        interactive=False,
        visible=False,
        height=60,
        elem_id="clipprobe_comparison_file",
    )


def regenerate_and_show(*args: Any) -> tuple[Any, ...]:
    """``regenerate_tab.regenerate_click``; its pictures and file shown only when there are
    some (the boxes stay hidden before the first regeneration and after a failure)."""
    import gradio as gr

    box, sheet, regenerated, saved = regenerate_tab.regenerate_click(*args)
    shown = [gr.update(value=v, visible=v is not None) for v in (sheet, regenerated, saved)]
    return (box, *shown)


def _wrap_call(fn: Any) -> Any:
    """``call_queue.wrap_gradio_call`` (errors shown, not raised); never the GPU variant:
    the regeneration takes the queue lock itself."""
    return host.wrap_gradio_call(fn)


def _wire(tab: ClipProbeTab) -> None:
    tab.image.change(
        fn=tab_handlers.image_changed,
        inputs=[tab.image],
        outputs=[tab.prompt, tab.negative_prompt, tab.status],
        show_progress=False,
    )
    preflight = {
        "fn": regenerate_tab.preflight_html,
        "inputs": [tab.image, tab.pruned_prompt, tab.allow_txt2img],
        "outputs": [tab.regenerate_preflight],
        "show_progress": False,
    }
    tab.analyze_button.click(
        fn=tab_handlers.analyze,
        inputs=tab.inputs(),
        outputs=tab.outputs(),
        # The WebUI's progress bar (clipprobe_submit -> requestProgress) is the one
        # indicator; gradio's would add a timer to every output.
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit"),
    ).then(**preflight)
    tab.allow_txt2img.change(**preflight)
    tab.regenerate_button.click(
        fn=_wrap_call(regenerate_and_show),
        inputs=[
            tab.regenerate_task_id,
            tab.image,
            tab.pruned_prompt,
            tab.allow_txt2img,
            tab.model,
            tab.report_state,
        ],
        outputs=[tab.regenerate_result, tab.side_by_side, tab.regenerated, tab.comparison_file],
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit_regenerate"),
    )
    tab.heatmaps.change(
        fn=tab_handlers.heatmap_controls,
        inputs=[tab.heatmaps],
        outputs=[tab.heatmap_opacity],
        show_progress=False,
    )
    for trigger in (tab.show_heatmap.click, tab.heatmap_opacity.change):
        trigger(
            fn=tab_handlers.show_heatmap,
            inputs=[tab.phrase_index, tab.heatmap_state, tab.heatmap_opacity],
            outputs=[tab.heatmap_view, tab.heatmap_note],
            show_progress=False,
        )
    for button, js in (
        (tab.send_txt2img, "clipprobe_send_to_txt2img"),
        (tab.send_img2img, "clipprobe_send_to_img2img"),
    ):
        button.click(fn=None, inputs=[tab.pruned_prompt], outputs=[], **compat.js_kwarg(js))


def _register_paste_fields(tab: ClipProbeTab) -> None:
    """Make ``"clipprobe"`` a paste target: ``paste_fields["clipprobe"]`` of the WebUI."""
    try:
        host.add_paste_fields(
            TABNAME,
            tab.image,
            [(tab.prompt, "Prompt"), (tab.negative_prompt, "Negative prompt")],
        )
    except Exception:
        log.exception("ClipProbe: could not register the tab as a 'Send to' target")


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    tab = create_tab()
    return [(tab.blocks, TITLE, TABNAME)]
