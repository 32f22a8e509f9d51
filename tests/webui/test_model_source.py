"""model_source and session: reuse of the WebUI's Interrogate CLIP, locking, memory and
failures."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest
import torch

from clipprobe_ext import probe
from clipprobe_ext.encoders.base import text_cache_for
from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder
from clipprobe_ext.errors import ClipProbeError, ModelError
from clipprobe_ext.results import ProbeReport
from clipprobe_ext.webui import model_source, session, settings
from clipprobe_ext.webui.model_source import WEBUI_CLIP


def run_analysis(images, prompt, options=None, model_name=None, progress=None, **kwargs):
    """The analysis through the session, its report only."""
    report, _ = session.analyze(images, prompt, options, model_name, progress=progress, **kwargs)
    return report


class StartSpy(session.Task):
    """A task whose ``start`` runs ``on_start`` (what the tab's progress bookkeeping does)."""

    def __init__(self, on_start):
        super().__init__(None)
        self.on_start = on_start

    def start(self):
        self.on_start()


class FakeAnalyze:
    """Stands in for ``probe.analyze``: uses the encoder like the engine, records calls."""

    def __init__(self) -> None:
        self.encoders: list = []
        self.during: list = []  # callables run in the middle of the analysis
        self.events: list = []

    def __call__(
        self, images, prompt, encoder, options=None, labels=None, progress=None, negative=""
    ):
        self.encoders.append(encoder)
        self.events.append(("enter", threading.get_ident(), time.monotonic()))
        encoder.encode_images(images)
        if progress is not None:
            progress("Encoding images", 0.5)
        for action in self.during:
            action()
        encoder.encode_texts([prompt, *prompt.split(",")])
        if progress is not None:
            progress("Ranking", 1.0)
        self.events.append(("exit", threading.get_ident(), time.monotonic()))
        return ProbeReport(encoder.model_id, prompt, [], [], [], None, {})


@pytest.fixture()
def fake_analyze(monkeypatch):
    fake = FakeAnalyze()
    monkeypatch.setattr(probe, "analyze", fake)
    return fake


# -- choices ------------------------------------------------------------------------------


def test_list_models_offers_webui_clip_first_and_transformers(webui):
    names = model_source.list_models()
    assert names[0] == WEBUI_CLIP
    assert "openai/clip-vit-base-patch32" in names
    assert "openai/clip-vit-large-patch14" in names


def test_list_models_includes_a_custom_default(webui):
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = "/models/my-clip"
    assert model_source.list_models()[0] == "/models/my-clip"


def test_import_needs_no_webui_and_loads_no_model_library():
    # ClipProbe's own modules are imported at the top (torch comes with the encoders, and
    # the WebUI has it loaded anyway); the WebUI's modules, gradio and the model libraries
    # are imported only when used.
    code = (
        "import sys, clipprobe_ext.webui, clipprobe_ext.webui.model_source, "
        "clipprobe_ext.webui.settings, clipprobe_ext.webui.compat; "
        "bad = [m for m in ('transformers', 'gradio', 'clip', 'modules') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the WebUI's Interrogate CLIP -----------------------------------------------------------


def test_reuses_the_loaded_interrogator_clip(webui, interrogator, fake_analyze, images):
    model, preprocess = interrogator.load_clip_model()
    interrogator.clip_model, interrogator.clip_preprocess = model, preprocess
    interrogator.calls.clear()

    report = run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)

    assert report.model_id == model_source.WEBUI_CLIP_ID
    (encoder,) = fake_analyze.encoders
    assert encoder.model is interrogator.clip_model is model
    assert encoder.preprocess is preprocess
    assert "load_clip_model" not in interrogator.calls
    assert "load" not in interrogator.calls and "load_blip_model" not in interrogator.calls


def test_loads_only_clip_like_interrogate_load(webui, interrogator, fake_analyze, images):
    assert interrogator.clip_model is None

    run_analysis(images[:1], "a red cube", model_name=WEBUI_CLIP)

    assert interrogator.calls.count("load_clip_model") == 1
    assert "load" not in interrogator.calls
    assert "load_blip_model" not in interrogator.calls
    assert interrogator.blip_model is None
    assert interrogator.clip_model is fake_analyze.encoders[0].model
    assert interrogator.clip_preprocess is not None
    assert interrogator.dtype == torch.float32  # running on the CPU: no half precision

    run_analysis(images[:1], "a red cube", model_name=WEBUI_CLIP)
    assert interrogator.calls.count("load_clip_model") == 1
    assert fake_analyze.encoders[1].model is fake_analyze.encoders[0].model


def test_half_precision_unless_no_half(webui, interrogator, fake_analyze, images, monkeypatch):
    interrogator.running_on_cpu = False  # pretend a GPU: the model goes half like load() does
    halves = []
    original = interrogator.load_clip_model

    def load_clip_model():
        model, preprocess = original()
        real_half = model.half
        model.half = lambda: halves.append(True) or real_half().float()
        return model, preprocess

    monkeypatch.setattr(interrogator, "load_clip_model", load_clip_model)
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert halves == [True]

    interrogator.clip_model = None
    webui.cmd_opts.no_half = True
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert halves == [True]


def test_sends_clip_to_ram_after_the_run(webui, interrogator, fake_analyze, images):
    gc_before = webui.torch_gc_calls
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert interrogator.calls[-1] == "send_clip_to_ram"
    assert webui.torch_gc_calls > gc_before


def test_keep_on_gpu_setting_skips_send_to_ram(webui, interrogator, fake_analyze, images):
    settings.on_ui_settings()
    webui.opts.clipprobe_keep_clip_on_gpu = True
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert "send_clip_to_ram" not in interrogator.calls


@pytest.mark.parametrize("flag", ["lowvram", "medvram"])
def test_lowvram_moves_everything_to_cpu_first(webui, interrogator, fake_analyze, images, flag):
    setattr(webui.cmd_opts, flag, True)
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert webui.send_everything_to_cpu_calls == 1


def test_no_lowvram_leaves_the_sd_model(webui, interrogator, fake_analyze, images):
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert webui.send_everything_to_cpu_calls == 0


def test_no_interrogator_is_a_model_error(webui, fake_analyze, images):
    webui.interrogator = None
    with pytest.raises(ModelError) as err:
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert str(err.value) == model_source.NO_INTERROGATOR
    assert not webui.queue_lock.locked()


def test_shared_without_interrogator_attribute(webui, fake_analyze, images):
    del webui.interrogator
    with pytest.raises(ModelError, match="no Interrogate CLIP"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)


def test_failed_clip_load_is_a_model_error(webui, interrogator, fake_analyze, images):
    def broken():
        raise OSError("ViT-L-14.pt: no such file and no internet")

    interrogator.load_clip_model = broken
    with pytest.raises(ModelError, match="Could not load the WebUI's Interrogate CLIP"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert not webui.queue_lock.locked()


def test_text_cache_is_shared_across_runs(webui, interrogator, fake_analyze, images):
    run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)
    run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)
    first, second = fake_analyze.encoders
    assert first is not second
    assert first.cache is second.cache is text_cache_for(first.ref.key)
    assert first.stats.text_forwards > 0
    assert second.stats.text_forwards == 0


