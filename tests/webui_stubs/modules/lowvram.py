"""Mirrors modules/lowvram.py of AUTOMATIC1111 v1.10.1 (send_everything_to_cpu, is_needed).

``send_everything_to_cpu_calls`` counts calls (stand-in only).
"""

import torch

module_in_gpu = None
cpu = torch.device("cpu")
send_everything_to_cpu_calls = 0


def send_everything_to_cpu():
    global module_in_gpu, send_everything_to_cpu_calls
    send_everything_to_cpu_calls += 1
    if module_in_gpu is not None:
        module_in_gpu.to(cpu)
    module_in_gpu = None


def is_needed(sd_model):
    from modules import shared

    return bool(shared.cmd_opts.lowvram or shared.cmd_opts.medvram)
