"""A CLIP chosen by name: a transformers hub name or folder, or ``openai-clip:...``.

Loaded by the engine's loader (``encoders.load_encoder``: the command line's caches,
errors and offline rules; a hub model that is not on disk is tried once, quickly), into
the place it waits between runs, before the queue lock is taken: a generation never
waits for ClipProbe's download, and a model that cannot load fails at once.
"""

from __future__ import annotations

import threading

import torch

from clipprobe_ext.encoders import factory
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ModelError
from clipprobe_ext.webui.clip_source import ModelUnavailable

_loading = threading.Lock()  # one load at a time, outside the queue lock


class NamedClip:
    """``name`` loaded in ``home`` (RAM, or the GPU when kept there), run on ``device``."""

    def __init__(self, name: str, device: torch.device, home: torch.device, dtype: torch.dtype):
        with _loading:
            try:
                self.encoder = factory.load_encoder(name, home, dtype)
            except ModelError as exc:
                raise ModelUnavailable(str(exc)) from exc
        self.device = device

    def open(self) -> ClipEncoder:
        self.encoder.to(self.device)
        return self.encoder

    def gone(self) -> bool:
        return False  # ClipProbe's own: nobody else unloads it

    def to_ram(self) -> None:
        if self.device.type != "cpu":
            self.encoder.to("cpu")