# -- state, progress, lock --------------------------------------------------------------------


def test_progress_goes_to_state_and_callback(webui, interrogator, fake_analyze, images):
    seen = []
    textinfos = []

    def progress(message, fraction):
        seen.append((message, fraction))
        textinfos.append((webui.state.textinfo, webui.state.job))

    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP, progress=progress)
    assert ("Ranking", 1.0) in seen
    assert ("ClipProbe: Ranking", "ClipProbe") in textinfos
    assert webui.state.history == [("begin", "clipprobe"), ("end", "ClipProbe")]
    assert webui.state.job == ""


def test_interrupt_stops_the_run(webui, interrogator, fake_analyze, images):
    fake_analyze.during.append(webui.state.interrupt)
    with pytest.raises(ClipProbeError, match="interrupted"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert not webui.queue_lock.locked()


def test_runs_under_the_queue_lock(webui, interrogator, fake_analyze, images):
    held = []
    fake_analyze.during.append(lambda: held.append(webui.queue_lock.locked()))
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert held == [True]
    assert not webui.queue_lock.locked()


def test_waits_for_a_running_generation(webui, interrogator, fake_analyze, images):
    lock = webui.queue_lock
    lock.acquire()  # a generation is running
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP), done.set())
    )
    worker.start()
    time.sleep(0.2)
    assert not done.is_set() and fake_analyze.encoders == []
    lock.release()
    worker.join(timeout=30)
    assert done.is_set()


