"""One place that turns a model name into a ``ClipEncoder``: the CLI and the WebUI both
load through here, with the same errors, caches and offline behaviour.

Names (like open_clip's ``create_model_and_transforms``, one string says it all):

- a transformers hub name (``openai/clip-vit-base-patch32``), read from the Hugging Face
  cache when it is there;
- a local folder holding a transformers CLIP (``config.json``, weights, tokenizer and
  preprocessor files);
- ``openai-clip:NAME`` (``openai-clip:ViT-L/14``, the WebUI's Interrogate CLIP) or
  ``openai-clip:/path/to/ViT-L-14.pt`` for the openai ``clip`` package.

Offline first: the local cache is checked before any network call, and a model that is
not there is never fetched with the hub's retry loop (up to two minutes of "Retrying in
8s" before).  With ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set, or
``allow_download=False``, or when one quick request (a few seconds at most) finds the hub
unreachable, loading fails at once with one clear ``ModelError``.

Public API:

- ``load_encoder(name, device=None, dtype=None, *, allow_download=True) -> ClipEncoder``;
  cached by ``(name, model identity, device, dtype)``: a second call returns the same
  encoder (moved back to ``device`` if someone moved it).  ``ModelError`` on any failure.
- ``is_local(name) -> bool``: loadable without network (never touches the network).
- ``local_models(candidates=KNOWN_MODELS) -> list[str]``: the candidates that are local,
  then every other CLIP found in the Hugging Face cache and ``~/.cache/clip``.
- ``model_identity(name) -> str``: what the weights are (resolved snapshot, file path and
  modification time), so caches never mix two models that share a name.
- ``text_cache(key) -> TextEmbeddingCache``: the text-embedding cache shared by every
  encoder of one ``key`` (``load_encoder`` uses ``model_identity`` plus the dtype).
- ``resolve_device(device) -> torch.device``; ``clear_cache()``; ``OPENAI_PREFIX``,
  ``KNOWN_MODELS``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from clipprobe_ext.encoders.base import ClipEncoder, TextEmbeddingCache
from clipprobe_ext.errors import ModelError, first_line
from clipprobe_ext.options import OPENAI_PREFIX

KNOWN_MODELS = ("openai/clip-vit-base-patch32", "openai/clip-vit-large-patch14")
HUB_TIMEOUT_S = 2.0  # the one quick request that decides whether a download is tried

_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_OFFLINE_HINT = (
    "download it once where there is network, or choose a local folder holding a "
    "transformers CLIP (config.json, weights, tokenizer and preprocessor files)"
)

_encoders: dict[tuple[str, str, str, str], ClipEncoder] = {}
_text_caches: dict[str, TextEmbeddingCache] = {}


# -- public ----------------------------------------------------------------------------------


def load_encoder(
    name: str,
    device: Any = None,
    dtype: Any = None,
    *,
    allow_download: bool = True,
) -> ClipEncoder:
    """A ``ClipEncoder`` for ``name`` (see the module docstring); ``ModelError`` on failure.

    ``dtype`` defaults to float16 on CUDA and float32 on the CPU.
    """
    import torch

    name = (name or "").strip()
    if not name:
        raise ModelError("No CLIP model was named.")
    device = resolve_device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    identity = model_identity(name)
    key = (name, identity, str(device), str(dtype))
    encoder = _encoders.get(key)
    if encoder is not None:
        encoder.model.to(device)
        return encoder
    cache = text_cache(f"{identity}|{dtype}")
    with quiet_libraries():
        if name.startswith(OPENAI_PREFIX):
            encoder = _load_openai_clip(name[len(OPENAI_PREFIX) :].strip(), device, dtype, cache)
        else:
            encoder = _load_hf(name, device, dtype, cache, allow_download)
    _encoders[key] = encoder
    return encoder


def is_local(name: str) -> bool:
    """Whether ``name`` can be loaded without network (checks files only, never the hub)."""
    name = (name or "").strip()
    if name.startswith(OPENAI_PREFIX):
        return _openai_clip_file(name[len(OPENAI_PREFIX) :].strip()) is not None
    folder = Path(os.path.expanduser(name))
    if _looks_like_path(name) or folder.is_dir():
        return (folder / "config.json").is_file()
    return _hub_snapshot(name) is not None


def local_models(candidates: Iterable[str] = KNOWN_MODELS) -> list[str]:
    """The candidates available locally, then other CLIPs found in the local caches."""
    found = [name for name in candidates if is_local(name)]
    for name in [*_cached_hub_clips(), *_cached_openai_clips()]:
        if name not in found:
            found.append(name)
    return found


def model_identity(name: str) -> str:
    """A string that changes when the weights behind ``name`` change."""
    name = (name or "").strip()
    if name.startswith(OPENAI_PREFIX):
        path = _openai_clip_file(name[len(OPENAI_PREFIX) :].strip())
        return f"{name}@{_file_stamp(path)}" if path else name
    folder = Path(os.path.expanduser(name))
    if folder.is_dir():
        files = [folder / f for f in ("config.json", *_WEIGHT_FILES)]
        stamps = ",".join(_file_stamp(f) for f in files if f.is_file())
        return f"folder:{folder.resolve()}@{stamps}"
    snapshot = _hub_snapshot(name)
    return f"hub:{name}@{snapshot.name}" if snapshot is not None else f"hub:{name}"


def text_cache(key: str) -> TextEmbeddingCache:
    cache = _text_caches.get(key)
    if cache is None:
        cache = _text_caches[key] = TextEmbeddingCache()
    return cache


def clear_cache() -> None:
    """Forget every loaded encoder and text cache."""
    _encoders.clear()
    _text_caches.clear()


def resolve_device(device: Any = None) -> Any:
    import torch

    if device is None or device == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("The CUDA device was asked for, but this PyTorch sees no CUDA GPU.")
    return device


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """No warnings or log chatter of transformers / huggingface_hub / clip reaches the
    user: a failure is reported as one ``ModelError`` instead."""
    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "transformers")]
    levels = [lg.level for lg in loggers]
    hf_logging = None
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging
    before = hf_logging.get_verbosity() if hf_logging is not None else None
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        if hf_logging is not None:
            hf_logging.set_verbosity_error()
        with warnings.catch_warnings():
            if not os.environ.get("CLIPPROBE_DEBUG"):
                warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if hf_logging is not None and before is not None:
            hf_logging.set_verbosity(before)


# -- transformers ------------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\", "..\\"))
        or name in (".", "..")
        or (os.sep == "\\" and ":" in name)
    )


def _offline_env() -> bool:
    return any(
        os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _load_hf(
    name: str, device: Any, dtype: Any, cache: TextEmbeddingCache, allow_download: bool
) -> ClipEncoder:
    from clipprobe_ext.encoders.hf import HFClipEncoder

    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return HFClipEncoder.from_pretrained(
            expanded, device=device, dtype=dtype, cache=cache, local_files_only=True
        )
    if os.path.exists(expanded):
        raise ModelError(f"{name} is a file; a transformers CLIP is a folder (config.json, ...).")
    if _looks_like_path(name):
        raise ModelError(f"The model folder {name} does not exist.")
    local = _hub_snapshot(name) is not None
    if not local:
        _require_download(name, allow_download)
    try:
        return HFClipEncoder.from_pretrained(
            name,
            device=device,
            dtype=dtype,
            cache=cache,
            local_files_only=local,
            cache_dir=_hub_cache_dir(),
        )
    except ModelError as exc:
        if local:
            raise
        raise ModelError(
            f"The CLIP model '{name}' could not be downloaded ({_cause(exc)}); {_OFFLINE_HINT}."
        ) from exc


def _require_download(name: str, allow_download: bool) -> None:
    """Return when a download of hub model ``name`` may be tried; else ``ModelError`` now."""
    not_local = (
        f"The CLIP model '{name}' is not available offline (it is not in the Hugging Face cache"
    )
    if _offline_env() or not allow_download:
        why = "offline mode is on" if _offline_env() else "downloads are off here"
        raise ModelError(f"{not_local}, and {why}); {_OFFLINE_HINT}.")
    try:
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(name, "config.json")
    except Exception as exc:  # an invalid repo id
        raise ModelError(
            f"'{name}' is neither a local folder nor a Hugging Face model name ({first_line(exc)})."
        ) from exc
    status = _head(url)
    if status is None:
        raise ModelError(
            f"{not_local}, and the Hugging Face hub could not be reached); {_OFFLINE_HINT}."
        )
    if status in (401, 403, 404):
        raise ModelError(
            f"The CLIP model '{name}' is not available offline, and the Hugging Face hub has "
            f"no public model of that name (HTTP {status}); check the name, or choose a local "
            "folder holding a transformers CLIP."
        )


def _head(url: str) -> int | None:
    """HTTP status of one HEAD request without retries, ``None`` when unreachable."""
    try:
        import requests
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    try:
        response = requests.head(url, timeout=HUB_TIMEOUT_S, allow_redirects=True)
    except Exception:
        return None
    return response.status_code


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc
    return first_line(inner)


def _hub_cache_dir() -> str | None:
    with contextlib.suppress(ImportError, AttributeError):
        from transformers.utils import hub

        return str(hub.TRANSFORMERS_CACHE)
    with contextlib.suppress(ImportError, AttributeError):
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    return None


def _hub_snapshot(name: str) -> Path | None:
    """The cached snapshot folder holding config.json, weights and the preprocessor
    config of hub model ``name``; ``None`` when anything is missing (no network)."""
    if not name or _looks_like_path(name) or name.count("/") > 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    def cached(filename: str) -> str | None:
        try:
            found = try_to_load_from_cache(name, filename, cache_dir=_hub_cache_dir())
        except Exception:  # invalid repo id
            return None
        return found if isinstance(found, str) else None

    config = cached("config.json")
    if config is None or cached("preprocessor_config.json") is None:
        return None
    if not any(cached(f) for f in _WEIGHT_FILES):
        return None
    return Path(config).parent


def _cached_hub_clips() -> list[str]:
    """Hub names of the CLIP models in the Hugging Face cache (no network)."""
    root = _hub_cache_dir()
    if not root or not os.path.isdir(root):
        return []
    names = []
    for entry in sorted(os.listdir(root)):
        if not entry.startswith("models--"):
            continue
        name = entry[len("models--") :].replace("--", "/")
        snapshot = _hub_snapshot(name)
        if snapshot is not None and _is_clip_config(snapshot / "config.json"):
            names.append(name)
    return names


def _is_clip_config(path: Path) -> bool:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == "clip"
    except (OSError, ValueError, AttributeError):
        return False


def _file_stamp(path: Any) -> str:
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return "missing"
    return f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


# -- openai clip ---------------------------------------------------------------------------------


def _openai_clip_root() -> str:
    return os.path.expanduser("~/.cache/clip")


def _openai_clip_urls() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import clip.clip as clip_module
        except ImportError:
            return {}
    return dict(getattr(clip_module, "_MODELS", {}))


def _openai_clip_file(name: str) -> str | None:
    """The local file of ``openai-clip:NAME`` (a path, or a model in ~/.cache/clip)."""
    if not name:
        return None
    path = os.path.expanduser(name)
    if os.path.isfile(path):
        return path
    url = _openai_clip_urls().get(name)
    if url is None:
        return None
    cached = os.path.join(_openai_clip_root(), os.path.basename(url))
    return cached if os.path.isfile(cached) else None


def _cached_openai_clips() -> list[str]:
    return [
        f"{OPENAI_PREFIX}{name}"
        for name in _openai_clip_urls()
        if _openai_clip_file(name) is not None and not os.path.isfile(os.path.expanduser(name))
    ]


def _load_openai_clip(name: str, device: Any, dtype: Any, cache: TextEmbeddingCache) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import clip
        except ImportError:
            raise ModelError(
                f"'{OPENAI_PREFIX}' models need the openai clip package (pip install openai-clip)."
            ) from None
    from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder

    if not name:
        raise ModelError(f"Name the model after '{OPENAI_PREFIX}', e.g. {OPENAI_PREFIX}ViT-L/14.")
    path = os.path.expanduser(name)
    is_file = os.path.isfile(path)
    available = clip.available_models()
    if not is_file and name not in available:
        raise ModelError(
            f"'{name}' is neither a file nor an openai clip model ({', '.join(available)})."
        )
    if not is_file and _openai_clip_file(name) is None:
        url = _openai_clip_urls().get(name, "")
        if _offline_env() or _head(url) is None:
            raise ModelError(
                f"The openai clip model '{name}' is not available offline (it is not in "
                "~/.cache/clip and could not be downloaded); download it once where there is "
                f"network, or name the file ({OPENAI_PREFIX}/path/to/the/model.pt), or choose "
                "a local folder holding a transformers CLIP."
            )
    try:
        model, preprocess = clip.load(path if is_file else name, device="cpu", jit=False)
    except Exception as exc:
        if is_file:
            raise ModelError(
                f"Could not load the clip model file {name} (clip.load wants one of the "
                f"openai TorchScript checkpoints): {first_line(exc)}"
            ) from exc
        raise ModelError(f"Could not load the clip model '{name}': {first_line(exc)}") from exc
    model = model.to(device=device, dtype=dtype).eval()
    return OpenAIClipEncoder(model, preprocess, model_id=f"{OPENAI_PREFIX}{name}", cache=cache)
