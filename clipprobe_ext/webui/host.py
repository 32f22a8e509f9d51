"""The WebUI as ClipProbe sees it: the one module of the package that imports ``modules.*``.

Every other module of ``clipprobe_ext.webui`` asks this one: settings and command-line
flags, the Interrogate CLIP, ``shared.state``, the queue lock, the progress registry,
devices and lowvram, checkpoints, samplers, the infotext utilities, txt2img processing,
script callbacks and UI components.  Each function imports what it needs when it is
called, so the package imports without a WebUI (the command line, tests) and functions
marked "outside the WebUI: ..." answer there instead of failing.

The WebUI finds an always-visible script only as a subclass of ``modules.scripts.Script``
in the namespace of ``scripts/clipprobe.py``; ``script_base()`` hands that class to the
entry file, which defines ``ClipProbeScript`` on it, so no other file imports
``modules.scripts``.  Forge: ``modules_forge`` (``is_forge``), ``backend.memory_management``
and ``backend.patcher.base.ModelPatcher`` (its interrogator keeps the CLIP in a patcher).

Kept in step: ``tests/webui_stubs/fake_host.py`` fakes this module function by function
(``tests/webui/test_fake_host.py`` compares the two), and the opt-in
``tests/webui/test_host_matches_the_webui.py`` checks every name read here against a real
A1111 1.10.1 and Forge checkout.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import torch

_own_lock = threading.Lock()  # the queue lock outside the WebUI


def _webui(name: str) -> ModuleType | None:
    """``modules.<name>``, or None outside the WebUI (or in one without that module)."""
    try:
        return importlib.import_module(f"modules.{name}")
    except ImportError:
        return None


# -- where ClipProbe runs -----------------------------------------------------------------


def is_forge() -> bool:
    """Inside SD WebUI Forge (``modules_forge`` importable)."""
    try:
        import modules_forge  # noqa: F401
    except ImportError:
        return False
    return True


# -- settings and command line --------------------------------------------------------------


def opts() -> Any:
    """``shared.opts`` (the Settings); outside the WebUI: None."""
    shared = _webui("shared")
    return getattr(shared, "opts", None) if shared is not None else None


def cmd_opt(name: str) -> Any:
    """The command-line flag ``name`` (``shared.cmd_opts``); outside the WebUI: None."""
    shared = _webui("shared")
    return getattr(getattr(shared, "cmd_opts", None), name, None) if shared is not None else None


def add_option(
    key: str,
    default: Any,
    label: str,
    component: Any = None,
    component_args: Any = None,
    *,
    section: tuple[str, str],
    info: str | None = None,
) -> None:
    """One Settings entry (``shared.OptionInfo`` added with ``shared.opts.add_option``)."""
    from modules import shared

    option = shared.OptionInfo(default, label, component, component_args, section=section)
    if info:
        option = option.info(info)
    shared.opts.add_option(key, option)


def setting_infotext_labels() -> set[str]:
    """Infotext labels that name a setting (``OptionInfo(..., infotext=...)``)."""
    from modules import shared

    labels = getattr(shared.opts, "data_labels", {})
    return {info.infotext for info in labels.values() if getattr(info, "infotext", None)}


# -- jobs: state, lock, progress ------------------------------------------------------------


def state() -> Any:
    """``shared.state`` (the running job, its progress, Interrupt); outside the WebUI: None."""
    shared = _webui("shared")
    return getattr(shared, "state", None) if shared is not None else None


def queue_lock() -> Any:
    """The WebUI's queue lock (``call_queue.queue_lock``, a FIFOLock that is NOT re-entrant);
    outside the WebUI: a lock of ClipProbe's own."""
    call_queue = _webui("call_queue")
    return call_queue.queue_lock if call_queue is not None else _own_lock


