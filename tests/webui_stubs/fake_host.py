"""A fake of ``clipprobe_ext.webui.host``, the one module through which ClipProbe talks to
the WebUI: a ``FakeWebUI`` (the WebUI's state, which tests arrange and inspect) and a
``FakeHost`` (host's functions, one method each, answered from that state).

Where ClipProbe's behaviour depends on what the WebUI does, the fake does it the way
AUTOMATIC1111 1.10.1 does: the queue lock, ``shared.state``'s begin/end, the progress
registry, the interrogator's CLIP half and ``send_clip_to_ram``, ``Options`` with its
defaults, txt2img processing (constructor fields, settings overridden for the run and
restored, a checkpoint switch; the picture comes from ``FakeWebUI.generate``), and the
infotext utilities (the WebUI's parse with its defaults, sampler and scheduler names,
settings overrides).  ``tests/webui/test_fake_host.py`` keeps the fake's methods in step
with host's functions; the opt-in ``tests/webui/test_host_matches_the_webui.py`` compares
host with a real WebUI and this fake's infotext, sampler and processing answers with the
real WebUI's on the tests' infotexts.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import random
import re
import string
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from packaging import version
from PIL import Image

# -- settings ----------------------------------------------------------------------------------


@dataclass
class OptionInfo:
    default: Any = None
    label: str = ""
    component: Any = None
    component_args: Any = None
    section: Any = None
    infotext: str | None = None
    info: str = ""


class Options:
    """``shared.opts``: attributes read ``data``, falling back to the label's default."""

    _own = ("data_labels", "data")

    def __init__(self, labels: dict[str, OptionInfo]) -> None:
        object.__setattr__(self, "data_labels", dict(labels))
        object.__setattr__(self, "data", {k: v.default for k, v in labels.items()})

    def __getattr__(self, item: str) -> Any:
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self._own:
            object.__setattr__(self, key, value)
        else:
            self.data[key] = value

    def set(self, key: str, value: Any) -> bool:
        if key not in self.data_labels:
            return False
        self.data[key] = value
        return True

    def add_option(self, key: str, info: OptionInfo) -> None:
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)


#: (setting, default, infotext label) of 1.10.1's shared_options.py that infotexts name
SETTINGS = (
    ("sd_model_checkpoint", None, "Model hash"),
    ("CLIP_stop_at_last_layers", 1, "Clip skip"),
    ("randn_source", "GPU", "RNG"),
    ("eta_noise_seed_delta", 0, "ENSD"),
    ("emphasis", "Original", "Emphasis"),
    ("sd_vae", "Automatic", "VAE"),
    ("sd_vae_encode_method", "Full", "VAE Encoder"),
    ("sd_vae_decode_method", "Full", "VAE Decoder"),
    ("sigma_min", 0.0, "Schedule min sigma"),
    ("sigma_max", 0.0, "Schedule max sigma"),
    ("rho", 0.0, "Schedule rho"),
    ("use_old_scheduling", False, "Old prompt editing timelines"),
    ("use_downcasted_alpha_bar", False, "Downcast alphas_cumprod"),
    ("refiner_switch_by_sample_steps", False, "Refiner switch by sampling steps"),
    ("pad_cond_uncond_v0", False, "Pad conds v0"),
    ("token_merging_ratio", 0.0, "Token merging ratio"),
    ("face_restoration", False, "Face restoration"),
    ("tiling", False, "Tiling"),
    ("disable_weights_auto_swap", True, None),
    ("interrogate_keep_models_in_memory", False, None),
    ("outdir_samples", "", None),
    ("outdir_txt2img_samples", "outputs/txt2img-images", None),
    ("outdir_grids", "", None),
    ("outdir_txt2img_grids", "outputs/txt2img-grids", None),
)


# -- jobs ----------------------------------------------------------------------------------------


class State:
    """``shared.state``: what ClipProbe reads or writes; ``history`` records begin/end."""

    def __init__(self) -> None:
        self.interrupted = False
        self.job, self.job_count, self.textinfo = "", 0, None
        self.sampling_step = self.sampling_steps = 0
        self.history: list[tuple[str, str]] = []

    def interrupt(self) -> None:
        self.interrupted = True

    def begin(self, job: str = "(unknown)") -> None:
        self.sampling_step, self.job_count, self.textinfo = 0, -1, None
        self.interrupted = False
        self.job = job
        self.history.append(("begin", job))

    def end(self) -> None:
        self.history.append(("end", self.job))
        self.job, self.job_count = "", 0


