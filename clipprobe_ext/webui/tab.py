"""The "ClipProbe" tab of the WebUI, and the "Send to ClipProbe" buttons in other tabs.

Public API:

- ``on_ui_tabs() -> [(blocks, "ClipProbe", "clipprobe")]`` (pass to
  ``script_callbacks.on_ui_tabs``).  Builds the tab (``create_tab() -> ClipProbeTab``) and
  registers its image and prompt boxes as the paste target ``"clipprobe"``
  (``infotext_utils.add_paste_fields``), so the WebUI's own paste mechanism can fill them.
- ``SendToClipProbe``: an ``on_after_component`` callback object that adds a
  "Send to ClipProbe" button next to the WebUI's own "Send to" buttons (txt2img and
  img2img result galleries, PNG Info) and registers it with
  ``infotext_utils.register_paste_params_button(ParamBinding(tabname="clipprobe", ...))``.
  When the WebUI connects the bindings (``connect_paste_params_buttons``, after all tabs
  exist) a click sends the selected image into the tab's image box, the prompt and
  negative prompt into its boxes (gallery: from the source tab's "Prompt"/"Negative
  prompt" fields; PNG Info: parsed from the image's infotext), then calls the JS
  ``switch_to_clipprobe()`` (``javascript/clipprobe.js``).
- Event handlers, plain functions the tab wires up (tests call them directly):
  ``image_changed(image) -> (prompt update, negative update, status html)`` and
  ``analyze(id_task, image, prompt, synonyms, rounds, threshold, tolerance, granularity,
  model) -> (result html, pruned prompt, json path, csv path, send-button update x2)``.

Progress is shown the WebUI's usual way, as txt2img and Extras do: the Analyze click runs
the JS ``clipprobe_submit()`` first, which makes a task id (``randomId()``), starts the
WebUI's ``requestProgress`` bar above the result box (``#clipprobe_result``, in a
``progress-container`` row) and passes the id as the hidden first input ``id_task``.
``analyze`` puts the id in the WebUI's queue (``progress.add_task_to_queue``: the bar says
"In queue" while a generation holds the lock), starts it once ``run_analysis`` holds the
lock (``on_start``: ``progress.start_task``; the bar then shows ClipProbe's ``textinfo``
and percentage from ``shared.state``) and finishes it whatever happens
(``progress.finish_task``; an id that never started also leaves ``pending_tasks``).  Its
results are not recorded (``progress.record_results``): ClipProbe has no "restore
progress", and the two recorded slots belong to txt2img/img2img.  Without
``modules.progress`` or ``requestProgress`` (older or forked WebUIs), or without a
``task(...)`` id, the bookkeeping is skipped and gradio's own spinner remains.

Handlers never raise: every ``ClipProbeError`` becomes an HTML error box with its message;
anything else is logged with its traceback and shown as one short line.  ``analyze`` calls
``model_source.run_analysis``, which takes the WebUI's queue lock itself, so it is not
wrapped in ``wrap_gradio_gpu_call``; a second user simply waits for the first.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from clipprobe_ext.errors import ClipProbeError, ImageError, PromptError, first_line

log = logging.getLogger("clipprobe")

TABNAME = "clipprobe"
TITLE = "ClipProbe"
GRANULARITIES = ("phrases", "words")
EXPORTS_KEPT = 20

NO_IMAGE = (
    'Add an image first: upload or paste one, or use "Send to ClipProbe" under a '
    "txt2img/img2img result or in PNG Info."
)
NO_PROMPT = (
    "This image holds no generation parameters: type the prompt it was made with into the "
    "Prompt box."
)
NO_PARAMETERS_NOTE = "No generation parameters in this image: type its prompt."


# -- reading the prompt from an image -------------------------------------------------------


def read_prompts(image: Any) -> tuple[str, str] | None:
    """(prompt, negative prompt) from the image's generation parameters, or None."""
    from clipprobe_ext import infotext

    if image is None:
        return None
    try:
        text = infotext.read_parameters(image)
    except Exception:  # an unreadable metadata block is the same as none
        log.warning("ClipProbe: could not read the image's generation parameters", exc_info=True)
        return None
    if not text:
        return None
    params = infotext.parse_parameters(text)
    if not params.prompt.strip():
        return None
    return params.prompt, params.negative_prompt


# -- handlers -----------------------------------------------------------------------------------


def _update(**kwargs: Any) -> Any:
    import gradio as gr

    return gr.update(**kwargs)


