"""Opt-in: every stand-in of ``tests/webui_stubs`` against the real WebUI's source.

Skipped unless ``WEBUI_DIR`` names a WebUI checkout (e.g. ``/tmp/a1111-harness/webui``,
which ``run_webui.sh setup`` unpacks: AUTOMATIC1111 v1.10.1).  The real files are parsed
with ``ast``, never imported (they would need the whole WebUI).  A stand-in's gradio-4
branch (``if gradio_extensions.GRADIO_4``) follows Forge and is not compared; neither are
stand-ins of Forge-only files.  For each stand-in module:

- every public top-level name it defines exists in the real module (defined, assigned or
  imported there);
- every public function has the real one's parameters (names, order, kind, which have a
  default); every public method of a stand-in class exists in the real class with the
  same parameters.

Names only a stand-in has (counters tests read, marked "stand-in only" in the stubs) are
listed in ``STAND_IN_ONLY``; an entry that is no longer needed fails the test too.
``launch.py`` is checked against ``modules/launch_utils.py`` (what 1.10's ``launch``
re-exports).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

STUBS = Path(__file__).resolve().parent.parent / "webui_stubs"
WEBUI_DIR = os.environ.get("WEBUI_DIR")

pytestmark = pytest.mark.skipif(
    not WEBUI_DIR, reason="set WEBUI_DIR to a WebUI checkout to compare the stand-ins"
)

# (module, name) -> why the stand-in has it and the WebUI does not
STAND_IN_ONLY = {
    ("devices", "torch_gc_calls"): "counts torch_gc() for the memory tests",
    ("lowvram", "send_everything_to_cpu_calls"): "counts calls for the --lowvram tests",
    ("fifo_lock", "FIFOLock.locked"): "lets tests assert whether the lock is held",
    ("progress", "calls"): "records the bookkeeping calls in order",
    ("progress", "task_status"): "the (active, queued, completed) view /internal/progress has",
    ("interrogate", "InterrogateModels.calls"): "records which methods ran",
    ("shared_state", "State.history"): "records begin/end in call order",
    ("launch", "installed"): "lets a test say which packages are installed",
    ("launch", "pip_calls"): "records pip commands instead of running them",
    ("processing", "calls"): "records the processing objects run",
    ("processing", "generate"): "what makes the picture (no UNet here)",
    ("processing", "StableDiffusionProcessing.closed"): "lets tests assert close() ran",
    ("processing", "StableDiffusionProcessingTxt2Img.output_size"): "the size tests check",
    ("sd_models", "calls"): "records checkpoint loads",
    ("sd_models", "FakeSdModel"): "the loaded model object (no weights here)",
    ("sd_models", "load"): "puts a checkpoint in place as loaded",
    ("sd_samplers", "SamplerData"): "the WebUI imports it from sd_samplers_common",
}

# stand-ins of files only Forge has (the A1111 checkout has nothing to compare them with)
FORGE_ONLY = {"gradio_extensions"}

# stand-in file -> real file (relative to WEBUI_DIR)
REAL_FILE = {"launch": "modules/launch_utils.py"}


def _stub_files() -> list[Path]:
    files = sorted((STUBS / "modules").glob("*.py"))
    skip = {"__init__", *FORGE_ONLY}
    return [f for f in files if f.stem not in skip] + [STUBS / "launch.py"]


def _real_path(stub: Path) -> Path:
    relative = REAL_FILE.get(stub.stem, f"modules/{stub.name}")
    return Path(WEBUI_DIR) / relative


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, str, bool]]:
    """(name, kind, has a default) of every parameter."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    first_default = len(positional) - len(a.defaults)
    out = [(p.arg, "positional", i >= first_default) for i, p in enumerate(positional)]
    if a.vararg is not None:
        out.append((a.vararg.arg, "*args", False))
    out += [(p.arg, "keyword", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg is not None:
        out.append((a.kwarg.arg, "**kwargs", False))
    return out


def _names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for element in target.elts for n in _names(element)]
    return []


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _names(t)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    return []


def _definitions(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module or class body defines (in ``if``/``try`` blocks too)."""
    found: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, node)
        elif isinstance(node, ast.If) and "GRADIO_4" in ast.unparse(node.test):
            # a stand-in's Forge (gradio 4) branch: the A1111 branch is the else
            for name, sub in _definitions(node.orelse).items():
                found.setdefault(name, sub)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            nested = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                nested += handler.body
            for name, sub in _definitions(nested).items():
                found.setdefault(name, sub)
        else:
            for name in _targets(node):
                found.setdefault(name, node)
    return found


def _instance_attributes(cls: ast.ClassDef) -> set[str]:
    """``self.x = ...`` anywhere in the class's methods."""
    names = set()
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return names


def _compare(module: str, stub: dict[str, ast.AST], real: dict[str, ast.AST]) -> list[str]:
    problems = []
    for name, node in stub.items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue  # the stand-in's own imports are no public names
        if (module, name) in STAND_IN_ONLY:
            continue
        if name not in real:
            problems.append(f"{module}.{name}: not in the WebUI")
            continue
        other = real[name]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not isinstance(other, (ast.FunctionDef, ast.AsyncFunctionDef)):
                problems.append(f"{module}.{name}: a function here, not in the WebUI")
            elif _signature(node) != _signature(other):
                problems.append(f"{module}.{name}{_signature(node)} != WebUI {_signature(other)}")
        elif isinstance(node, ast.ClassDef) and isinstance(other, ast.ClassDef):
            methods = _definitions(other.body)
            attributes = _instance_attributes(other)
            for sub_name, sub in _definitions(node.body).items():
                qualified = f"{name}.{sub_name}"
                if (module, qualified) in STAND_IN_ONLY:
                    continue
                if sub_name.startswith("_") and sub_name != "__init__":
                    continue
                if sub_name not in methods and sub_name not in attributes:
                    problems.append(f"{module}.{qualified}: not in the WebUI")
                elif (
                    isinstance(sub, ast.FunctionDef)
                    and isinstance(methods.get(sub_name), ast.FunctionDef)
                    and _signature(sub) != _signature(methods[sub_name])
                ):
                    problems.append(
                        f"{module}.{qualified}{_signature(sub)} != WebUI "
                        f"{_signature(methods[sub_name])}"
                    )
            for attr in _instance_attributes(node):
                qualified = f"{name}.{attr}"
                if attr.startswith("_") or (module, qualified) in STAND_IN_ONLY:
                    continue
                if attr not in attributes and attr not in methods:
                    problems.append(f"{module}.{qualified}: not an attribute in the WebUI")
    return problems


@pytest.mark.parametrize("stub", _stub_files(), ids=lambda p: p.stem)
def test_stand_in_matches_the_webui(stub):
    real_path = _real_path(stub)
    assert real_path.is_file(), f"{real_path} is missing: is WEBUI_DIR a WebUI checkout?"
    problems = _compare(
        stub.stem, _definitions(_tree(stub).body), _definitions(_tree(real_path).body)
    )
    assert not problems, "\n".join(problems)


def test_every_stand_in_only_name_is_still_in_a_stand_in():
    defined = set()
    for stub in _stub_files():
        tree = _tree(stub)
        for name, node in _definitions(tree.body).items():
            defined.add((stub.stem, name))
            if isinstance(node, ast.ClassDef):
                defined |= {(stub.stem, f"{name}.{m}") for m in _definitions(node.body)}
                defined |= {(stub.stem, f"{name}.{a}") for a in _instance_attributes(node)}
    assert set(STAND_IN_ONLY) <= defined, set(STAND_IN_ONLY) - defined
