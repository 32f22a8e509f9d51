"""Opt-in: ``host.py`` and the fake host against a real WebUI checkout.

Skipped unless ``WEBUI_DIR`` names a WebUI checkout: ``/tmp/a1111-harness/webui``
(AUTOMATIC1111 v1.10.1, which ``run_webui.sh setup`` unpacks) or
``/tmp/forge-harness/webui`` (Forge).  Two parts:

- **Names** (the real files parsed with ``ast``, never imported): every name ``host.py``
  reads from ``modules.*`` (and Forge's ``modules_forge``/``backend``) exists there, and
  every call it makes fits the real function's or class's parameters; the members the rest
  of ClipProbe uses on objects host hands over (``shared.state``, the interrogator,
  checkpoint infos, options) exist on the real classes.  Names only one fork has are
  listed in ``ONLY_IN``.
- **Behaviour** (A1111 only; needs the WebUI's own Python, ``WEBUI_PYTHON`` or
  ``WEBUI_DIR/../venv/bin/python``): the WebUI's own ``parse_generation_parameters``,
  ``get_override_settings`` (Settings at their defaults), the sampler/scheduler readers
  and the txt2img constructor fields are run in a subprocess on the tests' infotexts and
  on every sampler/scheduler name pair the fake knows, and compared with the fake host's
  answers: the fake's infotext mirror is checked against the real code, not against a
  second copy.

``launch.py``, the stand-in for ``install.py``'s tests, is compared with
``modules/launch_utils.py`` (what 1.10's ``launch`` re-exports).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import fake_host
import pytest

WEBUI_DIR = os.environ.get("WEBUI_DIR")
HOST = Path(__file__).resolve().parents[2] / "clipprobe_ext" / "webui" / "host.py"
STUBS = Path(__file__).resolve().parent.parent / "webui_stubs"

pytestmark = pytest.mark.skipif(
    not WEBUI_DIR, reason="set WEBUI_DIR to a WebUI checkout to compare host with it"
)

#: module names host may import that only one fork has: fork -> names
ONLY_IN = {
    "forge": {"modules_forge", "backend.memory_management", "backend.patcher.base"},
    "old forge": {
        "ldm_patched.modules.model_management",
        "modules.generation_parameters_copypaste",
    },
}

#: (real file, class) -> members ClipProbe uses on objects host hands over
OBJECT_MEMBERS = {
    ("modules/shared_state.py", "State"): (
        "begin",
        "end",
        "interrupt",
        "interrupted",
        "job",
        "job_count",
        "textinfo",
        "sampling_step",
        "sampling_steps",
    ),
    ("modules/interrogate.py", "InterrogateModels"): (
        "load_clip_model",
        "send_clip_to_ram",
        "clip_model",
        "clip_preprocess",
        "dtype",
    ),
    ("modules/sd_models.py", "CheckpointInfo"): ("title", "shorthash", "hash", "sha256", "ids"),
    ("modules/sd_models.py", "SdModelData"): ("sd_model",),
    ("modules/options.py", "Options"): ("add_option", "data_labels"),
    ("modules/options.py", "OptionInfo"): ("info", "infotext"),
}
#: members of the interrogator only one fork has (the adapters check for them)
INTERROGATOR_BY_FORK = {
    "a1111": ("running_on_cpu",),
    "forge": ("clip_patcher", "load_device", "offload_device"),
}


def _fork() -> str:
    return "forge" if (Path(WEBUI_DIR) / "modules_forge").is_dir() else "a1111"


# -- reading real files -----------------------------------------------------------------------


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


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
    """Names a module or class body defines (in ``if``/``try``/``with`` blocks too)."""
    found: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, node)
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
    return {
        node.attr
        for node in ast.walk(cls)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def _module_file(module: str) -> Path | None:
    """The file of ``module``; a package without ``__init__.py`` is its folder."""
    base = Path(WEBUI_DIR) / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return base if base.is_dir() else None


def _members(cls: ast.ClassDef, module_defs: dict[str, ast.AST]) -> dict[str, ast.AST]:
    """A class's methods, class attributes and instance attributes, its bases' too (those
    defined in the same file)."""
    found = dict(_definitions(cls.body))
    found.update({name: cls for name in _instance_attributes(cls)})
    for base in cls.bases:
        if isinstance(base, ast.Name) and isinstance(module_defs.get(base.id), ast.ClassDef):
            for name, node in _members(module_defs[base.id], module_defs).items():
                found.setdefault(name, node)
    return found


# -- what host reads --------------------------------------------------------------------------


def _bindings(fn: ast.FunctionDef) -> dict[str, str]:
    """Local names of ``fn`` bound to a WebUI module (or a class in one): name -> dotted."""
    bound = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in ("modules", "backend", "ldm_patched"):
                for alias in node.names:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "modules_forge":
                    bound[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            target = _names(node.targets[0])
            if isinstance(call.func, ast.Name) and call.func.id == "_webui" and target:
                bound[target[0]] = f"modules.{call.args[0].value}"
            if isinstance(call.func, ast.Name) and call.func.id == "_infotext_utils" and target:
                bound[target[0]] = "modules.infotext_utils"
    return bound


def _reads(fn: ast.FunctionDef, bound: dict[str, str]) -> list[tuple[str, str, ast.Call | None]]:
    """(module, name, the call when it is called) for every ``M.name`` and
    ``getattr(M, "name", ...)`` on a bound module ``M``."""
    calls = {
        id(node.func): node
        for node in ast.walk(fn)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    out = []
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            out.append((bound[node.value.id], node.attr, calls.get(id(node))))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in bound
            and isinstance(node.args[1], ast.Constant)
        ):
            out.append((bound[node.args[0].id], node.args[1].value, None))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "_infotext_utils"
        ):
            out.append(("modules.infotext_utils", node.attr, calls.get(id(node))))
    return out


def _fits(call: ast.Call, fn: ast.FunctionDef, skip_first: bool) -> str | None:
    """Why ``call`` does not fit ``fn``'s parameters, or None."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args][1 if skip_first else 0 :]
    names = {p.arg for p in positional} | {p.arg for p in a.kwonlyargs}
    given = len([x for x in call.args if not isinstance(x, ast.Starred)])
    if given > len(positional) and a.vararg is None:
        return f"{given} positional arguments, {len(positional)} parameters"
    keywords = [k.arg for k in call.keywords if k.arg is not None]
    unknown = [k for k in keywords if k not in names]
    if unknown and a.kwarg is None:
        return f"no parameter {unknown}"
    if any(k.arg is None for k in call.keywords) or any(
        isinstance(x, ast.Starred) for x in call.args
    ):
        return None  # **fields / *args: checked by the behaviour part where it matters
    required = [p.arg for p in positional[: len(positional) - len(a.defaults)]]
    missing = [p for p in required[given:] if p not in keywords]
    kw_required = [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    missing += [p for p in kw_required if p not in keywords]
    return f"missing {missing}" if missing else None


def _resolve(module: str, name: str) -> tuple[Path | None, ast.AST | None, dict[str, ast.AST]]:
    """The real file, definition and module definitions of ``module.name`` (following a
    module-level alias such as ``OptionInfo = options.OptionInfo``)."""
    path = _module_file(module)
    if path is None:
        return None, None, {}
    defs = _definitions(_tree(path).body)
    node = defs.get(name)
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
        inner = node.value
        if isinstance(inner.value, ast.Name) and isinstance(
            defs.get(inner.value.id), ast.ImportFrom
        ):
            imported = defs[inner.value.id]
            return _resolve(f"{imported.module}.{inner.value.id}", inner.attr)
    return path, node, defs


def _check_call(call: ast.Call, node: ast.AST, defs: dict[str, ast.AST]) -> str | None:
    if isinstance(node, ast.FunctionDef):
        return _fits(call, node, skip_first=False)
    if isinstance(node, ast.ClassDef):
        init = _members(node, defs).get("__init__")
        if isinstance(init, ast.FunctionDef):
            return _fits(call, init, skip_first=True)
    return None  # a dataclass: its fields are compared in the behaviour part


def _host_problems() -> list[str]:
    fork = _fork()
    allowed_missing = set().union(*(v for k, v in ONLY_IN.items() if k != fork))
    if fork == "forge":
        allowed_missing |= ONLY_IN["old forge"]
    problems = []
    checked = 0
    for fn in _tree(HOST).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        bound = _bindings(fn)
        for dotted in bound.values():
            module, _, name = dotted.rpartition(".")
            if dotted in allowed_missing or module in allowed_missing:
                continue
            if _module_file(dotted) is None:
                path, node, _ = _resolve(module, name)
                if node is None:
                    problems.append(f"{fn.name}: {dotted} is not in this WebUI")
                    continue
            checked += 1
        for module, name, call in _reads(fn, bound):
            if module in allowed_missing:
                continue
            path, node, defs = _resolve(module, name)
            checked += 1
            if path is None:
                problems.append(f"{fn.name}: module {module} is not in this WebUI")
            elif node is None:
                problems.append(f"{fn.name}: {module}.{name} is not defined in {path.name}")
            elif call is not None and (why := _check_call(call, node, defs)):
                problems.append(f"{fn.name}: {module}.{name}(...): {why}")
    assert checked > 40, "host reads nothing? the analysis is broken"
    return problems


def test_every_name_host_reads_exists_with_a_fitting_signature():
    problems = _host_problems()
    assert not problems, "\n".join(problems)


def test_the_objects_host_hands_over_have_what_clipprobe_uses():
    fork = _fork()
    problems = []
    wanted = dict(OBJECT_MEMBERS)
    key = ("modules/interrogate.py", "InterrogateModels")
    wanted[key] = (*wanted[key], *INTERROGATOR_BY_FORK[fork])
    for (file, cls_name), members in wanted.items():
        defs = _definitions(_tree(Path(WEBUI_DIR) / file).body)
        cls = defs.get(cls_name)
        assert isinstance(cls, ast.ClassDef), f"{file}: no class {cls_name}"
        have = _members(cls, defs)
        problems += [f"{cls_name}.{m}" for m in members if m not in have]
    assert not problems, "missing: " + ", ".join(problems)


# -- the fake's answers against the WebUI's own code (A1111) ------------------------------------

PROBE = r"""
import dataclasses, json, sys
sys.argv = [sys.argv[0], "--skip-torch-cuda-test", "--use-cpu", "all", "--skip-version-check"]
from modules import shared_init
shared_init.initialize()
from modules import infotext_utils, processing, sd_samplers, shared
for key, info in shared.opts.data_labels.items():  # Settings at their defaults
    shared.opts.data[key] = info.default
request = json.load(sys.stdin)
out = {"infotexts": [], "fields": {}}
for text in request["infotexts"]:
    params = infotext_utils.parse_generation_parameters(text, [])
    out["infotexts"].append({
        "params": params,
        "samplers": [
            sd_samplers.get_sampler_from_infotext(params),
            sd_samplers.get_scheduler_from_infotext(params),
            sd_samplers.get_hr_sampler_from_infotext(params),
            sd_samplers.get_hr_scheduler_from_infotext(params),
        ],
        "overrides": infotext_utils.get_override_settings(params, skip_fields=request["skip"]),
    })
for f in dataclasses.fields(processing.StableDiffusionProcessingTxt2Img):
    if f.init:
        default = f.default if f.default is not dataclasses.MISSING else "<required>"
        plain = isinstance(default, (str, int, float, bool, type(None)))
        out["fields"][f.name] = default if plain else "<computed>"  # sd_model: a property
print("CLIPPROBE-JSON " + json.dumps(out, default=str))
"""


def _infotexts() -> list[str]:
    from test_regenerate import BASIC, HIRES, IMG2IMG, INPAINT, OLD_NAMES

    texts = [BASIC, HIRES, OLD_NAMES, IMG2IMG, INPAINT]
    texts.append(
        'a "quoted", (weighted:1.2) prompt\nNegative prompt: ugly\nSteps: 4, Sampler: Euler, '
        "Seed: 3, Size: 64x64, Refiner: sdxl_refiner, Refiner switch at: 0.7, Version: 1.7.0"
    )
    base = "a cat\nSteps: 20, Seed: 1, Size: 512x512, CFG scale: 7, Sampler: {}{}"
    for sampler, _ in fake_host.SAMPLERS:
        for _, label in (fake_host.SCHEDULERS[0], fake_host.SCHEDULERS[2], fake_host.SCHEDULERS[3]):
            texts.append(base.format(sampler, f", Schedule type: {label}"))
        texts.append(base.format(f"{sampler} Karras", ""))  # the names before 1.9
    texts.append(
        base.format(
            "DPM++ 2M SDE",
            ", Denoising strength: 0.5, Hires upscale: 2, "
            "Hires sampler: DPM++ 2M, Hires schedule type: Karras",
        )
    )
    return texts


@pytest.fixture(scope="module")
def real_answers():
    if _fork() != "a1111":
        pytest.skip("the fake mirrors AUTOMATIC1111 1.10.1; Forge is checked by name only")
    python = os.environ.get("WEBUI_PYTHON") or str(Path(WEBUI_DIR).parent / "venv/bin/python")
    if not Path(python).is_file():
        pytest.skip(f"no WebUI Python at {python}; set WEBUI_PYTHON")
    from clipprobe_ext.webui.regenerate.plan import FIELD_LABELS

    texts = _infotexts()
    request = json.dumps({"infotexts": texts, "skip": sorted(FIELD_LABELS)})
    done = subprocess.run(
        [python, "-c", PROBE],
        input=request,
        capture_output=True,
        text=True,
        cwd=WEBUI_DIR,
        timeout=600,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("CLIPPROBE-JSON ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-4000:]
    return texts, json.loads(line.split(" ", 1)[1])


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def test_the_fakes_infotext_parse_is_the_webuis(real_answers):
    texts, real = real_answers
    for text, answer in zip(texts, real["infotexts"]):
        assert _plain(fake_host.parse_generation_parameters(text)) == answer["params"], text


def test_the_fakes_sampler_names_are_the_webuis(real_answers):
    texts, real = real_answers
    for text, answer in zip(texts, real["infotexts"]):
        params = fake_host.parse_generation_parameters(text)
        assert list(fake_host.samplers_from_infotext(params)) == answer["samplers"], text


def test_the_fakes_setting_overrides_are_the_webuis(real_answers):
    from clipprobe_ext.webui.regenerate.plan import FIELD_LABELS

    texts, real = real_answers
    fake = fake_host.FakeHost(fake_host.FakeWebUI())
    for text, answer in zip(texts, real["infotexts"]):
        params = fake_host.parse_generation_parameters(text)
        mine = fake.override_settings(params, sorted(FIELD_LABELS))
        assert _plain(mine) == answer["overrides"], text


def test_the_fakes_txt2img_fields_are_the_webuis(real_answers):
    _, real = real_answers
    assert list(fake_host.TXT2IMG_FIELDS) == list(real["fields"])
    plain = {k: v for k, v in real["fields"].items() if v != "<computed>"}
    assert {k: _plain(fake_host.TXT2IMG_FIELDS)[k] for k in plain} == plain


# -- launch.py ----------------------------------------------------------------------------------


def _signature(fn: ast.FunctionDef) -> list[tuple[str, str, bool]]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    first_default = len(positional) - len(a.defaults)
    out = [(p.arg, "positional", i >= first_default) for i, p in enumerate(positional)]
    out += [(p.arg, "keyword", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    return out


def test_the_launch_stand_in_matches_launch_utils():
    stub = _definitions(_tree(STUBS / "launch.py").body)
    real = _definitions(_tree(Path(WEBUI_DIR) / "modules" / "launch_utils.py").body)
    stand_in_only = {"installed", "pip_calls"}  # what tests set and read
    for name, node in stub.items():
        if name.startswith("_") or name in stand_in_only or isinstance(node, ast.Import):
            continue
        if isinstance(node, ast.ImportFrom):
            continue
        assert name in real, f"launch.{name} is not in the WebUI"
        if isinstance(node, ast.FunctionDef):
            assert _signature(node) == _signature(real[name]), name
