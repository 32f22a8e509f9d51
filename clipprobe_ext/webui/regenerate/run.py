"""Regenerating a picture through the WebUI's own processing, under the session, and comparing.

Public API:

- ``read_parameters(infotext) -> PictureParameters``: what the WebUI reads from the
  infotext (its parser, samplers, settings overrides, the refiner's checkpoint).
- ``plan_regeneration(infotext, prompt, *, allow_txt2img=False,
  use_original_checkpoint=True) -> RegenerationPlan``: the request and its warnings,
  without running anything (the tab shows the warnings before the click).
- ``generate(plan) -> Regeneration``: ``process_images`` on the plan; for a ``session.run``
  job (the queue lock held).
- ``regenerate(infotext, prompt, ..., id_task=None) -> Regeneration``: ``generate`` as a
  session job of its own (``JOB``), with the WebUI's progress bookkeeping.
- ``original_picture(image, infotext=None) -> (picture, infotext, Resolved)``: the
  picture an infotext describes (a WebUI grid carries its first picture's parameters).
- ``regenerate_and_compare(image, prompt, ...) -> (Regeneration, Comparison)``: one
  session job: generate, then ``compare.compare`` against the analysis the prompt came
  from (or, without one, an analysis of the picture's own prompt) with the chosen CLIP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clipprobe_ext.errors import ClipProbeError, ModelError, first_line
from clipprobe_ext.infotext import parse_parameters
from clipprobe_ext.webui import host, session
from clipprobe_ext.webui.regenerate.checkpoint import check_checkpoint
from clipprobe_ext.webui.regenerate.plan import (
    FIELD_LABELS,
    PictureParameters,
    RegenerationPlan,
    check_request,
    plan_request,
)

log = logging.getLogger("clipprobe")

JOB = "clipprobe-regenerate"
NO_PARAMETERS_ASK = "it cannot be generated again without them"
NO_CHECKPOINT = (
    "The WebUI has no checkpoint selected (Settings: Stable Diffusion checkpoint), so it "
    "cannot generate: choose one first."
)


@dataclass
class Regeneration:
    plan: RegenerationPlan
    image: Any  # PIL image
    infotext: str  # the regenerated picture's own generation parameters


def read_parameters(infotext: str) -> PictureParameters:
    """The infotext as the WebUI reads it for a paste into txt2img."""
    written = parse_parameters(infotext)
    params = _parse(infotext)
    overrides = {
        setting: value
        for _label, setting, value in host.override_settings(params, sorted(FIELD_LABELS))
        if setting != "sd_model_checkpoint"  # decided by check_checkpoint
    }
    refiner = None
    if params.get("Refiner"):
        info = host.closest_checkpoint(params["Refiner"])
        refiner = info.title if info is not None else None
    return PictureParameters(
        written=written.settings,
        negative_prompt=written.negative_prompt,
        params=params,
        samplers=host.samplers_from_infotext(params),
        overrides=overrides,
        setting_labels=frozenset(host.setting_infotext_labels()),
        refiner=refiner,
    )


def _parse(infotext: str) -> dict[str, Any]:
    """The WebUI's parser; Forge's raises a TypeError when no checkpoint is selected
    (``checkpoint in shared.opts.sd_model_checkpoint`` with None): say so instead."""
    try:
        return host.parse_generation_parameters(infotext)
    except TypeError as exc:
        if getattr(host.opts(), "sd_model_checkpoint", None) is None:
            raise ClipProbeError(NO_CHECKPOINT) from exc
        raise


def plan_regeneration(
    infotext: str,
    prompt: str,
    *,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
) -> RegenerationPlan:
    """Processing arguments for ``prompt`` with every other setting from ``infotext``;
    ``ClipProbeError`` for parameters it cannot regenerate from, and for an img2img
    picture unless ``allow_txt2img``."""
    check_request(infotext, prompt)
    picture = read_parameters(infotext)
    checkpoint = check_checkpoint(
        picture.written.get("Model hash"), picture.written.get("Model"), use_original_checkpoint
    )
    return plan_request(picture, prompt, checkpoint, allow_txt2img=allow_txt2img)


def generate(plan: RegenerationPlan) -> Regeneration:
    """Generate once through the WebUI's processing; inside a session job."""
    opts = host.opts()
    try:
        p = host.txt2img(
            outpath_samples=getattr(opts, "outdir_samples", "")
            or getattr(opts, "outdir_txt2img_samples", ""),
            outpath_grids=getattr(opts, "outdir_grids", "")
            or getattr(opts, "outdir_txt2img_grids", ""),
            do_not_save_samples=True,
            do_not_save_grid=True,
            override_settings=dict(plan.override_settings),
            **plan.params,
        )
        p.scripts = None  # extension scripts are not re-run (see plan's doc)
        try:
            processed = host.process_images(p)
        finally:
            close = getattr(p, "close", None)
            if callable(close):
                close()
            try:
                host.clear_total_progress()
            except Exception:
                log.debug("ClipProbe: could not reset the total progress bar", exc_info=True)
    except ClipProbeError:
        raise
    except Exception as exc:
        log.exception("ClipProbe: the regeneration failed")
        raise ModelError(
            f"The WebUI could not generate the picture: {type(exc).__name__}: "
            f"{first_line(exc, empty='')}"
        ) from exc
    if not processed.images:
        raise ModelError("The WebUI's generation returned no picture (was it interrupted?).")
    infotexts = getattr(processed, "infotexts", None) or [getattr(processed, "info", "")]
    return Regeneration(plan, processed.images[0], infotexts[0])


