"""Generate a picture again with the pruned prompt, the way the WebUI would, and compare.

Public API:

- ``plan_regeneration(infotext, prompt, *, allow_txt2img=False, use_original_checkpoint=True)
  -> RegenerationPlan``: the ``StableDiffusionProcessingTxt2Img`` arguments, settings
  overrides and warnings, without running anything (the tab shows the warnings before
  the click).  Raises ``ClipProbeError`` for parameters it cannot regenerate from, and
  for an img2img picture unless ``allow_txt2img``.
- ``regenerate(infotext, prompt, ..., id_task=None) -> Regeneration``: runs the plan
  through ``modules.processing.process_images`` under the WebUI's queue lock, with its
  progress (``shared.state`` job, ``progress.add_task_to_queue/start_task/finish_task``).
- ``regenerate_and_compare(image, pruned_prompt, ...) -> (Regeneration, Comparison)``:
  the above, then ``clipprobe_ext.compare.compare`` against the analysis' report (or,
  without one, an analysis of the picture's own prompt) with the chosen CLIP.
- ``register_routes(app)``: ``POST /clipprobe/v1/regenerate`` (see ``RegenerateRequest``).

How the infotext becomes processing arguments mirrors what the WebUI does when a user
pastes the picture's parameters into txt2img ("Send to txt2img") and presses Generate,
and what its own API does with ``infotext`` (``Api.apply_infotext`` in 1.10):
``infotext_utils.parse_generation_parameters`` (the WebUI's own: defaults such as
``Clip skip: 1``, old hires-fix sizes, version back-compat), then the txt2img paste
fields (``ui.py``, the Seed, Sampler and Refiner scripts: size, CFG, steps, seed and
variation seed, sampler and scheduler through ``sd_samplers.get_*_from_infotext``, hires
fix), and the settings the infotext names through ``infotext_utils.get_override_settings``
(clip skip, RNG, ENSD, emphasis, VAE, ...) as ``override_settings``, which
``process_images`` applies for the run and restores afterwards.  Differences, on purpose:

- every field is taken from the infotext (Settings' "infotext_skip_pasting" is ignored):
  the point is the same picture;
- the checkpoint: when the infotext's "Model hash" (else "Model") names a checkpoint
  the WebUI knows, it is used for this run even where "Do not change selected model when
  reading generation parameters" is on; a mismatch is always reported;
- the prompt is the pruned prompt and styles are not re-applied (the infotext's prompt
  already holds them); the negative prompt is the infotext's, as written;
- extension scripts (ControlNet, ADetailer, ...) are not run: their infotext keys are
  listed in ``not_reproduced``; the picture is generated alone (batch size 1: the
  infotext's seed is that picture's own seed) and not saved to the outputs folder.

img2img pictures: the WebUI's paste rule enables hires fix when "Denoising strength" is
present and a hires key is too; "Denoising strength" without any hires key (or an
img2img-only key such as "Mask blur") means img2img, whose input picture ClipProbe does
not have.  Such a picture is refused unless ``allow_txt2img``, which regenerates it with
txt2img and the same settings (hires fix off).
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from clipprobe_ext.errors import ClipProbeError, ModelError, PromptError, first_line
from clipprobe_ext.webui.api import MAX_IMAGE_CHARS, MAX_PROMPT_CHARS, PYDANTIC_V2

log = logging.getLogger("clipprobe")

ROUTE = "/clipprobe/v1/regenerate"
JOB = "clipprobe-regenerate"

#: Keys that only img2img writes into an infotext (modules/img2img.py, processing.py 1.10).
IMG2IMG_KEYS = (
    "Mask blur",
    "Mask mode",
    "Masked content",
    "Inpaint area",
    "Masked area padding",
    "Mask only",
    "Image CFG scale",
    "Init image hash",
    "Noise multiplier",
    "Soft inpainting",
)
HIRES_KEYS = ("Hires upscale", "Hires upscaler", "Hires resize", "First pass size")

#: infotext keys this module turns into processing arguments (or reads for a warning)
_CONSUMED = {
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "Variation seed",
    "Variation seed strength",
    "Seed resize from",
    "Denoising strength",
    "Hires upscale",
    "Hires resize",
    "Hires upscaler",
    "Hires steps",
    "Hires checkpoint",
    "Hires sampler",
    "Hires schedule type",
    "Hires prompt",
    "Hires negative prompt",
    "Refiner",
    "Refiner switch at",
    "Batch size",
    "Batch pos",
    "Version",
    "Lora hashes",
    "TI hashes",
    "Hypernet",
    "Hypernet strength",
    "Hypernet hash",
    "Emphasis",
    "First pass size",
}
REQUIRED = ("Steps", "Seed", "Size")

# A1111 1.10.1 txt2img paste fields (ui.py and the Seed / Sampler / Refiner scripts),
# as (processing argument, infotext label, type).  Sampler and scheduler go through
# sd_samplers; enable_hr, seeds and the refiner need the rules in ``_fields``.
_PLAIN_FIELDS = (
    ("cfg_scale", "CFG scale", float),
    ("width", "Size-1", int),
    ("height", "Size-2", int),
    ("steps", "Steps", int),
    ("seed", "Seed", int),
    ("hr_scale", "Hires upscale", float),
    ("hr_upscaler", "Hires upscaler", str),
    ("hr_second_pass_steps", "Hires steps", int),
    ("hr_resize_x", "Hires resize-1", int),
    ("hr_resize_y", "Hires resize-2", int),
    ("hr_prompt", "Hires prompt", str),
    ("hr_negative_prompt", "Hires negative prompt", str),
)


@dataclass(frozen=True)
class CheckpointCheck:
    """The infotext's checkpoint against the loaded one."""

    wanted_hash: str | None
    wanted_name: str | None
    loaded_title: str | None
    loaded_hash: str | None
    status: str  # same, switch, kept, missing, unknown (infotext names none), no model
    use_title: str | None = None  # checkpoint title passed as override, when switching
    message: str = ""


