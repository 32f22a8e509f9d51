"""From a picture's generation parameters and a prompt to the txt2img request that makes the
picture again with that prompt.  Pure: the WebUI's readings of the infotext come in as
``PictureParameters`` (``run.read_parameters`` asks the WebUI), the checkpoint decision as
a ``CheckpointCheck`` (``checkpoint.check_checkpoint``); nothing here touches the WebUI.

The request mirrors what the WebUI does when a user pastes the picture's parameters into
txt2img ("Send to txt2img") and presses Generate, and what its own API does with
``infotext`` (``Api.apply_infotext`` in 1.10): the WebUI's own parse (defaults such as
``Clip skip: 1``, old hires-fix sizes, version back-compat), then the txt2img paste
fields (``ui.py``, the Seed, Sampler and Refiner scripts: size, CFG, steps, seed and
variation seed, sampler and scheduler as ``sd_samplers`` reads them, hires fix), and the
settings the infotext names as ``override_settings``, which ``process_images`` applies
for the run and restores afterwards.  Differences, on purpose:

- every field is taken from the infotext (Settings' "infotext_skip_pasting" is ignored):
  the point is the same picture;
- the checkpoint: when the infotext's "Model hash" (else "Model") names a checkpoint the
  WebUI knows, it is used for this run even where "Do not change selected model when
  reading generation parameters" is on; a mismatch is always reported;
- the prompt is the given one and styles are not re-applied (the infotext's prompt
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

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from clipprobe_ext.errors import ClipProbeError, PromptError

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
REQUIRED = ("Steps", "Seed", "Size")

#: infotext keys the plan turns into processing arguments (or reads for a warning)
CONSUMED = {
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

# A1111 1.10.1 txt2img paste fields (ui.py and the Seed / Sampler / Refiner scripts),
# as (processing argument, infotext label, type).  Sampler and scheduler come from
# ``PictureParameters.samplers``; enable_hr, seeds and the refiner need the rules below.
PLAIN_FIELDS = (
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
#: labels the fields above handle, so they are no setting overrides (the WebUI's
#: ``get_override_settings(params, skip_fields=...)`` as its paste passes them)
FIELD_LABELS = frozenset({label for _, label, _ in PLAIN_FIELDS} | {"Sampler", "Schedule type"})

NO_PARAMETERS = "The picture holds no generation parameters, so it cannot be generated again."
NO_SHORTER_PROMPT = "ClipProbe suggests no shorter prompt for this picture; send 'prompt'."


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


@dataclass(frozen=True)
class PictureParameters:
    """What the WebUI reads from a picture's infotext (``run.read_parameters``)."""

    written: Mapping[str, str]  # the keys as the infotext wrote them, before any default
    negative_prompt: str
    params: Mapping[str, Any]  # the WebUI's parse: defaults added, "WxH" split into -1/-2
    samplers: tuple[str, str, str, str]  # sampler, scheduler, hires sampler, hires scheduler
    overrides: Mapping[str, Any]  # setting -> value the infotext names (the checkpoint aside)
    setting_labels: frozenset[str]  # infotext labels that name a setting
    refiner: str | None = None  # the title of the refiner checkpoint it names, if found


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


#: Seconds one sampling step of a 512x512 picture takes, for the estimate shown before a
#: run of several generations (a mid-range GPU with SD 1.5; the estimate says "about").
SECONDS_PER_STEP_512 = 0.1


def with_prompt(plan: RegenerationPlan, prompt: str) -> RegenerationPlan:
    """The same request with another prompt (the bring-in's variants)."""
    return replace(plan, params={**plan.params, "prompt": prompt})


def with_seed(plan: RegenerationPlan, offset: int) -> RegenerationPlan:
    """The same request ``offset`` seeds on, as the WebUI counts a batch's seeds: the seed
    goes up, or with a variation seed at work, the variation seed does."""
    params = dict(plan.params)
    if params.get("subseed_strength"):
        params["subseed"] = int(params.get("subseed", -1)) + offset
    else:
        params["seed"] = int(params["seed"]) + offset
    return replace(plan, params=params)


def estimated_seconds(
    plan: RegenerationPlan, generations: int, per_step_512: float = SECONDS_PER_STEP_512
) -> float:
    """About how long ``generations`` pictures of ``plan`` take: sampling steps weighted by
    the picture's area against 512x512, the hires pass at its own size."""
    p = plan.params
    width, height = int(p.get("width", 512)), int(p.get("height", 512))
    steps = int(p.get("steps", 20)) * width * height / 512**2
    if p.get("enable_hr"):
        if p.get("hr_resize_x") or p.get("hr_resize_y"):
            hr_w = int(p.get("hr_resize_x") or width)
            hr_h = int(p.get("hr_resize_y") or height)
        else:
            scale = float(p.get("hr_scale", 2.0))
            hr_w, hr_h = width * scale, height * scale
        hires_steps = int(p.get("hr_second_pass_steps") or p.get("steps", 20))
        steps += hires_steps * hr_w * hr_h / 512**2
    return generations * steps * per_step_512