def image_changed(image: Any) -> tuple[Any, Any, str]:
    """Fill the prompt boxes from a new image's parameters; leave typed text otherwise."""
    from clipprobe_ext import render

    if image is None:
        return _update(), _update(), ""
    prompts = read_prompts(image)
    if prompts is None:
        return _update(), _update(value=""), render.render_message(NO_PARAMETERS_NOTE)
    prompt, negative = prompts
    return _update(value=prompt), _update(value=negative), ""


def _granularity(value: Any) -> str:
    return "word" if str(value or "").lower().startswith("word") else "phrase"


def _export_dir() -> str:
    folder = os.path.join(tempfile.gettempdir(), "clipprobe-exports")
    os.makedirs(folder, exist_ok=True)
    return folder


_export_counter = 0


def write_exports(report: Any) -> tuple[str, str]:
    """``report.to_json``/``to_csv`` into fresh files under the temp dir; old ones pruned."""
    from clipprobe_ext import report as report_format

    global _export_counter
    _export_counter += 1
    folder = _export_dir()
    stem = f"clipprobe-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{_export_counter}"
    run_dir = os.path.join(folder, stem)
    os.makedirs(run_dir, exist_ok=True)
    json_path = os.path.join(run_dir, "clipprobe-report.json")
    csv_path = os.path.join(run_dir, "clipprobe-report.csv")
    with open(json_path, "w", encoding="utf-8") as f:
        f.write(report_format.to_json(report))
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        f.write(report_format.to_csv(report))
    _prune_exports(folder)
    return json_path, csv_path