def test_two_users_are_serialised(webui, interrogator, fake_analyze, images):
    fake_analyze.during.append(lambda: time.sleep(0.1))
    errors = []

    def user(prompt):
        try:
            run_analysis(images[:1], prompt, model_name=WEBUI_CLIP)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(p,)) for p in ("a cube", "a ball")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    kinds = [kind for kind, _, _ in fake_analyze.events]
    assert kinds == ["enter", "exit", "enter", "exit"]
    (_, first, _), (_, _, _), (_, second, _), _ = fake_analyze.events
    assert first != second


def test_task_starts_once_inside_the_lock(webui, interrogator, fake_analyze, images):
    lock = webui.queue_lock
    started = []
    fake_analyze.during.append(lambda: started.append("analysing"))

    def on_start():
        started.append((lock.locked(), webui.state.job, fake_analyze.encoders == []))

    lock.acquire()  # a generation is running: nothing starts before it ends
    worker = threading.Thread(
        target=lambda: run_analysis(
            images[:1], "a cube", model_name=WEBUI_CLIP, task=StartSpy(on_start)
        )
    )
    worker.start()
    time.sleep(0.2)
    assert started == []
    lock.release()
    worker.join(timeout=30)
    assert started == [(True, "clipprobe", True), "analysing"]
    assert not lock.locked()


def test_task_start_failure_releases_everything(webui, interrogator, fake_analyze, images):
    def on_start():
        raise RuntimeError("bookkeeping")

    with pytest.raises(RuntimeError, match="bookkeeping"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP, task=StartSpy(on_start))
    assert fake_analyze.encoders == []
    assert webui.state.history == [("begin", "clipprobe"), ("end", "clipprobe")]
    assert not webui.queue_lock.locked()


def test_task_starts_inside_a_generation(webui, interrogator, fake_analyze, images):
    started = []
    with webui.queue_lock:
        run_analysis(
            images[:1],
            "a cube",
            model_name=WEBUI_CLIP,
            inside_generation=True,
            task=StartSpy(lambda: started.append(True)),
        )
    assert started == [True]


def test_inside_generation_does_not_take_the_lock(webui, interrogator, fake_analyze, images):
    with webui.queue_lock:  # as in a script's postprocess during a generation
        webui.state.begin(job="txt2img")
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP, inside_generation=True)
        assert webui.state.job == "txt2img"
        assert webui.state.textinfo.startswith("ClipProbe:")
        webui.state.end()
    assert webui.state.history == [("begin", "txt2img"), ("end", "txt2img")]


# -- failures become messages ---------------------------------------------------------------


def test_clip_unloaded_mid_run_is_a_model_error(webui, interrogator, fake_analyze, images):
    def unload(message, fraction):
        interrogator.clip_model = None

    with pytest.raises(ModelError, match="unloaded or replaced"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP, progress=unload)
    assert not webui.queue_lock.locked()
    assert webui.state.history[-1][0] == "end"


def test_clip_moved_away_mid_run_is_a_model_error(webui, interrogator, fake_analyze, images):
    def move():
        interrogator.clip_model.to("meta")  # weights gone: every forward fails

    fake_analyze.during.append(move)
    with pytest.raises(ModelError) as err:
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert "CLIP model" in str(err.value)
    assert not webui.queue_lock.locked()


def test_out_of_memory_frees_memory_and_explains(webui, interrogator, fake_analyze, images):
    settings.on_ui_settings()
    webui.opts.clipprobe_keep_clip_on_gpu = True

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    fake_analyze.during.append(oom)
    gc_before = webui.torch_gc_calls
    with pytest.raises(ModelError, match="CUDA ran out of memory") as err:
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert "smaller model" in str(err.value)
    assert "send_clip_to_ram" in interrogator.calls  # even with "keep on GPU"
    assert webui.torch_gc_calls > gc_before
    assert not webui.queue_lock.locked()


def test_unexpected_error_releases_everything(webui, interrogator, fake_analyze, images):
    def boom():
        raise RuntimeError("something broke")

    fake_analyze.during.append(boom)
    with pytest.raises(ModelError, match="RuntimeError: something broke"):
        run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert not webui.queue_lock.locked()
    # The WebUI stays usable: the next run works.
    fake_analyze.during.clear()
    assert run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP).prompt == "a cube"


# -- Forge -------------------------------------------------------------------------------------


class FakePatcher:
    def __init__(self, model, load_device=None, offload_device=None):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device