def check_request(infotext: str | None, prompt: str | None) -> None:
    """The two inputs a plan cannot do without."""
    if not (infotext or "").strip():
        raise ClipProbeError(NO_PARAMETERS)
    if not (prompt or "").strip():
        raise PromptError("The prompt to regenerate with is empty.")


def prompt_to_regenerate(prompt: str | None, report: Any, analysed_prompt: str) -> str:
    """``prompt``, or else the pruned prompt of ``report`` (the analysis of
    ``analysed_prompt``); ``PromptError`` when that is no shorter prompt."""
    if prompt and prompt.strip():
        return prompt
    pruning = getattr(report, "pruning", None)
    pruned = pruning.pruned_prompt if pruning is not None else ""
    if not pruned.strip() or pruned == analysed_prompt:
        raise PromptError(NO_SHORTER_PROMPT)
    return pruned


def is_img2img(written: Mapping[str, str]) -> bool:
    """The WebUI's own tell, on the infotext's keys as written (before defaults are added)."""
    if any(key in written for key in IMG2IMG_KEYS):
        return True
    return "Denoising strength" in written and not any(k in written for k in HIRES_KEYS)


def plan_request(
    picture: PictureParameters,
    prompt: str,
    checkpoint: CheckpointCheck,
    *,
    allow_txt2img: bool = False,
) -> RegenerationPlan:
    """The processing arguments for ``prompt`` with every other setting from ``picture``."""
    if not (prompt or "").strip():
        raise PromptError("The prompt to regenerate with is empty.")
    written = picture.written
    missing = [key for key in REQUIRED if key not in written]
    if missing:
        raise ClipProbeError(
            "The picture's generation parameters lack " + ", ".join(missing) + ": ClipProbe "
            "cannot generate it again the same way."
        )
    img2img = is_img2img(written)
    if img2img and not allow_txt2img:
        raise ClipProbeError(
            "This picture was made with img2img (its parameters have a denoising strength but "
            "no hires fix); its input picture is not available, so it cannot be regenerated "
            "the same way. Allow txt2img with the same settings to try anyway."
        )
    fields, notes = _fields(picture, img2img)
    fields.update(prompt=prompt, negative_prompt=picture.negative_prompt)
    overrides = dict(picture.overrides)
    warnings = []
    if img2img:
        warnings.append(
            "Made with img2img: regenerated with txt2img and the same settings, without its "
            "input picture, so the pictures can differ for that reason alone."
        )
    if checkpoint.status != "same":
        warnings.append(checkpoint.message)
    if checkpoint.status == "switch" and checkpoint.use_title:
        overrides["sd_model_checkpoint"] = checkpoint.use_title
    not_reproduced = sorted(
        k for k in written if k not in CONSUMED and k not in picture.setting_labels
    )
    if not_reproduced:
        notes.append(
            "Not reproduced (extension scripts are not run): " + ", ".join(not_reproduced) + "."
        )
    return RegenerationPlan(
        kind="img2img" if img2img else "txt2img",
        params=fields,
        override_settings=overrides,
        checkpoint=checkpoint,
        warnings=warnings,
        notes=notes,
        not_reproduced=not_reproduced,
    )


def _fields(picture: PictureParameters, img2img: bool) -> tuple[dict[str, Any], list[str]]:
    params, written = picture.params, picture.written
    sampler, scheduler, hr_sampler, hr_scheduler = picture.samplers
    notes: list[str] = []
    out: dict[str, Any] = {"batch_size": 1, "n_iter": 1, "styles": []}
    for name, label, kind in PLAIN_FIELDS:
        value = params.get(label)
        if value is not None and value != "":
            out[name] = _cast(kind, value, label)
    out["sampler_name"], out["scheduler"] = sampler, scheduler
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
    hires = "Denoising strength" in written and any(k in written for k in HIRES_KEYS)
    hires = hires and not img2img
    out["enable_hr"] = hires
    if hires:
        out["denoising_strength"] = _cast(float, params["Denoising strength"], "Denoising strength")
        checkpoint = params.get("Hires checkpoint", "Use same checkpoint")
        out["hr_checkpoint_name"] = None if checkpoint == "Use same checkpoint" else checkpoint
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
        if picture.refiner is None:
            notes.append(f"The refiner checkpoint {params['Refiner']} is not available: not used.")
        else:
            out["refiner_checkpoint"] = picture.refiner
            out["refiner_switch_at"] = _cast(
                float, params.get("Refiner switch at", 0.8), "Refiner switch at"
            )
    batch = written.get("Batch size")
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
