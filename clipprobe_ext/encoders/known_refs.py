"""The weights' identity of a model seen before, without loading it again.

A fit belongs to the weights (their fingerprint, ``encoders.identity``), and the
fingerprint is read from the loaded weights.  To say which fit a model name stands for
before it is loaded (the WebUI's model list, its dropdown), the identity of every model
that was loaded is remembered under its name together with a stamp of its files
(``registry.files_stamp``: paths, sizes, modification times).  A remembered identity is
used only while the stamp is unchanged, so a folder retrained in place is unknown again
until it is loaded, never mistaken for the old weights.

Kept in memory and in ``known_models.json`` of the user's cache folder (a file that cannot
be read or written is ignored: the identity is then known only in this process).  A name
whose files cannot be found (``...@nowhere``) is remembered in memory only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from clipprobe_ext.encoders.identity import ModelRef

log = logging.getLogger(__name__)

FILE = "known_models.json"
_NOWHERE = "@nowhere"

_memory: dict[str, tuple[str, ModelRef]] = {}
_lock = threading.Lock()


def known_models_path() -> Path:
    from clipprobe_ext.store import user_cache_dir

    return user_cache_dir() / FILE


def remember(name: str, stamp: str, ref: ModelRef) -> None:
    """``ref`` is what ``name`` loaded as while its files had ``stamp``."""
    with _lock:
        _memory[name] = (stamp, ref)
        if stamp.endswith(_NOWHERE):
            return
        path = known_models_path()
        entries = _read(path)
        entries[name] = {"stamp": stamp, "ref": _ref_dict(ref)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(entries, indent=1), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:
            log.debug("ClipProbe: could not write %s (%s)", path, exc)


def recall(name: str, stamp: str) -> ModelRef | None:
    """The identity ``name`` had when last loaded, if its files still have ``stamp``."""
    with _lock:
        known = _memory.get(name)
        if known is not None and known[0] == stamp:
            return known[1]
        if stamp.endswith(_NOWHERE):
            return None
        entry = _read(known_models_path()).get(name)
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    try:
        return ModelRef(**entry["ref"])
    except (KeyError, TypeError):
        return None


def forget() -> None:
    """Forget the identities kept in memory (tests; the file stays)."""
    with _lock:
        _memory.clear()


def _ref_dict(ref: ModelRef) -> dict:
    return {
        "name": ref.name,
        "fingerprint": ref.fingerprint,
        "device": ref.device,
        "dtype": ref.dtype,
        "preprocessing": ref.preprocessing,
        "source": ref.source,
    }


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.debug("ClipProbe: ignoring %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
