"""One Analyze click's entry in the WebUI's progress bookkeeping (``modules.progress``).

Progress is shown the WebUI's usual way, as txt2img and Extras do: the Analyze click runs
the JS ``clipprobe_submit()`` first, which makes a task id (``randomId()``), starts the
WebUI's ``requestProgress`` bar above the result box (``#clipprobe_result``, in a
``progress-container`` row) and passes the id as the hidden first input ``id_task``.
The id is put in the WebUI's queue (``progress.add_task_to_queue``: the bar says "In
queue" while a generation holds the lock), started once the run holds the lock
(``progress.start_task``; the bar then shows ClipProbe's ``textinfo`` and percentage from
``shared.state``) and finished whatever happens (``progress.finish_task``; an id that never
started also leaves ``pending_tasks``).  Results are not recorded
(``progress.record_results``): ClipProbe has no "restore progress", and the two recorded
slots belong to txt2img/img2img.  Without ``modules.progress`` (older or forked WebUIs) or
without a ``task(...)`` id, every call does nothing.

Public API: ``is_task_id(value) -> bool``, ``ProgressTask(id_task)`` with ``queue()``,
``start()``, ``finish()``.
"""

from __future__ import annotations

import logging
from typing import Any

from clipprobe_ext.webui import compat

log = logging.getLogger("clipprobe")


def is_task_id(value: Any) -> bool:
    """A WebUI task id as ``randomId()`` makes it (``wrap_gradio_gpu_call``'s own test)."""
    return isinstance(value, str) and value.startswith("task(") and value.endswith(")")


class ProgressTask:
    """Failures of the bookkeeping are logged, never raised: the progress bar must not
    cost the user the analysis."""

    def __init__(self, id_task: Any) -> None:
        self.id_task = id_task if is_task_id(id_task) else None
        self.module = compat.progress() if self.id_task is not None else None
        self.started = False

    def queue(self) -> None:
        if self.module is not None:
            self._call("add_task_to_queue")

    def start(self) -> None:
        if self.module is not None and not self.started:
            self.started = True
            self._call("start_task")

    def finish(self) -> None:
        if self.module is None:
            return
        if not self.started:  # start_task would have taken it out of the queue
            pending = getattr(self.module, "pending_tasks", None)
            if isinstance(pending, dict):
                pending.pop(self.id_task, None)
        self._call("finish_task")

    def _call(self, name: str) -> None:
        try:
            getattr(self.module, name)(self.id_task)
        except Exception:
            log.exception("ClipProbe: progress.%s failed", name)
