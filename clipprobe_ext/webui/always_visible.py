"""'ClipProbe: probe after generation': an always-visible section in txt2img and img2img.

Public API: ``ProbeAfterGeneration``, the section's hooks; ``scripts/clipprobe.py``
defines ``ClipProbeScript`` on it and on the WebUI's ``Script`` class (``host.script_base()``),
in its own namespace, which is where the WebUI looks for Script classes;
``probe_report(p, image) -> ProbeReport | None`` (the analysis of the image being
post-processed, whose ``report.summary.summary_text`` goes into its infotext) and
``ImageSummary`` (the value ClipProbe keeps under ``p.extra_generation_params["ClipProbe"]``
during a generation).

The section is an ``InputAccordion`` (a checkbox that opens/closes the accordion), off by
default unless Settings -> ClipProbe -> "Probe after generation" says otherwise.  When it
is off, every hook only makes sure ``p.extra_generation_params`` has no ``ClipProbe`` key
and returns: no model is loaded and nothing is imported.

When on, each generated image is analysed in ``Script.postprocess_image`` (1.10 calls it
per image with ``p.batch_index`` set, inside the generation job, which already holds the
WebUI's queue lock, hence ``session.analyze(..., inside_generation=True)``) against its own
prompt ``p.prompts[p.batch_index]``, with the default model and options from Settings.
The summary goes into the generation parameters, not into finished text: 1.10 builds
every infotext of an image (the saved file's, ``processed.infotexts[i]``, the PNG
``parameters`` chunk) with ``create_infotext``, which adds ``p.extra_generation_params``
and quotes values like any other parameter, so ``ClipProbe: "<summary>"`` is written into
the saved image file and shown under the image, and the line stays parseable by
``parse_generation_parameters``.

That dict is shared by the whole job, so the value is an ``ImageSummary``: a callable
(``create_infotext`` calls callables with its locals) that returns the summary only for
the infotext of the image it was computed for (same ``p.iteration``, same batch index)
and None otherwise, i.e. nothing for ``params.txt``, a save made before
``postprocess_image`` (e.g. "before face restoration"), or an image whose analysis failed
or was skipped.  The grid's infotext (``use_main_prompt``), which the WebUI shows under
its gallery first after a batch, gets the batch's line: every probed picture's verdicts
counted (``report.summary.batch_summary_text``).  It is emptied in ``postprocess_batch`` and the key
is removed in ``process`` and ``postprocess``, so nothing reaches the next batch or the
next generation (scripts like X/Y/Z plot run many generations on copies of ``p`` that
share the dict).  Any failure is logged as one warning line; the generation is never
affected.

When the CLIP cannot be loaded at all (``ModelUnavailable``: not downloaded,
offline, unreadable), the rest of the generation is skipped: one warning line for the
generation (no traceback), and every infotext of the generation says
``ClipProbe: "skipped, <reason>"``, so the user sees why there is no summary.
"""

from __future__ import annotations

import logging
from typing import Any

from clipprobe_ext.errors import first_line
from clipprobe_ext.report.summary import batch_summary_text, summary_text, verdict_groups
from clipprobe_ext.webui import host, session, settings
from clipprobe_ext.webui.clip_source import ModelUnavailable

log = logging.getLogger("clipprobe")

TITLE = "ClipProbe"
LABEL = "ClipProbe: probe after generation"
INFOTEXT_KEY = "ClipProbe"
REASON_CHARS = 160  # the skip note's reason, cut: the full message is in the log


class ImageSummary:
    """``p.extra_generation_params["ClipProbe"]``: the summary of the current image only.

    ``create_infotext(p, ..., index=i)`` calls it as ``value(**locals())``; it answers the
    summary set for (``iteration``, ``batch_index``) when asked for that image's infotext,
    and None (the WebUI then leaves the parameter out) for anything else, except the grid's
    (``use_main_prompt``): the line of every picture probed so far.  Once the generation
    is ``skip``ped it answers ``skipped, <reason>`` for every infotext.
    """

    __slots__ = ("iteration", "batch_index", "text", "skipped", "pictures")

    def __init__(self) -> None:
        self.skipped: str | None = None
        self.pictures: list[dict[str, list[str]]] = []  # each probed picture's verdicts
        self.clear()

    def skip(self, reason: str) -> None:
        self.clear()
        self.skipped = reason

    def clear(self) -> None:
        self.iteration: int | None = None
        self.batch_index: int | None = None
        self.text: str | None = None

    def set(
        self,
        iteration: int,
        batch_index: int,
        text: str,
        groups: dict[str, list[str]] | None = None,
    ) -> None:
        """The current image's summary; ``groups`` (its ``verdict_groups``) count towards
        the grid's line."""
        self.iteration, self.batch_index, self.text = iteration, batch_index, text
        if groups is not None:
            self.pictures.append(groups)

    def __call__(
        self, p: Any = None, index: Any = None, use_main_prompt: bool = False, **kwargs: Any
    ) -> str | None:
        if self.skipped is not None:
            return f"skipped, {self.skipped}"
        if use_main_prompt:
            return batch_summary_text(self.pictures) if self.pictures else None
        if self.text is None or p is None:
            return None
        if index != self.batch_index or getattr(p, "batch_index", None) != self.batch_index:
            return None
        if (getattr(p, "iteration", 0) or 0) != self.iteration:
            return None
        return self.text

    def __repr__(self) -> str:
        return (
            f"ImageSummary({self.iteration}, {self.batch_index}, {self.text!r}, "
            f"skipped={self.skipped!r}, pictures={len(self.pictures)})"
        )


