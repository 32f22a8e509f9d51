"""The WebUI's own Interrogate CLIP (``shared.interrogator.clip_model``, ViT-L/14) as a source.

Reused as it is; if it is not loaded, only the CLIP half is loaded (never BLIP) and
stored back on the interrogator for the WebUI's own use.  Two adapters:

- A1111 1.10: the CLIP half of ``InterrogateModels.load()`` (``load_clip_model``, half
  precision unless ``--no-half`` or on the CPU, moved to ``devices.device_interrogate``);
  back to RAM with the interrogator's own ``send_clip_to_ram`` (which honours "Keep
  models in VRAM").
- Forge: the CLIP lives on its offload device inside a ``ModelPatcher`` (as
  ``clip_patcher``, or as ``clip_model`` itself); ``memory_management.load_models_gpu``
  puts it on the GPU and owns it afterwards (Forge's ``send_clip_to_ram`` does nothing).

The encoder's identity is the weights' ``ModelRef`` (``OpenAIClipEncoder``), so the
A1111 model, Forge's unwrapped one and ``openai-clip:ViT-L/14`` loaded from the same file
share their text cache, reference banks and calibration.

A CLIP that failed to load is remembered for ``FAILURE_MEMORY_S`` (``failure()``): the
model list says it is unavailable and the next run fails at once instead of trying again
for every image of a generation.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder
from clipprobe_ext.errors import ClipProbeError, ModelError, first_line
from clipprobe_ext.store import open_store
from clipprobe_ext.webui import host, model_choices
from clipprobe_ext.webui.clip_source import MODEL_GONE, ModelUnavailable
from clipprobe_ext.webui.model_choices import WEBUI_CLIP_ID

log = logging.getLogger("clipprobe")

NO_INTERROGATOR = (
    "This WebUI has no Interrogate CLIP model (shared.interrogator); "
    "choose a transformers CLIP model instead."
)
WEBUI_CLIP_OFFLINE = (
    "The WebUI's Interrogate CLIP (ViT-L/14) is not downloaded ({path} is missing) and its "
    "download server cannot be reached; choose a local transformers CLIP model instead."
)
FAILURE_MEMORY_S = 60.0

# the interrogator whose CLIP failed to load, why, and when
_failure: tuple[Any, str, float] | None = None


def failure() -> str | None:
    """Why the current interrogator's CLIP failed to load, if it did (within the minute)."""
    if _failure is None or _failure[0] is not host.interrogator():
        return None
    if time.monotonic() - _failure[2] > FAILURE_MEMORY_S:
        return None
    return _failure[1]


def forget_failure() -> None:
    global _failure
    _failure = None


def _remember(interrogator: Any, message: str) -> None:
    global _failure
    _failure = (interrogator, message, time.monotonic())


def available() -> bool:
    """There is an interrogator whose CLIP is loaded or downloaded, and it has not just
    failed to load."""
    interrogator = host.interrogator()
    if interrogator is None or failure() is not None:
        return False
    return model_choices.webui_clip_on_disk(interrogator, host.cmd_opt("clip_models_path"))


def prepare() -> InterrogatorClip:
    """The interrogator's CLIP as a source; fails at once (no lock needed) where loading
    it cannot work: no interrogator, a recent failure, not downloaded and offline."""
    interrogator = host.interrogator()
    if interrogator is None:
        raise ModelUnavailable(NO_INTERROGATOR)
    known = failure()
    if known is not None:
        raise ModelUnavailable(known)
    clip_models_path = host.cmd_opt("clip_models_path")
    on_disk = model_choices.webui_clip_on_disk(interrogator, clip_models_path)
    if not on_disk and not model_choices.reachable():
        message = WEBUI_CLIP_OFFLINE.format(path=model_choices.webui_clip_path(clip_models_path))
        _remember(interrogator, message)
        raise ModelUnavailable(message)
    if is_forge_interrogator(interrogator):
        return ForgeInterrogatorClip(interrogator)
    return A1111InterrogatorClip(interrogator)


def unwrap(model: Any) -> Any:
    """Forge may hold the CLIP in a ``ModelPatcher``: the CLIP is its ``.model``."""
    if model is not None and not hasattr(model, "encode_image") and hasattr(model, "model"):
        return model.model
    return model