@dataclass
class RegenerationPlan:
    kind: str  # "txt2img", or "img2img" (regenerated as txt2img only when allowed)
    params: dict[str, Any]  # keyword arguments of StableDiffusionProcessingTxt2Img
    override_settings: dict[str, Any]
    checkpoint: CheckpointCheck
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_reproduced: list[str] = field(default_factory=list)  # infotext keys not passed on

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Regeneration:
    plan: RegenerationPlan
    image: Any  # PIL image
    infotext: str  # the regenerated picture's own generation parameters


# ----------------------------------------------------------------------------- planning


def is_img2img(settings: Mapping[str, str]) -> bool:
    """The WebUI's own tell, on the infotext's keys as written (before defaults are added)."""
    if any(key in settings for key in IMG2IMG_KEYS):
        return True
    return "Denoising strength" in settings and not any(k in settings for k in HIRES_KEYS)


def plan_regeneration(
    infotext: str,
    prompt: str,
    *,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
) -> RegenerationPlan:
    """Processing arguments for ``prompt`` with every other setting from ``infotext``."""
    from clipprobe_ext.infotext import parse_parameters
    from clipprobe_ext.webui import compat

    if not (infotext or "").strip():
        raise ClipProbeError(
            "The picture holds no generation parameters, so it cannot be generated again."
        )
    if not (prompt or "").strip():
        raise PromptError("The prompt to regenerate with is empty.")
    written = parse_parameters(infotext)
    raw = written.settings
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ClipProbeError(
            "The picture's generation parameters lack " + ", ".join(missing) + ": ClipProbe "
            "cannot generate it again the same way."
        )
    img2img = is_img2img(raw)
    if img2img and not allow_txt2img:
        raise ClipProbeError(
            "This picture was made with img2img (its parameters have a denoising strength but "
            "no hires fix); its input picture is not available, so it cannot be regenerated "
            "the same way. Allow txt2img with the same settings to try anyway."
        )
    utils = compat.infotext_utils()
    params = dict(_parse_generation_parameters(utils, infotext))
    fields, notes = _fields(params, raw, img2img)
    fields.update(prompt=prompt, negative_prompt=written.negative_prompt)
    overrides = _override_settings(utils, params)
    check = check_checkpoint(raw.get("Model hash"), raw.get("Model"), use_original_checkpoint)
    warnings = []
    if img2img:
        warnings.append(
            "Made with img2img: regenerated with txt2img and the same settings, without its "
            "input picture, so the pictures can differ for that reason alone."
        )
    if check.status != "same":
        warnings.append(check.message)
    if check.status == "switch" and check.use_title:
        overrides["sd_model_checkpoint"] = check.use_title
    not_reproduced = sorted(k for k in raw if k not in _CONSUMED and k not in _override_labels())
    if not_reproduced:
        notes.append(
            "Not reproduced (extension scripts are not run): " + ", ".join(not_reproduced) + "."
        )
    return RegenerationPlan(
        kind="img2img" if img2img else "txt2img",
        params=fields,
        override_settings=overrides,
        checkpoint=check,
        warnings=warnings,
        notes=notes,
        not_reproduced=not_reproduced,
    )


