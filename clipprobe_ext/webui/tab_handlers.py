"""What the ClipProbe tab does when the image changes or Analyze is clicked.

Public API (plain functions the tab wires up; tests call them directly):

- ``image_changed(image) -> (prompt update, negative update, status html)``: fill the
  prompt boxes from a new image's generation parameters; leave typed text otherwise.
- ``TabRequest``: the tab's inputs of one Analyze click, one field per input component
  (``TabRequest.FIELDS`` is also the order of the click's inputs after ``id_task``).
- ``analyze(id_task, *values) -> TabResult`` (gradio's positional inputs:
  ``TabRequest.FIELDS``' order); ``run_full(request, task=None) -> (report, note, maps)``.
- ``TabResult``: the click's outputs, in ``TabResult.OUTPUTS``' order (see its fields):
  the answer (``report.panel.render_answer``) and the coloured prompt beside the inputs,
  the detail sections below them, the downloads, the heatmaps (``heatmap_tab``: the
  state, a captioned gallery of every phrase, and the first phrase's overlay already
  shown next to the prompt), the report itself (a ``gr.State``: what "Regenerate"
  compares against); the status line and any earlier regeneration are cleared, and the
  model dropdown's note is recomputed.  The "Send" and "Regenerate" buttons show only
  when the suggested prompt differs from the analysed one.
- ``model_note()`` / ``model_dropdown_update()``: which models need a download, as now.
- ``show_heatmap(index, state, opacity)``: a click on phrase ``index`` of the coloured
  prompt, or the opacity slider (``heatmap_tab.show``).

Sliders show percent options in percent (``OPTIONS[name].to_display``); ``run_full`` turns
them back into fractions.  Handlers never raise: every ``ClipProbeError`` becomes an
HTML error box with its message; anything else is logged with its traceback and shown as
one short line.  ``analyze`` calls ``session.analyze``, which takes the WebUI's
queue lock itself, so it is not wrapped in ``wrap_gradio_gpu_call``; a second user simply
waits for the first.

The image, its prompt and negative prompt go through ``clipprobe_ext.inputs.resolve``, as
in the command line and the API: an image that is a WebUI grid (its size is a multiple of
the size its infotext gives) is cut into its images and analysed as the batch it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from clipprobe_ext import inputs
from clipprobe_ext.errors import ClipProbeError, ImageError, first_line
from clipprobe_ext.options import OPTIONS, parse_synonyms
from clipprobe_ext.report import fragments as render
from clipprobe_ext.report import panel
from clipprobe_ext.report.view import build_view
from clipprobe_ext.results import ProbeReport
from clipprobe_ext.webui import exports, heatmap_tab, model_source, session, settings

log = logging.getLogger("clipprobe")

NO_IMAGE = (
    'Add an image first: upload or paste one, or use "Send to ClipProbe" under a '
    "txt2img/img2img result or in PNG Info."
)
ASK_PROMPT = "type the prompt it was made with into the Prompt box"
NO_PARAMETERS_NOTE = "No generation parameters in this image: type its prompt."


def _update(**kwargs: Any) -> Any:
    import gradio as gr

    return gr.update(**kwargs)


# -- reading the prompt from an image -------------------------------------------------------


def image_changed(image: Any) -> tuple[Any, Any, str]:
    if image is None:
        return _update(), _update(), ""
    params = inputs.stored_parameters(image)
    if params is None:
        return _update(), _update(value=""), render.render_message(NO_PARAMETERS_NOTE)
    return _update(value=params.prompt), _update(value=params.negative_prompt), ""


# -- analysing ------------------------------------------------------------------------------


@dataclass
class TabRequest:
    """The tab's inputs of one Analyze click (slider values in shown units)."""

    image: Any = None
    prompt: str | None = None
    synonyms: str | None = None
    rounds: Any = None
    threshold: Any = None
    tolerance: Any = None
    granularity: Any = None
    model: str | None = None
    negative: str | None = None  # checked against the picture where the engine can
    heatmaps: Any = False  # compute the phrase heatmaps (first picture) with the analysis

    FIELDS: ClassVar[tuple[str, ...]]

    def options(self) -> Any:
        """``ProbeOptions`` from the request, Settings where a value is missing."""
        values: dict[str, Any] = {}
        try:
            for name in ("rounds", "threshold", "tolerance"):
                raw = getattr(self, name)
                if raw is not None:
                    spec = OPTIONS[name]
                    values[name] = spec.kind(spec.from_display(float(raw)))
            values["synonyms"] = parse_synonyms(self.synonyms or "")
            values["granularity"] = _granularity(self.granularity)
            return settings.probe_options(**values)
        except (TypeError, ValueError) as exc:
            raise ClipProbeError(f"Invalid option: {exc}") from exc


