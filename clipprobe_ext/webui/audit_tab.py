"""The tab's "Audit a folder" section: ``clipprobe_ext.audit`` run inside the WebUI.

Public API:

- ``default_folder() -> str``: the WebUI's outputs folder (``outdir_samples`` when set,
  else the folder above ``outdir_txt2img_samples``, as 1.10's ``shared_options`` lays
  them out: ``<data>/outputs/txt2img-images``).
- ``audit_click(id_task, folder, recursive, limit, model) -> (html, files update)``: runs
  ``run_audit`` under the WebUI's queue lock (``session.run`` as a job of its own), with
  the WebUI's progress bar (``session.Task``, ``shared.state`` via ``Job.show``) and its
  Interrupt (``should_stop`` polls ``shared.state.interrupted``: the report of what was done comes back, marked
  interrupted).  The report is ``report.audit_page.render_html`` in an ``<iframe srcdoc>``
  (its own page: its CSS stays inside, the base64 plots show) plus HTML and JSON
  downloads.  A path that is not a folder is refused with a message before any work.
- ``calibrate_click(id_task, folder, recursive, limit, model) -> (html, fit html)``:
  "Calibrate on this folder" (``audit.calibrate.calibrate_on_folders``) with the same
  folder rule, lock, progress and Interrupt as the audit; the calibration's words and
  plot (``report.calibration``) and the model's fit line (``fit_view.fit_html``) after
  it.  A refusal (too few pictures, prompts that do not differ, a model that does not
  see what they ask for, Stop) shows its message and saves nothing: the previous fit
  stays in force.
- ``stop_click()``: the section's Stop button (``session.interrupt()``).
- ``create_section(gr, model_choices, default_model) -> AuditSection``: the layout; the
  fit line follows the section's model dropdown.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from clipprobe_ext.audit.calibrate import CalibrationRun, calibrate_on_folders
from clipprobe_ext.audit.pipeline import AuditOptions, run_audit
from clipprobe_ext.errors import ClipProbeError, first_line
from clipprobe_ext.report import audit as audit_report
from clipprobe_ext.report import audit_page
from clipprobe_ext.report.messages import message_box
from clipprobe_ext.webui import compat, exports, fit_view, host, session, settings

log = logging.getLogger("clipprobe")

NOT_A_FOLDER = "'{path}' is not a folder: give the path of a folder of generated pictures."
NO_FOLDER = "Give the path of a folder of generated pictures."
UNCHANGED = "Nothing was saved: the fit in force is unchanged."


def default_folder() -> str:
    opts = host.opts()
    chosen = getattr(opts, "outdir_samples", "") or ""
    if not chosen.strip():
        txt2img = getattr(opts, "outdir_txt2img_samples", "") or ""
        chosen = os.path.dirname(txt2img.rstrip("/\\")) if txt2img.strip() else "outputs"
    return os.path.abspath(chosen or "outputs")


def _limit(value: Any) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def frame(page: str) -> str:
    """The report page in an iframe (its own document: styles and data: images intact)."""
    return (
        '<iframe class="clipprobe-audit-frame" sandbox="" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )


def write_downloads(report: Any, page: str) -> list[str]:
    folder = os.path.join(exports.export_dir(), f"audit-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(folder, exist_ok=True)
    html_path = os.path.join(folder, "clipprobe-audit.html")
    json_path = os.path.join(folder, "clipprobe-audit.json")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    with open(json_path, "w", encoding="utf-8") as f:
        f.write(audit_report.to_json(report))
    return [html_path, json_path]


def _update(**kwargs: Any) -> Any:
    import gradio as gr

    return gr.update(**kwargs)


def folder_path(folder: str | None) -> str:
    """The folder the tab's user typed (``~`` expanded); ``ClipProbeError`` when it is none."""
    path = (folder or "").strip()
    if not path:
        raise ClipProbeError(NO_FOLDER)
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise ClipProbeError(NOT_A_FOLDER.format(path=path))
    return path


def run(
    folder: str, recursive: bool, limit: Any, model: str | None, task: session.Task | None = None
) -> Any:
    """The ``AuditReport`` of ``folder``; ``ClipProbeError`` for bad input."""
    path = folder_path(folder)
    options = AuditOptions(recursive=bool(recursive), limit=_limit(limit))

    def work(job: session.Job) -> Any:
        def progress(done: int, total: int, message: str) -> None:
            job.show(f"Audit {done}/{total}: {message}", done / total if total else None)

        return run_audit(
            [path], job.encoder, options, progress=progress, should_stop=job.interrupted
        )

    return session.run(work, model=model or None, job="clipprobe-audit", task=task)


def audit_click(
    id_task: Any, folder: str, recursive: Any, limit: Any, model: str | None
) -> tuple[str, Any]:
    task = session.Task(id_task)
    task.queue()
    try:
        report = run(folder, recursive, limit, model, task=task)
        page = audit_page.render_html(report)
        files = write_downloads(report, page)
    except ClipProbeError as exc:
        return message_box(str(exc), "error"), _update(value=None, visible=False)
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the audit failed")
        message = (
            f"The audit failed unexpectedly ({type(exc).__name__}: {first_line(exc, empty='')}); "
            "the full error is in the console."
        )
        return message_box(message, "error"), _update(value=None, visible=False)
    finally:
        task.finish()
    head = ""
    if getattr(report, "interrupted", False):
        head = message_box("Stopped: the report covers the pictures done so far.")
    return head + frame(page), _update(value=files, visible=True)


