"""The tab's "Regenerate with the pruned prompt" handlers (no gradio import: plain values).

- ``preflight_html(image, pruned_prompt, allow_txt2img=False, seeds=1) -> str``: what the
  click would run, how many generations and about how long, and every warning
  (checkpoint mismatch, img2img), shown before the click; an HTML box, never an exception.
- ``regenerate_click(id_task, image, pruned_prompt, allow_txt2img, model, report, seeds=1)
  -> (html, pictures, saved_path)``: regenerates and compares against ``report`` (the tab's
  last analysis; without one, the picture's own prompt); with ``seeds`` > 1 both prompts
  are compared over that many seeds too, as a table.  ``pictures`` is the gallery's
  value: the original and the regenerated picture (PIL, captioned with their similarity;
  the regenerated one carries its generation parameters in ``info["parameters"]``, so
  "Send to txt2img" works on it); ``html`` holds the numbers as tables; ``saved_path``
  is the download: a PNG of the two pictures with the numbers drawn under them and the
  comparison JSON in its ``clipprobe-comparison`` text chunk, plus the JSON next to it.
  On failure: (error html, None, None).
"""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
import time
from typing import Any

from clipprobe_ext.errors import ClipProbeError, first_line
from clipprobe_ext.report.messages import message_box

log = logging.getLogger("clipprobe")

NO_IMAGE = "Load the picture (with its generation parameters) first."
NO_PROMPT = (
    "No shorter prompt to regenerate with: run the analysis first; when it suggests a "
    "shorter prompt, it can be regenerated here."
)


def _error(message: str) -> str:
    return message_box(message, "error")


def _describe(plan: Any) -> str:
    p = plan.params
    parts = [
        f"seed {p.get('seed')}",
        f"{p.get('sampler_name')} / {p.get('scheduler')}",
        f"{p.get('steps')} steps",
        f"CFG {p.get('cfg_scale')}",
        f"{p.get('width')}x{p.get('height')}",
    ]
    if p.get("subseed_strength"):
        parts.append(f"variation seed {p.get('subseed')} at {p.get('subseed_strength')}")
    if p.get("enable_hr"):
        if p.get("hr_resize_x") or p.get("hr_resize_y"):
            size = f"to {p.get('hr_resize_x')}x{p.get('hr_resize_y')}"
        else:
            size = f"x{p.get('hr_scale', 2.0)}"
        parts.append(
            f"hires fix {size} with {p.get('hr_upscaler')}, denoising {p.get('denoising_strength')}"
        )
    settings = ", ".join(f"{k}={v}" for k, v in plan.override_settings.items())
    if settings:
        parts.append(f"settings {settings}")
    return "; ".join(parts)


def _warnings_html(plan: Any) -> str:
    items = "".join(f"<li>{html.escape(w)}</li>" for w in plan.warnings)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in plan.notes)
    return (f'<ul class="cp-warnings">{items}</ul>' if items else "") + (
        f'<ul class="cp-notes">{notes}</ul>' if notes else ""
    )


def _plan_html(plan: Any) -> str:
    return f"<p>Regenerates with {html.escape(_describe(plan))}.</p>" + _warnings_html(plan)


def _infotext(image: Any) -> str:
    """The picture's generation parameters, read as the tab reads them (``inputs``)."""
    from clipprobe_ext.inputs import stored_parameters

    params = stored_parameters(_checked(image))
    if params is None:
        raise ClipProbeError(
            "The picture holds no generation parameters, so it cannot be generated again."
        )
    return params.raw


def _checked(image: Any) -> Any:
    if image is None:
        raise ClipProbeError(NO_IMAGE)
    return image


def _seeds(value: Any) -> int:
    from clipprobe_ext.analysis.seeds import MAX_SEEDS

    try:
        n = int(float(value if value is not None else 1))
    except (TypeError, ValueError) as exc:
        raise ClipProbeError(f"The number of seeds is not a number: {value!r}.") from exc
    if not 1 <= n <= MAX_SEEDS:
        raise ClipProbeError(f"Between 1 and {MAX_SEEDS} seeds, not {n}.")
    return n


def generations(seeds: int) -> int:
    """Pictures a regeneration makes: the candidate alone, or with N seeds both prompts N
    times (the candidate's first is the regenerated picture)."""
    return 1 if seeds <= 1 else 2 * seeds