TabRequest.FIELDS = tuple(f.name for f in fields(TabRequest))


@dataclass
class TabResult:
    """The Analyze click's outputs: the answer and the coloured prompt beside the inputs,
    the detail sections below, and everything that must not outlive the previous run
    (status line, stale regeneration, hidden files) reset."""

    result: str  # the answer: what to cut, what is missing, the suggested prompt
    prompt_view: str  # the prompt coloured by verdict, with its legend
    status: str  # the image's note: cleared once an analysis ran
    model: Any  # the dropdown's note on what is on this machine, as it is now
    pruned_prompt: Any
    send_txt2img: Any
    send_img2img: Any
    regenerate_button: Any
    details: Any  # the column of detail sections: shown once there is a result
    verdicts_view: str
    rounds_view: str
    tokens_view: str
    negative_view: str
    json_file: Any
    csv_file: Any
    heatmap_state: Any = None
    heatmap_gallery: Any = None
    heatmap_column: Any = None  # the clicked phrase's overlay beside the prompt
    heatmap_view: Any = None
    heatmap_note: Any = ""
    report_state: Any = None
    regenerate_result: Any = ""
    comparison_gallery: Any = None
    comparison_file: Any = None
    region_note: Any = ""  # a click on the map ranks the phrases there; a new run clears it

    OUTPUTS: ClassVar[tuple[str, ...]]

    @classmethod
    def failure(cls, html: str) -> TabResult:
        hidden = _update(value=None, visible=False)
        off = _update(interactive=False, visible=False)
        return cls(
            html,
            "",
            "",
            model_dropdown_update(),
            "",
            off,
            off,
            off,
            _update(visible=False),
            "",
            "",
            "",
            "",
            hidden,
            hidden,
            None,
            hidden,
            _update(visible=False),
            None,
            "",
            None,
            "",
            hidden,
            hidden,
        )

    @classmethod
    def success(
        cls,
        report: ProbeReport,
        note: str | None,
        paths: tuple[str, str],
        maps: heatmap_tab.HeatmapState | None = None,
    ) -> TabResult:
        pruned = report.pruning.pruned_prompt if report.pruning is not None else ""
        # nothing can go: the "pruned" prompt is the analysed one, nothing to send
        can_send = bool(report.pruning is not None and report.pruning.steps) and (
            bool(pruned.strip()) and pruned != report.prompt
        )
        view = build_view(report)
        answer = panel.render_answer(report, view)
        if note:
            answer = render.render_message(note) + answer
        first = maps.first() if maps is not None else None
        if first is not None:
            overlay, heatmap_note = heatmap_tab.show(first, maps, heatmap_tab.DEFAULT_OPACITY)
        else:
            overlay, heatmap_note = None, ""
        button = _update(interactive=can_send, visible=can_send)
        hidden = _update(value=None, visible=False)
        return cls(
            answer,
            panel.render_prompt_card(view, first, heatmaps=maps is not None),
            "",
            model_dropdown_update(),
            pruned if can_send else "",
            button,
            button,
            button,
            _update(visible=True),
            panel.render_verdict_details(view),
            panel.render_rounds_details(view),
            panel.render_tokens_details(view),
            panel.render_negative_details(view),
            _update(value=paths[0], visible=True),
            _update(value=paths[1], visible=True),
            maps,
            _update(value=maps.gallery() if maps else None, visible=maps is not None),
            _update(visible=maps is not None),
            overlay,
            heatmap_note,
            report,
            "",
            hidden,
            hidden,
        )


