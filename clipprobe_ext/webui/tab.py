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

The answer comes first and next to the inputs: the right column holds Analyze (at the
top, as the WebUI's Generate), the summary with the suggested prompt and its Send and
Regenerate buttons, the coloured prompt, and the clicked phrase's heatmap beside it,
so at 1400×1000 all of it is above the fold.  The numbers are below both columns,
in closed accordions (verdicts, rounds, heatmaps of every phrase, tokens, negative
prompt, regeneration, bringing a missing phrase in, downloads), shown once there is a
result.  Progress is the WebUI's
own bar above the answer (``session.Task``); gradio's indicator is off
(``show_progress=False``), so a pending run shows one timer, not one per output.
Sliders, their bounds, labels and help come from ``clipprobe_ext.options`` (percent
options in percent), their values from Settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clipprobe_ext.analysis.seeds import MAX_SEEDS
from clipprobe_ext.options import OPTIONS
from clipprobe_ext.report.messages import message_box
from clipprobe_ext.webui import (
    audit_tab,
    bring_in_tab,
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
    model_refresh: Any
    analyze_button: Any
    status: Any
    result: Any
    prompt_view: Any
    pruned_prompt: Any
    send_txt2img: Any
    send_img2img: Any
    regenerate_button: Any
    task_id: Any
    heatmaps: Any
    heatmap_state: Any
    heatmap_column: Any
    heatmap_view: Any
    heatmap_note: Any
    region_note: Any
    heatmap_opacity: Any
    phrase_index: Any
    show_heatmap: Any
    details: Any
    verdicts_view: Any
    rounds_view: Any
    tokens_view: Any
    negative_view: Any
    heatmap_gallery: Any
    regenerate_section: Any
    allow_txt2img: Any
    regenerate_preflight: Any
    regenerate_task_id: Any
    regenerate_result: Any
    comparison_gallery: Any
    comparison_file: Any
    regenerate_seeds: Any
    bring_in_section: Any
    bring_in_phrases: Any
    bring_in_preflight: Any
    bring_in_button: Any
    bring_in_task_id: Any
    bring_in_gallery: Any
    bring_in_result: Any
    bring_in_prompt: Any
    bring_in_send: Any
    json_file: Any
    csv_file: Any
    report_state: Any
    audit: Any = None
    fit: Any = None  # the fit in force for the chosen model (``fit_view.fit_html``)

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


def create_tab() -> ClipProbeTab:
    import gradio as gr

    parts: dict[str, Any] = {}
    with gr.Blocks(analytics_enabled=False, elem_id="clipprobe_interface") as blocks:
        with gr.Row(equal_height=False, elem_id="clipprobe_main"):
            with gr.Column(variant="panel", elem_id="clipprobe_inputs"):
                _inputs(gr, parts)
            with gr.Column(elem_id="clipprobe_outputs"):
                _answer(gr, parts)
        with gr.Column(visible=False, elem_id="clipprobe_details") as details:
            parts["details"] = details
            _details(gr, parts)
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


def _inputs(gr: Any, parts: dict[str, Any]) -> None:
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
    with gr.Row(elem_id="clipprobe_model_row"):
        parts["model"] = gr.Dropdown(
            choices=model_source.list_models(),
            value=settings.default_model(),
            label="CLIP model",
            info=tab_handlers.model_note(),
            allow_custom_value=True,
            elem_id="clipprobe_model",
        )
        # the WebUI's tool-button look (its CSS styles button.tool), as its 🔄 buttons
        parts["model_refresh"] = gr.Button(
            "\U0001f504", elem_id="clipprobe_model_refresh", elem_classes=["tool"]
        )
    parts["fit"] = gr.HTML(
        value=audit_tab.fit_line(settings.default_model()), elem_id="clipprobe_fit"
    )
    parts["heatmaps"] = gr.Checkbox(
        label="Heatmaps: where in the picture CLIP sees each phrase (slower)",
        value=False,
        elem_id="clipprobe_heatmaps",
    )
    parts["status"] = gr.HTML(elem_id="clipprobe_status")


def _answer(gr: Any, parts: dict[str, Any]) -> None:
    """Analyze, the answer, the suggested prompt's buttons, the coloured prompt and the
    clicked phrase's heatmap: everything a user reads first, in one column."""
    parts["analyze_button"] = gr.Button("Analyze", variant="primary", elem_id="clipprobe_analyze")
    parts["pruned_prompt"] = gr.Textbox(visible=False, elem_id="clipprobe_pruned_prompt")
    # filled by clipprobe_submit() with the task id of the WebUI's progress bar
    parts["task_id"] = gr.Textbox(visible=False, elem_id="clipprobe_task_id")
    # the WebUI's progress bar is placed above the answer (its CSS places .progressDiv
    # relative to a .progress-container)
    with gr.Row(elem_classes="progress-container", elem_id="clipprobe_result_row"):
        parts["result"] = gr.HTML(
            value=message_box("Results appear here."), elem_id="clipprobe_result"
        )
    with gr.Row(elem_id="clipprobe_send_row"):
        for name, label in (
            ("send_txt2img", "Send to txt2img"),
            ("send_img2img", "Send to img2img"),
            ("regenerate_button", "Regenerate with it"),
        ):
            parts[name] = gr.Button(
                label, interactive=False, visible=False, elem_id=f"clipprobe_{name}"
            )
    with gr.Row(equal_height=False, elem_id="clipprobe_prompt_row"):
        with gr.Column(scale=1, min_width=200):
            parts["prompt_view"] = gr.HTML(elem_id="clipprobe_prompt_view")
        with gr.Column(
            scale=1, min_width=200, visible=False, elem_id="clipprobe_heatmap_column"
        ) as column:
            parts["heatmap_column"] = column
            _heatmap_view(gr, parts)


def _heatmap_view(gr: Any, parts: dict[str, Any]) -> None:
    """The clicked phrase's overlay (opacity redraws it), beside the coloured prompt; its
    column shows only when the analysis computed heatmaps."""
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
    parts["heatmap_view"] = gr.Image(
        label="Heatmap of the clicked phrase",
        type="pil",
        interactive=False,
        height=300,
        elem_id="clipprobe_heatmap_view",
    )
    parts["heatmap_note"] = gr.HTML(elem_id="clipprobe_heatmap_note")
    parts["region_note"] = gr.HTML(elem_id="clipprobe_region_note")
    parts["heatmap_opacity"] = gr.Slider(
        minimum=0,
        maximum=100,
        step=5,
        value=50,
        label="Heatmap opacity (%)",
        elem_id="clipprobe_heatmap_opacity",
    )


def _details(gr: Any, parts: dict[str, Any]) -> None:
    """The sections a user opens when they want the numbers (all closed at first)."""
    for name, label in (
        ("verdicts_view", "Verdicts and numbers"),
        ("rounds_view", "Elimination rounds"),
    ):
        with gr.Accordion(label, open=False, elem_id=f"clipprobe_{name}_section"):
            parts[name] = gr.HTML(elem_id=f"clipprobe_{name}")
    with gr.Accordion("Heatmaps of every phrase", open=False, elem_id="clipprobe_heatmaps_section"):
        parts["heatmap_gallery"] = gallery(
            gr, "Where CLIP sees each phrase (first picture)", 4, "clipprobe_heatmap_gallery"
        )
    for name, label in (("tokens_view", "Tokens"), ("negative_view", "Negative prompt")):
        with gr.Accordion(label, open=False, elem_id=f"clipprobe_{name}_section"):
            parts[name] = gr.HTML(elem_id=f"clipprobe_{name}")
    with gr.Accordion(
        "Regenerate with the suggested prompt", open=False, elem_id="clipprobe_regenerate_section"
    ) as section:
        parts["regenerate_section"] = section
        _regenerate_outputs(gr, parts)
    with gr.Accordion(
        "Try to bring a missing phrase in", open=False, elem_id="clipprobe_bring_in_section"
    ) as section:
        parts["bring_in_section"] = section
        _bring_in_outputs(gr, parts)
    with (
        gr.Accordion("Downloads", open=False, elem_id="clipprobe_downloads_section"),
        gr.Row(elem_id="clipprobe_exports"),
    ):
        for name, label in (("json_file", "JSON"), ("csv_file", "CSV")):
            parts[name] = gr.File(
                label=label,
                interactive=False,
                visible=False,
                height=60,
                elem_id=f"clipprobe_{name.split('_')[0]}",
            )


def gallery(gr: Any, label: str, columns: int, elem_id: str) -> Any:
    """A hidden gallery that shows whole pictures, as the WebUI's own galleries do."""
    return gr.Gallery(
        label=label,
        columns=columns,
        height="auto",
        object_fit="contain",
        visible=False,
        elem_id=elem_id,
        **compat.image_format_kwargs(),
    )


def _regenerate_outputs(gr: Any, parts: dict[str, Any]) -> None:
    """What a regeneration will run (before the click), then both pictures as the WebUI
    shows pictures, at full width, and the numbers as a table under them."""
    parts["allow_txt2img"] = gr.Checkbox(
        label="Allow txt2img for img2img pictures (their input image is not available)",
        value=False,
        elem_id="clipprobe_allow_txt2img",
    )
    parts["regenerate_seeds"] = gr.Slider(
        minimum=1,
        maximum=MAX_SEEDS,
        step=1,
        value=1,
        label="Seeds: confirm over this many seeds (both prompts, seed, seed+1, ...)",
        elem_id="clipprobe_regenerate_seeds",
    )
    parts["regenerate_preflight"] = gr.HTML(elem_id="clipprobe_regenerate_preflight")
    parts["regenerate_task_id"] = gr.Textbox(visible=False, elem_id="clipprobe_regenerate_task_id")
    parts["comparison_gallery"] = gallery(
        gr, "Original and regenerated", 2, "clipprobe_comparison_gallery"
    )
    with gr.Row(elem_classes="progress-container", elem_id="clipprobe_regenerate_row"):
        parts["regenerate_result"] = gr.HTML(elem_id="clipprobe_regenerate_result")
    parts["comparison_file"] = gr.File(
        label="Comparison (PNG with the numbers inside, JSON beside it)",
        interactive=False,
        visible=False,
        height=60,
        elem_id="clipprobe_comparison_file",
    )


def _bring_in_outputs(gr: Any, parts: dict[str, Any]) -> None:
    """The phrases to bring in (filled after each analysis, prune and weak first), the
    count and time before the click, the variants' pictures and their table, and the
    best variant's prompt, sent to txt2img only by its own button."""
    parts["bring_in_phrases"] = gr.Dropdown(
        choices=[],
        multiselect=True,
        label="Phrases to bring in",
        elem_id="clipprobe_bring_in_phrases",
    )
    parts["bring_in_preflight"] = gr.HTML(elem_id="clipprobe_bring_in_preflight")
    parts["bring_in_button"] = gr.Button("Try to bring it in", elem_id="clipprobe_bring_in")
    parts["bring_in_task_id"] = gr.Textbox(visible=False, elem_id="clipprobe_bring_in_task_id")
    parts["bring_in_gallery"] = gr.Gallery(
        label="Original and the variants",
        columns=4,
        height="auto",
        object_fit="contain",
        visible=False,
        elem_id="clipprobe_bring_in_gallery",
        **compat.image_format_kwargs(),
    )
    with gr.Row(elem_classes="progress-container", elem_id="clipprobe_bring_in_row"):
        parts["bring_in_result"] = gr.HTML(elem_id="clipprobe_bring_in_result")
    parts["bring_in_prompt"] = gr.Textbox(visible=False, elem_id="clipprobe_bring_in_prompt")
    parts["bring_in_send"] = gr.Button(
        "Send the best variant's prompt to txt2img",
        interactive=False,
        elem_id="clipprobe_bring_in_send",
    )


def bring_in_choices(report: Any) -> Any:
    """The picker's choices from the last analysis (its old picks dropped)."""
    import gradio as gr

    return gr.update(choices=bring_in_tab.phrase_choices(report), value=[])


def bring_in_and_show(*args: Any) -> tuple[Any, ...]:
    """``bring_in_tab.bring_in_click``; the gallery shown when there are pictures, the send
    button usable only when a best variant was found."""
    import gradio as gr

    box, pictures, best = bring_in_tab.bring_in_click(*args)
    return (
        box,
        gr.update(value=pictures, visible=pictures is not None),
        best,
        gr.update(interactive=bool(best)),
    )


def open_regenerate_section() -> Any:
    """The Regenerate section opens before its run: the bar and the result are in it."""
    import gradio as gr

    return gr.update(open=True)


def regenerate_and_show(*args: Any) -> tuple[Any, ...]:
    """``regenerate_tab.regenerate_click``; its pictures and file shown only when there are
    some (the boxes stay hidden before the first regeneration and after a failure)."""
    import gradio as gr

    box, pictures, saved = regenerate_tab.regenerate_click(*args)
    shown = [gr.update(value=v, visible=v is not None) for v in (pictures, saved)]
    return (box, *shown)


def _wrap_call(fn: Any) -> Any:
    """``call_queue.wrap_gradio_call`` (errors shown, not raised); never the GPU variant:
    the regeneration takes the queue lock itself."""
    return host.wrap_gradio_call(fn)


def _wire(tab: ClipProbeTab) -> None:
    import gradio as gr

    tab.image.change(
        fn=tab_handlers.image_changed,
        inputs=[tab.image],
        outputs=[tab.prompt, tab.negative_prompt, tab.status],
        show_progress=False,
    )
    tab.model_refresh.click(
        fn=tab_handlers.model_dropdown_update, inputs=[], outputs=[tab.model], show_progress=False
    )
    # the fit line follows the dropdown, and an analysis (the first use of a model tells
    # its weights) or a calibration of the same model may change it
    fit_line = {
        "fn": audit_tab.fit_line,
        "inputs": [tab.model],
        "outputs": [tab.fit],
        "show_progress": False,
    }
    # change fires while a custom name is typed (gradio 3 drops the triggers that come
    # while one is running, so the last may be lost): leaving the box settles it
    for trigger in (tab.model.change, tab.model.blur):
        trigger(**fit_line)
    if tab.audit is not None and tab.audit.calibrated is not None:
        tab.audit.calibrated.then(**fit_line)
    preflight = {
        "fn": regenerate_tab.preflight_html,
        "inputs": [tab.image, tab.pruned_prompt, tab.allow_txt2img, tab.regenerate_seeds],
        "outputs": [tab.regenerate_preflight],
        "show_progress": False,
    }
    bring_in_preflight = {
        "fn": bring_in_tab.preflight_html,
        "inputs": [tab.image, tab.bring_in_phrases, tab.report_state, tab.allow_txt2img],
        "outputs": [tab.bring_in_preflight],
        "show_progress": False,
    }
    analyzed = tab.analyze_button.click(
        fn=tab_handlers.analyze,
        inputs=tab.inputs(),
        outputs=tab.outputs(),
        # The WebUI's progress bar (clipprobe_submit -> requestProgress) is the one
        # indicator; gradio's would add a timer to every output.
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit"),
    )
    analyzed.then(**preflight).then(**fit_line)
    analyzed.then(
        fn=bring_in_choices,
        inputs=[tab.report_state],
        outputs=[tab.bring_in_phrases],
        show_progress=False,
    ).then(**bring_in_preflight)
    tab.allow_txt2img.change(**preflight)
    tab.regenerate_seeds.change(**preflight)
    tab.allow_txt2img.change(**bring_in_preflight)
    tab.bring_in_phrases.change(**bring_in_preflight)
    tab.bring_in_button.click(
        fn=_wrap_call(bring_in_and_show),
        inputs=[
            tab.bring_in_task_id,
            tab.image,
            tab.bring_in_phrases,
            tab.allow_txt2img,
            tab.model,
            tab.report_state,
        ],
        outputs=[tab.bring_in_result, tab.bring_in_gallery, tab.bring_in_prompt, tab.bring_in_send],
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit_bring_in"),
    )
    tab.bring_in_send.click(
        fn=None,
        inputs=[tab.bring_in_prompt],
        outputs=[],
        **compat.js_kwarg("clipprobe_send_to_txt2img"),
    )
    tab.regenerate_button.click(
        fn=open_regenerate_section,
        inputs=[],
        outputs=[tab.regenerate_section],
        show_progress=False,
    ).then(
        fn=_wrap_call(regenerate_and_show),
        inputs=[
            tab.regenerate_task_id,
            tab.image,
            tab.pruned_prompt,
            tab.allow_txt2img,
            tab.model,
            tab.report_state,
            tab.regenerate_seeds,
        ],
        outputs=[tab.regenerate_result, tab.comparison_gallery, tab.comparison_file],
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit_regenerate"),
    )

    def region_clicked(state: Any, evt: Any) -> str:
        return tab_handlers.region_clicked(getattr(evt, "index", None), state)

    # gradio passes the click's SelectData to the parameter annotated with its class
    region_clicked.__annotations__ = {"state": Any, "evt": gr.SelectData, "return": str}
    tab.heatmap_view.select(
        fn=region_clicked,
        inputs=[tab.heatmap_state],
        outputs=[tab.region_note],
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
