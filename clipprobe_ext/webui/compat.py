"""Differences between gradio 3 (A1111 1.10) and gradio 4 (Forge), in one place; the
WebUI's own differences are ``host``'s.

Public API (all cheap; gradio is not imported):

- ``gradio_major() -> int``: 3 in A1111 1.10 (gradio 3.41), 4 in Forge (gradio 4.x).
- ``js_kwarg(code) -> dict``: ``{"_js": code}`` on gradio 3, ``{"js": code}`` on 4; use
  as ``button.click(fn, inputs, outputs, **js_kwarg("(x) => x"))``.
- ``image_source_kwargs() -> dict``: ``{"source": "upload"}`` on gradio 3,
  ``{"sources": ["upload", "clipboard"]}`` on 4; use as ``gr.Image(**image_source_kwargs())``.
- ``image_format_kwargs() -> dict``: ``{}`` on gradio 3 (its ``gr.Image`` shows PIL images
  as PNG with their text chunks), ``{"format": "png"}`` on 4, whose default, webp, drops
  the PNG ``parameters`` chunk of an image sent into the box (the prompt would be lost);
  use as ``gr.Image(**image_format_kwargs())``.
- ``style(component, **kwargs) -> component``: ``component.style(**kwargs)`` where gradio
  still has ``.style()`` (3.x), else the component unchanged (4.x dropped it).
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any


@functools.lru_cache(maxsize=1)
def gradio_major() -> int:
    """Major version of the installed gradio, read from its metadata (gradio not imported)."""
    try:
        version = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        return 3
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 3


def js_kwarg(code: str) -> dict[str, str]:
    return {"_js": code} if gradio_major() < 4 else {"js": code}


def image_source_kwargs() -> dict[str, Any]:
    if gradio_major() < 4:
        return {"source": "upload"}
    return {"sources": ["upload", "clipboard"]}


def image_format_kwargs() -> dict[str, Any]:
    return {} if gradio_major() < 4 else {"format": "png"}


def style(component: Any, **kwargs: Any) -> Any:
    method = getattr(component, "style", None)
    if kwargs and gradio_major() < 4 and callable(method):
        return method(**kwargs)
    return component