def _forge_backend(webui):
    """Forge's memory management and ModelPatcher, as host finds them in Forge."""
    loaded = []
    webui.forge_memory = types.SimpleNamespace(
        load_models_gpu=lambda patchers: loaded.append(list(patchers))
    )
    webui.forge_model_patcher = FakePatcher
    return loaded


def test_forge_interrogator_loads_through_a_patcher(
    webui, interrogator, fake_analyze, images, monkeypatch
):
    loaded = _forge_backend(webui)
    # Forge's InterrogateModels: load/offload devices, dtype, clip_patcher, no-op send_*.
    interrogator.load_device = torch.device("cpu")
    interrogator.offload_device = torch.device("cpu")
    interrogator.dtype = torch.float32
    interrogator.clip_patcher = None

    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)

    patcher = interrogator.clip_patcher
    assert isinstance(patcher, FakePatcher)
    assert patcher.model is interrogator.clip_model is fake_analyze.encoders[0].model
    assert loaded == [[patcher]]
    assert "send_clip_to_ram" not in interrogator.calls
    assert "load" not in interrogator.calls


def test_forge_patcher_as_clip_model_is_unwrapped(
    webui, interrogator, fake_analyze, images, monkeypatch, tiny_openai_clip
):
    loaded = _forge_backend(webui)
    model, preprocess = interrogator.load_clip_model()
    patcher = FakePatcher(model)
    interrogator.clip_model, interrogator.clip_preprocess = patcher, preprocess
    interrogator.load_device = torch.device("cpu")

    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)

    assert fake_analyze.encoders[0].model is model
    assert loaded == [[patcher]]


def test_the_interrogator_clip_has_the_identity_of_its_weights(
    webui, interrogator, fake_analyze, images, monkeypatch, tmp_path
):
    """A1111's interrogator CLIP, Forge's one inside a ModelPatcher and ``openai-clip:FILE``
    from the same file are one model: one ModelRef key, one text cache; other weights
    under the same name are not."""
    import clip
    import tiny_clip

    from clipprobe_ext.encoders import factory

    path = tiny_clip.save_openai_clip_file(tmp_path / "ViT-L-14.pt")
    interrogator.load_clip_model = lambda: clip.load(str(path), device="cpu", jit=False)
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)  # A1111
    a1111 = fake_analyze.encoders[-1]

    _forge_backend(webui)
    model, preprocess = clip.load(str(path), device="cpu", jit=False)
    interrogator.clip_model, interrogator.clip_preprocess = FakePatcher(model), preprocess
    interrogator.load_device = torch.device("cpu")
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)  # Forge
    forge = fake_analyze.encoders[-1]
    assert forge.model is model and forge is not a1111

    loaded = factory.load_encoder(f"openai-clip:{path}", "cpu")
    assert a1111.ref.key == forge.ref.key == loaded.ref.key
    assert a1111.ref.name == forge.ref.name == model_source.WEBUI_CLIP_ID
    assert a1111.cache is forge.cache is loaded.cache
    assert forge.stats.text_forwards == 0  # A1111's run encoded these texts already
    loaded.encode_texts(["a cube"])
    assert loaded.stats.text_forwards == 0

    other_path = tiny_clip.save_openai_clip_file(tmp_path / "other.pt", seed=1)
    other, other_preprocess = clip.load(str(other_path), device="cpu", jit=False)
    interrogator.clip_model, interrogator.clip_preprocess = FakePatcher(other), other_preprocess
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert fake_analyze.encoders[-1].ref.key != a1111.ref.key
    assert fake_analyze.encoders[-1].stats.text_forwards > 0


# -- transformers models ---------------------------------------------------------------------


def test_transformers_model_from_a_folder_is_cached(webui, fake_analyze, images, tiny_hf_clip_dir):
    name = str(tiny_hf_clip_dir)
    run_analysis(images[:1], "a cube", model_name=name)
    run_analysis(images[:1], "a cube, a ball", model_name=name)
    first, second = fake_analyze.encoders
    assert first is second
    assert first.model_id == f"hf:{name}"
    # the CLI's factory: same encoder and text cache as load_encoder gives
    from clipprobe_ext.encoders import factory

    assert first is factory.load_encoder(name, "cpu", torch.float32)
    assert first.cache is text_cache_for(first.ref.key)