class ProgressRegistry:
    """``modules.progress`` of 1.10.1; ``calls`` records ``(name, id, queue lock held)``."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.current_task: str | None = None
        self.pending_tasks: OrderedDict[str, float] = OrderedDict()
        self.finished_tasks: list[str] = []
        self.recorded_results: list[Any] = []
        self.calls: list[tuple[str, str, bool]] = []

    def _record(self, name: str, id_task: str) -> None:
        self.calls.append((name, id_task, self.lock.locked()))

    def add_task_to_queue(self, id_job: str) -> None:
        self._record("add_task_to_queue", id_job)
        self.pending_tasks[id_job] = time.time()

    def start_task(self, id_task: str) -> None:
        self._record("start_task", id_task)
        self.current_task = id_task
        self.pending_tasks.pop(id_task, None)

    def finish_task(self, id_task: str) -> None:
        self._record("finish_task", id_task)
        if self.current_task == id_task:
            self.current_task = None
        self.finished_tasks.append(id_task)

    def create_task_id(self, task_type: str) -> str:
        code = "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
        return f"task({task_type}-{code})"

    def task_status(self, id_task: str) -> tuple[bool, bool, bool]:
        """``(active, queued, completed)`` as ``/internal/progress`` answers them."""
        return (
            id_task == self.current_task,
            id_task in self.pending_tasks,
            id_task in self.finished_tasks,
        )


# -- the interrogator -----------------------------------------------------------------------------


class InterrogateModels:
    """The CLIP half of 1.10.1's ``InterrogateModels``; ``calls`` records what ran.
    ``load_clip_model`` is ``clip.load``, which needs the internet: tests replace it."""

    def __init__(self, webui: FakeWebUI) -> None:
        self.webui = webui
        self.clip_model = self.clip_preprocess = self.blip_model = self.dtype = None
        self.running_on_cpu = webui.device_interrogate == torch.device("cpu")
        self.calls: list[str] = []

    def load_clip_model(self) -> Any:
        self.calls.append("load_clip_model")
        raise OSError("clip.load needs the internet")

    def load(self) -> None:  # loads BLIP too: ClipProbe must never call it
        self.calls.append("load")
        raise RuntimeError("BLIP is not available here")

    def send_clip_to_ram(self) -> None:
        self.calls.append("send_clip_to_ram")
        if not self.webui.opts.interrogate_keep_models_in_memory and self.clip_model is not None:
            self.clip_model = self.clip_model.to(torch.device("cpu"))


# -- checkpoints -------------------------------------------------------------------------------------


class CheckpointInfo:
    """1.10.1's names and hashes of a checkpoint (``hash``: the old 8 characters; ``sha256``
    None until computed)."""

    def __init__(self, name: str, old_hash: str | None, sha256: str | None) -> None:
        self.name, self.hash, self.sha256 = name, old_hash, sha256
        self.name_for_extra = name.rsplit(".", 1)[0].rsplit("/", 1)[-1]
        self.model_name = name.rsplit(".", 1)[0].replace("/", "_")
        self.shorthash = sha256[0:10] if sha256 else None
        self.title = name if self.shorthash is None else f"{name} [{self.shorthash}]"
        self.ids = [old_hash, self.model_name, self.title, name, self.name_for_extra]
        self.ids.append(f"{name} [{old_hash}]")
        if self.shorthash:
            self.ids += [self.shorthash, sha256, f"{name} [{self.shorthash}]"]
            self.ids.append(f"{self.name_for_extra} [{self.shorthash}]")


# -- infotexts, samplers ----------------------------------------------------------------------------

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")
DEFAULTS = {
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    "Mask mode": "Inpaint masked",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": 32,
}
LATE_DEFAULTS = {
    "RNG": "GPU",
    "Schedule type": "Automatic",
    "Schedule max sigma": 0,
    "Schedule min sigma": 0,
    "Schedule rho": 0,
    "VAE Encoder": "Full",
    "VAE Decoder": "Full",
    "FP8 weight": "Disable",
}


def _version(text: str | None) -> Any:
    if text is None:
        return None
    match = re.match(r"([^-]+-[^-]+)-.*", text)
    try:
        return version.parse(match.group(1) if match else text)
    except Exception:
        return None


def parse_generation_parameters(x: str) -> dict[str, Any]:
    """1.10.1's ``infotext_utils.parse_generation_parameters`` (styles aside)."""
    res: dict[str, Any] = {}
    prompt, negative, done = "", "", False
    *lines, last = x.strip().split("\n")
    if len(RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done = True
            line = line[16:].strip()
        if done:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in RE_PARAM.findall(last):
        if v[0] == '"' and v[-1] == '"':
            v = json.loads(v)
        m = RE_IMAGESIZE.match(v)
        if m is not None:
            res[f"{k}-1"], res[f"{k}-2"] = m.group(1), m.group(2)
        else:
            res[k] = v
    res["Prompt"], res["Negative prompt"] = prompt, negative
    res.setdefault("Clip skip", "1")
    if "Hires resize-1" not in res:
        res["Hires resize-1"] = res["Hires resize-2"] = 0
    for key, value in DEFAULTS.items():
        res.setdefault(key, value)
    first_w, first_h = res.get("First pass size-1"), res.get("First pass size-2")
    if first_w is not None and first_h is not None:
        width, height = int(res.get("Size-1", 512)), int(res.get("Size-2", 512))
        res["Size-1"], res["Size-2"] = int(first_w), int(first_h)
        res["Hires resize-1"], res["Hires resize-2"] = width, height
    for key, value in LATE_DEFAULTS.items():
        res.setdefault(key, value)
    if "Emphasis" not in res and re.search(r"[()\[\]]", prompt + negative):
        res["Emphasis"] = "Original"
    res.setdefault("Refiner switch by sampling steps", False)
    written = _version(res.get("Version"))
    if written is not None:
        if written < version.parse("1.6.0") and "[" in res.get("Prompt", ""):
            res["Old prompt editing timelines"] = True
        if written < version.parse("1.6.0") and res.get("Sampler", "") in ("DDIM", "PLMS"):
            res["Pad conds v0"] = True
        if written < version.parse("v1.7.0-225"):
            res["Downcast alphas_cumprod"] = True
        if written < version.parse("1.8.0") and res.get("Refiner"):
            res["Refiner switch by sampling steps"] = True
    return res


def quote(text: Any) -> Any:
    """``infotext_utils.quote``: a value with a comma, colon or new line, as JSON."""
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


# 1.10.1's samplers (name, default scheduler) and schedulers (name, label)
SAMPLERS = (
    ("DPM++ 2M", "karras"),
    ("DPM++ SDE", "karras"),
    ("DPM++ 2M SDE", "exponential"),
    ("DPM++ 2M SDE Heun", "exponential"),
    ("DPM++ 2S a", "karras"),
    ("DPM++ 3M SDE", "exponential"),
    ("Euler a", None),
    ("Euler", None),
    ("LMS", None),
    ("Heun", None),
    ("DPM2", "karras"),
    ("DPM2 a", "karras"),
    ("DPM fast", None),
    ("DPM adaptive", None),
    ("Restart", "karras"),
    ("DDIM", None),
    ("DDIM CFG++", None),
    ("PLMS", None),
    ("UniPC", None),
    ("LCM", None),
)
SCHEDULERS = (
    ("automatic", "Automatic"),
    ("uniform", "Uniform"),
    ("karras", "Karras"),
    ("exponential", "Exponential"),
    ("polyexponential", "Polyexponential"),
    ("sgm_uniform", "SGM Uniform"),
    ("kl_optimal", "KL Optimal"),
    ("align_your_steps", "Align Your Steps"),
    ("simple", "Simple"),
    ("normal", "Normal"),
    ("ddim", "DDIM"),
    ("beta", "Beta"),
)
SCHEDULER_ALIASES = {"sgm_uniform": ["SGMUniform"]}


def sampler_and_scheduler(
    sampler_name: str | None, scheduler_name: str | None, convert_automatic: bool = True
) -> tuple[str, str]:
    """1.10.1's ``sd_samplers.get_sampler_and_scheduler``."""
    defaults = dict(SAMPLERS)
    by_key = {key: (n, label) for n, label in SCHEDULERS for key in (n, label)}
    found = by_key.get(scheduler_name, SCHEDULERS[0])
    name = sampler_name or SAMPLERS[0][0]
    for scheduler, label in SCHEDULERS:
        for option in [label, scheduler, *SCHEDULER_ALIASES.get(scheduler, [])]:
            if name.endswith(" " + option):
                found = (scheduler, label)
                name = name[0 : -(len(option) + 1)]
                break
    if name not in defaults:
        name = SAMPLERS[0][0]
    if convert_automatic and defaults[name] == found[0]:
        found = SCHEDULERS[0]
    return name, found[1]


def samplers_from_infotext(d: dict[str, Any]) -> tuple[str, str, str, str]:
    """``get_sampler/scheduler_from_infotext`` and their hires variants of 1.10.1."""
    sampler, scheduler = sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))
    hr_sampler = d.get("Hires sampler", "Use same sampler")
    hr_scheduler = d.get("Hires schedule type", "Use same scheduler")
    hr_sampler, hr_scheduler = sampler_and_scheduler(
        d.get("Sampler") if hr_sampler == "Use same sampler" else hr_sampler,
        d.get("Schedule type") if hr_scheduler == "Use same scheduler" else hr_scheduler,
    )
    hr_sampler = hr_sampler if hr_sampler != d.get("Sampler") else "Use same sampler"
    hr_scheduler = hr_scheduler if hr_scheduler != d.get("Schedule type") else "Use same scheduler"
    return sampler, scheduler, hr_sampler, hr_scheduler