def progress_registry() -> ModuleType | None:
    """``modules.progress`` (task ids behind the progress bar: ``add_task_to_queue``,
    ``start_task``, ``finish_task``, ``pending_tasks``); None where it or one of those
    functions is missing (older or forked WebUIs)."""
    progress = _webui("progress")
    needed = ("add_task_to_queue", "start_task", "finish_task")
    if progress is None or not all(callable(getattr(progress, n, None)) for n in needed):
        return None
    return progress


def create_task_id(kind: str) -> str | None:
    """A new task id (``progress.create_task_id``); None without a progress registry."""
    progress = progress_registry()
    create = getattr(progress, "create_task_id", None)
    return create(kind) if callable(create) else None


def clear_total_progress() -> None:
    """Reset the console's total progress bar after a generation (``shared.total_tqdm``)."""
    shared = _webui("shared")
    bar = getattr(shared, "total_tqdm", None) if shared is not None else None
    if bar is not None:
        bar.clear()


def wrap_gradio_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``call_queue.wrap_gradio_call(fn)`` (never the GPU variant: ClipProbe takes the lock
    itself); outside the WebUI: ``fn``."""
    call_queue = _webui("call_queue")
    return call_queue.wrap_gradio_call(fn) if call_queue is not None else fn


# -- devices and memory -------------------------------------------------------------------------


def clip_device() -> torch.device:
    """Where the WebUI runs its Interrogate CLIP (``devices.device_interrogate``); outside
    the WebUI: CUDA when there is one, else the CPU."""
    devices = _webui("devices")
    device = getattr(devices, "device_interrogate", None) if devices is not None else None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def torch_gc() -> None:
    """Free cached GPU memory (``devices.torch_gc``)."""
    devices = _webui("devices")
    if devices is not None:
        devices.torch_gc()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


def send_everything_to_cpu() -> None:
    """``--lowvram``/``--medvram``: move the SD model's parts off the GPU
    (``lowvram.send_everything_to_cpu``)."""
    from modules import lowvram

    lowvram.send_everything_to_cpu()


def forge_memory() -> ModuleType | None:
    """Forge's memory management (``backend.memory_management``, or
    ``ldm_patched.modules.model_management`` of older Forge, with ``load_models_gpu``);
    None elsewhere."""
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


def forge_model_patcher() -> type | None:
    """Forge's ``backend.patcher.base.ModelPatcher``; None elsewhere."""
    try:
        from backend.patcher.base import ModelPatcher
    except ImportError:
        return None
    return ModelPatcher


def interrogator() -> Any:
    """``shared.interrogator`` (the Interrogate CLIP's owner); None outside the WebUI and
    in forks without one."""
    shared = _webui("shared")
    return getattr(shared, "interrogator", None) if shared is not None else None


# -- checkpoints, samplers, infotexts, processing ------------------------------------------------


def loaded_checkpoint() -> Any:
    """The loaded checkpoint's ``CheckpointInfo``, without loading a model
    (``shared.sd_model`` would load one); None when none is loaded."""
    from modules import sd_models

    data = getattr(sd_models, "model_data", None)
    model = getattr(data, "sd_model", None) if data is not None else None
    return getattr(model, "sd_checkpoint_info", None) if model is not None else None


def checkpoint_aliases() -> Mapping[str, Any]:
    """Every name and hash the WebUI knows a checkpoint by -> its ``CheckpointInfo``."""
    from modules import sd_models

    return sd_models.checkpoint_aliases


def closest_checkpoint(name: str) -> Any:
    """``sd_models.get_closet_checkpoint_match`` (the refiner's lookup); None when unknown."""
    from modules import sd_models

    return sd_models.get_closet_checkpoint_match(name)