def test_transformers_model_used_when_no_interrogator(
    webui, fake_analyze, images, tiny_hf_clip_dir
):
    webui.interrogator = None
    report = run_analysis(images[:1], "a cube", model_name=str(tiny_hf_clip_dir))
    assert report.model_id.startswith("hf:")


def test_unavailable_transformers_model_is_a_model_error(webui, fake_analyze, images, tmp_path):
    missing = tmp_path / "no-such-clip"
    missing.mkdir()
    with pytest.raises(ModelError, match="Could not load the CLIP model"):
        run_analysis(images[:1], "a cube", model_name=str(missing))
    assert not webui.queue_lock.locked()


def test_default_model_comes_from_settings(webui, fake_analyze, images, tiny_hf_clip_dir):
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    report = run_analysis(images[:1], "a cube")
    assert report.model_id == f"hf:{tiny_hf_clip_dir}"


# -- with the real engine --------------------------------------------------------------------


def test_real_analysis_on_the_interrogator_clip(webui, interrogator, images):
    options = settings.probe_options(rounds=2)
    report = run_analysis(images[:2], "a red cube, blue sky, studio lighting", options, WEBUI_CLIP)
    assert [p.text for p in report.phrases] == ["a red cube", "blue sky", "studio lighting"]
    assert len(report.images) == 2
    assert report.model_id == model_source.WEBUI_CLIP_ID
    assert not webui.queue_lock.locked()


def test_real_analysis_reuses_text_embeddings(webui, interrogator, images):
    run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)
    held = OpenAIClipEncoder(interrogator.clip_model, interrogator.clip_preprocess)
    cache = text_cache_for(held.ref.key)  # the interrogator's weights' cache
    misses = cache.misses
    run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)
    assert cache.misses == misses  # nothing new to encode
    assert cache.hits > 0


def test_real_analysis_on_a_transformers_folder(webui, images, tiny_hf_clip_dir):
    report = run_analysis(images[:1], "a cat, a hat", model_name=str(tiny_hf_clip_dir))
    assert report.model_id == f"hf:{tiny_hf_clip_dir}"


def test_engine_errors_pass_through(webui, interrogator, images):
    from clipprobe_ext.errors import PromptError

    with pytest.raises(PromptError):
        run_analysis(images[:1], "   ", model_name=WEBUI_CLIP)
    assert not webui.queue_lock.locked()


def test_forge_without_memory_management_moves_the_clip_itself(
    webui, interrogator, fake_analyze, images
):
    interrogator.load_device = torch.device("cpu")  # Forge-like, but no backend module
    run_analysis(images[:1], "a cube", model_name=WEBUI_CLIP)
    assert fake_analyze.encoders[0].model is interrogator.clip_model
    assert "load" not in interrogator.calls


def test_webui_clip_available_only_with_its_weights(webui, tmp_path):
    assert model_source.webui_clip_available() is False
    webui.cmd_opts.clip_models_path = str(tmp_path)
    webui.interrogator = webui.new_interrogator()
    assert model_source.webui_clip_available() is False  # ViT-L-14.pt not downloaded
    (tmp_path / "ViT-L-14.pt").write_bytes(b"")
    assert model_source.webui_clip_available() is True


# -- loading never happens inside the queue lock ------------------------------------------------


def _hold_queue_lock(lock):
    """A 'generation' holding the WebUI's queue lock until the returned event is set."""
    taken, release = threading.Event(), threading.Event()

    def generation():
        with lock:
            taken.set()
            release.wait(60)

    thread = threading.Thread(target=generation, daemon=True)
    thread.start()
    assert taken.wait(10)
    return release, thread


def _run_in_thread(call):
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 (handed to the test)
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("offline_by", ["environment", "unreachable host"])
def test_offline_hub_model_fails_at_once_while_a_generation_holds_the_lock(
    webui, images, monkeypatch, offline_by
):
    from clipprobe_ext.webui import model_choices

    name = "openai/clip-vit-large-patch14"
    assert not model_choices.available_locally(name)  # not in this machine's HF cache
    if offline_by == "unreachable host":
        from huggingface_hub import constants

        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        # a hub whose name cannot resolve: the loader's one quick request fails
        monkeypatch.setattr(constants, "ENDPOINT", "https://clipprobe-no-such-host.invalid")
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lock = webui.queue_lock
    release, generation = _hold_queue_lock(lock)
    try:
        thread, outcome = _run_in_thread(lambda: run_analysis(images[:1], "a cube", None, name))
        thread.join(30)
        # it did not wait for the generation's lock: the error is there while it is held
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), ModelError)
        assert "not available offline" in str(outcome["error"])
        assert lock.locked()
    finally:
        release.set()
        generation.join(10)
        model_choices.forget_reachability()


