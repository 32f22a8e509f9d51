"""Which CLIP ClipProbe uses inside the WebUI, and the one call that runs an analysis.

Public API (the tab and the API call only these):

- ``WEBUI_CLIP``, ``HF_MODELS``: the choices (defined in ``model_choices``).
- ``list_models() -> list[str]``: the choices, the configured default first if custom.
- ``models_on_disk() -> dict[str, bool]``: each choice -> usable without network.
- ``webui_clip_available() -> bool``: ``shared.interrogator`` exists (some Forge forks
  have none: then only transformers models work), its CLIP is loaded or downloaded, and
  it has not failed to load in the last minute; ``webui_clip_failure()`` says why not.
- ``run_analysis(images, prompt, options=None, model_name=None, progress=None, *,
  labels=None, inside_generation=False, on_start=None) -> ProbeReport``: runs
  ``clipprobe_ext.probe.analyze`` under the WebUI's queue lock (so it never runs beside a
  generation) with progress in ``shared.state``; ``model_name=None`` means the default from
  Settings.  Raises only ``ClipProbeError`` subclasses (messages meant for the user).
  ``inside_generation=True`` is for code that already runs inside a WebUI job holding the
  lock (a script's ``postprocess``): then neither the lock (``FIFOLock`` is not
  re-entrant: taking it again would deadlock) nor ``state.begin/end`` is touched.
  ``on_start()``, if given, is called once the run holds the lock (after ``state.begin``),
  before anything else: the tab's ``progress.start_task`` (the WebUI's progress bar turns
  from "In queue" to the run's own progress there); an exception from it is the caller's.
  Do not wrap a call in ``call_queue.wrap_gradio_gpu_call`` (it takes the same lock);
  ``wrap_gradio_call`` is fine.  A transformers model is loaded into RAM before the lock
  is taken (a generation never waits for it); a model neither on disk nor reachable fails
  at once, without network retries.  A model that cannot be loaded at all raises
  ``ModelUnavailable`` (a ``ModelError``).
- ``run_analysis_then(..., after=fn) -> (report, fn(encoder, report, progress))``: the
  same run plus more work with the model still on its device (the heatmaps).
- ``with_encoder(model_name, fn, *, job=None, on_start=None) -> fn(encoder)``: any other
  work with ClipProbe's CLIP under the same lock, memory policy and errors (the
  regeneration's measurements, the folder audit); ``show_progress(message, fraction)``
  and ``interrupted()`` for such work.
- ``clear_cache() -> None``: forget loaded models, text caches and a load failure.

Every model other than the interrogator's is loaded by ``encoders.load_encoder`` (the
CLI's factory: same errors, caches and offline rules); this module keeps only the
adaptation of the interrogator's CLIP and the WebUI's memory policy.  Either way the
encoder's identity is the same ``ModelRef`` (``encoders.identity``): the A1111
interrogator's CLIP, Forge's one inside its ``ModelPatcher`` and ``openai-clip:ViT-L/14``
loaded from the same file share their text cache, reference banks and calibration.

Memory follows ``InterrogateModels.interrogate()`` of 1.10: with ``--lowvram``/``--medvram``
the SD model is moved off the GPU first, afterwards the CLIP goes back to RAM
(``send_clip_to_ram``, which honours "Keep models in VRAM") unless ClipProbe's own
"keep the CLIP model on the GPU" setting is on, then ``devices.torch_gc()``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from clipprobe_ext import probe
from clipprobe_ext.encoders import factory
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder
from clipprobe_ext.errors import ClipProbeError, ModelError, first_line
from clipprobe_ext.probe import ProbeOptions
from clipprobe_ext.results import ProbeReport
from clipprobe_ext.store import open_store
from clipprobe_ext.webui import compat, model_choices, settings
from clipprobe_ext.webui.model_choices import HF_MODELS, WEBUI_CLIP, WEBUI_CLIP_ID

__all__ = [
    "HF_MODELS",
    "WEBUI_CLIP",
    "WEBUI_CLIP_ID",
    "list_models",
    "run_analysis",
    "run_analysis_then",
    "with_encoder",
]

NO_INTERROGATOR = (
    "This WebUI has no Interrogate CLIP model (shared.interrogator); "
    "choose a transformers CLIP model instead."
)
MODEL_GONE = (
    "The WebUI's Interrogate CLIP model was unloaded or replaced while ClipProbe was using "
    "it; run the analysis again."
)
OUT_OF_MEMORY = (
    "CUDA ran out of memory while running the CLIP model (the memory has been freed); "
    "try again after the current generation finishes, with fewer images, or choose a "
    "smaller model such as openai/clip-vit-base-patch32."
)

WEBUI_CLIP_OFFLINE = (
    "The WebUI's Interrogate CLIP (ViT-L/14) is not downloaded ({path} is missing) and its "
    "download server cannot be reached; choose a local transformers CLIP model instead."
)

log = logging.getLogger("clipprobe")


class ModelUnavailable(ModelError):
    """The chosen CLIP cannot be loaded at all (missing, offline, unreadable): trying again
    for the next image of the same generation is pointless."""


Progress = Callable[[str, "float | None"], None]

_loading = threading.Lock()  # one load_encoder at a time, outside the queue lock
_fallback_lock = threading.Lock()  # outside the WebUI (no modules.call_queue)
# the interrogator whose CLIP failed to load, why, and when (webui_clip_available says so;
# a new try is made once it is FAILURE_MEMORY_S old)
_webui_clip_failure: tuple[Any, str, float] | None = None
FAILURE_MEMORY_S = 60.0


def list_models() -> list[str]:
    return model_choices.list_models(settings.default_model())


def available_locally(name: str) -> bool:
    """Whether ``name`` can be used without network (see ``model_choices.available_locally``)."""
    if name == WEBUI_CLIP:
        return webui_clip_available()
    return model_choices.available_locally(name)


def models_on_disk() -> dict[str, bool]:
    """Each choice of ``list_models()`` -> whether it is available locally."""
    return {name: available_locally(name) for name in list_models()}


def webui_clip_available() -> bool:
    """The WebUI has an Interrogate CLIP (``shared.interrogator``) whose weights are loaded or
    on disk, and it has not failed to load."""
    interrogator = _interrogator()
    if interrogator is None or webui_clip_failure() is not None:
        return False
    return model_choices.webui_clip_on_disk(interrogator, _cmd_opt("clip_models_path"))


def webui_clip_failure() -> str | None:
    """Why the current interrogator's CLIP failed to load, if it did."""
    failure = _webui_clip_failure
    if failure is None or failure[0] is not _interrogator():
        return None
    if time.monotonic() - failure[2] > FAILURE_MEMORY_S:
        return None
    return failure[1]


