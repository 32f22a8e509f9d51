"""What models exist and where: names, this machine's copies, offline, reachability.

Like open_clip's ``pretrained.py`` beside its ``factory.py``: this module knows names and
files and never builds a model, so the WebUI's model list, the Settings dropdown and the
calibration lookup use it without loading anything.  A name is a transformers hub name, a
local folder holding a transformers CLIP, or ``openai-clip:NAME``/``openai-clip:PATH``.
It holds the one offline rule (``offline``) and the one reachability probe (``probe``:
one HEAD request, no retries, remembered for a minute), so no caller waits on the hub's
retry loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

from clipprobe_ext.options import OPENAI_PREFIX

__all__ = [
    "HUB_TIMEOUT_S",
    "KNOWN_MODELS",
    "OPENAI_PREFIX",
    "files_stamp",
    "forget_reachability",
    "hub_cache_dir",
    "hub_snapshot",
    "is_local",
    "local_models",
    "looks_like_path",
    "offline",
    "openai_clip_file",
    "probe",
    "reachable",
    "weights_source",
]

KNOWN_MODELS = ("openai/clip-vit-base-patch32", "openai/clip-vit-large-patch14")
HUB_TIMEOUT_S = 2.0  # the one quick request that decides whether a download is tried
PROBE_MEMORY_S = 60.0

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
TRUE_VALUES = ("1", "TRUE", "YES", "ON")  # huggingface_hub's own reading of these variables

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


# -- offline and reachability ----------------------------------------------------------------


def offline() -> bool:
    """Whether the environment says not to use the network (see the module docstring)."""
    return any(os.environ.get(v, "").strip().upper() in TRUE_VALUES for v in OFFLINE_VARIABLES)


_probe_lock = threading.Lock()
_probe_answers: dict[str, tuple[float, int | None]] = {}


def probe(url: str) -> int | None:
    """HTTP status of one HEAD request to ``url``, ``None`` when unreachable or offline.

    No retries; the request runs in a daemon thread joined with a timeout, because name
    resolution has no timeout of its own.  An answer is remembered for a minute.
    """
    if offline():
        return None
    with _probe_lock:
        now = time.monotonic()
        known = _probe_answers.get(url)
        if known is not None and now - known[0] < PROBE_MEMORY_S:
            return known[1]
        result: list[int] = []

        def look() -> None:
            try:
                import requests

                response = requests.head(url, timeout=HUB_TIMEOUT_S, allow_redirects=True)
                result.append(response.status_code)
            except Exception:  # unreachable, refused, bad URL: no answer
                pass

        thread = threading.Thread(target=look, daemon=True, name="clipprobe-probe")
        thread.start()
        thread.join(HUB_TIMEOUT_S + 0.5)
        answer = result[0] if result else None
        _probe_answers[url] = (now, answer)
        return answer


def reachable(url: str) -> bool:
    return probe(url) is not None


def forget_reachability() -> None:
    with _probe_lock:
        _probe_answers.clear()


# -- names and files ---------------------------------------------------------------------------


def looks_like_path(name: str) -> bool:
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\", "..\\"))
        or name in (".", "..")
        or (os.sep == "\\" and ":" in name)
    )


def is_local(name: str) -> bool:
    """Whether ``name`` can be loaded without network (checks files only, never the hub)."""
    name = (name or "").strip()
    if name.startswith(OPENAI_PREFIX):
        return openai_clip_file(name[len(OPENAI_PREFIX) :].strip()) is not None
    folder = Path(os.path.expanduser(name))
    if looks_like_path(name) or folder.is_dir():
        return (folder / "config.json").is_file()
    return hub_snapshot(name) is not None


def local_models(candidates: Iterable[str] = KNOWN_MODELS) -> list[str]:
    """The candidates available locally, then other CLIPs found in the local caches."""
    found = [name for name in candidates if is_local(name)]
    for name in [*_cached_hub_clips(), *_cached_openai_clips()]:
        if name not in found:
            found.append(name)
    return found


def weights_source(name: str) -> str | None:
    """The folder (transformers) or file (openai clip) holding ``name``'s weights here."""
    name = (name or "").strip()
    if name.startswith(OPENAI_PREFIX):
        path = openai_clip_file(name[len(OPENAI_PREFIX) :].strip())
        return os.path.realpath(path) if path else None
    folder = Path(os.path.expanduser(name))
    if folder.is_dir():
        return str(folder.resolve())
    snapshot = hub_snapshot(name)
    return str(snapshot) if snapshot is not None else None