# -- processing ----------------------------------------------------------------------------------

#: the constructor fields of 1.10.1's StableDiffusionProcessingTxt2Img, with their defaults
TXT2IMG_FIELDS = {
    "sd_model": None,
    "outpath_samples": None,
    "outpath_grids": None,
    "prompt": "",
    "prompt_for_display": None,
    "negative_prompt": "",
    "styles": None,
    "seed": -1,
    "subseed": -1,
    "subseed_strength": 0,
    "seed_resize_from_h": -1,
    "seed_resize_from_w": -1,
    "seed_enable_extras": True,
    "sampler_name": None,
    "scheduler": None,
    "batch_size": 1,
    "n_iter": 1,
    "steps": 50,
    "cfg_scale": 7.0,
    "width": 512,
    "height": 512,
    "restore_faces": None,
    "tiling": None,
    "do_not_save_samples": False,
    "do_not_save_grid": False,
    "extra_generation_params": None,
    "overlay_images": None,
    "eta": None,
    "do_not_reload_embeddings": False,
    "denoising_strength": 0.75,
    "ddim_discretize": None,
    "s_min_uncond": None,
    "s_churn": None,
    "s_tmax": None,
    "s_tmin": None,
    "s_noise": None,
    "override_settings": None,
    "override_settings_restore_afterwards": True,
    "sampler_index": None,
    "refiner_checkpoint": None,
    "refiner_switch_at": None,
    "disable_extra_networks": False,
    "firstpass_image": None,
    "comments": None,
    "enable_hr": False,
    "firstphase_width": 0,
    "firstphase_height": 0,
    "hr_scale": 2.0,
    "hr_upscaler": None,
    "hr_second_pass_steps": 0,
    "hr_resize_x": 0,
    "hr_resize_y": 0,
    "hr_checkpoint_name": None,
    "hr_sampler_name": None,
    "hr_scheduler": None,
    "hr_prompt": "",
    "hr_negative_prompt": "",
    "force_task_id": None,
}