def clear_cache() -> None:
    global _webui_clip_failure
    factory.clear_cache()
    _webui_clip_failure = None


def run_analysis(
    images: Sequence[Any],
    prompt: str,
    options: ProbeOptions | None = None,
    model_name: str | None = None,
    progress: Progress | None = None,
    *,
    labels: Sequence[str] | None = None,
    inside_generation: bool = False,
    on_start: Callable[[], None] | None = None,
) -> ProbeReport:
    """Analyse ``prompt`` against PIL ``images`` with the chosen CLIP; see the module doc.

    A transformers model is loaded (into RAM) before the queue lock is taken, and a model
    that is neither on disk nor downloadable fails at once: a generation never waits for
    ClipProbe's download or its failure.
    """
    report, _ = run_analysis_then(
        images,
        prompt,
        options,
        model_name,
        progress,
        labels=labels,
        inside_generation=inside_generation,
        on_start=on_start,
    )
    return report


#: after(encoder, report, progress) -> anything, run with the model still on its device
After = Callable[[Any, ProbeReport, Progress], Any]


def run_analysis_then(
    images: Sequence[Any],
    prompt: str,
    options: ProbeOptions | None = None,
    model_name: str | None = None,
    progress: Progress | None = None,
    *,
    after: After | None = None,
    labels: Sequence[str] | None = None,
    negative: str = "",
    inside_generation: bool = False,
    on_start: Callable[[], None] | None = None,
) -> tuple[ProbeReport, Any]:
    """``run_analysis`` plus ``after(encoder, report, progress)`` in the same hold of the
    lock and the model (e.g. the heatmaps): ``(report, after's result or None)``.

    ``after`` runs before the model goes back to RAM (lowvram: one move, not two).
    ``negative``: the negative prompt, checked against the picture (the report's
    ``negative`` section; "" = none).
    """

    def work(encoder: Any, report_progress: Progress) -> tuple[ProbeReport, Any]:
        result = probe.analyze(
            list(images), prompt, encoder, options, labels, report_progress, negative=negative
        )
        extra = after(encoder, result, report_progress) if after is not None else None
        return result, extra

    return _with_model(
        model_name,
        work,
        job="clipprobe",
        progress=progress,
        inside_generation=inside_generation,
        on_start=on_start,
    )


