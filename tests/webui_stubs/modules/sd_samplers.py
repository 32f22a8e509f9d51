"""Mirrors modules/sd_samplers.py of AUTOMATIC1111 v1.10.1: sampler names and the
infotext helpers that split an old "DPM++ 2M Karras" name into sampler and scheduler
and fall back to "Automatic" where the scheduler is the sampler's default.

Samplers: the k-diffusion and timestep samplers of 1.10.1 with their aliases and
default schedulers (no sampling code).
"""

import functools
from collections import namedtuple

from modules import sd_schedulers

SamplerData = namedtuple("SamplerData", ["name", "constructor", "aliases", "options"])

_K = [
    ("DPM++ 2M", ["k_dpmpp_2m"], {"scheduler": "karras"}),
    ("DPM++ SDE", ["k_dpmpp_sde"], {"scheduler": "karras"}),
    ("DPM++ 2M SDE", ["k_dpmpp_2m_sde"], {"scheduler": "exponential"}),
    ("DPM++ 2M SDE Heun", ["k_dpmpp_2m_sde_heun"], {"scheduler": "exponential"}),
    ("DPM++ 2S a", ["k_dpmpp_2s_a"], {"scheduler": "karras"}),
    ("DPM++ 3M SDE", ["k_dpmpp_3m_sde"], {"scheduler": "exponential"}),
    ("Euler a", ["k_euler_a", "k_euler_ancestral"], {}),
    ("Euler", ["k_euler"], {}),
    ("LMS", ["k_lms"], {}),
    ("Heun", ["k_heun"], {}),
    ("DPM2", ["k_dpm_2"], {"scheduler": "karras"}),
    ("DPM2 a", ["k_dpm_2_a"], {"scheduler": "karras"}),
    ("DPM fast", ["k_dpm_fast"], {}),
    ("DPM adaptive", ["k_dpm_ad"], {}),
    ("Restart", ["restart"], {"scheduler": "karras"}),
    ("DDIM", ["ddim"], {}),
    ("DDIM CFG++", ["ddim_cfgpp"], {}),
    ("PLMS", ["plms"], {}),
    ("UniPC", ["unipc"], {}),
    ("LCM", ["k_lcm"], {}),
]
all_samplers = [SamplerData(name, None, aliases, options) for name, aliases, options in _K]
all_samplers_map = {x.name: x for x in all_samplers}
samplers = all_samplers
samplers_for_img2img = all_samplers
samplers_map = {}
for _sampler in all_samplers:
    samplers_map[_sampler.name.lower()] = _sampler.name
    for _alias in _sampler.aliases:
        samplers_map[_alias.lower()] = _sampler.name


def visible_sampler_names():
    return [x.name for x in samplers]


def get_sampler_from_infotext(d):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[0]


def get_scheduler_from_infotext(d):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[1]


def get_hr_sampler_and_scheduler(d):
    hr_sampler = d.get("Hires sampler", "Use same sampler")
    sampler = d.get("Sampler") if hr_sampler == "Use same sampler" else hr_sampler
    hr_scheduler = d.get("Hires schedule type", "Use same scheduler")
    scheduler = d.get("Schedule type") if hr_scheduler == "Use same scheduler" else hr_scheduler
    sampler, scheduler = get_sampler_and_scheduler(sampler, scheduler)
    sampler = sampler if sampler != d.get("Sampler") else "Use same sampler"
    scheduler = scheduler if scheduler != d.get("Schedule type") else "Use same scheduler"
    return sampler, scheduler


def get_hr_sampler_from_infotext(d):
    return get_hr_sampler_and_scheduler(d)[0]


def get_hr_scheduler_from_infotext(d):
    return get_hr_sampler_and_scheduler(d)[1]


@functools.cache
def get_sampler_and_scheduler(sampler_name, scheduler_name, *, convert_automatic=True):
    default_sampler = samplers[0]
    found_scheduler = sd_schedulers.schedulers_map.get(scheduler_name, sd_schedulers.schedulers[0])
    name = sampler_name or default_sampler.name
    for scheduler in sd_schedulers.schedulers:
        for option in [scheduler.label, scheduler.name, *(scheduler.aliases or [])]:
            if name.endswith(" " + option):
                found_scheduler = scheduler
                name = name[0 : -(len(option) + 1)]
                break
    sampler = all_samplers_map.get(name, default_sampler)
    if convert_automatic and sampler.options.get("scheduler", None) == found_scheduler.name:
        found_scheduler = sd_schedulers.schedulers[0]
    return sampler.name, found_scheduler.label


def fix_p_invalid_sampler_and_scheduler(p):
    p.sampler_name, p.scheduler = get_sampler_and_scheduler(
        p.sampler_name, p.scheduler, convert_automatic=False
    )
