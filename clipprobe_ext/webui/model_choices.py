"""The CLIP models the WebUI side offers, and which of them are on this machine.

Its own module so that ``settings`` (the default model and the Settings dropdown) and
``model_source`` (which loads the chosen one) both import it at the top without importing
each other.

Public API:

- ``WEBUI_CLIP`` / ``WEBUI_CLIP_ID``: the WebUI's Interrogate CLIP (ViT-L/14), reused as is.
- ``HF_MODELS``: transformers CLIP names offered besides it (``registry.KNOWN_MODELS``);
  any other string is a name ``encoders.load_encoder`` takes (hub name, folder,
  ``openai-clip:...``).
- ``list_models(default) -> list[str]``: the choices, plus the other CLIPs found on this
  machine (``registry.local_models``), ``default`` first if it is none of them.
- ``available_locally(name, interrogator=...) -> bool``: the weights are on this machine
  (``registry.is_local``; for the Interrogate CLIP: loaded or its file downloaded), so
  choosing the model needs no network.
- ``reachable(url=CLIP_URL) -> bool``: the registry's one reachability probe (a quick HEAD
  request, remembered for a minute; offline by the registry's one rule: no request) on
  where the interrogator's ``clip.load`` downloads.  Offline, an Interrogate CLIP that is
  not downloaded fails at once.
- ``WEBUI_CLIP_FILE``: the file ``clip.load("ViT-L/14")`` reads from its download folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clipprobe_ext.encoders import registry

WEBUI_CLIP = "WebUI Interrogate CLIP (ViT-L/14)"
WEBUI_CLIP_ID = "webui-interrogate:ViT-L/14"
HF_MODELS = registry.KNOWN_MODELS

# clip.load saves ViT-L/14 under the basename of its URL (clip/clip.py, _MODELS)
WEBUI_CLIP_FILE = "ViT-L-14.pt"
CLIP_URL = "https://openaipublic.azureedge.net/clip/models/"


def list_models(default: str) -> list[str]:
    names = [WEBUI_CLIP, *HF_MODELS]
    for name in registry.local_models(HF_MODELS):  # other CLIPs already on this machine
        if name not in names:
            names.append(name)
    if default not in names:
        names.insert(0, default)
    return names


def webui_clip_path(clip_models_path: str | None) -> Path:
    """Where ``clip.load`` of the WebUI's interrogator keeps ViT-L/14."""
    root = clip_models_path or os.path.expanduser("~/.cache/clip")
    return Path(root) / WEBUI_CLIP_FILE


def webui_clip_on_disk(interrogator: Any, clip_models_path: str | None) -> bool:
    """The interrogator holds its CLIP already, or ``clip.load`` finds the file."""
    if interrogator is None:
        return False
    if getattr(interrogator, "clip_model", None) is not None:
        return True
    return webui_clip_path(clip_models_path).is_file()


def available_locally(
    name: str, interrogator: Any = None, clip_models_path: str | None = None
) -> bool:
    if name == WEBUI_CLIP:
        return webui_clip_on_disk(interrogator, clip_models_path)
    return registry.is_local(name)


def offline_by_environment() -> bool:
    return registry.offline()


def reachable(url: str = CLIP_URL) -> bool:
    """Whether the interrogator's download server answers (``registry.probe``)."""
    return registry.reachable(url)


def forget_reachability() -> None:
    registry.forget_reachability()