def with_encoder(
    model_name: str | None,
    fn: Callable[[Any], Any],
    *,
    job: str | None = None,
    on_start: Callable[[], None] | None = None,
) -> Any:
    """``fn(encoder)`` with the chosen CLIP, under the queue lock and the memory policy of
    ``run_analysis`` (lowvram: the SD model off the GPU first; the CLIP back to RAM after).

    ``job``: a name for ``shared.state.begin`` (a job of its own, so the WebUI's progress
    bar and Interrupt work; ``show_progress`` reports into it); None: no job is begun (a
    caller inside another ClipProbe job).  Raises only ``ClipProbeError`` subclasses.
    """
    return _with_model(
        model_name, lambda encoder, _progress: fn(encoder), job=job, on_start=on_start
    )


def show_progress(message: str, fraction: float | None = None) -> None:
    """Progress of a ``with_encoder(..., job=...)`` run in ``shared.state`` (the WebUI's bar)."""
    _set_progress(_state(), message, fraction, True)


def interrupted() -> bool:
    """The WebUI's Interrupt (``shared.state.interrupted``) was pressed."""
    state = _state()
    return bool(state is not None and getattr(state, "interrupted", False))


def _with_model(
    model_name: str | None,
    work: Callable[[Any, Progress], Any],
    *,
    job: str | None,
    progress: Progress | None = None,
    inside_generation: bool = False,
    on_start: Callable[[], None] | None = None,
) -> Any:
    name = (model_name or "").strip() or settings.default_model()
    opener = _prepare(name)
    own_job = job is not None and not inside_generation
    lock = contextlib.nullcontext() if inside_generation else _queue_lock()
    with lock:
        state = _state()
        if state is not None and own_job:
            state.begin(job=job)
        try:
            if on_start is not None:
                on_start()
            return _run_locked(work, name, opener, progress, state, own_job)
        finally:
            if state is not None and own_job:
                state.end()


# -- internals ---------------------------------------------------------------------------


def _queue_lock() -> Any:
    try:
        return compat.queue_lock()
    except ImportError:
        return _fallback_lock


def _shared() -> Any:
    try:
        from modules import shared
    except ImportError:
        return None
    return shared


def _interrogator() -> Any:
    shared = _shared()
    return getattr(shared, "interrogator", None) if shared is not None else None


def _state() -> Any:
    shared = _shared()
    return getattr(shared, "state", None) if shared is not None else None


def _cmd_opt(name: str) -> Any:
    shared = _shared()
    return getattr(getattr(shared, "cmd_opts", None), name, None)


def _devices() -> Any:
    try:
        from modules import devices
    except ImportError:
        return None
    return devices


def _torch_gc() -> None:
    devices = _devices()
    if devices is not None:
        devices.torch_gc()
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _target_device() -> torch.device:
    devices = _devices()
    device = getattr(devices, "device_interrogate", None) if devices is not None else None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


Opener = Callable[[], "_Source"]


def _prepare(name: str) -> Opener:
    """Everything that may be slow or fail for lack of network, done before the lock.

    Returns the call that, under the lock, puts the model on its device.
    """
    if name == WEBUI_CLIP:
        _check_webui_clip()
        return _webui_clip
    encoder, device = _hf_encoder(name)
    return lambda: _hf_source(encoder, device)


def _run_locked(
    work: Callable[[Any, Progress], Any],
    name: str,
    opener: Opener,
    progress: Progress | None,
    state: Any,
    own_job: bool,
) -> Any:
    _set_progress(state, "Loading the CLIP model", None, own_job)
    if _cmd_opt("lowvram") or _cmd_opt("medvram") or _cmd_opt("medvram_sdxl"):
        from modules import lowvram

        lowvram.send_everything_to_cpu()
        _torch_gc()

    source: _Source | None = None
    try:
        source = opener()
        check = source.check

        def report(message: str, fraction: float | None) -> None:
            check()
            if state is not None and getattr(state, "interrupted", False):
                raise ClipProbeError("The analysis was interrupted.")
            _set_progress(state, message, fraction, own_job)
            if progress is not None:
                progress(message, fraction)

        result = work(source.encoder, report)
        check()
        return result
    except torch.cuda.OutOfMemoryError as exc:
        source = _release(source, force_ram=True)
        raise ModelError(OUT_OF_MEMORY) from exc
    except ClipProbeError:
        raise
    except Exception as exc:
        if source is not None and source.gone():
            raise ModelError(MODEL_GONE) from exc
        log.exception("ClipProbe: the CLIP model failed")
        raise ModelError(
            f"The CLIP model '{name}' failed: {type(exc).__name__}: {first_line(exc, empty='')}"
        ) from exc
    finally:
        _release(source)