def _prune_exports(folder: str) -> None:
    import shutil

    try:
        runs = sorted(
            (os.path.join(folder, d) for d in os.listdir(folder)),
            key=lambda p: os.path.getmtime(p),
        )
        for old in runs[:-EXPORTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


def is_task_id(value: Any) -> bool:
    """A WebUI task id as ``randomId()`` makes it (``wrap_gradio_gpu_call``'s own test)."""
    return isinstance(value, str) and value.startswith("task(") and value.endswith(")")


class ProgressTask:
    """One click's entry in the WebUI's ``modules.progress`` (no-op without one).

    Failures of the bookkeeping are logged, never raised: the progress bar must not cost
    the user the analysis.
    """

    def __init__(self, id_task: Any) -> None:
        from clipprobe_ext.webui import compat

        self.id_task = id_task if is_task_id(id_task) else None
        self.module = compat.progress() if self.id_task is not None else None
        self.started = False

    def queue(self) -> None:
        if self.module is not None:
            self._call("add_task_to_queue")

    def start(self) -> None:
        if self.module is not None and not self.started:
            self.started = True
            self._call("start_task")

    def finish(self) -> None:
        if self.module is None:
            return
        if not self.started:  # start_task would have taken it out of the queue
            pending = getattr(self.module, "pending_tasks", None)
            if isinstance(pending, dict):
                pending.pop(self.id_task, None)
        self._call("finish_task")

    def _call(self, name: str) -> None:
        try:
            getattr(self.module, name)(self.id_task)
        except Exception:
            log.exception("ClipProbe: progress.%s failed", name)


def _failure(html: str) -> tuple[Any, ...]:
    return (
        html,
        "",
        None,
        None,
        _update(interactive=False),
        _update(interactive=False),
    )


def analyze(
    id_task: Any,
    image: Any,
    prompt: str | None,
    synonyms: str | None,
    rounds: Any,
    threshold: Any,
    tolerance: Any,
    granularity: Any,
    model: str | None,
) -> tuple[Any, ...]:
    """Run the analysis for the tab; see the module docstring for the outputs."""
    from clipprobe_ext import render

    task = ProgressTask(id_task)
    task.queue()
    try:
        report = _analyze(
            image,
            prompt,
            synonyms,
            rounds,
            threshold,
            tolerance,
            granularity,
            model,
            on_start=task.start,
        )
        json_path, csv_path = write_exports(report)
    except ClipProbeError as exc:
        return _failure(render.render_error(str(exc)))
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the analysis failed")
        first = first_line(exc, empty="")
        return _failure(
            render.render_error(
                f"ClipProbe failed unexpectedly ({type(exc).__name__}: {first}); "
                "the full error is in the console."
            )
        )
    finally:
        task.finish()
    pruned = report.pruning.pruned_prompt if report.pruning is not None else ""
    return (
        render.render_report(report),
        pruned,
        json_path,
        csv_path,
        _update(interactive=bool(pruned.strip())),
        _update(interactive=bool(pruned.strip())),
    )


def _analyze(
    image: Any,
    prompt: str | None,
    synonyms: str | None,
    rounds: Any,
    threshold: Any,
    tolerance: Any,
    granularity: Any,
    model: str | None,
    on_start: Any = None,
) -> Any:
    from clipprobe_ext import images
    from clipprobe_ext.probe import parse_synonyms
    from clipprobe_ext.webui import model_source, settings

    if image is None:
        raise ImageError(NO_IMAGE)
    prompt = prompt or ""
    if not prompt.strip():
        found = read_prompts(image)
        if found is None:
            raise PromptError(NO_PROMPT)
        prompt = found[0]
    try:
        options = settings.probe_options(
            rounds=int(rounds) if rounds is not None else None,
            threshold=float(threshold) if threshold is not None else None,
            tolerance=float(tolerance) if tolerance is not None else None,
            synonyms=parse_synonyms(synonyms or ""),
            granularity=_granularity(granularity),
        )
    except (TypeError, ValueError) as exc:
        raise ClipProbeError(f"Invalid option: {exc}") from exc
    # The box hands the picture over in its own mode (image_mode=None): 16-bit, float and
    # transparent images are converted properly here, huge ones refused or shrunk.
    image = images.load_image(image)
    return model_source.run_analysis(
        [image], prompt, options, model or None, labels=["image"], on_start=on_start
    )


# -- the tab ---------------------------------------------------------------------------------


@dataclass
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


def create_tab() -> ClipProbeTab:
    import gradio as gr

    from clipprobe_ext.webui import compat, model_source, settings

    with gr.Blocks(analytics_enabled=False, elem_id="clipprobe_interface") as blocks:
        with gr.Row(equal_height=False, elem_id="clipprobe_main"):
            with gr.Column(variant="panel", elem_id="clipprobe_inputs"):
                image = gr.Image(
                    label="Image",
                    type="pil",
                    # gradio's own convert("RGB") clips 16-bit pictures to white and
                    # drops transparency onto black: keep the mode, convert in _analyze.
                    image_mode=None,
                    elem_id="clipprobe_image",
                    interactive=True,
                    **compat.image_source_kwargs(),
                    **compat.image_format_kwargs(),
                )
                prompt = gr.Textbox(
                    label="Prompt",
                    lines=3,
                    elem_id="clipprobe_prompt",
                    placeholder="Filled from the image's generation parameters; edit freely",
                )
                negative_prompt = gr.Textbox(
                    label="Negative prompt (for reference; not analysed)",
                    lines=1,
                    interactive=False,
                    elem_id="clipprobe_neg_prompt",
                )
                synonyms = gr.Textbox(
                    label="Synonym groups",
                    placeholder="girl | woman; umbrella | parasol",
                    elem_id="clipprobe_synonyms",
                )
                with gr.Row():
                    rounds = gr.Slider(
                        minimum=settings.ROUNDS_MIN,
                        maximum=settings.ROUNDS_MAX,
                        step=1,
                        value=settings.rounds(),
                        label="Rounds",
                        elem_id="clipprobe_rounds",
                    )
                    threshold = gr.Slider(
                        minimum=0.0,
                        maximum=0.5,
                        step=0.001,
                        value=settings.threshold(),
                        label="Threshold",
                        elem_id="clipprobe_threshold",
                    )
                with gr.Row():
                    tolerance = gr.Slider(
                        minimum=0.0,
                        maximum=0.2,
                        step=0.001,
                        value=settings.tolerance(),
                        label="Pruning tolerance",
                        elem_id="clipprobe_tolerance",
                    )
                    granularity = gr.Radio(
                        choices=list(GRANULARITIES),
                        value=GRANULARITIES[0],
                        label="Granularity",
                        elem_id="clipprobe_granularity",
                    )
                model = gr.Dropdown(
                    choices=model_source.list_models(),
                    value=settings.default_model(),
                    label="CLIP model",
                    allow_custom_value=True,
                    elem_id="clipprobe_model",
                )
                analyze_button = gr.Button(
                    "Analyze", variant="primary", elem_id="clipprobe_analyze"
                )
                status = gr.HTML(elem_id="clipprobe_status")
            with gr.Column(elem_id="clipprobe_outputs"):
                pruned_prompt = gr.Textbox(visible=False, elem_id="clipprobe_pruned_prompt")
                # filled by clipprobe_submit() with the task id of the WebUI's progress bar
                task_id = gr.Textbox(visible=False, elem_id="clipprobe_task_id")
                with gr.Row(elem_id="clipprobe_send_row"):
                    send_txt2img = gr.Button(
                        "Send pruned prompt to txt2img",
                        interactive=False,
                        elem_id="clipprobe_send_txt2img",
                    )
                    send_img2img = gr.Button(
                        "Send pruned prompt to img2img",
                        interactive=False,
                        elem_id="clipprobe_send_img2img",
                    )
                # the WebUI's progress bar is placed above the result box (its CSS places
                # .progressDiv relative to a .progress-container)
                with gr.Row(elem_classes="progress-container", elem_id="clipprobe_result_row"):
                    result = gr.HTML(
                        value='<div class="clipprobe-message">Results appear here.</div>',
                        elem_id="clipprobe_result",
                    )
                with gr.Row(elem_id="clipprobe_exports"):
                    json_file = gr.File(
                        label="JSON", interactive=False, height=80, elem_id="clipprobe_json"
                    )
                    csv_file = gr.File(
                        label="CSV", interactive=False, height=80, elem_id="clipprobe_csv"
                    )

        image.change(
            fn=image_changed,
            inputs=[image],
            outputs=[prompt, negative_prompt, status],
            show_progress=False,
        )
        analyze_button.click(
            fn=analyze,
            inputs=[
                task_id,
                image,
                prompt,
                synonyms,
                rounds,
                threshold,
                tolerance,
                granularity,
                model,
            ],
            outputs=[result, pruned_prompt, json_file, csv_file, send_txt2img, send_img2img],
            # The WebUI's progress bar (clipprobe_submit -> requestProgress) is the main
            # indicator; gradio keeps only its small timer, no overlay over the results.
            show_progress="minimal",
            **compat.js_kwarg("clipprobe_submit"),
        )
        send_txt2img.click(
            fn=None,
            inputs=[pruned_prompt],
            outputs=[],
            **compat.js_kwarg("clipprobe_send_to_txt2img"),
        )
        send_img2img.click(
            fn=None,
            inputs=[pruned_prompt],
            outputs=[],
            **compat.js_kwarg("clipprobe_send_to_img2img"),
        )

    # Their defaults come from Settings -> ClipProbe: keep the WebUI's ui-config.json from
    # freezing the values of the first launch over later changes of those settings.
    for component in (rounds, threshold, tolerance, model):
        component.do_not_save_to_config = True

    tab = ClipProbeTab(
        blocks,
        image,
        prompt,
        negative_prompt,
        synonyms,
        rounds,
        threshold,
        tolerance,
        granularity,
        model,
        analyze_button,
        status,
        result,
        pruned_prompt,
        json_file,
        csv_file,
        send_txt2img,
        send_img2img,
        task_id,
    )
    _register_paste_fields(tab)
    return tab


def _register_paste_fields(tab: ClipProbeTab) -> None:
    """Make ``"clipprobe"`` a paste target: ``paste_fields["clipprobe"]`` of the WebUI."""
    from clipprobe_ext.webui import compat

    try:
        infotext = compat.infotext_utils()
        infotext.add_paste_fields(
            TABNAME,
            tab.image,
            [(tab.prompt, "Prompt"), (tab.negative_prompt, "Negative prompt")],
        )
    except Exception:
        log.exception("ClipProbe: could not register the tab as a 'Send to' target")


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    tab = create_tab()
    return [(tab.blocks, TITLE, TABNAME)]


# -- "Send to ClipProbe" in other tabs ---------------------------------------------------------


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

        from clipprobe_ext.webui import compat

        if where == "pnginfo":
            button = gr.Button("Send to ClipProbe", elem_id="pnginfo_send_to_clipprobe")
        else:
            from modules.ui_components import ToolButton

            button = ToolButton("🔎", elem_id=f"{where}_send_to_clipprobe")
        button.webui_tooltip = "Send image and prompt to the ClipProbe tab."
        infotext = compat.infotext_utils()
        infotext.register_paste_params_button(
            infotext.ParamBinding(
                paste_button=button,
                tabname=TABNAME,
                source_image_component=image,
                source_tabname=source_tabname,
                source_text_component=source_text,
            )
        )
        self.buttons[where] = button
