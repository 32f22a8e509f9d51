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
  from (or, without one, an analysis of the picture's own prompt) with the chosen CLIP;
  ``seeds=N`` also compares both prompts over N seeds (``confirm_over_seeds``).
- ``bring_in(image, phrases, ...) -> BringInRun``: one session job: the bring-in variants
  of the analysed prompt generated with the picture's own plan (only the prompt changes)
  and measured by ``analysis.bring_in``.
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
class SeedConfirmation:
    """Both prompts over the same seeds, each phrase compared over the pairs."""

    seeds: list[int]  # the seeds (or variation seeds) used, in order
    comparisons: list[Any]  # analysis.seeds.SeedComparison, one per measurable phrase
    original_images: list[Any]  # the original prompt's pictures, seed by seed
    candidate_images: list[Any]  # the candidate prompt's, seed by seed (the first: image)


@dataclass
class Regeneration:
    plan: RegenerationPlan
    image: Any  # PIL image
    infotext: str  # the regenerated picture's own generation parameters
    seeds: SeedConfirmation | None = None  # with more than one seed


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
    seeds: int = 1,
) -> tuple[Regeneration, Any]:
    """Regenerate ``image`` (its infotext, or ``infotext``) with ``pruned_prompt`` and compare
    against ``report``, the analysis the pruned prompt came from (None: the infotext's
    prompt is analysed, with the same CLIP, in the same job).

    ``seeds`` > 1: both prompts are also generated with the next seeds (``plan.with_seed``)
    and each phrase's presence is compared over the pairs (``Regeneration.seeds``)."""
    from clipprobe_ext.analysis.seeds import MAX_SEEDS
    from clipprobe_ext.compare import compare
    from clipprobe_ext.probe import ProbeOptions, analyze

    if not 1 <= int(seeds) <= MAX_SEEDS:
        raise ClipProbeError(f"Between 1 and {MAX_SEEDS} seeds, not {seeds}.")

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
        if seeds > 1:
            result.seeds = confirm_over_seeds(job, plan, analysed, result.image, int(seeds))
        return result, compare(analysed, original, result.image, pruned_prompt, encoder)

    with _task(id_task) as task:
        return session.run(work, model=model_name, job=JOB, task=task)


@dataclass
class BringInRun:
    """A bring-in through the WebUI: the engine's result and the plan its variants ran on."""

    result: Any  # analysis.bring_in.BringIn
    plan: RegenerationPlan
    infotexts: list[str]  # each generated variant's own generation parameters
    report: Any  # the analysis the phrases were picked in


def analysed_report(report: Any, original: Any, prompt: str, encoder: Any) -> Any:
    """``report`` when it analysed ``prompt`` with ``encoder``'s model, else an analysis
    of the picture with that prompt (presence is all the comparisons need)."""
    from clipprobe_ext.probe import ProbeOptions, analyze

    if report is not None and report.prompt == prompt and report.model_id == encoder.model_id:
        return report
    options = ProbeOptions(contribution=False, prune=False)
    return analyze([original.convert("RGB")], prompt, encoder, options)


def bring_in(
    image: Any,
    phrases: list[int | str],
    *,
    prompt: str | None = None,
    infotext: str | None = None,
    model_name: str | None = None,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
    id_task: str | None = None,
    report: Any = None,
) -> BringInRun:
    """Generate ``image``'s prompt's bring-in variants for ``phrases`` with the picture's
    own seed and settings (one plan, its prompt changed per variant) and measure each
    (``analysis.bring_in``), as one session job: Interrupt stops it after the picture in
    progress, keeping the variants done.  ``prompt``: the analysed prompt (default: the
    infotext's); ``report``: its analysis, when there is one."""
    from clipprobe_ext.analysis import bring_in as engine
    from clipprobe_ext.webui.regenerate.plan import with_prompt

    original, text, _ = original_picture(image, infotext)
    analysed = prompt if prompt and prompt.strip() else parse_parameters(text).prompt
    plan = plan_regeneration(
        text,
        analysed,
        allow_txt2img=allow_txt2img,
        use_original_checkpoint=use_original_checkpoint,
    )
    infotexts: list[str] = []

    def work(job: session.Job) -> BringInRun:
        encoder = job.encoder
        job.show("Measuring the picture")
        measured = analysed_report(report, original, analysed, encoder)

        def make(variant_prompt: str) -> Any:
            made = generate(with_prompt(plan, variant_prompt))
            infotexts.append(made.infotext)
            return made.image

        result = engine.bring_in(
            measured,
            original.convert("RGB"),
            phrases,
            make,
            encoder,
            stop=job.interrupted,
            progress=job.show,
        )
        return BringInRun(result, plan, infotexts[: len(result.results)], measured)

    with _task(id_task) as task:
        return session.run(work, model=model_name, job=JOB, task=task)


def confirm_over_seeds(
    job: session.Job, plan: RegenerationPlan, report: Any, first: Any, seeds: int
) -> SeedConfirmation:
    """The candidate (``plan``) and the analysed prompt, each generated with ``seeds``
    seeds (``first``: the candidate's picture with the plan's own seed, already made),
    and every measurable phrase of ``report`` compared over the pairs."""
    from clipprobe_ext.analysis.seeds import compare_over_seeds
    from clipprobe_ext.compare import phrase_presence
    from clipprobe_ext.webui.regenerate.plan import with_prompt, with_seed

    encoder = job.encoder
    if phrase_presence(report, [first], encoder) is None:
        raise ModelError(
            "The CLIP model is uncalibrated (no presence): comparing over seeds needs it; "
            "calibrate it first (clipprobe calibrate)."
        )
    original_plan = with_prompt(plan, report.prompt)
    candidates, originals = [first], []
    total = 2 * seeds - 1
    for k in range(seeds):
        for prompt_plan, pictures in ((original_plan, originals), (plan, candidates)):
            if pictures is candidates and k == 0:
                continue
            done = len(originals) + len(candidates) - 1
            job.progress(f"Seed {k + 1} of {seeds}: picture {done + 1} of {total}", done / total)
            pictures.append(generate(with_seed(prompt_plan, k)).image)
    before = phrase_presence(report, originals, encoder)
    after = phrase_presence(report, candidates, encoder)
    texts = [p.text for p in report.measurable]
    key = "subseed" if plan.params.get("subseed_strength") else "seed"
    used = [int(with_seed(plan, k).params[key]) for k in range(seeds)]
    return SeedConfirmation(used, compare_over_seeds(texts, before, after), originals, candidates)
