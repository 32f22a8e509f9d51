"""One way through the WebUI for every ClipProbe job: the queue lock, the memory policy,
the progress bookkeeping, and ``run``, the one entry point.

The analysis (tab, API, probe after generation), the heatmaps, the regeneration and the
folder audit all go through ``run(work, model=..., job=..., task=...)``.  ``work(job)``
gets a ``Job``: ``job.encoder`` (the chosen CLIP, put on its device when first asked
for), ``job.progress(message, fraction)`` (the WebUI's bar; raises when Interrupt was
pressed or the model went away), ``job.show(...)`` (the bar only) and ``job.interrupted()``.
``analyze(...)`` is the analysis run that way.

One run, in order:

1. The model is prepared before the lock (``model_source.prepare``): a transformers CLIP
   is loaded into the place it waits between runs, and a model that is neither on disk
   nor reachable fails at once, so a generation never waits for ClipProbe's download or
   its failure.
2. The queue lock is taken (so a probe never runs beside a generation; not when
   ``inside_generation``: a script's hook runs inside a generation's job, which holds the
   lock already, and ``FIFOLock`` is not re-entrant), ``shared.state.begin(job)``, then
   ``task.start()`` (the WebUI's progress bar turns from "In queue" to the run's own
   progress).
3. ``work(job)``.  On the first ``job.encoder``, with ``--lowvram``/``--medvram`` the SD
   model goes off the GPU first (as ``InterrogateModels.interrogate()`` does), then the
   CLIP onto its device; its weights' identity is remembered under its name
   (``fit_view.remember``), so the tab and the models route can name its fit.
4. Whatever happened: the CLIP back to RAM unless "keep the CLIP model on the GPU" is on
   (always after running out of memory), ``devices.torch_gc()``, ``state.end()``, the lock
   released.

Only ``ClipProbeError`` subclasses leave ``run``: out of GPU memory and a model that
went away become a ``ModelError`` with a message for the user, anything else is logged
with its traceback and becomes a one-line ``ModelError``.

Progress bookkeeping (``Task``): a task id made by the WebUI's JS (``randomId()``) is
queued when the click arrives (``progress.add_task_to_queue``: "In queue" while a
generation holds the lock), started once the run holds the lock and finished whatever
happens (an id that never started also leaves ``pending_tasks``).  Results are not
recorded (``progress.record_results``): ClipProbe has no "restore progress", and the two
recorded slots belong to txt2img/img2img.  Without a progress registry or a ``task(...)``
id, every call does nothing; a failure of the bookkeeping is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from clipprobe_ext import probe
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ClipProbeError, ModelError, first_line
from clipprobe_ext.probe import ProbeOptions
from clipprobe_ext.results import ProbeReport
from clipprobe_ext.webui import fit_view, host, model_source, settings
from clipprobe_ext.webui.clip_source import MODEL_GONE, ClipSource

log = logging.getLogger("clipprobe")

T = TypeVar("T")
Progress = Callable[[str, "float | None"], None]

JOB = "clipprobe"
INTERRUPTED = "The analysis was interrupted."
OUT_OF_MEMORY = (
    "CUDA ran out of memory while running the CLIP model (the memory has been freed); "
    "try again after the current generation finishes, with fewer images, or choose a "
    "smaller model such as openai/clip-vit-base-patch32."
)


# -- the progress bar -----------------------------------------------------------------------


def is_task_id(value: Any) -> bool:
    """A WebUI task id as ``randomId()`` makes it (``wrap_gradio_gpu_call``'s own test)."""
    return isinstance(value, str) and value.startswith("task(") and value.endswith(")")


class Task:
    """One click's entry in the WebUI's progress registry; a context manager that queues
    it on entry and finishes it on exit (``run(..., task=...)`` starts it)."""

    def __init__(self, id_task: Any) -> None:
        self.id_task = id_task if is_task_id(id_task) else None
        self.registry = host.progress_registry() if self.id_task is not None else None
        self.started = False

    def __enter__(self) -> Task:
        self.queue()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()

    def queue(self) -> None:
        if self.registry is not None:
            self._call("add_task_to_queue")

    def start(self) -> None:
        if self.registry is not None and not self.started:
            self.started = True
            self._call("start_task")

    def finish(self) -> None:
        if self.registry is None:
            return
        if not self.started:  # start_task would have taken it out of the queue
            pending = getattr(self.registry, "pending_tasks", None)
            if isinstance(pending, dict):
                pending.pop(self.id_task, None)
        self._call("finish_task")

    def _call(self, name: str) -> None:
        try:
            getattr(self.registry, name)(self.id_task)
        except Exception:  # the progress bar must not cost the user the run
            log.exception("ClipProbe: progress.%s failed", name)


def interrupt() -> None:
    """The WebUI's Interrupt (``shared.state.interrupt()``): a running job stops."""
    state = host.state()
    if state is not None:
        state.interrupt()


# -- memory policy ------------------------------------------------------------------------------


def placement() -> tuple[torch.device, torch.device, torch.dtype]:
    """(device the CLIP runs on, where it waits between runs, dtype) for models loaded by
    name: the interrogator's device, half precision on a GPU unless ``--no-half``, waiting
    in RAM unless "keep the CLIP model on the GPU" is on."""
    device = host.clip_device()
    half = device.type != "cpu" and not host.cmd_opt("no_half")
    home = device if settings.keep_on_gpu() else torch.device("cpu")
    return device, home, torch.float16 if half else torch.float32


def _low_vram() -> bool:
    return bool(host.cmd_opt("lowvram") or host.cmd_opt("medvram") or host.cmd_opt("medvram_sdxl"))


# -- one run ----------------------------------------------------------------------------------------


class Job:
    """What ``work`` gets: the encoder (opened on first use) and the progress channels."""

    def __init__(
        self, source: ClipSource | None, own: bool, progress: Progress | None, name: str
    ) -> None:
        self.source = source
        self.own = own  # a job of its own (False inside a generation: only textinfo is ours)
        self.callback = progress
        self.model_name = name
        self._encoder: ClipEncoder | None = None

    @property
    def encoder(self) -> ClipEncoder:
        if self._encoder is None:
            if self.source is None:
                raise ClipProbeError("This job runs without a CLIP model.")
            self.show("Loading the CLIP model")
            if _low_vram():
                host.send_everything_to_cpu()
                host.torch_gc()
            self._encoder = self.source.open()
            fit_view.remember(self.model_name, self._encoder.ref)
        return self._encoder

    @property
    def opened(self) -> bool:
        return self._encoder is not None

    def gone(self) -> bool:
        return self.opened and self.source is not None and self.source.gone()

    def check(self) -> None:
        if self.gone():
            raise ModelError(MODEL_GONE)

    def interrupted(self) -> bool:
        """The WebUI's Interrupt (``shared.state.interrupted``) was pressed."""
        state = host.state()
        return bool(state is not None and getattr(state, "interrupted", False))

    def show(self, message: str, fraction: float | None = None) -> None:
        """``message`` on the WebUI's bar; inside a generation only its ``textinfo``."""
        state = host.state()
        if state is None:
            return
        state.textinfo = f"ClipProbe: {message}"
        if not self.own:
            return
        state.job = "ClipProbe"
        state.job_count = 1
        if fraction is not None:
            state.sampling_steps = 100
            state.sampling_step = int(round(max(0.0, min(1.0, fraction)) * 100))

    def progress(self, message: str, fraction: float | None = None) -> None:
        """The engine's progress callback: stops the work when the model went away or
        Interrupt was pressed, shows the rest, and tells the caller's callback."""
        self.check()
        if self.interrupted():
            raise ClipProbeError(INTERRUPTED)
        self.show(message, fraction)
        if self.callback is not None:
            self.callback(message, fraction)


def run(
    work: Callable[[Job], T],
    *,
    model: str | None = None,
    clip: bool = True,
    job: str = JOB,
    task: Task | None = None,
    progress: Progress | None = None,
    inside_generation: bool = False,
) -> T:
    """``work(job)`` under the queue lock as a WebUI job, with the CLIP ``model`` (None: the
    default from Settings; ``clip=False``: a job without one); see the module doc."""
    name = (model or "").strip() or settings.default_model()
    source = model_source.prepare(name, *placement()) if clip else None
    if inside_generation:
        if task is not None:
            task.start()
        return _work(work, Job(source, False, progress, name))
    with host.queue_lock():
        state = host.state()
        if state is not None:
            state.begin(job=job)
        try:
            if task is not None:
                task.start()
            return _work(work, Job(source, True, progress, name))
        finally:
            if state is not None:
                state.end()


def _work(work: Callable[[Job], T], job: Job) -> T:
    force_ram = False
    try:
        result = work(job)
        job.check()
        return result
    except torch.cuda.OutOfMemoryError as exc:
        force_ram = True
        raise ModelError(OUT_OF_MEMORY) from exc
    except ClipProbeError:
        raise
    except Exception as exc:
        if job.gone():
            raise ModelError(MODEL_GONE) from exc
        log.exception("ClipProbe: the job failed")
        what = f"The CLIP model '{job.model_name}'" if job.source is not None else "ClipProbe"
        raise ModelError(
            f"{what} failed: {type(exc).__name__}: {first_line(exc, empty='')}"
        ) from exc
    finally:
        _release(job, force_ram)


def _release(job: Job, force_ram: bool) -> None:
    try:
        if job.opened and job.source is not None and (force_ram or not settings.keep_on_gpu()):
            job.source.to_ram()
    except Exception:  # freeing memory must never hide the real error
        log.exception("ClipProbe: could not move the CLIP model off the GPU")
    finally:
        if job.source is not None:
            host.torch_gc()


# -- the analysis -------------------------------------------------------------------------------

#: after(encoder, report, progress) -> anything, run with the model still on its device
After = Callable[[ClipEncoder, ProbeReport, Progress], Any]


def analyze(
    images: Sequence[Any],
    prompt: str,
    options: ProbeOptions | None = None,
    model: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    negative: str = "",
    after: After | None = None,
    task: Task | None = None,
    progress: Progress | None = None,
    inside_generation: bool = False,
) -> tuple[ProbeReport, Any]:
    """``probe.analyze`` of ``prompt`` against PIL ``images`` through ``run``:
    ``(report, after(encoder, report, progress) or None)``.

    ``after`` runs in the same hold of the lock and the model (the heatmaps: with lowvram,
    one move of the model, not two).  ``negative``: the negative prompt, checked against
    the pictures ("" = none).
    """

    def work(job: Job) -> tuple[ProbeReport, Any]:
        encoder = job.encoder
        report = probe.analyze(
            list(images), prompt, encoder, options, labels, job.progress, negative=negative
        )
        extra = after(encoder, report, job.progress) if after is not None else None
        return report, extra

    return run(
        work,
        model=model,
        job=JOB,
        task=task,
        progress=progress,
        inside_generation=inside_generation,
    )
