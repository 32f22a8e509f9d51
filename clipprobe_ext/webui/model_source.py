"""Which CLIP ClipProbe uses inside the WebUI: the choices, whether each is usable here, and
the source the session runs a job with.

Public API:

- ``WEBUI_CLIP``, ``WEBUI_CLIP_ID``, ``HF_MODELS``: the choices (``model_choices``).
- ``list_models() -> list[str]``: the choices, the configured default first if custom.
- ``available_locally(name) -> bool``, ``models_on_disk() -> dict[str, bool]``: usable
  without network.
- ``webui_clip_available() -> bool``: ``shared.interrogator`` exists (some Forge forks
  have none: then only transformers models work), its CLIP is loaded or downloaded, and
  it has not failed to load in the last minute; ``webui_clip_failure()`` says why not.
- ``prepare(name, device, home, dtype) -> ClipSource``: the model ``name`` names, made
  ready outside the queue lock (``interrogator_clip`` or ``named_clip``); raises
  ``ModelUnavailable`` (a ``ModelError``) for a model that cannot be loaded at all.
  ``device``, ``home`` and ``dtype`` are the session's memory policy for models loaded by
  name; the interrogator's CLIP follows the WebUI's own rules.
- ``clear_cache()``: forget loaded models, text caches and a load failure.
"""

from __future__ import annotations

import torch

from clipprobe_ext.encoders import factory
from clipprobe_ext.webui import interrogator_clip, model_choices, settings
from clipprobe_ext.webui.clip_source import MODEL_GONE, ClipSource, ModelUnavailable
from clipprobe_ext.webui.interrogator_clip import NO_INTERROGATOR
from clipprobe_ext.webui.model_choices import HF_MODELS, WEBUI_CLIP, WEBUI_CLIP_ID
from clipprobe_ext.webui.named_clip import NamedClip

__all__ = [
    "HF_MODELS",
    "MODEL_GONE",
    "NO_INTERROGATOR",
    "WEBUI_CLIP",
    "WEBUI_CLIP_ID",
    "ModelUnavailable",
    "available_locally",
    "clear_cache",
    "list_models",
    "models_on_disk",
    "prepare",
    "webui_clip_available",
    "webui_clip_failure",
]


def list_models() -> list[str]:
    return model_choices.list_models(settings.default_model())


def available_locally(name: str) -> bool:
    """Whether ``name`` can be used without network (see ``model_choices.available_locally``)."""
    if name == WEBUI_CLIP:
        return webui_clip_available()
    return model_choices.available_locally(name)


def models_on_disk() -> dict[str, bool]:
    """Each choice of ``list_models()`` -> whether it is available locally."""
    return {name: available_locally(name) for name in list_models()}


def webui_clip_available() -> bool:
    return interrogator_clip.available()


def webui_clip_failure() -> str | None:
    return interrogator_clip.failure()


def prepare(name: str, device: torch.device, home: torch.device, dtype: torch.dtype) -> ClipSource:
    if name == WEBUI_CLIP:
        return interrogator_clip.prepare()
    return NamedClip(name, device, home, dtype)


def clear_cache() -> None:
    factory.clear_cache()
    interrogator_clip.forget_failure()