def _set_progress(state: Any, message: str, fraction: float | None, own_job: bool) -> None:
    """Progress in ``shared.state``; inside a generation only ``textinfo`` (the job is not ours)."""
    if state is None:
        return
    state.textinfo = f"ClipProbe: {message}"
    if not own_job:
        return
    state.job = "ClipProbe"
    state.job_count = 1
    if fraction is not None:
        state.sampling_steps = 100
        state.sampling_step = int(round(max(0.0, min(1.0, fraction)) * 100))


class _Source:
    """An encoder plus what to do after the run."""

    def __init__(self, encoder: Any, after: Callable[[bool], None], gone: Callable[[], bool]):
        self.encoder = encoder
        self._after = after
        self.gone = gone
        self.released = False

    def check(self) -> None:
        if self.gone():
            raise ModelError(MODEL_GONE)

    def release(self, force_ram: bool) -> None:
        if not self.released:
            self.released = True
            self._after(force_ram)


def _release(source: _Source | None, force_ram: bool = False) -> None:
    try:
        if source is not None:
            source.release(force_ram)
    except Exception:  # freeing memory must never hide the real error
        log.exception("ClipProbe: could not move the CLIP model off the GPU")
    finally:
        _torch_gc()
    return None


# -- the WebUI's Interrogate CLIP ------------------------------------------------------------


def _unwrap(model: Any) -> Any:
    """Forge may hold the CLIP in a ``ModelPatcher``: the CLIP is its ``.model``."""
    if model is not None and not hasattr(model, "encode_image") and hasattr(model, "model"):
        return model.model
    return model


def _check_webui_clip() -> None:
    """Fail at once where loading the Interrogate CLIP cannot work (no lock needed)."""
    interrogator = _interrogator()
    if interrogator is None:
        raise ModelUnavailable(NO_INTERROGATOR)
    failure = webui_clip_failure()
    if failure is not None:
        raise ModelUnavailable(failure)
    clip_models_path = _cmd_opt("clip_models_path")
    if model_choices.webui_clip_on_disk(interrogator, clip_models_path):
        return
    if not model_choices.reachable():
        path = model_choices.webui_clip_path(clip_models_path)
        _remember_failure(interrogator, WEBUI_CLIP_OFFLINE.format(path=path))
        raise ModelUnavailable(WEBUI_CLIP_OFFLINE.format(path=path))


def _remember_failure(interrogator: Any, message: str) -> None:
    global _webui_clip_failure
    _webui_clip_failure = (interrogator, message, time.monotonic())


def _webui_clip() -> _Source:
    shared = _shared()
    interrogator = _interrogator()
    if interrogator is None:
        raise ModelError(NO_INTERROGATOR)

    forge = _is_forge_interrogator(interrogator)
    try:
        if forge:
            _load_forge_clip(interrogator)
        else:
            _load_a1111_clip(interrogator, shared)
    except ClipProbeError:
        raise
    except Exception as exc:
        # The message says it all; the traceback only at debug level (one line per failure).
        log.debug("ClipProbe: could not load the Interrogate CLIP", exc_info=True)
        message = (
            f"Could not load the WebUI's Interrogate CLIP (ViT-L/14): {type(exc).__name__}: "
            f"{first_line(exc, empty='')}; choose a transformers CLIP model instead."
        )
        _remember_failure(interrogator, message)
        raise ModelUnavailable(message) from exc

    held = interrogator.clip_model
    model = _unwrap(held)
    preprocess = interrogator.clip_preprocess
    if model is None or preprocess is None:
        raise ModelError(MODEL_GONE)
    # The cache, banks and calibration follow the weights (``ModelRef``), whoever loaded
    # them: a new encoder around the same model each run starts warm.
    encoder = OpenAIClipEncoder(model, preprocess, model_id=WEBUI_CLIP_ID)
    encoder.keep_embeddings_in(open_store())

    def gone() -> bool:
        return (
            getattr(interrogator, "clip_model", None) is not held
            or shared.interrogator is not interrogator
        )

    def after(force_ram: bool) -> None:
        if forge:
            return  # Forge's memory management owns the model (send_clip_to_ram does nothing)
        if (force_ram or not settings.keep_on_gpu()) and interrogator.clip_model is not None:
            interrogator.send_clip_to_ram()

    return _Source(encoder, after, gone)


