"""'ClipProbe: probe after generation': an always-visible section in txt2img and img2img.

Public API: ``ClipProbeScript`` (a ``modules.scripts.Script``; ``scripts/clipprobe.py``
imports it into its namespace, which is where the WebUI looks for Script classes) and
``probe_processed(p, processed) -> int`` (what ``postprocess`` does when enabled).

The section is an ``InputAccordion`` (a checkbox that opens/closes the accordion), off by
default unless Settings -> ClipProbe -> "Probe after generation" says otherwise.  When it
is off, ``postprocess`` returns at once: no model is loaded and nothing else is imported.

When on, after the batch (``Script.postprocess``, inside the generation job, which already
holds the WebUI's queue lock, hence ``run_analysis(..., inside_generation=True)``), every
generated image (``processed.images`` from ``processed.index_of_first_image`` on, i.e.
without the grid) is analysed against its own prompt (``processed.all_prompts``) with the
default model and options from Settings, and ``, ClipProbe: "<summary>"`` is appended to
the parameter line of ``processed.infotexts[i]`` (and ``processed.info`` when it is that
same text), so the infotext stays parseable.  1.10 saves image files before
``postprocess`` runs, so the summary shows under the image in the UI but is not written
into the saved PNG.  Any failure is logged as one warning line; the generation is never
affected.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from modules import scripts

log = logging.getLogger("clipprobe")

TITLE = "ClipProbe"
LABEL = "ClipProbe: probe after generation"
INFOTEXT_KEY = "ClipProbe"
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')  # re_param of 1.10


def _quote(text: str) -> str:
    try:
        from clipprobe_ext.webui import compat

        return compat.infotext_utils().quote(text)
    except Exception:
        import json

        return json.dumps(text, ensure_ascii=False) if ("," in text or ":" in text) else text


def append_to_infotext(infotext: str, summary: str) -> str:
    """``infotext`` with ``ClipProbe: <summary>`` added as one more parameter."""
    value = f"{INFOTEXT_KEY}: {_quote(summary)}"
    if not infotext.strip():
        return value
    last = infotext.rstrip("\n").rpartition("\n")[2]
    if len(_PARAM.findall(last)) >= 3:  # the WebUI's own test for the parameter line
        return f"{infotext.rstrip()}, {value}"
    return f"{infotext.rstrip()}\n{value}"


def probe_processed(p: Any, processed: Any) -> int:
    """Analyse each generated image of ``processed``; returns how many got a summary."""
    from clipprobe_ext import render
    from clipprobe_ext.webui import model_source, settings

    first = int(getattr(processed, "index_of_first_image", 0) or 0)
    images = list(getattr(processed, "images", None) or [])
    infotexts = getattr(processed, "infotexts", None)
    prompts = list(getattr(processed, "all_prompts", None) or [])
    fallback = getattr(processed, "prompt", None) or getattr(p, "prompt", "") or ""
    from modules import shared

    state = getattr(shared, "state", None)
    done = 0
    for i in range(first, len(images)):
        if state is not None and (getattr(state, "interrupted", False)):
            break
        k = i - first
        prompt = prompts[k] if k < len(prompts) else fallback
        image = images[i]
        if not hasattr(image, "convert") or not (prompt or "").strip():
            continue
        try:
            report = model_source.run_analysis(
                [image.convert("RGB")],
                prompt,
                settings.probe_options(),
                None,
                labels=[f"image {k + 1}"],
                inside_generation=True,
            )
            summary = render.summary_text(report)
        except Exception as exc:  # never break a generation
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning(
                "ClipProbe: probe after generation failed for image %d: %s: %s",
                k + 1,
                type(exc).__name__,
                message,
            )
            continue
        if isinstance(infotexts, list) and i < len(infotexts):
            old = infotexts[i]
            infotexts[i] = append_to_infotext(old or "", summary)
            if i == 0 and getattr(processed, "info", None) == old:  # info is infotexts[0]
                processed.info = infotexts[i]
        done += 1
    return done


class ClipProbeScript(scripts.Script):
    sorting_priority = 100

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr
        from modules.ui_components import InputAccordion

        from clipprobe_ext.webui import settings

        with InputAccordion(
            settings.probe_after_generation(), label=LABEL, elem_id=self.elem_id("enabled")
        ) as enabled:
            gr.HTML(
                "<p>After the batch, ClipProbe asks CLIP how well each word of the prompt "
                "shows in every generated image and adds a one-line summary (weak and "
                "prunable words) to the image's generation info.  Uses the model and "
                "options of Settings → ClipProbe.</p>"
            )
        # The default is a ClipProbe setting: not frozen by the WebUI's ui-config.json.
        enabled.do_not_save_to_config = True
        enabled.accordion.do_not_save_to_config = True
        return [enabled]

    def postprocess(self, p: Any, processed: Any, *args: Any) -> None:
        if not args or not args[0]:
            return
        try:
            probe_processed(p, processed)
        except Exception as exc:  # never break a generation
            log.warning("ClipProbe: probe after generation failed: %s: %s", type(exc).__name__, exc)
