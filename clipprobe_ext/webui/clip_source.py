"""What the session needs from a CLIP source, whoever loaded the model.

A source is made before the queue lock is taken (everything slow or offline-sensitive
happens then: a missing model fails at once); under the lock the session calls
``open()`` once to put the model on its device and get the encoder, ``gone()`` while the
job runs (the WebUI may unload its Interrogate CLIP meanwhile) and ``to_ram()`` afterwards
when its memory policy says so.  Implementations: ``interrogator_clip`` (the WebUI's
Interrogate CLIP, A1111 and Forge) and ``named_clip`` (transformers or openai-clip by name).
"""

from __future__ import annotations

from typing import Protocol

from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ModelError

MODEL_GONE = (
    "The WebUI's Interrogate CLIP model was unloaded or replaced while ClipProbe was using "
    "it; run the analysis again."
)


class ModelUnavailable(ModelError):
    """The chosen CLIP cannot be loaded at all (missing, offline, unreadable): trying again
    for the next image of the same generation is pointless."""


class ClipSource(Protocol):
    def open(self) -> ClipEncoder:
        """Under the queue lock: the model on its device, as an encoder."""

    def gone(self) -> bool:
        """The model was unloaded or replaced by its owner since ``open``."""

    def to_ram(self) -> None:
        """Move the model off the GPU (the session decides when)."""