class Txt2Img(SimpleNamespace):
    """A processing object: every constructor field; ``closed`` once ``close()`` ran."""

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(TXT2IMG_FIELDS)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
        super().__init__(**{**TXT2IMG_FIELDS, **fields})
        self.override_settings = self.override_settings or {}
        self.scripts, self.closed = None, False

    def close(self) -> None:
        self.closed = True

    def output_size(self) -> tuple[int, int]:
        """The final size (hires fix by scale or resize, as 1.10.1)."""
        if not self.enable_hr:
            return self.width, self.height
        if self.hr_resize_x == 0 and self.hr_resize_y == 0:
            return int(self.width * self.hr_scale), int(self.height * self.hr_scale)
        if self.hr_resize_y == 0:
            return self.hr_resize_x, self.hr_resize_x * self.height // self.width
        if self.hr_resize_x == 0:
            return self.hr_resize_y * self.width // self.height, self.hr_resize_y
        return self.hr_resize_x, self.hr_resize_y


class Script:
    """``modules.scripts.Script``'s part an always-visible script uses (1.10.1's ``elem_id``)."""

    is_img2img = False

    def title(self) -> str:
        raise NotImplementedError

    def show(self, is_img2img: bool) -> Any:
        return True

    def elem_id(self, item_id: str) -> str:
        need_tabname = self.show(True) == self.show(False)
        tabname = ("img2img" if self.is_img2img else "txt2img") + "_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


