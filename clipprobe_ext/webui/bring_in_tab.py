"""The tab's "Try to bring it in" handlers (no gradio import: plain values).

- ``phrase_choices(report) -> list[str]``: the picker's choices, the analysis' phrases
  with the prune and weak ones first (the ones a user may want back).
- ``preflight_html(image, phrases, report, allow_txt2img=False) -> str``: how many
  generations the click runs and about how long they take, before the click.
- ``bring_in_click(id_task, image, phrases, allow_txt2img, model, report) ->
  (html, pictures, best_prompt)``: generates and measures the variants
  (``regenerate.bring_in``); ``pictures`` is the gallery's value (the original, then each
  variant captioned with its label, each carrying its generation parameters so the
  WebUI's "Send to" buttons work on it), ``html`` the table, ``best_prompt`` the best
  variant's prompt ("" when none qualifies), which only a click sends to txt2img.
  On failure: (error html, None, "").
"""

from __future__ import annotations

import html
import logging
from typing import Any

from clipprobe_ext.errors import ClipProbeError, first_line
from clipprobe_ext.report.messages import message_box

log = logging.getLogger("clipprobe")

NO_REPORT = "Analyze the picture first: the phrases to bring in are picked from its analysis."
NO_PHRASES = "Pick the phrases to bring in (the prune and weak ones are listed first)."
ORDER = {"prune": 0, "weak": 1, "keep": 2, "cannot_judge": 3}


def phrase_choices(report: Any) -> list[str]:
    if report is None:
        return []
    verdicts = sorted(report.verdicts, key=lambda v: (ORDER.get(v.verdict, 4), v.index))
    return list(dict.fromkeys(v.text for v in verdicts))


def _phrases(phrases: Any) -> list[str]:
    if isinstance(phrases, str):
        phrases = [phrases]
    return [p for p in (phrases or []) if isinstance(p, str) and p.strip()]


def _checked(image: Any, phrases: Any, report: Any) -> list[str]:
    from clipprobe_ext.webui.regenerate_tab import NO_IMAGE

    if image is None:
        raise ClipProbeError(NO_IMAGE)
    if report is None:
        raise ClipProbeError(NO_REPORT)
    picked = _phrases(phrases)
    if not picked:
        raise ClipProbeError(NO_PHRASES)
    return picked


def preflight_html(image: Any, phrases: Any, report: Any, allow_txt2img: Any = False) -> str:
    from clipprobe_ext.analysis.bring_in import MAX_GENERATIONS, plan_bring_in
    from clipprobe_ext.report.bring_in import estimate_text
    from clipprobe_ext.webui import regenerate
    from clipprobe_ext.webui.regenerate.plan import SECONDS_PER_STEP_512, estimated_seconds
    from clipprobe_ext.webui.regenerate_tab import _infotext, _plan_html

    try:
        picked = _checked(image, phrases, report)
        _, _, variants, skipped = plan_bring_in(report, picked)
        plan = regenerate.plan_regeneration(
            _infotext(image), report.prompt, allow_txt2img=bool(allow_txt2img)
        )
    except ClipProbeError as exc:
        return message_box(str(exc), "error")
    except Exception as exc:  # the preview must never break the tab
        log.exception("ClipProbe: planning the bring-in failed")
        return message_box(f"ClipProbe could not plan it ({first_line(exc)}).", "error")
    cost = estimate_text(len(variants), estimated_seconds(plan, len(variants)))
    labels = "".join(f"<li>{html.escape(v.label)}</li>" for v in variants)
    left = "".join(f"<li>{html.escape(s.label)}: {html.escape(s.reason)}</li>" for s in skipped)
    body = (
        f"<p><b>{html.escape(cost)}</b> (at most {MAX_GENERATIONS}; about "
        f"{SECONDS_PER_STEP_512:g} s per 512x512 step): the variants of "
        f"{html.escape(', '.join(picked))}:</p><ol>{labels}</ol>"
        + (f'<ul class="cp-notes">{left}</ul>' if left else "")
        + _plan_html(plan)
    )
    return message_box(markup=body)


def bring_in_click(
    id_task: Any,
    image: Any,
    phrases: Any,
    allow_txt2img: Any,
    model: str | None,
    report: Any,
) -> tuple[str, Any, str]:
    from clipprobe_ext.report.bring_in import bring_in_html
    from clipprobe_ext.webui import regenerate
    from clipprobe_ext.webui.regenerate_tab import _warnings_html

    task = id_task if isinstance(id_task, str) and id_task.startswith("task(") else None
    try:
        picked = _checked(image, phrases, report)
        original, text, _ = regenerate.original_picture(image)
        run = regenerate.bring_in(
            original,
            picked,
            prompt=report.prompt,
            infotext=text,
            model_name=model,
            allow_txt2img=bool(allow_txt2img),
            id_task=task,
            report=report,
        )
    except ClipProbeError as exc:
        return message_box(str(exc), "error"), None, ""
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the bring-in failed")
        return (
            message_box(
                f"ClipProbe failed unexpectedly ({type(exc).__name__}: {first_line(exc, empty='')}); "
                "the full error is in the console.",
                "error",
            ),
            None,
            "",
        )
    result = run.result
    pictures = [(original, "original")]
    for k, (r, info) in enumerate(zip(result.results, run.infotexts)):
        r.image.info["parameters"] = info
        mark = "best: " if k == result.best else ""
        pictures.append((r.image, f"{mark}{k + 1}. {r.variant.label}"))
    body = _warnings_html(run.plan) + bring_in_html(result)
    return message_box(markup=body), pictures, result.best_prompt or ""