def _task(id_task: str | None) -> session.Task:
    """The click's task, or one of its own (the API's request has none)."""
    return session.Task(id_task or host.create_task_id("clipprobe"))


def regenerate(
    infotext: str,
    prompt: str,
    *,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
    id_task: str | None = None,
    plan: RegenerationPlan | None = None,
) -> Regeneration:
    """Generate once as a job of its own; raises ``ClipProbeError``."""
    plan = plan or plan_regeneration(
        infotext,
        prompt,
        allow_txt2img=allow_txt2img,
        use_original_checkpoint=use_original_checkpoint,
    )
    with _task(id_task) as task:
        return session.run(lambda job: generate(plan), clip=False, job=JOB, task=task)


def original_picture(
    image: Any, infotext: str | None = None, ask: str = NO_PARAMETERS_ASK
) -> tuple[Any, str, Any]:
    """(the picture ``infotext`` describes, that infotext, every picture of ``image``).

    ``infotext`` defaults to the image's own parameters.  Read through ``inputs.resolve``
    as every entry point reads images: a WebUI grid carries its first picture's parameters,
    so that first picture is the one to regenerate and compare; the pictures are the batch
    an analysis of the image measures."""
    from clipprobe_ext.inputs import resolve

    given = infotext if infotext and infotext.strip() else None
    prompt = parse_parameters(given).prompt if given is not None else None
    found = resolve(image, prompt, "", name="the picture", ask=ask)
    text = given if given is not None else found.parameters.raw
    return found.pictures[0], text, found


def regenerate_and_compare(
    image: Any,
    pruned_prompt: str,
    *,
    infotext: str | None = None,
    model_name: str | None = None,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
    id_task: str | None = None,
    report: Any = None,
) -> tuple[Regeneration, Any]:
    """Regenerate ``image`` (its infotext, or ``infotext``) with ``pruned_prompt`` and compare
    against ``report``, the analysis the pruned prompt came from (None: the infotext's
    prompt is analysed, with the same CLIP, in the same job)."""
    from clipprobe_ext.compare import compare
    from clipprobe_ext.probe import ProbeOptions, analyze

    original, text, _ = original_picture(image, infotext)
    plan = plan_regeneration(
        text,
        pruned_prompt,
        allow_txt2img=allow_txt2img,
        use_original_checkpoint=use_original_checkpoint,
    )
    original_prompt = parse_parameters(text).prompt

    def work(job: session.Job) -> tuple[Regeneration, Any]:
        result = generate(plan)
        encoder = job.encoder
        job.show("Measuring the two pictures")
        options = ProbeOptions(contribution=False, prune=False)  # the presence is enough
        analysed = report or analyze([original.convert("RGB")], original_prompt, encoder, options)
        return result, compare(analysed, original, result.image, pruned_prompt, encoder)

    with _task(id_task) as task:
        return session.run(work, model=model_name, job=JOB, task=task)