def is_forge_interrogator(interrogator: Any) -> bool:
    held = getattr(interrogator, "clip_model", None)
    return (
        hasattr(interrogator, "clip_patcher")
        or hasattr(interrogator, "load_device")
        or (held is not None and unwrap(held) is not held)
    )


class InterrogatorClip:
    """The interrogator's CLIP; ``_load`` (under the lock) differs between A1111 and Forge."""

    def __init__(self, interrogator: Any) -> None:
        self.interrogator = interrogator
        self.held: Any = None

    def _load(self) -> None:
        raise NotImplementedError

    def open(self) -> ClipEncoder:
        interrogator = self.interrogator
        if host.interrogator() is not interrogator:
            raise ModelError(MODEL_GONE)
        try:
            self._load()
        except ClipProbeError:
            raise
        except Exception as exc:
            # The message says it all; the traceback only at debug level (one line per failure).
            log.debug("ClipProbe: could not load the Interrogate CLIP", exc_info=True)
            message = (
                "Could not load the WebUI's Interrogate CLIP (ViT-L/14): "
                f"{type(exc).__name__}: {first_line(exc, empty='')}; choose a transformers "
                "CLIP model instead."
            )
            _remember(interrogator, message)
            raise ModelUnavailable(message) from exc
        self.held = interrogator.clip_model
        model, preprocess = unwrap(self.held), interrogator.clip_preprocess
        if model is None or preprocess is None:
            raise ModelError(MODEL_GONE)
        # A new encoder around the same weights each run starts warm (ModelRef).
        encoder = OpenAIClipEncoder(model, preprocess, model_id=WEBUI_CLIP_ID)
        encoder.keep_embeddings_in(open_store())
        return encoder

    def gone(self) -> bool:
        return (
            getattr(self.interrogator, "clip_model", None) is not self.held
            or host.interrogator() is not self.interrogator
        )

    def to_ram(self) -> None:
        pass


class A1111InterrogatorClip(InterrogatorClip):
    def _load(self) -> None:
        """The CLIP half of ``InterrogateModels.load()`` of 1.10 (never ``load()``: BLIP)."""
        interrogator = self.interrogator
        if interrogator.clip_model is None:
            model, preprocess = interrogator.load_clip_model()
            if not host.cmd_opt("no_half") and not interrogator.running_on_cpu:
                model = model.half()
            interrogator.clip_model, interrogator.clip_preprocess = model, preprocess
        interrogator.clip_model = interrogator.clip_model.to(host.clip_device())
        interrogator.dtype = next(unwrap(interrogator.clip_model).parameters()).dtype

    def to_ram(self) -> None:
        if self.interrogator.clip_model is not None:
            self.interrogator.send_clip_to_ram()


class ForgeInterrogatorClip(InterrogatorClip):
    def _load(self) -> None:
        """Mirrors Forge's ``InterrogateModels.load()`` for the CLIP: onto its offload
        device in a ``ModelPatcher``, then ``memory_management.load_models_gpu``."""
        interrogator = self.interrogator
        if interrogator.clip_model is None:
            model, preprocess = interrogator.load_clip_model()
            offload = getattr(interrogator, "offload_device", None)
            dtype = getattr(interrogator, "dtype", None)
            if offload is not None or dtype is not None:
                model = model.to(device=offload, dtype=dtype)
            interrogator.clip_model, interrogator.clip_preprocess = model, preprocess
            patcher_class = host.forge_model_patcher()
            if hasattr(interrogator, "clip_patcher") and patcher_class is not None:
                interrogator.clip_patcher = patcher_class(
                    model, load_device=interrogator.load_device, offload_device=offload
                )
        patcher = getattr(interrogator, "clip_patcher", None)
        if patcher is None and unwrap(interrogator.clip_model) is not interrogator.clip_model:
            patcher = interrogator.clip_model
        memory = host.forge_memory()
        if patcher is not None and memory is not None:
            memory.load_models_gpu([patcher])
        elif unwrap(interrogator.clip_model) is interrogator.clip_model:
            # No Forge memory management to ask: move it like A1111's load() does.
            device = getattr(interrogator, "load_device", None) or host.clip_device()
            interrogator.clip_model = interrogator.clip_model.to(device)

    # to_ram: nothing; Forge's memory management owns the model
