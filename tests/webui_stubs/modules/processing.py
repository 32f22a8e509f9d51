"""Mirrors modules/processing.py of AUTOMATIC1111 v1.10.1 for the txt2img path:
``StableDiffusionProcessingTxt2Img`` with the same constructor fields (a wrong keyword is
a TypeError, as in the WebUI), ``process_images`` with the real handling of
``override_settings`` (a checkpoint override that ``sd_models.checkpoint_aliases`` does
not know is dropped; overrides are applied with ``opts.set`` for the run and restored
afterwards), ``Processed`` with ``images``, ``infotexts``, ``info`` and ``js()``.

No diffusion: the picture comes from ``generate(p)``, which a test sets (default: a grey
picture of the first-pass or hires size).  Stand-in only: ``calls`` records, for every
``process_images``, a dict with the processing object, the overridden settings as they
were during the run, whether the queue lock was held, ``shared.state.job`` and the
loaded checkpoint's title.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from modules import sd_models, sd_samplers, shared

calls = []  # stand-in only
generate = None  # stand-in only: callable(p) -> PIL image


@dataclass(repr=False)
class StableDiffusionProcessing:
    sd_model: object = None
    outpath_samples: str = None
    outpath_grids: str = None
    prompt: str = ""
    prompt_for_display: str = None
    negative_prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    seed_enable_extras: bool = True
    sampler_name: str = None
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    restore_faces: bool = None
    tiling: bool = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    extra_generation_params: dict = None
    overlay_images: list = None
    eta: float = None
    do_not_reload_embeddings: bool = False
    denoising_strength: float = None
    ddim_discretize: str = None
    s_min_uncond: float = None
    s_churn: float = None
    s_tmax: float = None
    s_tmin: float = None
    s_noise: float = None
    override_settings: dict = None
    override_settings_restore_afterwards: bool = True
    sampler_index: int = None
    refiner_checkpoint: str = None
    refiner_switch_at: float = None
    token_merging_ratio = 0
    token_merging_ratio_hr = 0
    disable_extra_networks: bool = False
    firstpass_image: Any = None
    scripts_value: Any = field(default=None, init=False)
    script_args_value: list = field(default=None, init=False)
    user: str = field(default=None, init=False)
    closed: bool = field(default=False, init=False)  # stand-in only

    def __post_init__(self):
        self.styles = self.styles or []
        self.extra_generation_params = self.extra_generation_params or {}
        self.override_settings = self.override_settings or {}

    @property
    def scripts(self):
        return self.scripts_value

    @scripts.setter
    def scripts(self, value):
        self.scripts_value = value

    def close(self):
        self.closed = True


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = 2.0
    hr_upscaler: str = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_checkpoint_name: str = None
    hr_sampler_name: str = None
    hr_scheduler: str = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    force_task_id: str = None

    def output_size(self):
        """Stand-in only: the final size (hires fix by scale or resize, as 1.10.1)."""
        if not self.enable_hr:
            return self.width, self.height
        if self.hr_resize_x == 0 and self.hr_resize_y == 0:
            return int(self.width * self.hr_scale), int(self.height * self.hr_scale)
        if self.hr_resize_y == 0:
            return self.hr_resize_x, self.hr_resize_x * self.height // self.width
        if self.hr_resize_x == 0:
            return self.hr_resize_y * self.width // self.height, self.hr_resize_y
        return self.hr_resize_x, self.hr_resize_y


class Processed:
    def __init__(
        self,
        p,
        images_list,
        seed=-1,
        info="",
        subseed=None,
        all_prompts=None,
        all_negative_prompts=None,
        all_seeds=None,
        all_subseeds=None,
        index_of_first_image=0,
        infotexts=None,
        comments="",
    ):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.info = info
        self.infotexts = infotexts or [info] * len(images_list)
        self.width = p.width
        self.height = p.height
        self.sampler_name = p.sampler_name

    def js(self):
        return json.dumps({"prompt": self.prompt, "seed": self.seed, "infotexts": self.infotexts})


def create_infotext(
    p,
    all_prompts,
    all_seeds,
    all_subseeds,
    comments=None,
    iteration=0,
    position_in_batch=0,
    use_main_prompt=False,
    index=None,
    all_negative_prompts=None,
):
    loaded = sd_models.model_data.sd_model
    params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Seed": p.seed,
        "Size": f"{p.width}x{p.height}",
        "Model hash": getattr(loaded, "sd_model_hash", None),
        "Denoising strength": p.denoising_strength if getattr(p, "enable_hr", False) else None,
    }
    text = ", ".join(f"{k}: {v}" for k, v in params.items() if v is not None)
    negative = f"\nNegative prompt: {p.negative_prompt}" if p.negative_prompt else ""
    return f"{p.prompt}{negative}\n{text}"


def process_images(p):
    from modules import call_queue

    opts = shared.opts
    stored = {k: opts.data[k] for k in p.override_settings if k in opts.data}
    try:
        if sd_models.checkpoint_aliases.get(p.override_settings.get("sd_model_checkpoint")) is None:
            p.override_settings.pop("sd_model_checkpoint", None)
            sd_models.reload_model_weights()
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
            if k == "sd_model_checkpoint":
                sd_models.reload_model_weights()
        sd_samplers.fix_p_invalid_sampler_and_scheduler(p)
        loaded = sd_models.model_data.sd_model
        calls.append(
            {
                "p": p,
                "fields": {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.init},
                "settings": {k: getattr(opts, k) for k in p.override_settings},
                "lock_held": call_queue.queue_lock.locked(),
                "job": shared.state.job,
                "checkpoint": None if loaded is None else loaded.sd_checkpoint_info.title,
            }
        )
        size = p.output_size()
        image = generate(p) if generate is not None else Image.new("RGB", size, (128, 128, 128))
        info = create_infotext(p, [p.prompt], [p.seed], [p.subseed])
        return Processed(p, [image], p.seed, info, infotexts=[info])
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored.items():
                setattr(opts, k, v)
