"""Fixtures that make the process look like a running WebUI (AUTOMATIC1111 1.10.1).

Under gradio 4 the stand-ins that depend on gradio follow Forge instead (``ui_components``,
``gradio_extensions``: see their docstrings); CI runs these tests on both gradio lines.

Like sd-dynamic-prompts' ``monkeypatch_webui``, the stand-in ``modules.*`` of
``tests/webui_stubs`` are put into ``sys.modules`` with ``monkeypatch.setitem`` for one
test and removed afterwards, so each test gets fresh ``shared.opts``/``state``/callbacks
and nothing leaks into the engine's tests.

- ``webui``: namespace of the loaded stand-ins (``webui.shared``, ``webui.devices``,
  ``webui.call_queue``, ``webui.progress``, ``webui.script_callbacks``, ...).
- ``interrogator``: an ``InterrogateModels`` installed as ``shared.interrogator`` whose
  ``load_clip_model`` returns a private copy of the tiny openai CLIP (and counts calls).
- ``launch_stub``: the stand-in ``launch`` module in ``sys.modules``.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import types
from pathlib import Path

import pytest

STUBS = Path(__file__).resolve().parent.parent / "webui_stubs"

# Load order: a module's top-level imports come before it.
STUB_MODULES = (
    "options",
    "shared_state",
    "devices",
    "torch_utils",
    "fifo_lock",
    "shared",
    "lowvram",
    "interrogate",
    "progress",
    "call_queue",
    "script_callbacks",
    "scripts",
    "infotext_utils",
    "gradio_extensions",
    "ui_components",
)


def _spec(name: str, path: Path, package: bool = False):
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    assert spec is not None and spec.loader is not None
    return spec


def load_stubs(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Fresh stand-in ``modules`` package and submodules in ``sys.modules`` (undone after)."""
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    package_spec = _spec("modules", STUBS / "modules" / "__init__.py", package=True)
    package = importlib.util.module_from_spec(package_spec)
    monkeypatch.setitem(sys.modules, "modules", package)
    package_spec.loader.exec_module(package)
    specs = {}
    for short in STUB_MODULES:
        spec = _spec(f"modules.{short}", STUBS / "modules" / f"{short}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        setattr(package, short, module)
        specs[short] = (spec, module)
    for spec, module in specs.values():
        spec.loader.exec_module(module)
    return types.SimpleNamespace(**{short: module for short, (_, module) in specs.items()})


@pytest.fixture()
def webui(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    from clipprobe_ext.webui import model_source

    stubs = load_stubs(monkeypatch)
    model_source.clear_cache()
    yield stubs
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
    webui.shared.cmd_opts.clip_models_path = str(clip_dir)
    interrogator = webui.interrogate.InterrogateModels("interrogate")

    def load_clip_model():
        interrogator.calls.append("load_clip_model")
        clip_model = copy.deepcopy(model).eval()
        return clip_model.to(webui.devices.device_interrogate), preprocess

    interrogator.load_clip_model = load_clip_model
    webui.shared.interrogator = interrogator
    return interrogator


@pytest.fixture()
def launch_stub(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("launch", STUBS / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "launch", module)
    return module
