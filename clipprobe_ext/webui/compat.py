"""Differences between WebUI versions and forks, in one place.

Public API (all cheap; nothing is imported at module import time):

- ``infotext_utils() -> module``: ``modules.infotext_utils`` (A1111 >= 1.8, Forge), or
  its old name ``modules.generation_parameters_copypaste``.
- ``is_forge() -> bool``: running inside SD WebUI Forge (``modules_forge`` importable).
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
- ``queue_lock()``: the WebUI's ``modules.call_queue.queue_lock``; in 1.10 a
  ``fifo_lock.FIFOLock`` that is NOT re-entrant: never take it twice in one thread.
- ``progress() -> module | None``: the WebUI's ``modules.progress`` (task ids behind its
  progress bar: ``add_task_to_queue``, ``start_task``, ``finish_task``, ``pending_tasks``),
  None where it is missing or lacks those functions (older or forked WebUIs).
- ``forge_memory_management() -> module | None``: Forge's ``backend.memory_management``
  (or ``ldm_patched.modules.model_management`` of older Forge), None elsewhere.
"""

from __future__ import annotations

import functools
import importlib.metadata
from types import ModuleType
from typing import Any


def infotext_utils() -> ModuleType:
    """The WebUI module with ``ParamBinding``, ``register_paste_params_button``, ...."""
    try:
        from modules import infotext_utils as module
    except ImportError:
        from modules import generation_parameters_copypaste as module
    return module


def is_forge() -> bool:
    try:
        import modules_forge  # noqa: F401
    except ImportError:
        return False
    return True


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


def queue_lock() -> Any:
    from modules import call_queue

    return call_queue.queue_lock


def progress() -> ModuleType | None:
    try:
        from modules import progress as module
    except ImportError:
        return None
    needed = ("add_task_to_queue", "start_task", "finish_task")
    if not all(callable(getattr(module, name, None)) for name in needed):
        return None
    return module


def forge_memory_management() -> ModuleType | None:
    try:
        from backend import memory_management
    except ImportError:
        pass
    else:
        return memory_management
    try:
        from ldm_patched.modules import model_management
    except ImportError:
        return None
    return model_management