def test_transformers_model_is_loaded_outside_the_queue_lock(
    webui, images, tiny_hf_clip_dir, fake_analyze, monkeypatch
):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    lock = webui.queue_lock
    seen = []
    real = HFClipEncoder.from_pretrained.__func__

    def watching(cls, *args, **kwargs):
        seen.append(lock.locked())
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(HFClipEncoder, "from_pretrained", classmethod(watching))
    run_analysis(images[:1], "a cube", model_name=str(tiny_hf_clip_dir))
    assert seen == [False]
    run_analysis(images[:1], "a cube", model_name=str(tiny_hf_clip_dir))
    assert seen == [False]  # loaded once


def test_models_on_disk_tells_local_from_missing(webui, interrogator, tiny_hf_clip_dir):
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    found = model_source.models_on_disk()
    assert found[str(tiny_hf_clip_dir)] is True
    assert found[WEBUI_CLIP] is True  # its ViT-L-14.pt is in --clip-models-path
    assert found["openai/clip-vit-large-patch14"] is False


# -- session.run: the same lock and memory policy for any work ---------------------------------


@pytest.mark.parametrize("flag", ["lowvram", "medvram"])
def test_any_job_follows_the_memory_policy(webui, interrogator, flag):
    setattr(webui.cmd_opts, flag, True)
    lock = webui.queue_lock
    seen = []

    def work(job):
        seen.append((job.encoder.model is interrogator.clip_model, lock.locked()))
        return "done"

    assert session.run(work, model=WEBUI_CLIP, job="clipprobe-audit") == "done"
    assert seen == [(True, True)]  # the interrogator's CLIP, inside the queue lock
    assert webui.send_everything_to_cpu_calls == 1
    assert interrogator.calls[-1] == "send_clip_to_ram"
    assert webui.state.history == [("begin", "clipprobe-audit"), ("end", "ClipProbe")]


def test_a_job_without_a_clip_loads_none(webui, interrogator):
    lock = webui.queue_lock
    seen = []
    session.run(lambda job: seen.append(lock.locked()), clip=False, job="clipprobe-regenerate")
    assert seen == [True]
    assert interrogator.calls == []  # not even looked at
    assert webui.torch_gc_calls == 0
    assert webui.state.history == [
        ("begin", "clipprobe-regenerate"),
        ("end", "clipprobe-regenerate"),
    ]


def test_job_progress_and_errors(webui, interrogator):
    started = []
    session.run(
        lambda job: job.show("half way", 0.5),
        model=WEBUI_CLIP,
        job="clipprobe-audit",
        task=StartSpy(lambda: started.append(webui.state.history[:])),
    )
    assert started == [[("begin", "clipprobe-audit")]]
    assert webui.state.sampling_step == 50
    assert webui.state.textinfo == "ClipProbe: half way"

    def boom(job):
        assert job.encoder is not None
        raise RuntimeError("kaput")

    with pytest.raises(ModelError, match="RuntimeError: kaput"):
        session.run(boom, model=WEBUI_CLIP)
    assert interrogator.calls[-1] == "send_clip_to_ram"  # released after the failure too


def test_analysis_runs_after_with_the_model_held(webui, interrogator, images):
    lock = webui.queue_lock
    held = []

    def after(encoder, report, progress):
        held.append((lock.locked(), "send_clip_to_ram" in interrogator.calls))
        return report.prompt

    report, extra = session.analyze(
        images[:1], "a red cube, blue sky", model=WEBUI_CLIP, after=after
    )
    assert extra == report.prompt == "a red cube, blue sky"
    assert held == [(True, False)]  # before the CLIP went back to RAM
    assert interrogator.calls.count("send_clip_to_ram") == 1


def test_negative_prompt_is_checked_against_the_picture(webui, interrogator, images):
    report, _ = session.analyze(
        images[:1], "a red cube, blue sky", model=WEBUI_CLIP, negative="blurry, text"
    )
    assert report.negative is not None
    assert report.negative.negative_prompt == "blurry, text"
    assert [p.text for p in report.negative.phrases] == ["blurry", "text"]
    plain = run_analysis(images[:1], "a red cube, blue sky", model_name=WEBUI_CLIP)
    assert plain.negative is None
