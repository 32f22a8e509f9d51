"""Mirrors modules/devices.py of AUTOMATIC1111 v1.10.1 (devices, dtypes, torch_gc, autocast).

Everything runs on the CPU here; ``torch_gc_calls`` counts ``torch_gc()`` (stand-in only).
"""

import contextlib

import torch

cpu = torch.device("cpu")
device = cpu
device_interrogate = cpu
device_gfpgan = cpu
device_esrgan = cpu
device_codeformer = cpu
dtype = torch.float16
dtype_vae = torch.float16
dtype_unet = torch.float16
dtype_inference = torch.float16
torch_gc_calls = 0


def get_optimal_device_name():
    return "cpu"


def get_optimal_device():
    return cpu


def get_device_for(task):
    return cpu


def torch_gc():
    global torch_gc_calls
    torch_gc_calls += 1


def autocast(disable=False):
    return contextlib.nullcontext()


def without_autocast(disable=False):
    return contextlib.nullcontext()