def _fields(
    params: Mapping[str, Any], raw: Mapping[str, str], img2img: bool
) -> tuple[dict[str, Any], list[str]]:
    from modules import sd_samplers

    notes: list[str] = []
    out: dict[str, Any] = {"batch_size": 1, "n_iter": 1, "styles": []}
    for name, label, kind in _PLAIN_FIELDS:
        value = params.get(label)
        if value is not None and value != "":
            out[name] = _cast(kind, value, label)
    out["sampler_name"] = sd_samplers.get_sampler_from_infotext(params)
    out["scheduler"] = sd_samplers.get_scheduler_from_infotext(params)
    # Seed script: the variation seed counts only with a strength above 0.
    if "Variation seed" in params or "Seed resize from-1" in params:
        strength = _cast(float, params.get("Variation seed strength", 0), "Variation seed strength")
        if strength > 0 and "Variation seed" in params:
            out["subseed"] = _cast(int, params["Variation seed"], "Variation seed")
            out["subseed_strength"] = strength
        w = _cast(int, params.get("Seed resize from-1", 0), "Seed resize from")
        h = _cast(int, params.get("Seed resize from-2", 0), "Seed resize from")
        if w > 0 and h > 0:
            out["seed_resize_from_w"], out["seed_resize_from_h"] = w, h
    # Hires fix: the paste rule of ui.py, on the keys as the infotext wrote them.
    hires = "Denoising strength" in raw and any(k in raw for k in HIRES_KEYS) and not img2img
    out["enable_hr"] = hires
    if hires:
        out["denoising_strength"] = _cast(float, params["Denoising strength"], "Denoising strength")
        checkpoint = params.get("Hires checkpoint", "Use same checkpoint")
        out["hr_checkpoint_name"] = None if checkpoint == "Use same checkpoint" else checkpoint
        hr_sampler = sd_samplers.get_hr_sampler_from_infotext(params)
        hr_scheduler = sd_samplers.get_hr_scheduler_from_infotext(params)
        out["hr_sampler_name"] = None if hr_sampler == "Use same sampler" else hr_sampler
        out["hr_scheduler"] = None if hr_scheduler == "Use same scheduler" else hr_scheduler
        if out.get("hr_prompt"):
            notes.append(
                "The original used its own hires prompt; it is kept as it was (only the "
                "first pass uses the pruned prompt)."
            )
    else:
        for name in ("hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x"):
            out.pop(name, None)
        for name in ("hr_resize_y", "hr_prompt", "hr_negative_prompt"):
            out.pop(name, None)
    # Refiner script.
    if params.get("Refiner"):
        from modules import sd_models

        info = sd_models.get_closet_checkpoint_match(params["Refiner"])
        if info is None:
            notes.append(f"The refiner checkpoint {params['Refiner']} is not available: not used.")
        else:
            out["refiner_checkpoint"] = info.title
            out["refiner_switch_at"] = _cast(
                float, params.get("Refiner switch at", 0.8), "Refiner switch at"
            )
    batch = raw.get("Batch size")
    if batch and batch != "1":
        notes.append(
            f"The original was one of a batch of {batch}; it is regenerated alone with its "
            "own seed."
        )
    return out, notes


def _cast(kind: type, value: Any, label: str) -> Any:
    try:
        if kind is int:
            return int(float(value))
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ClipProbeError(
            f"The picture's generation parameter {label!r} has an unreadable value {value!r}."
        ) from exc


