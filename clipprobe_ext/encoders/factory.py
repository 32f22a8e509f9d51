"""Build a ``ClipEncoder`` from a name, a device and a dtype: the CLI and the WebUI both
load through here, with the same errors, caches and offline behaviour.

Names, local files, the offline rule and the reachability probe are ``registry``'s.
Offline first: the local copy is used before any network call, and a model that is not
here is never fetched with the hub's retry loop (up to two minutes of "Retrying in 8s"):
offline (``registry.offline``), ``allow_download=False``, or one quick probe that finds
the hub unreachable fails at once with one clear ``ModelError``.

Public API:

- ``load_encoder(name, device=None, dtype=None, *, allow_download=True,
  keep_embeddings=True) -> ClipEncoder``; a second call with the same name, device and
  dtype returns the same encoder (moved back to ``device`` if someone moved it) unless
  the files behind the name changed.  ``keep_embeddings``: text embeddings and reference
  banks are kept in the user's embedding store (``store.open_store``; memory only where
  that cannot be opened).  ``ModelError`` on any failure.
- ``resolve_device(device) -> torch.device``; ``clear_cache()``; ``quiet_libraries()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from clipprobe_ext.encoders import registry
from clipprobe_ext.encoders.base import ClipEncoder, forget_text_caches
from clipprobe_ext.errors import ModelError, first_line
from clipprobe_ext.options import OPENAI_PREFIX

_OFFLINE_HINT = (
    "download it once where there is network, or choose a local folder holding a "
    "transformers CLIP (config.json, weights, tokenizer and preprocessor files)"
)

_encoders: dict[tuple[str, str, str, str], ClipEncoder] = {}


def load_encoder(
    name: str,
    device: Any = None,
    dtype: Any = None,
    *,
    allow_download: bool = True,
    keep_embeddings: bool = True,
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
    key = (name, registry.files_stamp(name), str(device), str(dtype))
    encoder = _encoders.get(key)
    if encoder is None:
        with quiet_libraries():
            if name.startswith(OPENAI_PREFIX):
                encoder = _load_openai_clip(name[len(OPENAI_PREFIX) :].strip(), device, dtype)
            else:
                encoder = _load_hf(name, device, dtype, allow_download)
        _encoders[key] = encoder
    else:
        encoder.to(device)
    if not encoder.store_pinned:
        from clipprobe_ext.store import open_store

        encoder.keep_embeddings_in(open_store() if keep_embeddings else None)
    return encoder


def clear_cache() -> None:
    """Forget every loaded encoder and in-memory text cache."""
    _encoders.clear()
    forget_text_caches()


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


def _load_hf(name: str, device: Any, dtype: Any, allow_download: bool) -> ClipEncoder:
    from clipprobe_ext.encoders.hf import HFClipEncoder

    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return HFClipEncoder.from_pretrained(
            expanded, device=device, dtype=dtype, local_files_only=True
        )
    if os.path.exists(expanded):
        raise ModelError(f"{name} is a file; a transformers CLIP is a folder (config.json, ...).")
    if registry.looks_like_path(name):
        raise ModelError(f"The model folder {name} does not exist.")
    snapshot = registry.hub_snapshot(name)
    if snapshot is not None:  # the download's own folder: no hub lookups at all
        return HFClipEncoder.from_pretrained(
            str(snapshot), device=device, dtype=dtype, local_files_only=True, model_id=f"hf:{name}"
        )
    _require_download(name, allow_download)
    try:
        return HFClipEncoder.from_pretrained(
            name, device=device, dtype=dtype, cache_dir=registry.hub_cache_dir()
        )
    except ModelError as exc:
        raise ModelError(
            f"The CLIP model '{name}' could not be downloaded ({_cause(exc)}); {_OFFLINE_HINT}."
        ) from exc


def _require_download(name: str, allow_download: bool) -> None:
    """Return when a download of hub model ``name`` may be tried; else ``ModelError`` now."""
    not_local = (
        f"The CLIP model '{name}' is not available offline (it is not in the Hugging Face cache"
    )
    if registry.offline() or not allow_download:
        why = "offline mode is on" if registry.offline() else "downloads are off here"
        raise ModelError(f"{not_local}, and {why}); {_OFFLINE_HINT}.")
    try:
        from huggingface_hub import hf_hub_url
    except ImportError:
        raise ModelError(
            f"The CLIP model '{name}' is not in a local folder, and downloading it needs the "
            "huggingface_hub package, which is not installed."
        ) from None
    try:
        url = hf_hub_url(name, "config.json")
    except Exception as exc:  # an invalid repo id
        raise ModelError(
            f"'{name}' is neither a local folder nor a Hugging Face model name ({first_line(exc)})."
        ) from exc
    status = registry.probe(url)
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


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc
    return first_line(inner)


# -- openai clip ---------------------------------------------------------------------------------


def _load_openai_clip(name: str, device: Any, dtype: Any) -> ClipEncoder:
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
    if not is_file and registry.openai_clip_file(name) is None:
        url = registry.openai_clip_urls().get(name, "")
        if not registry.reachable(url):
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
    return OpenAIClipEncoder(
        model,
        preprocess,
        model_id=f"{OPENAI_PREFIX}{name}",
        source=registry.weights_source(f"{OPENAI_PREFIX}{name}"),
    )