ALWAYS_VISIBLE = object()


# -- the WebUI ---------------------------------------------------------------------------------------


class FakeWebUI:
    """The WebUI's state, as tests arrange and inspect it."""

    def __init__(self) -> None:
        labels = {key: OptionInfo(default, key, infotext=label) for key, default, label in SETTINGS}
        self.opts = Options(labels)
        self.cmd_opts = SimpleNamespace(
            api_auth=None,
            lowvram=False,
            medvram=False,
            medvram_sdxl=False,
            no_half=False,
            clip_models_path=None,
        )
        self.state = State()
        self.queue_lock = threading.Lock()  # like 1.10's FIFOLock: not re-entrant
        self.progress: ProgressRegistry | None = ProgressRegistry(self.queue_lock)
        self.device_interrogate = torch.device("cpu")
        self.interrogator: Any = None
        self.forge_memory: Any = None  # Forge's memory management (a module) when faked
        self.forge_model_patcher: type | None = None
        self.torch_gc_calls = 0
        self.send_everything_to_cpu_calls = 0
        self.total_progress_clears = 0
        self.checkpoints: dict[str, CheckpointInfo] = {}  # every alias -> its checkpoint
        self.loaded: CheckpointInfo | None = None
        self.checkpoint_loads: list[str] = []
        self.generate = None  # callable(p) -> PIL image; default: a grey picture
        self.processing_calls: list[dict[str, Any]] = []
        self.callbacks: dict[str, list[Any]] = {
            "ui_settings": [],
            "ui_tabs": [],
            "after_component": [],
            "app_started": [],
        }
        self.paste_fields: dict[str, dict[str, Any]] = {}
        self.paste_buttons: list[SimpleNamespace] = []

    # -- arranging --

    def new_interrogator(self) -> InterrogateModels:
        return InterrogateModels(self)

    def add_checkpoint(self, name: str, old_hash: str | None, sha256: str | None = None) -> Any:
        info = CheckpointInfo(name, old_hash, sha256)
        for alias in info.ids:
            self.checkpoints[alias] = info
        return info

    def load_checkpoint(self, info: CheckpointInfo | None) -> None:
        self.loaded = info
        self.checkpoint_loads.append(None if info is None else info.title)

    def closest_checkpoint(self, name: str) -> CheckpointInfo | None:
        """``sd_models.get_closet_checkpoint_match`` of 1.10.1."""
        if not name:
            return None
        if name in self.checkpoints:
            return self.checkpoints[name]
        titles = {info.title: info for info in self.checkpoints.values()}
        for wanted in (name, re.sub(r"\s*\[[^]]+]\s*$", "", name)):
            found = sorted((t for t in titles if wanted in t), key=len)
            if found:
                return titles[found[0]]
        return None

    def fire_ui_settings(self) -> None:
        for callback in self.callbacks["ui_settings"]:
            callback()

    def fire_ui_tabs(self) -> list[Any]:
        return [tab for callback in self.callbacks["ui_tabs"] for tab in callback() or []]

    def fire_after_component(self, component: Any, **kwargs: Any) -> None:
        for callback in self.callbacks["after_component"]:
            callback(component, **kwargs)

    def fire_app_started(self, demo: Any, app: Any) -> None:
        for callback in self.callbacks["app_started"]:
            callback(demo, app)

    # -- processing (1.10.1's process_images, without diffusion) --

    def process_images(self, p: Txt2Img) -> SimpleNamespace:
        opts = self.opts
        stored = {k: opts.data[k] for k in p.override_settings if k in opts.data}
        try:
            if self.checkpoints.get(p.override_settings.get("sd_model_checkpoint")) is None:
                p.override_settings.pop("sd_model_checkpoint", None)
                selected = self.closest_checkpoint(opts.sd_model_checkpoint)
                if selected is not None and selected is not self.loaded:
                    self.load_checkpoint(selected)  # reload_model_weights()
            for k, v in p.override_settings.items():
                opts.set(k, v)
                if k == "sd_model_checkpoint":
                    self.load_checkpoint(self.closest_checkpoint(v))
            p.sampler_name, p.scheduler = sampler_and_scheduler(
                p.sampler_name, p.scheduler, convert_automatic=False
            )
            self.processing_calls.append(
                {
                    "p": p,
                    "fields": {name: getattr(p, name) for name in TXT2IMG_FIELDS},
                    "settings": {k: getattr(opts, k) for k in p.override_settings},
                    "lock_held": self.queue_lock.locked(),
                    "job": self.state.job,
                    "checkpoint": None if self.loaded is None else self.loaded.title,
                }
            )
            size = p.output_size()
            image = self.generate(p) if self.generate else Image.new("RGB", size, (128,) * 3)
            info = self.infotext(p)
            return SimpleNamespace(images=[image], infotexts=[info], info=info)
        finally:
            if p.override_settings_restore_afterwards:
                for k, v in stored.items():
                    opts.data[k] = v
            if "sd_model_checkpoint" in p.override_settings:
                self.load_checkpoint(self.closest_checkpoint(opts.sd_model_checkpoint))

    def infotext(self, p: Txt2Img) -> str:
        params = {
            "Steps": p.steps,
            "Sampler": p.sampler_name,
            "Schedule type": p.scheduler,
            "CFG scale": p.cfg_scale,
            "Seed": p.seed,
            "Size": f"{p.width}x{p.height}",
            "Model hash": None if self.loaded is None else self.loaded.shorthash,
            "Denoising strength": p.denoising_strength if p.enable_hr else None,
        }
        text = ", ".join(f"{k}: {v}" for k, v in params.items() if v is not None)
        negative = f"\nNegative prompt: {p.negative_prompt}" if p.negative_prompt else ""
        return f"{p.prompt}{negative}\n{text}"