def files_stamp(name: str) -> str:
    """Paths, sizes and modification times of ``name``'s files: changes when they do."""
    source = weights_source(name)
    if source is None:
        return f"{name}@nowhere"
    if os.path.isdir(source):
        files = [Path(source) / f for f in ("config.json", *WEIGHT_FILES)]
        return f"{source}@" + ",".join(_file_stamp(f) for f in files if f.is_file())
    return f"{source}@{_file_stamp(source)}"


def _file_stamp(path: str | os.PathLike) -> str:
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return "missing"
    return f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


# -- the Hugging Face cache ------------------------------------------------------------------


def hub_cache_dir() -> str | None:
    """Where transformers keeps downloads (it honours ``TRANSFORMERS_CACHE`` too)."""
    with contextlib.suppress(ImportError, AttributeError):
        from transformers.utils import hub

        return str(hub.TRANSFORMERS_CACHE)
    with contextlib.suppress(ImportError, AttributeError):
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    return None


def hub_snapshot(name: str) -> Path | None:
    """The cached snapshot folder holding config.json, weights and the preprocessor
    config of hub model ``name``; ``None`` when anything is missing (no network)."""
    if not name or looks_like_path(name) or name.count("/") > 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    def cached(filename: str) -> str | None:
        try:
            found = try_to_load_from_cache(name, filename, cache_dir=hub_cache_dir())
        except Exception:  # invalid repo id
            return None
        return found if isinstance(found, str) else None

    config = cached("config.json")
    if config is None or cached("preprocessor_config.json") is None:
        return None
    if not any(cached(f) for f in WEIGHT_FILES):
        return None
    return Path(config).parent


def _cached_hub_clips() -> list[str]:
    """Hub names of the CLIP models in the Hugging Face cache (no network)."""
    root = hub_cache_dir()
    if not root or not os.path.isdir(root):
        return []
    names = []
    for entry in sorted(os.listdir(root)):
        if not entry.startswith("models--"):
            continue
        name = entry[len("models--") :].replace("--", "/")
        snapshot = hub_snapshot(name)
        if snapshot is not None and is_clip_config(snapshot / "config.json"):
            names.append(name)
    return names


def is_clip_config(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == "clip"
    except (OSError, ValueError, AttributeError):
        return False


# -- openai clip ---------------------------------------------------------------------------------


def openai_clip_root() -> str:
    return os.path.expanduser("~/.cache/clip")


def openai_clip_urls() -> dict[str, str]:
    """The openai ``clip`` package's model names and download URLs (empty without it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import clip.clip as clip_module
        except ImportError:
            return {}
    return dict(getattr(clip_module, "_MODELS", {}))


def openai_clip_file(name: str) -> str | None:
    """The local file of ``openai-clip:NAME`` (a path, or a model in ~/.cache/clip)."""
    if not name:
        return None
    path = os.path.expanduser(name)
    if os.path.isfile(path):
        return path
    url = openai_clip_urls().get(name)
    if url is None:
        return None
    cached = os.path.join(openai_clip_root(), os.path.basename(url))
    return cached if os.path.isfile(cached) else None


def _cached_openai_clips() -> list[str]:
    return [
        f"{OPENAI_PREFIX}{name}"
        for name in openai_clip_urls()
        if openai_clip_file(name) is not None and not os.path.isfile(os.path.expanduser(name))
    ]