def _is_forge_interrogator(interrogator: Any) -> bool:
    held = getattr(interrogator, "clip_model", None)
    return (
        hasattr(interrogator, "clip_patcher")
        or hasattr(interrogator, "load_device")
        or (held is not None and _unwrap(held) is not held)
    )


def _load_a1111_clip(interrogator: Any, shared: Any) -> None:
    """The CLIP half of ``InterrogateModels.load()`` of 1.10 (never ``load()``: it loads BLIP)."""
    devices = _devices()
    device = devices.device_interrogate
    if interrogator.clip_model is None:
        model, preprocess = interrogator.load_clip_model()
        if not shared.cmd_opts.no_half and not interrogator.running_on_cpu:
            model = model.half()
        interrogator.clip_model, interrogator.clip_preprocess = model, preprocess
    interrogator.clip_model = interrogator.clip_model.to(device)
    interrogator.dtype = next(_unwrap(interrogator.clip_model).parameters()).dtype


def _load_forge_clip(interrogator: Any) -> None:
    """Forge: CLIP kept on its offload device inside a ``ModelPatcher``, moved by
    ``memory_management.load_models_gpu`` (mirrors Forge's ``InterrogateModels.load()``)."""
    if interrogator.clip_model is None:
        model, preprocess = interrogator.load_clip_model()
        offload = getattr(interrogator, "offload_device", None)
        dtype = getattr(interrogator, "dtype", None)
        if offload is not None or dtype is not None:
            model = model.to(device=offload, dtype=dtype)
        interrogator.clip_model, interrogator.clip_preprocess = model, preprocess
        if hasattr(interrogator, "clip_patcher"):
            try:
                from backend.patcher.base import ModelPatcher
            except ImportError:
                ModelPatcher = None  # noqa: N806
            if ModelPatcher is not None:
                interrogator.clip_patcher = ModelPatcher(
                    model, load_device=interrogator.load_device, offload_device=offload
                )
    patcher = getattr(interrogator, "clip_patcher", None)
    if patcher is None and _unwrap(interrogator.clip_model) is not interrogator.clip_model:
        patcher = interrogator.clip_model
    memory = compat.forge_memory_management()
    if patcher is not None and memory is not None:
        memory.load_models_gpu([patcher])
    elif _unwrap(interrogator.clip_model) is interrogator.clip_model:
        # No Forge memory management to ask: move it like A1111's load() does.
        device = getattr(interrogator, "load_device", None) or _target_device()
        interrogator.clip_model = interrogator.clip_model.to(device)


# -- transformers CLIP -------------------------------------------------------------------------


def _hf_encoder(name: str) -> tuple[ClipEncoder, torch.device]:
    """The encoder of ``name`` (``encoders.load_encoder``: its caches, errors, offline rules)
    and the device it runs on.

    Runs outside the queue lock, so it loads where the model waits between runs: RAM,
    unless "keep the CLIP model on the GPU" is on.
    """
    device = _target_device()
    half = device.type != "cpu" and not _cmd_opt("no_half")
    dtype = torch.float16 if half else torch.float32
    home = device if settings.keep_on_gpu() else torch.device("cpu")
    with _loading:
        try:
            encoder = factory.load_encoder(name, home, dtype)
        except ModelError as exc:
            raise ModelUnavailable(str(exc)) from exc
    return encoder, device


def _hf_source(encoder: ClipEncoder, device: torch.device) -> _Source:
    """Under the lock: the encoder onto its device, back to RAM afterwards (memory policy)."""
    encoder.to(device)

    def after(force_ram: bool) -> None:
        if device.type != "cpu" and (force_ram or not settings.keep_on_gpu()):
            encoder.to("cpu")

    return _Source(encoder, after, lambda: False)
