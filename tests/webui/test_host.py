"""The real ``host`` outside the WebUI: every question it answers there has an answer."""

from __future__ import annotations

import ast
import sys
import threading
from pathlib import Path

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


# -- the package's layout ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
WEBUI_ROOTS = {"modules", "modules_forge", "backend", "ldm_patched"}


def _imports(path: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` of ``path`` names (absolute, with
    the imported names as submodules), at module level or inside functions."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            stem = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([stem] if stem else []))
            found += [stem] + [f"{stem}.{alias.name}" for alias in node.names]
    return found


def test_host_is_the_only_module_that_imports_the_webui():
    files = [*(ROOT / "clipprobe_ext").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            {m for m in _imports(path) if m.split(".")[0] in WEBUI_ROOTS}
        )
        for path in files
        if path != ROOT / "clipprobe_ext" / "webui" / "host.py"
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}
    assert {m.split(".")[0] for m in _imports(ROOT / "clipprobe_ext/webui/host.py")} >= {
        "modules",
        "modules_forge",
        "backend",
    }


def test_no_import_circle_in_the_webui_package():
    folder = ROOT / "clipprobe_ext" / "webui"
    names = {}
    for path in folder.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        targets = set()
        for target in _imports(path):
            while target and target not in names:
                target = target.rpartition(".")[0]
            # a package importing its own submodules through __init__ is no circle
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen)):
                return True
        return False

    circles = sorted(name for name in graph if reaches(name, name, set()))
    assert circles == []
    assert len(graph) > 20 and "clipprobe_ext.webui.api" in graph