def samplers_from_infotext(params: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(sampler, scheduler, hires sampler, hires scheduler) as the txt2img paste reads them
    (``sd_samplers.get_*_from_infotext``: old "DPM++ 2M Karras" names split, a sampler's
    own default scheduler read as "Automatic")."""
    from modules import sd_samplers

    return (
        sd_samplers.get_sampler_from_infotext(params),
        sd_samplers.get_scheduler_from_infotext(params),
        sd_samplers.get_hr_sampler_from_infotext(params),
        sd_samplers.get_hr_scheduler_from_infotext(params),
    )


def _infotext_utils() -> ModuleType:
    """``modules.infotext_utils`` (A1111 >= 1.8, Forge), or its old name."""
    module = _webui("infotext_utils")
    if module is None:
        from modules import generation_parameters_copypaste as module
    return module


def parse_generation_parameters(text: str) -> dict[str, Any]:
    """The WebUI's own infotext parser (defaults such as ``Clip skip: 1``, "WxH" split into
    ``-1``/``-2`` keys, old hires sizes, version back-compat)."""
    return _infotext_utils().parse_generation_parameters(text, [])


def override_settings(
    params: Mapping[str, Any], skip_fields: Sequence[str]
) -> list[tuple[str, str, Any]]:
    """``(label, setting, value)`` of the settings ``params`` names that differ from the
    current ones (``infotext_utils.get_override_settings``)."""
    return _infotext_utils().get_override_settings(params, skip_fields=skip_fields)


def txt2img(**fields: Any) -> Any:
    """A ``StableDiffusionProcessingTxt2Img`` on the loaded model (``shared.sd_model``)."""
    from modules import processing, shared

    return processing.StableDiffusionProcessingTxt2Img(sd_model=shared.sd_model, **fields)


def process_images(p: Any) -> Any:
    """``processing.process_images(p)`` (applies and restores ``p.override_settings``)."""
    from modules import processing

    return processing.process_images(p)


# -- the UI ----------------------------------------------------------------------------------------


def add_paste_fields(tabname: str, image: Any, fields: list[tuple[Any, str]]) -> None:
    """Make ``tabname`` a target of the WebUI's "Send to" (``infotext_utils.add_paste_fields``)."""
    _infotext_utils().add_paste_fields(tabname, image, fields)


def register_paste_button(
    button: Any,
    tabname: str,
    *,
    image: Any,
    source_tabname: str | None = None,
    source_text: Any = None,
) -> None:
    """``button`` sends ``image`` and its parameters to ``tabname``
    (``register_paste_params_button(ParamBinding(...))``)."""
    utils = _infotext_utils()
    utils.register_paste_params_button(
        utils.ParamBinding(
            paste_button=button,
            tabname=tabname,
            source_image_component=image,
            source_tabname=source_tabname,
            source_text_component=source_text,
        )
    )


def tool_button(value: str, **kwargs: Any) -> Any:
    """The WebUI's small emoji button (``ui_components.ToolButton``)."""
    from modules import ui_components

    return ui_components.ToolButton(value, **kwargs)


def input_accordion(value: bool, **kwargs: Any) -> Any:
    """An accordion that is also a checkbox input (``ui_components.InputAccordion``)."""
    from modules import ui_components

    return ui_components.InputAccordion(value, **kwargs)


def script_base() -> type:
    """``modules.scripts.Script``, the class the WebUI collects scripts by."""
    from modules import scripts

    return scripts.Script


def always_visible() -> Any:
    """``scripts.AlwaysVisible``: what ``Script.show`` returns for an always-visible section."""
    from modules import scripts

    return scripts.AlwaysVisible


def on_ui_settings(callback: Callable[[], None]) -> None:
    from modules import script_callbacks

    script_callbacks.on_ui_settings(callback)


def on_ui_tabs(callback: Callable[[], Any]) -> None:
    from modules import script_callbacks

    script_callbacks.on_ui_tabs(callback)


def on_after_component(callback: Callable[..., None]) -> None:
    from modules import script_callbacks

    script_callbacks.on_after_component(callback)


def on_app_started(callback: Callable[[Any, Any], None]) -> None:
    from modules import script_callbacks

    script_callbacks.on_app_started(callback)