def _params(p: Any) -> dict | None:
    params = getattr(p, "extra_generation_params", None)
    return params if isinstance(params, dict) else None


def _drop(p: Any) -> None:
    """No ``ClipProbe`` key in ``p.extra_generation_params`` (cheap; imports nothing)."""
    params = _params(p)
    if params is not None:
        params.pop(INFOTEXT_KEY, None)


def _slot(p: Any) -> ImageSummary | None:
    """This generation's ``ImageSummary`` in ``p.extra_generation_params`` (installed if missing)."""
    params = _params(p)
    if params is None:
        return None
    slot = params.get(INFOTEXT_KEY)
    if not isinstance(slot, ImageSummary):
        slot = params[INFOTEXT_KEY] = ImageSummary()
    return slot


def _enabled(args: tuple) -> bool:
    return bool(args) and bool(args[0])


def _index(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def short_reason(exc: BaseException) -> str:
    reason = first_line(exc, empty=type(exc).__name__)
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


def probe_report(p: Any, image: Any) -> Any:
    """The analysis of ``image`` (the one at ``p.batch_index``) against its prompt, or None.

    Failures are logged as one warning line and give None; ``ModelUnavailable`` (the CLIP
    cannot load: no use trying the next image) is raised for the caller to skip the rest.
    """
    state = host.state()
    if state is not None and getattr(state, "interrupted", False):
        return None
    index = _index(getattr(p, "batch_index", 0))
    prompts = list(getattr(p, "prompts", None) or [])
    prompt = prompts[index] if 0 <= index < len(prompts) else getattr(p, "prompt", "")
    if not isinstance(prompt, str) or not prompt.strip() or not hasattr(image, "convert"):
        return None
    number = _index(getattr(p, "iteration", 0)) * _index(getattr(p, "batch_size", 1)) + index + 1
    try:
        report, _ = session.analyze(
            [image.convert("RGB")],
            prompt,
            settings.probe_options(),
            None,
            labels=[f"image {number}"],
            inside_generation=True,
        )
    except ModelUnavailable:
        raise
    except Exception as exc:  # never break a generation
        message = first_line(exc, empty="")
        log.warning(
            "ClipProbe: probe after generation failed for image %d: %s: %s",
            number,
            type(exc).__name__,
            message,
        )
        return None
    return report


class ProbeAfterGeneration:
    """The hooks of ``ClipProbeScript``; the WebUI's ``Script`` base supplies the rest
    (``elem_id``, the hooks ClipProbe does not use)."""

    sorting_priority = 100

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> Any:
        return host.always_visible()

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        with host.input_accordion(
            settings.probe_after_generation(), label=LABEL, elem_id=self.elem_id("enabled")
        ) as enabled:
            gr.HTML(
                "<p>After each image is generated, ClipProbe asks CLIP how well each word "
                "of its prompt shows in it and adds a one-line summary (weak and prunable "
                "words) to the image's generation info, which is also saved in the image "
                "file.  Uses the model and options of Settings → ClipProbe.</p>"
            )
        # The default is a ClipProbe setting: not frozen by the WebUI's ui-config.json.
        enabled.do_not_save_to_config = True
        enabled.accordion.do_not_save_to_config = True
        return [enabled]

    def process(self, p: Any, *args: Any) -> None:
        _drop(p)  # whatever an earlier generation sharing this dict left behind

    def postprocess_batch(self, p: Any, *args: Any, **kwargs: Any) -> None:
        if not _enabled(args):
            _drop(p)
            return
        slot = (_params(p) or {}).get(INFOTEXT_KEY)
        if isinstance(slot, ImageSummary):
            slot.clear()  # the previous batch's last image is not this batch's

    def postprocess_image(self, p: Any, pp: Any, *args: Any) -> None:
        if not _enabled(args):
            _drop(p)
            return
        try:
            slot = _slot(p)
            if slot is None or slot.skipped is not None:
                return
            slot.clear()  # set per image: a failed or skipped one gets no summary
            try:
                report = probe_report(p, getattr(pp, "image", None))
            except ModelUnavailable as exc:
                slot.skip(short_reason(exc))
                log.warning(
                    "ClipProbe: probe after generation skipped for this generation: %s",
                    first_line(exc, empty=type(exc).__name__),
                )
                return
            summary = " ".join(summary_text(report).split()) if report is not None else ""
            if summary:  # one line, always
                slot.set(
                    _index(getattr(p, "iteration", 0)),
                    _index(getattr(p, "batch_index", 0)),
                    summary,
                    verdict_groups(report),
                )
        except Exception as exc:  # never break a generation
            log.warning("ClipProbe: probe after generation failed: %s: %s", type(exc).__name__, exc)

    def postprocess(self, p: Any, processed: Any, *args: Any) -> None:
        _drop(p)  # every infotext has been built; nothing may reach the next generation