def _override_labels() -> set[str]:
    """Infotext labels that name a setting (OptionInfo(..., infotext=...))."""
    from modules import shared

    labels = {
        info.infotext
        for info in getattr(shared.opts, "data_labels", {}).values()
        if getattr(info, "infotext", None)
    }
    return labels


def _override_settings(utils: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the infotext names, as the WebUI's paste would put them in "Override
    settings" (values equal to the current setting are left out, as there); the checkpoint
    is decided separately (``check_checkpoint``)."""
    handled = {label for _, label, _ in _PLAIN_FIELDS} | {"Sampler", "Schedule type"}
    overrides = {}
    for _label, setting, value in utils.get_override_settings(params, skip_fields=handled):
        if setting != "sd_model_checkpoint":
            overrides[setting] = value
    return overrides


NO_PARAMETERS_ASK = "it cannot be generated again without them"

NO_CHECKPOINT = (
    "The WebUI has no checkpoint selected (Settings: Stable Diffusion checkpoint), so it "
    "cannot generate: choose one first."
)


def _parse_generation_parameters(utils: Any, infotext: str) -> Any:
    """The WebUI's parser; Forge's raises a TypeError when no checkpoint is selected
    (``checkpoint in shared.opts.sd_model_checkpoint`` with None): say so instead."""
    try:
        return utils.parse_generation_parameters(infotext, [])
    except TypeError as exc:
        from modules import shared

        if getattr(shared.opts, "sd_model_checkpoint", None) is None:
            raise ClipProbeError(NO_CHECKPOINT) from exc
        raise


def _loaded_checkpoint() -> Any:
    """The loaded checkpoint's info, without loading a model (``shared.sd_model`` would)."""
    from modules import sd_models

    data = getattr(sd_models, "model_data", None)
    model = getattr(data, "sd_model", None) if data is not None else None
    return getattr(model, "sd_checkpoint_info", None) if model is not None else None


def _hash_matches(info: Any, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    if not wanted:
        return False
    for attr in ("shorthash", "hash"):
        value = getattr(info, attr, None)
        if value and value.lower() == wanted:
            return True
    sha = getattr(info, "sha256", None)
    return bool(sha) and sha.lower().startswith(wanted)


def check_checkpoint(
    wanted_hash: str | None, wanted_name: str | None, switch: bool = True
) -> CheckpointCheck:
    """Compare the infotext's checkpoint with the loaded one; find it when they differ
    (status "switch": load it for the run; with ``switch=False`` "kept": it exists but the
    loaded one is used)."""
    from modules import sd_models

    loaded = _loaded_checkpoint()
    loaded_title = getattr(loaded, "title", None)
    loaded_hash = getattr(loaded, "shorthash", None) or getattr(loaded, "hash", None)
    wanted = f"{wanted_name or '?'} [{wanted_hash}]" if wanted_hash else (wanted_name or "")

    def result(status: str, message: str, use: str | None = None) -> CheckpointCheck:
        return CheckpointCheck(
            wanted_hash, wanted_name, loaded_title, loaded_hash, status, use, message
        )

    if not wanted_hash and not wanted_name:
        return result(
            "unknown",
            "The picture's parameters do not name its checkpoint: it is regenerated with "
            f"the loaded one ({loaded_title or 'none loaded yet'}).",
        )
    if loaded is not None and (
        (wanted_hash and _hash_matches(loaded, wanted_hash))
        or (not wanted_hash and wanted_name in getattr(loaded, "ids", ()))
    ):
        return result("same", f"The loaded checkpoint is the picture's ({loaded_title}).")
    aliases = getattr(sd_models, "checkpoint_aliases", {})
    found = aliases.get(wanted_hash) if wanted_hash else None
    how = "by its hash"
    if found is None and wanted_name:
        candidate = aliases.get(wanted_name)
        # A same-named file whose hash is known and differs is another checkpoint.
        if candidate is not None and not (
            wanted_hash
            and getattr(candidate, "shorthash", None)
            and not _hash_matches(candidate, wanted_hash)
        ):
            found, how = candidate, "by its name only (its hash is not computed yet)"
    current = loaded_title or "none loaded yet"
    if found is not None and not switch:
        return result(
            "kept",
            f"The loaded checkpoint ({current}) is not the picture's ({wanted}); it is used "
            "anyway, as asked, so differences can come from the model too.",
        )
    if found is not None:
        return result(
            "switch",
            f"The loaded checkpoint ({current}) is not the picture's ({wanted}): "
            f"{found.title}, found {how}, is loaded for this run.",
            found.title,
        )
    return result(
        "missing" if loaded is not None else "no model",
        f"The loaded checkpoint ({current}) is not the picture's ({wanted}), which this "
        "WebUI does not have: it is regenerated with the loaded one, so differences can "
        "come from the model too.",
    )


# ----------------------------------------------------------------------------- running


def regenerate(
    infotext: str,
    prompt: str,
    *,
    allow_txt2img: bool = False,
    use_original_checkpoint: bool = True,
    id_task: str | None = None,
    plan: RegenerationPlan | None = None,
) -> Regeneration:
    """Generate once through the WebUI's processing; raises ``ClipProbeError``."""
    from modules import processing, shared

    from clipprobe_ext.webui import compat

    plan = plan or plan_regeneration(
        infotext,
        prompt,
        allow_txt2img=allow_txt2img,
        use_original_checkpoint=use_original_checkpoint,
    )
    progress = compat.progress()
    task = id_task or (progress.create_task_id("clipprobe") if progress is not None else None)
    _progress_call(progress, "add_task_to_queue", task)
    started = False
    try:
        with compat.queue_lock():
            shared.state.begin(job=JOB)
            try:
                _progress_call(progress, "start_task", task)
                started = True
                opts = shared.opts
                p = processing.StableDiffusionProcessingTxt2Img(
                    sd_model=shared.sd_model,
                    outpath_samples=getattr(opts, "outdir_samples", "")
                    or getattr(opts, "outdir_txt2img_samples", ""),
                    outpath_grids=getattr(opts, "outdir_grids", "")
                    or getattr(opts, "outdir_txt2img_grids", ""),
                    do_not_save_samples=True,
                    do_not_save_grid=True,
                    override_settings=dict(plan.override_settings),
                    **plan.params,
                )
                p.scripts = None  # extension scripts are not re-run (see the module doc)
                try:
                    processed = processing.process_images(p)
                finally:
                    close = getattr(p, "close", None)
                    if callable(close):
                        close()
            finally:
                shared.state.end()
                tqdm = getattr(shared, "total_tqdm", None)
                if tqdm is not None:
                    with contextlib.suppress(Exception):
                        tqdm.clear()
    except ClipProbeError:
        raise
    except Exception as exc:
        log.exception("ClipProbe: the regeneration failed")
        raise ModelError(
            f"The WebUI could not generate the picture: {type(exc).__name__}: "
            f"{first_line(exc, empty='')}"
        ) from exc
    finally:
        if not started and progress is not None:
            getattr(progress, "pending_tasks", {}).pop(task, None)
        _progress_call(progress, "finish_task", task)
    if not processed.images:
        raise ModelError("The WebUI's generation returned no picture (was it interrupted?).")
    infotexts = getattr(processed, "infotexts", None) or [getattr(processed, "info", "")]
    return Regeneration(plan, processed.images[0], infotexts[0])


def _progress_call(progress: Any, name: str, task: Any) -> None:
    if progress is None or task is None:
        return
    try:
        getattr(progress, name)(task)
    except Exception:
        log.exception("ClipProbe: progress.%s failed", name)


def measure(fn: Callable[[Any], Any], model_name: str | None = None) -> Any:
    """Run ``fn(encoder)`` with ClipProbe's CLIP under the queue lock, as an analysis runs
    (``model_source.with_encoder``: its memory policy, lowvram handling and errors)."""
    from clipprobe_ext.webui import model_source

    return model_source.with_encoder(model_name, fn)


def original_picture(
    image: Any, infotext: str | None = None, ask: str = NO_PARAMETERS_ASK
) -> tuple[Any, str, Any]:
    """(the picture ``infotext`` describes, that infotext, every picture of ``image``).

    ``infotext`` defaults to the image's own parameters.  Read through ``inputs.resolve``
    as every entry point reads images: a WebUI grid carries its first picture's parameters,
    so that first picture is the one to regenerate and compare; the pictures are the batch
    an analysis of the image measures."""
    from clipprobe_ext.infotext import parse_parameters
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
    prompt is analysed first, with the same CLIP); ``original_picture``: a grid's first
    picture."""
    from clipprobe_ext.compare import compare
    from clipprobe_ext.infotext import parse_parameters
    from clipprobe_ext.probe import ProbeOptions, analyze

    original, text, _ = original_picture(image, infotext)
    plan = plan_regeneration(
        text,
        pruned_prompt,
        allow_txt2img=allow_txt2img,
        use_original_checkpoint=use_original_checkpoint,
    )
    original_prompt = parse_parameters(text).prompt
    result = regenerate(text, pruned_prompt, plan=plan, id_task=id_task)

    def measured(encoder: Any) -> Any:
        options = ProbeOptions(contribution=False, prune=False)  # the presence is enough
        analysed = report or analyze([original.convert("RGB")], original_prompt, encoder, options)
        return compare(analysed, original, result.image, pruned_prompt, encoder)

    comparison = measure(measured, model_name)
    return result, comparison


def png_base64(image: Any, infotext: str | None = None) -> str:
    """The picture as base64 PNG, its generation parameters in the ``parameters`` chunk."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------- HTTP API


class RegenerateRequest(BaseModel):
    image: str = Field(
        ..., min_length=1, max_length=MAX_IMAGE_CHARS, description="base64 or data URL"
    )
    prompt: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="the pruned prompt; default: ClipProbe's suggestion for the picture",
    )
    infotext: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="default: read from the image"
    )
    model: str | None = Field(None, description="CLIP for the measurements; GET /models")
    allow_txt2img: bool = False
    use_original_checkpoint: bool = True
    send_image: bool = True

    if PYDANTIC_V2:
        model_config = {"extra": "forbid"}
    else:

        class Config:
            extra = "forbid"


