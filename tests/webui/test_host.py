"""The real ``host`` outside the WebUI: every question it answers there has an answer."""

from __future__ import annotations

import sys
import threading

import pytest
import torch

from clipprobe_ext.webui import host


@pytest.fixture()
def no_webui(monkeypatch):
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modules", None)  # import modules -> ImportError


def test_no_forge_and_no_forge_memory_management_here():
    assert host.is_forge() is False
    assert host.forge_memory() is None
    assert host.forge_model_patcher() is None


def test_outside_the_webui_the_answers_are_defaults(no_webui):
    assert host.opts() is None and host.state() is None and host.interrogator() is None
    assert host.cmd_opt("lowvram") is None
    assert host.progress_registry() is None and host.create_task_id("x") is None
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert host.clip_device() == torch.device(expected)
    host.torch_gc()
    host.clear_total_progress()

    def fn(x):
        return x

    assert host.wrap_gradio_call(fn) is fn


def test_outside_the_webui_the_lock_is_clipprobes_own(no_webui):
    lock = host.queue_lock()
    assert lock is host.queue_lock()
    with lock:
        taken = []
        other = threading.Thread(target=lambda: taken.append(lock.acquire(blocking=False)))
        other.start()
        other.join()
    assert taken == [False]  # held: a second job waits
