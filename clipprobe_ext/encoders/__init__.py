"""CLIP encoders behind one small interface (see ``base.ClipEncoder``).

- ``registry``: what models exist and where (names, local copies, the offline rule, the
  reachability probe); never builds a model.
- ``factory``: ``load_encoder(name, device, dtype)`` builds one.
- ``identity``: ``ModelRef``, the one identity every cache keys on.

The names below are imported on first use, so ``import clipprobe_ext.encoders.registry``
(the WebUI's model list) loads neither torch nor a model library.
"""

from __future__ import annotations

from clipprobe_ext.lazy import lazy_exports

_EXPORTS = {
    "ClipEncoder": "clipprobe_ext.encoders.base",
    "TextEmbeddingCache": "clipprobe_ext.encoders.base",
    "text_cache_for": "clipprobe_ext.encoders.base",
    "ModelRef": "clipprobe_ext.encoders.identity",
    "Preprocessing": "clipprobe_ext.encoders.identity",
    "load_encoder": "clipprobe_ext.encoders.factory",
    "clear_cache": "clipprobe_ext.encoders.factory",
    "resolve_device": "clipprobe_ext.encoders.factory",
    "KNOWN_MODELS": "clipprobe_ext.encoders.registry",
    "is_local": "clipprobe_ext.encoders.registry",
    "local_models": "clipprobe_ext.encoders.registry",
    "offline": "clipprobe_ext.encoders.registry",
    "reachable": "clipprobe_ext.encoders.registry",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
