"""Mirrors modules/sd_schedulers.py of AUTOMATIC1111 v1.10.1: the schedulers' names,
labels and aliases (no sigma functions)."""

import dataclasses


@dataclasses.dataclass
class Scheduler:
    name: str
    label: str
    function: object = None
    default_rho: float = -1
    need_inner_model: bool = False
    aliases: list = None


schedulers = [
    Scheduler("automatic", "Automatic"),
    Scheduler("uniform", "Uniform"),
    Scheduler("karras", "Karras"),
    Scheduler("exponential", "Exponential"),
    Scheduler("polyexponential", "Polyexponential"),
    Scheduler("sgm_uniform", "SGM Uniform", aliases=["SGMUniform"]),
    Scheduler("kl_optimal", "KL Optimal"),
    Scheduler("align_your_steps", "Align Your Steps"),
    Scheduler("simple", "Simple"),
    Scheduler("normal", "Normal"),
    Scheduler("ddim", "DDIM"),
    Scheduler("beta", "Beta"),
]
schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}
