"""Mirrors modules/progress.py of AUTOMATIC1111 v1.10.1 (Forge's is the same): the task ids
behind the WebUI's progress bar.

The module state (``current_task``, ``pending_tasks``, ``finished_tasks``,
``recorded_results``) and the bookkeeping functions behave as in 1.10.1; the
``/internal/progress`` endpoint's view of a task is ``task_status`` (the active/queued/
completed part of ``progressapi``).  Stand-in only: ``calls`` records
``(function name, id_task, queue lock held)`` in call order.
"""

import random
import string
import time
from collections import OrderedDict

current_task = None
pending_tasks = OrderedDict()
finished_tasks = []
recorded_results = []
recorded_results_limit = 2

calls = []  # stand-in only


def _record(name, id_task):
    from modules import call_queue

    calls.append((name, id_task, call_queue.queue_lock.locked()))


def start_task(id_task):
    global current_task

    _record("start_task", id_task)
    current_task = id_task
    pending_tasks.pop(id_task, None)


def finish_task(id_task):
    global current_task

    _record("finish_task", id_task)
    if current_task == id_task:
        current_task = None

    finished_tasks.append(id_task)
    if len(finished_tasks) > 16:
        finished_tasks.pop(0)


def create_task_id(task_type):
    res = "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
    return f"task({task_type}-{res})"


def record_results(id_task, res):
    _record("record_results", id_task)
    recorded_results.append((id_task, res))
    if len(recorded_results) > recorded_results_limit:
        recorded_results.pop(0)


def add_task_to_queue(id_job):
    _record("add_task_to_queue", id_job)
    pending_tasks[id_job] = time.time()


def task_status(id_task):
    """``(active, queued, completed)`` as ``progressapi`` answers them for ``id_task``."""
    return id_task == current_task, id_task in pending_tasks, id_task in finished_tasks