TabResult.OUTPUTS = tuple(f.name for f in fields(TabResult))


def model_note() -> str:
    """The model dropdown's note: which choices work without network, as they are now
    (a model downloaded or loaded since the tab was built counts)."""
    missing = [name for name, local in model_source.models_on_disk().items() if not local]
    if not missing:
        return "all choices are available on this machine"
    return "not on this machine (needs a download): " + ", ".join(missing)


def model_dropdown_update() -> Any:
    """The dropdown's choices and note, recomputed (its 🔄 button, and after each run)."""
    return _update(choices=model_source.list_models(), info=model_note())


def show_heatmap(index: Any, state: Any, opacity: Any) -> tuple[Any, str]:
    """The overlay of the clicked phrase (opacity slider in percent); never raises."""
    try:
        image, note = heatmap_tab.show(index, state, float(opacity or 0) / 100.0)
    except Exception as exc:
        log.exception("ClipProbe: drawing the heatmap failed")
        return None, render.render_error(f"Could not draw the heatmap: {first_line(exc)}")
    return image, note


def region_clicked(point: Any, state: Any) -> str:
    """A click on the heatmap: the phrases ranked around it; never raises."""
    try:
        return heatmap_tab.region(point, state)
    except Exception as exc:
        log.exception("ClipProbe: ranking the region failed")
        return render.render_error(f"Could not rank the region: {first_line(exc)}")


def _values(result: TabResult) -> tuple[Any, ...]:
    """The outputs in order, as they are (``astuple`` would deep-copy, and turn the heatmap
    state, itself a dataclass, into a tuple)."""
    return tuple(getattr(result, name) for name in TabResult.OUTPUTS)


def _granularity(value: Any) -> str:
    return "word" if str(value or "").lower().startswith("word") else "phrase"


def analyze(id_task: Any, *values: Any) -> tuple[Any, ...]:
    """The Analyze click: ``values`` in ``TabRequest.FIELDS``' order; see the module doc."""
    request = TabRequest(*values)
    task = session.Task(id_task)
    task.queue()
    try:
        report, note, maps = run_full(request, task=task)
        paths = exports.write_exports(report)
    except ClipProbeError as exc:
        return _values(TabResult.failure(render.render_error(str(exc))))
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the analysis failed")
        first = first_line(exc, empty="")
        return _values(
            TabResult.failure(
                render.render_error(
                    f"ClipProbe failed unexpectedly ({type(exc).__name__}: {first}); "
                    "the full error is in the console."
                )
            )
        )
    finally:
        task.finish()
    return _values(TabResult.success(report, note, paths, maps))


def run_full(
    request: TabRequest, task: session.Task | None = None
) -> tuple[ProbeReport, str | None, heatmap_tab.HeatmapState | None]:
    """The report of one request, a note for the user (a grid cut into its images) and
    the heatmaps when the request asks for them (else None)."""
    if request.image is None:
        raise ImageError(NO_IMAGE)
    options = request.options()
    # The box hands the picture over in its own mode (image_mode=None): 16-bit, float and
    # transparent images are converted properly by the resolver, huge ones refused or shrunk.
    found = inputs.resolve(
        request.image,
        request.prompt,
        request.negative or "",  # the box is the negative prompt, filled from the image
        name="this image",
        ask=ASK_PROMPT,
    )
    pictures = found.pictures
    after = (
        (lambda encoder, report, progress: heatmap_tab.compute(encoder, report, pictures, progress))
        if request.heatmaps
        else None
    )
    report, maps = session.analyze(
        pictures,
        found.prompt,
        options,
        request.model or None,
        after=after,
        labels=found.labels,
        negative=found.negative,
        task=task,
    )
    return report, " ".join(found.notes) or None, maps
