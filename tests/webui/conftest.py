"""Fixtures that make the process look like a running WebUI (AUTOMATIC1111 1.10.1).

ClipProbe talks to the WebUI through one module, ``clipprobe_ext.webui.host``; for one
test, every function of it is replaced by the same method of a ``fake_host.FakeHost``
(``tests/webui_stubs/fake_host.py``) and restored afterwards, so each test gets a fresh
``FakeWebUI`` and nothing leaks into the engine's tests.

- ``webui``: the ``FakeWebUI`` (``webui.opts``, ``webui.state``, ``webui.queue_lock``,
  ``webui.progress``, ``webui.callbacks``, ``webui.processing_calls``, ...).
- ``interrogator``: an interrogator installed as ``webui.interrogator`` whose
  ``load_clip_model`` returns a private copy of the tiny openai CLIP (and counts calls).
- ``launch_stub``: the stand-in ``launch`` module in ``sys.modules`` (for ``install.py``).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
import types
from pathlib import Path

import pytest

from clipprobe_ext.webui import host

STUBS = Path(__file__).resolve().parent.parent / "webui_stubs"


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, STUBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


fake_host = _load("fake_host")


def host_functions() -> list[str]:
    """The public functions of ``host``: what the fake must answer."""
    return [
        name
        for name, value in vars(host).items()
        if inspect.isfunction(value) and value.__module__ == host.__name__ and name[0] != "_"
    ]


@pytest.fixture()
def webui(monkeypatch: pytest.MonkeyPatch) -> fake_host.FakeWebUI:
    from clipprobe_ext.webui import model_source

    fake = fake_host.FakeWebUI()
    answers = fake_host.FakeHost(fake)
    for name in host_functions():
        monkeypatch.setattr(host, name, getattr(answers, name))
    model_source.clear_cache()
    yield fake
    model_source.clear_cache()


@pytest.fixture()
def interrogator(webui, tiny_openai_clip, tmp_path):
    """``shared.interrogator`` whose CLIP loads as a private copy of the tiny openai CLIP.

    ``--clip-models-path`` points at a folder with a ``ViT-L-14.pt`` (empty: the loader
    below stands in for ``clip.load`` reading it), so the model counts as downloaded.
    """
    model, preprocess = tiny_openai_clip
    clip_dir = tmp_path / "clip-models"
    clip_dir.mkdir()
    (clip_dir / "ViT-L-14.pt").write_bytes(b"")
    webui.cmd_opts.clip_models_path = str(clip_dir)
    interrogator = webui.new_interrogator()

    def load_clip_model():
        interrogator.calls.append("load_clip_model")
        clip_model = copy.deepcopy(model).eval()
        return clip_model.to(webui.device_interrogate), preprocess

    interrogator.load_clip_model = load_clip_model
    webui.interrogator = interrogator
    return interrogator


@pytest.fixture()
def launch_stub(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("launch", STUBS / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "launch", module)
    return module