def preflight_html(
    image: Any, pruned_prompt: str | None, allow_txt2img: bool = False, seeds: Any = 1
) -> str:
    from clipprobe_ext.report.bring_in import estimate_text
    from clipprobe_ext.webui import regenerate
    from clipprobe_ext.webui.regenerate.plan import estimated_seconds

    try:
        if not (pruned_prompt or "").strip():
            raise ClipProbeError(NO_PROMPT)
        n = _seeds(seeds)
        plan = regenerate.plan_regeneration(
            _infotext(image), pruned_prompt or "", allow_txt2img=bool(allow_txt2img)
        )
    except ClipProbeError as exc:
        return _error(str(exc))
    except Exception as exc:  # the preview must never break the tab
        log.exception("ClipProbe: planning the regeneration failed")
        return _error(f"ClipProbe could not read the parameters ({first_line(exc)}).")
    count = generations(n)
    cost = html.escape(estimate_text(count, estimated_seconds(plan, count)))
    over = f" over {n} seeds" if n > 1 else ""
    return message_box(markup=f"<p><b>{cost}</b>{over}.</p>" + _plan_html(plan))


def regenerate_click(
    id_task: Any,
    image: Any,
    pruned_prompt: str | None,
    allow_txt2img: Any,
    model: str | None,
    report: Any = None,
    seeds: Any = 1,
) -> tuple[str, Any, str | None]:
    from clipprobe_ext.report import comparison as comparing
    from clipprobe_ext.report.bring_in import seeds_html
    from clipprobe_ext.report.numbers import similarity
    from clipprobe_ext.webui import regenerate

    task = id_task if isinstance(id_task, str) and id_task.startswith("task(") else None
    try:
        if not (pruned_prompt or "").strip():
            raise ClipProbeError(NO_PROMPT)
        n = _seeds(seeds)
        original, text, _ = regenerate.original_picture(_checked(image))
        result, comparison = regenerate.regenerate_and_compare(
            original,
            pruned_prompt or "",
            infotext=text,
            model_name=model,
            allow_txt2img=bool(allow_txt2img),
            id_task=task,
            report=report,
            seeds=n,
        )
        sheet = comparing.side_by_side(comparison, original, result.image)
        saved = save_comparison(sheet, comparison, result)
    except ClipProbeError as exc:
        return _error(str(exc)), None, None
    except Exception as exc:  # never a traceback in the tab
        log.exception("ClipProbe: the regeneration failed")
        return (
            _error(
                f"ClipProbe failed unexpectedly ({type(exc).__name__}: {first_line(exc, empty='')}); "
                "the full error is in the console."
            ),
            None,
            None,
        )
    regenerated = result.image
    regenerated.info["parameters"] = result.infotext
    to_prompt = "similarity to the analysed prompt"
    pictures = [
        (original, f"original ({to_prompt} {similarity(comparison.original_similarity)})"),
        (
            regenerated,
            f"pruned prompt ({to_prompt} {similarity(comparison.regenerated_similarity)})",
        ),
    ]
    # what was run is the preflight's line above it; only its warnings are repeated
    body = _warnings_html(result.plan) + comparing.render_html(comparison)
    if result.seeds is not None:
        body += seeds_html(result.seeds.comparisons, result.seeds.seeds)
    return message_box(markup=body), pictures, saved


def save_comparison(sheet: Any, comparison: Any, result: Any) -> str:
    """The side-by-side PNG (comparison JSON in a text chunk) and the JSON, in a temp folder."""
    from PIL import PngImagePlugin

    from clipprobe_ext.report.comparison import comparison_data

    data = {
        "comparison": comparison_data(comparison),
        "plan": result.plan.to_dict(),
        "regenerated_infotext": result.infotext,
    }
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    folder = os.path.join(tempfile.gettempdir(), "clipprobe-compare")
    os.makedirs(folder, exist_ok=True)
    stem = f"clipprobe-compare-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(sheet)}"
    info = PngImagePlugin.PngInfo()
    info.add_text("clipprobe-comparison", text)
    path = os.path.join(folder, stem + ".png")
    sheet.save(path, format="PNG", pnginfo=info)
    with open(os.path.join(folder, stem + ".json"), "w", encoding="utf-8") as f:
        f.write(text)
    return path
