"""Stand-in for modules/devices.py of AUTOMATIC1111 v1.10.1: a plain namespace of what
ClipProbe reads (everything on the CPU) and ``torch_gc``, whose calls are counted in
``torch_gc_calls`` (stand-in only)."""

import torch

cpu = torch.device("cpu")
device = cpu
device_interrogate = cpu
torch_gc_calls = 0


def torch_gc():
    global torch_gc_calls
    torch_gc_calls += 1