class FakeHost:
    """``clipprobe_ext.webui.host``, function by function, answered from a ``FakeWebUI``."""

    def __init__(self, webui: FakeWebUI) -> None:
        self.webui = webui

    def is_forge(self) -> bool:
        return self.webui.forge_memory is not None

    def opts(self) -> Any:
        return self.webui.opts

    def cmd_opt(self, name: str) -> Any:
        return getattr(self.webui.cmd_opts, name, None)

    def add_option(
        self,
        key: str,
        default: Any,
        label: str,
        component: Any = None,
        component_args: Any = None,
        *,
        section: tuple[str, str],
        info: str | None = None,
    ) -> None:
        option = OptionInfo(default, label, component, component_args, section, info=info or "")
        self.webui.opts.add_option(key, option)

    def setting_infotext_labels(self) -> set[str]:
        return {i.infotext for i in self.webui.opts.data_labels.values() if i.infotext}

    def state(self) -> Any:
        return self.webui.state

    def queue_lock(self) -> Any:
        return self.webui.queue_lock

    def progress_registry(self) -> Any:
        return self.webui.progress

    def create_task_id(self, kind: str) -> str | None:
        registry = self.webui.progress
        return registry.create_task_id(kind) if registry is not None else None

    def clear_total_progress(self) -> None:
        self.webui.total_progress_clears += 1

    def wrap_gradio_call(self, fn: Any) -> Any:
        """1.10.1's ``wrap_gradio_call``: the job fields reset afterwards, an exception shown
        as an error box in the last output."""
        state = self.webui.state

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            try:
                return tuple(fn(*args, **kwargs))
            except Exception as e:
                message = html.escape(f"{type(e).__name__}: {e}")
                return (None, "", f"<div class='error'>{message}</div>")
            finally:
                state.interrupted, state.job_count, state.job = False, 0, ""

        return wrapped

    def clip_device(self) -> torch.device:
        return self.webui.device_interrogate

    def torch_gc(self) -> None:
        self.webui.torch_gc_calls += 1

    def send_everything_to_cpu(self) -> None:
        self.webui.send_everything_to_cpu_calls += 1

    def forge_memory(self) -> Any:
        return self.webui.forge_memory

    def forge_model_patcher(self) -> type | None:
        return self.webui.forge_model_patcher

    def interrogator(self) -> Any:
        return getattr(self.webui, "interrogator", None)

    def loaded_checkpoint(self) -> Any:
        return self.webui.loaded

    def checkpoint_aliases(self) -> Any:
        return self.webui.checkpoints

    def closest_checkpoint(self, name: str) -> Any:
        return self.webui.closest_checkpoint(name)

    def samplers_from_infotext(self, params: Any) -> tuple[str, str, str, str]:
        return samplers_from_infotext(dict(params))

    def parse_generation_parameters(self, text: str) -> dict[str, Any]:
        return parse_generation_parameters(text)

    def override_settings(self, params: Any, skip_fields: Any) -> list[tuple[str, str, Any]]:
        """1.10.1's ``get_override_settings`` with ``opts.cast_value``."""
        opts, out = self.webui.opts, []
        for key, info in opts.data_labels.items():
            label = info.infotext
            if not label or label in (skip_fields or {}) or params.get(label) is None:
                continue
            if key == "sd_model_checkpoint" and opts.disable_weights_auto_swap:
                continue
            value = self._cast_value(key, params[label])
            if value != getattr(opts, key, None):
                out.append((label, key, value))
        return out

    def _cast_value(self, key: str, value: Any) -> Any:
        opts = self.webui.opts
        default = opts.data_labels[key].default
        if default is None:
            default = getattr(opts, key, None)
        if value is None or default is None:
            return None
        return False if type(default) is bool and value == "False" else type(default)(value)

    def txt2img(self, **fields: Any) -> Any:
        return Txt2Img(sd_model=self.webui.loaded, **fields)

    def process_images(self, p: Any) -> Any:
        return self.webui.process_images(p)

    def add_paste_fields(self, tabname: str, image: Any, fields: list[tuple[Any, str]]) -> None:
        self.webui.paste_fields[tabname] = {"init_img": image, "fields": list(fields)}

    def register_paste_button(
        self,
        button: Any,
        tabname: str,
        *,
        image: Any,
        source_tabname: str | None = None,
        source_text: Any = None,
    ) -> None:
        self.webui.paste_buttons.append(
            SimpleNamespace(
                paste_button=button,
                tabname=tabname,
                source_image_component=image,
                source_tabname=source_tabname,
                source_text_component=source_text,
            )
        )

    def tool_button(self, value: str, **kwargs: Any) -> Any:
        import gradio as gr

        return gr.Button(value, elem_classes=["tool"], **kwargs)

    @contextlib.contextmanager
    def input_accordion(self, value: bool, **kwargs: Any) -> Any:
        """The checkbox (hidden) that follows an accordion, as ``InputAccordion`` is."""
        import gradio as gr

        elem_id = kwargs.get("elem_id")
        checkbox = gr.Checkbox(value=value, visible=False, elem_id=f"{elem_id}-checkbox")
        checkbox.accordion = gr.Accordion(
            label=kwargs.get("label", "Accordion"), open=value, elem_id=elem_id
        )
        with checkbox.accordion:
            yield checkbox

    def script_base(self) -> type:
        return Script

    def always_visible(self) -> Any:
        return ALWAYS_VISIBLE

    def on_ui_settings(self, callback: Any) -> None:
        self.webui.callbacks["ui_settings"].append(callback)

    def on_ui_tabs(self, callback: Any) -> None:
        self.webui.callbacks["ui_tabs"].append(callback)

    def on_after_component(self, callback: Any) -> None:
        self.webui.callbacks["after_component"].append(callback)

    def on_app_started(self, callback: Any) -> None:
        self.webui.callbacks["app_started"].append(callback)