def regenerate_endpoint(request: RegenerateRequest) -> Any:
    """``POST /clipprobe/v1/regenerate``: errors as the other routes' (400 / 503 JSON)."""
    from clipprobe_ext.images import decode_base64
    from clipprobe_ext.report.comparison import comparison_data
    from clipprobe_ext.webui import api, model_source, settings

    try:
        model = request.model or settings.default_model()
        if model not in model_source.list_models():
            raise api._UnknownModel(
                f"Unknown model '{model}'; GET {api.PREFIX}/models lists the models this "
                "server offers."
            )
        data = decode_base64(request.image, "'image'")
        image, text, found = original_picture(data, request.infotext, ask="send 'infotext'")
        pruned = request.prompt
        report = None
        if not (pruned and pruned.strip()):
            report = model_source.run_analysis(
                found.pictures, found.prompt, settings.probe_options(), model, labels=found.labels
            )
            pruned = report.pruning.pruned_prompt if report.pruning is not None else ""
            if not pruned.strip() or pruned == found.prompt:
                raise PromptError(
                    "ClipProbe suggests no shorter prompt for this picture; send 'prompt'."
                )
        result, comparison = regenerate_and_compare(
            image,
            pruned,
            infotext=text,
            model_name=model,
            allow_txt2img=request.allow_txt2img,
            use_original_checkpoint=request.use_original_checkpoint,
            report=report,
        )
    except ClipProbeError as exc:
        return api._error(exc)
    return {
        "prompt": pruned,
        "plan": result.plan.to_dict(),
        "warnings": result.plan.warnings,
        "comparison": comparison_data(comparison),
        "infotext": result.infotext,
        "image": png_base64(result.image, result.infotext) if request.send_image else None,
    }


def register_routes(app: Any) -> None:
    """Add ``POST /clipprobe/v1/regenerate`` with the same auth as the other routes."""
    from clipprobe_ext.webui import api

    for route in app.router.routes:
        if getattr(route, "path", None) == ROUTE and "POST" in (
            getattr(route, "methods", None) or ()
        ):
            return
    app.add_api_route(
        ROUTE,
        regenerate_endpoint,
        methods=["POST"],
        dependencies=api._auth_dependencies(),
    )