def calibrate(
    folders: list[str],
    options: AuditOptions,
    model: str | None,
    *,
    save: bool = True,
    task: session.Task | None = None,
) -> CalibrationRun:
    """``calibrate_on_folders`` of checked ``folders`` as a WebUI job (the tab and the API)."""

    def work(job: session.Job) -> CalibrationRun:
        def progress(done: int, total: int, message: str) -> None:
            job.show(f"Calibration {done}/{total}: {message}", done / total if total else None)

        return calibrate_on_folders(
            folders,
            job.encoder,
            options,
            progress=progress,
            should_stop=job.interrupted,
            save=save,
        )

    return session.run(work, model=model or None, job="clipprobe-calibrate", task=task)


def calibration_html(run: CalibrationRun) -> str:
    """The calibration's words and its plot (a plot that cannot be drawn is left out)."""
    from clipprobe_ext.report.calibration import calibration_plot, calibration_text

    parts = [f"<pre>{html.escape(calibration_text(run))}</pre>"]
    try:
        png = base64.b64encode(calibration_plot(run)).decode("ascii")
        parts.append(
            f'<img class="clipprobe-calibration-plot" src="data:image/png;base64,{png}" '
            'alt="The asked and not-asked pairs of the folder with the cut points">'
        )
    except Exception:  # the words are the result; the picture only shows them
        log.exception("ClipProbe: drawing the calibration plot failed")
    return '<div class="clipprobe-calibration">' + "".join(parts) + "</div>"


def calibrate_click(
    id_task: Any, folder: str, recursive: Any, limit: Any, model: str | None
) -> tuple[str, str]:
    task = session.Task(id_task)
    task.queue()
    chosen = (model or "").strip() or settings.default_model()
    try:
        options = AuditOptions(recursive=bool(recursive), limit=_limit(limit))
        result = calibrate([folder_path(folder)], options, chosen, task=task)
        body = calibration_html(result)
    except ClipProbeError as exc:
        message = f"{exc}\n{UNCHANGED}"
        return message_box(message, "error"), fit_view.fit_html(chosen)
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the calibration failed")
        message = (
            f"The calibration failed unexpectedly ({type(exc).__name__}: "
            f"{first_line(exc, empty='')}); the full error is in the console.\n{UNCHANGED}"
        )
        return message_box(message, "error"), fit_view.fit_html(chosen)
    finally:
        task.finish()
    return body, fit_view.fit_html(chosen)


def fit_line(model: str | None) -> str:
    """The fit line for the dropdown's model (its change event)."""
    return fit_view.fit_html((model or "").strip() or settings.default_model())


def stop_click() -> None:
    session.interrupt()


@dataclass
class AuditSection:
    folder: Any
    recursive: Any
    limit: Any
    model: Any
    run_button: Any
    stop_button: Any
    task_id: Any
    result: Any
    files: Any
    fit: Any = None
    calibrate_button: Any = None
    calibrate_task_id: Any = None
    calibration: Any = None
    calibrated: Any = None  # the calibration's click event (others chain ``.then``)


def create_section(gr: Any, choices: list[str], default_model: str) -> AuditSection:
    """The accordion's components (inside the caller's ``gr.Blocks``) and their events."""
    with gr.Accordion("Audit a folder", open=False, elem_id="clipprobe_audit"):
        with gr.Row():
            folder = gr.Textbox(
                label="Folder of generated pictures",
                value=default_folder(),
                elem_id="clipprobe_audit_folder",
            )
            recursive = gr.Checkbox(
                label="Include subfolders", value=True, elem_id="clipprobe_audit_recursive"
            )
            limit = gr.Number(
                label="Newest N files (0: all)",
                value=0,
                precision=0,
                elem_id="clipprobe_audit_limit",
            )
        with gr.Row():
            model = gr.Dropdown(
                choices=choices,
                value=default_model,
                label="CLIP model",
                allow_custom_value=True,
                elem_id="clipprobe_audit_model",
            )
            run_button = gr.Button("Audit", variant="primary", elem_id="clipprobe_audit_run")
            calibrate_button = gr.Button(
                "Calibrate on this folder", elem_id="clipprobe_calibrate_run"
            )
            stop_button = gr.Button("Stop", elem_id="clipprobe_audit_stop")
        fit = gr.HTML(value=fit_line(default_model), elem_id="clipprobe_audit_fit")
        task_id = gr.Textbox(visible=False, elem_id="clipprobe_audit_task_id")
        calibrate_task_id = gr.Textbox(visible=False, elem_id="clipprobe_calibrate_task_id")
        with gr.Row(elem_classes="progress-container", elem_id="clipprobe_calibrate_result_row"):
            calibration = gr.HTML(elem_id="clipprobe_calibrate_result")
        with gr.Row(elem_classes="progress-container", elem_id="clipprobe_audit_result_row"):
            result = gr.HTML(elem_id="clipprobe_audit_result")
        files = gr.File(
            label="Audit report (HTML, JSON)",
            file_count="multiple",
            interactive=False,
            visible=False,
            elem_id="clipprobe_audit_files",
        )
    section = AuditSection(
        folder,
        recursive,
        limit,
        model,
        run_button,
        stop_button,
        task_id,
        result,
        files,
        fit,
        calibrate_button,
        calibrate_task_id,
        calibration,
    )
    section.calibrated = calibrate_button.click(
        fn=calibrate_click,
        inputs=[calibrate_task_id, folder, recursive, limit, model],
        outputs=[calibration, fit],
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit_calibrate"),
    )
    for trigger in (model.change, model.blur):  # blur: the typed name, settled (tab.py)
        trigger(fn=fit_line, inputs=[model], outputs=[fit], show_progress=False)
    run_button.click(
        fn=audit_click,
        inputs=[task_id, folder, recursive, limit, model],
        outputs=[result, files],
        show_progress=False,
        **compat.js_kwarg("clipprobe_submit_audit"),
    )
    stop_button.click(fn=stop_click, inputs=[], outputs=[])
    model.do_not_save_to_config = True
    return section
