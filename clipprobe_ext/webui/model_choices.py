"""The CLIP models the WebUI side offers, and which of them are on this machine.

Its own module so that ``settings`` (the default model and the Settings dropdown) and
``model_source`` (which loads the chosen one) both import it at the top without importing
each other.

Public API:

- ``WEBUI_CLIP`` / ``WEBUI_CLIP_ID``: the WebUI's Interrogate CLIP (ViT-L/14), reused as is.
- ``HF_MODELS``: transformers CLIP names offered besides it (``loader.KNOWN_MODELS``);
  any other string is a name ``encoders.loader.load_encoder`` takes (hub name, folder,
  ``openai-clip:...``).
- ``list_models(default) -> list[str]``: the choices, plus the other CLIPs found on this
  machine (``loader.local_models``), ``default`` first if it is none of them.
- ``available_locally(name, interrogator=...) -> bool``: the weights are on this machine
  (``loader.is_local``; for the Interrogate CLIP: loaded or its file downloaded), so
  choosing the model needs no network.
- ``reachable(host) -> bool``: one quick look (about a second at most) whether ``host``
  (``CLIP_HOST``: where the interrogator's ``clip.load`` downloads) accepts a connection;
  remembered for a minute.  Offline, an Interrogate CLIP that is not downloaded fails at
  once.
- ``WEBUI_CLIP_FILE``: the file ``clip.load("ViT-L/14")`` reads from its download folder.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from clipprobe_ext.encoders import loader

WEBUI_CLIP = "WebUI Interrogate CLIP (ViT-L/14)"
WEBUI_CLIP_ID = "webui-interrogate:ViT-L/14"
HF_MODELS = loader.KNOWN_MODELS

# clip.load saves ViT-L/14 under the basename of its URL (clip/clip.py, _MODELS)
WEBUI_CLIP_FILE = "ViT-L-14.pt"
CLIP_HOST = ("openaipublic.azureedge.net", 443)
REACH_TIMEOUT_S = 1.0
REACH_MEMORY_S = 60.0


def list_models(default: str) -> list[str]:
    names = [WEBUI_CLIP, *HF_MODELS]
    for name in loader.local_models(HF_MODELS):  # other CLIPs already on this machine
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
    return loader.is_local(name)


_reach_lock = threading.Lock()
_reach_answers: dict[tuple[str, int], tuple[float, bool]] = {}


def offline_by_environment() -> bool:
    return any(
        os.environ.get(key, "") not in ("", "0")
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def reachable(host: tuple[str, int] = CLIP_HOST) -> bool:
    """Whether ``host`` accepts a connection within about a second (remembered a minute).

    The look runs in a daemon thread joined with a timeout, because name resolution has
    no timeout of its own; the offline environment variables answer False at once.
    """
    if offline_by_environment():
        return False
    with _reach_lock:
        now = time.monotonic()
        known = _reach_answers.get(host)
        if known is not None and now - known[0] < REACH_MEMORY_S:
            return known[1]
        result: list[bool] = []

        def look() -> None:
            try:
                socket.create_connection(host, timeout=REACH_TIMEOUT_S).close()
                result.append(True)
            except OSError:
                result.append(False)

        thread = threading.Thread(target=look, daemon=True, name="clipprobe-reach")
        thread.start()
        thread.join(REACH_TIMEOUT_S)
        answer = bool(result and result[0])
        _reach_answers[host] = (now, answer)
        return answer


def forget_reachability() -> None:
    with _reach_lock:
        _reach_answers.clear()
