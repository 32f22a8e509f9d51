"""'Probe after generation': the always-visible Script, on real images and the tiny CLIP.

``generate`` replays the per-image part of 1.10.1's ``process_images_inner`` with the
hooks ClipProbe implements, and ``create_infotext`` is 1.10.1's (fewer built-in fields):
every infotext of an image (the saved file's, ``processed.infotexts``) comes from
``p.extra_generation_params``, so the tests see what the WebUI would write.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import runpy
import types
from pathlib import Path

import fake_host
import gradio as gr
import pytest

from clipprobe_ext.report.summary import summary_text
from clipprobe_ext.webui import session, settings

# Two iterations of a batch of two; every image has its own prompt.
PROMPTS = [
    "a girl, red umbrella, rain",
    "a cat, blue sofa, <lora:x:1>, sunlight",
    "a lighthouse",
    "a dog, green grass, yellow ball, evening sky, mountains",
]
NEGATIVE = "blurry"
BATCH_SIZE = 2


ENTRY = Path(__file__).resolve().parents[2] / "scripts" / "clipprobe.py"


@pytest.fixture()
def always_visible(webui):
    return importlib.import_module("clipprobe_ext.webui.always_visible")


@pytest.fixture()
def script_class(always_visible):
    """``ClipProbeScript`` as the WebUI finds it: in the entry file's namespace."""
    return runpy.run_path(str(ENTRY))["ClipProbeScript"]


@pytest.fixture()
def tiny_default(webui, tiny_hf_clip_dir):
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    webui.opts.clipprobe_threshold_percent = 0.0
    return str(tiny_hf_clip_dir)


def make_p(extra=None):
    """The fields of a 1.10 ``StableDiffusionProcessingTxt2Img`` that the loop uses."""
    return types.SimpleNamespace(
        prompt=PROMPTS[0],
        main_prompt=PROMPTS[0],
        main_negative_prompt=NEGATIVE,
        all_prompts=list(PROMPTS),
        all_negative_prompts=[NEGATIVE] * len(PROMPTS),
        all_seeds=[100 + k for k in range(len(PROMPTS))],
        all_subseeds=[200 + k for k in range(len(PROMPTS))],
        batch_size=BATCH_SIZE,
        n_iter=len(PROMPTS) // BATCH_SIZE,
        iteration=0,
        steps=20,
        width=64,
        height=48,
        extra_generation_params={} if extra is None else extra,
    )


def create_infotext(
    p,
    all_prompts,
    all_seeds,
    all_subseeds,
    comments=None,
    iteration=0,
    position_in_batch=0,
    use_main_prompt=False,
    index=None,
    all_negative_prompts=None,
):
    """1.10.1's ``modules.processing.create_infotext``, with fewer built-in parameters."""
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = p.main_negative_prompt if use_main_prompt else all_negative_prompts[index]
    generation_params = {
        "Steps": p.steps,
        "Sampler": "Euler a",
        "CFG scale": 7,
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        **p.extra_generation_params,
        "Version": "v1.10.1",
    }
    for key, value in generation_params.items():
        try:
            if isinstance(value, list):
                generation_params[key] = value[index]
            elif callable(value):
                generation_params[key] = value(**locals())
        except Exception:
            generation_params[key] = None
    generation_params_text = ", ".join(
        [
            k if k == v else f"{k}: {fake_host.quote(v)}"
            for k, v in generation_params.items()
            if v is not None
        ]
    )
    negative_prompt_text = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative_prompt_text}\n{generation_params_text}".strip()


def generate(script, p, batches, *args):
    """1.10.1's ``process_images_inner`` for ``batches`` (a list of image lists), one script.

    Returns ``(processed, saved)``; ``saved`` lists ``(file, info)`` for every file the
    WebUI would save (params.txt, "before face restoration" copies, images, grid).
    """
    saved = []
    infotexts = []
    output_images = []
    script.process(p, *args)
    for n, batch in enumerate(batches):
        p.iteration = n
        p.prompts = p.all_prompts[n * p.batch_size : (n + 1) * p.batch_size]
        p.negative_prompts = p.all_negative_prompts[n * p.batch_size : (n + 1) * p.batch_size]
        p.seeds = p.all_seeds[n * p.batch_size : (n + 1) * p.batch_size]
        p.subseeds = p.all_subseeds[n * p.batch_size : (n + 1) * p.batch_size]
        if n == 0:  # params.txt: Processed(p, []).infotext(p, 0)
            saved.append(("params.txt", create_infotext(p, p.all_prompts, p.all_seeds, None)))
        script.postprocess_batch(p, *args, images=batch, batch_number=n)

        def infotext(index=0, use_main_prompt=False):
            return create_infotext(
                p,
                p.prompts,
                p.seeds,
                p.subseeds,
                use_main_prompt=use_main_prompt,
                index=index,
                all_negative_prompts=p.negative_prompts,
            )

        for i, image in enumerate(batch):
            p.batch_index = i
            saved.append((f"{n}-{i}-before-face-restoration", infotext(i)))
            pp = types.SimpleNamespace(image=image)  # scripts.PostprocessImageArgs
            script.postprocess_image(p, pp, *args)
            image = pp.image
            saved.append((f"{n}-{i}", infotext(i)))
            text = infotext(i)
            infotexts.append(text)
            output_images.append(image)
    grid_text = infotext(use_main_prompt=True)
    infotexts.insert(0, grid_text)
    saved.append(("grid", infotext(use_main_prompt=True)))
    output_images.insert(0, object())
    processed = types.SimpleNamespace(
        images=output_images,
        infotexts=infotexts,
        info=infotexts[0],
        index_of_first_image=1,
        all_prompts=p.all_prompts,
        extra_generation_params=p.extra_generation_params,
    )
    script.postprocess(p, processed, *args)
    return processed, dict(saved)


def batches_of(images):
    return [[images[0], images[1]], [images[2], images[0]]]


def test_is_an_always_visible_script(script_class, always_visible, webui):
    script = script_class()
    assert isinstance(script, fake_host.Script)
    assert script.show(False) is fake_host.ALWAYS_VISIBLE
    assert script.show(True) is fake_host.ALWAYS_VISIBLE
    assert script.title() == "ClipProbe"


def test_ui_is_an_accordion_checkbox_off_by_default(script_class, always_visible, webui):
    script = script_class()
    with gr.Blocks():
        [enabled] = script.ui(False)
    assert isinstance(enabled, gr.Checkbox)  # what InputAccordion is (A1111 and Forge)
    assert enabled.value is False
    assert enabled.accordion.label == "ClipProbe: probe after generation"
    assert enabled.do_not_save_to_config and enabled.accordion.do_not_save_to_config


def test_ui_default_follows_the_setting(script_class, always_visible, webui):
    settings.on_ui_settings()
    webui.opts.clipprobe_probe_after_generation = True
    with gr.Blocks():
        [enabled] = script_class().ui(True)
    assert enabled.value is True


def test_each_image_gets_its_own_real_summary_in_file_and_infotext(
    script_class, always_visible, webui, tiny_default, images
):
    script = script_class()
    batches = batches_of(images)
    flat = [image for batch in batches for image in batch]
    off, off_saved = generate(script, make_p(), batches, False)

    calls = []
    real = session.analyze

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    p = make_p()
    lock = webui.queue_lock
    lock.acquire()  # the generation job holds the queue lock: the probe must not take it again
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(session, "analyze", spy)
            processed, saved = generate(script, p, batches, True)
    finally:
        lock.release()
    assert len(calls) == 4 and all(c["inside_generation"] is True for c in calls)

    options = settings.probe_options()
    reports = [
        session.analyze([image.convert("RGB")], prompt, options, None)[0]
        for image, prompt in zip(flat, PROMPTS)
    ]
    expected = [summary_text(report) for report in reports]
    assert len(set(expected)) == 4, expected  # otherwise a mix-up could go unnoticed
    parse = fake_host.parse_generation_parameters
    for k, summary in enumerate(expected):
        n, i = divmod(k, BATCH_SIZE)
        text = processed.infotexts[k + 1]
        assert saved[f"{n}-{i}"] == text  # the saved file carries what the UI shows
        params = parse(text)
        assert params["ClipProbe"] == summary  # quoted like the WebUI: still parseable
        assert params["Prompt"] == PROMPTS[k] and params["Seed"] == str(100 + k)
        assert params["Version"] == "v1.10.1"  # nothing after it was swallowed
        # apart from the new parameter, the text is what the WebUI writes without ClipProbe
        without = text.replace(f", ClipProbe: {fake_host.quote(summary)}", "")
        assert without == off.infotexts[k + 1]
        # a save made before postprocess_image has no summary (not the previous image's)
        assert saved[f"{n}-{i}-before-face-restoration"] == off.infotexts[k + 1]
    # the grid, shown first after a batch: the whole batch's line, counted per picture
    grid = processed.infotexts[0]
    assert grid == processed.info == saved["grid"]
    line = parse(grid)["ClipProbe"]
    assert grid.replace(f", ClipProbe: {fake_host.quote(line)}", "") == off.infotexts[0]
    head, *groups = line.split("; ")
    kept_everywhere = set.intersection(
        *({v.text for v in r.verdicts if v.verdict == "keep"} for r in reports)
    )
    assert head == f"4 images: {len(kept_everywhere)} keep in all"
    listed = {}
    for group in groups:
        kind, items = group.split(": ", 1)
        listed[kind] = items.split(", ")
    for kind in ("weak", "prune"):
        counts = {}
        for r in reports:
            for v in r.verdicts:
                if v.verdict == kind:
                    counts[v.text] = counts.get(v.text, 0) + 1
        shown = [item for item in listed.get(kind, []) if item != "..."]
        assert len(shown) == min(len(counts), 8), (kind, line)
        for item in shown:
            text, number = item[: item.rindex(" (")], item[item.rindex(" (") + 2 : -1]
            assert number == f"{counts[text]} of 4"
    assert saved["params.txt"] == off_saved["params.txt"]
    assert "ClipProbe" not in p.extra_generation_params  # gone once the job is done

    # the next generation on the same dict (X/Y/Z plot copies p), probe off: no trace
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "analyze", lambda *a, **k: pytest.fail("called"))
        again, again_saved = generate(script, make_p(p.extra_generation_params), batches, False)
    assert again.infotexts == off.infotexts and again_saved == off_saved


def test_a_failed_image_never_shows_the_previous_summary(
    script_class, always_visible, webui, tiny_default, images, monkeypatch, caplog
):
    real = session.analyze

    def flaky(images_, prompt, *args, **kwargs):
        if prompt in (PROMPTS[1], PROMPTS[2]):  # last of batch 1, first of batch 2
            raise RuntimeError("CUDA out of memory\nmore details")
        return real(images_, prompt, *args, **kwargs)

    script = script_class()
    off, _ = generate(script, make_p(), batches_of(images), False)
    monkeypatch.setattr(session, "analyze", flaky)
    with caplog.at_level(logging.WARNING, logger="clipprobe"):
        processed, saved = generate(script, make_p(), batches_of(images), True)
    parse = fake_host.parse_generation_parameters
    assert "ClipProbe" in parse(processed.infotexts[1])
    assert processed.infotexts[2] == off.infotexts[2] == saved["0-1"]
    assert processed.infotexts[3] == off.infotexts[3] == saved["1-0"]
    assert "ClipProbe" in parse(processed.infotexts[4])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ClipProbe: probe after generation failed for image 2: RuntimeError: CUDA out of memory",
        "ClipProbe: probe after generation failed for image 3: RuntimeError: CUDA out of memory",
    ]


def test_off_does_nothing_and_imports_nothing(
    script_class, always_visible, webui, images, monkeypatch
):
    calls = []
    monkeypatch.setattr(session, "analyze", lambda *a, **k: calls.append(a))
    script = script_class()
    reference, reference_saved = generate(script, make_p(), batches_of(images), False)

    imported = []
    real_import = builtins.__import__

    def recording_import(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    stale = {"ClipProbe": "3 keep, 0 weak, 0 prune"}  # left by some earlier generation
    for args in ((False,), (None,), ()):
        p = make_p(dict(stale))
        pp = types.SimpleNamespace(image=images[0])  # scripts.PostprocessImageArgs
        p.prompts, p.batch_index = PROMPTS[:2], 0
        builtins.__import__ = recording_import  # not monkeypatch: it imports while patching
        try:
            script.process(p, *args)
            assert "ClipProbe" not in p.extra_generation_params
            p.extra_generation_params.update(stale)
            script.postprocess_batch(p, *args, images=[], batch_number=0)
            assert "ClipProbe" not in p.extra_generation_params
            p.extra_generation_params.update(stale)
            script.postprocess_image(p, pp, *args)
            assert "ClipProbe" not in p.extra_generation_params
            p.extra_generation_params.update(stale)
            script.postprocess(p, types.SimpleNamespace(), *args)
        finally:
            builtins.__import__ = real_import
        assert "ClipProbe" not in p.extra_generation_params
        assert pp.image is images[0]
        processed, saved = generate(script, make_p(dict(stale)), batches_of(images), *args)
        assert processed.infotexts == reference.infotexts and saved == reference_saved
    assert imported == []
    assert calls == []
    assert all("ClipProbe" not in text for text in reference.infotexts)


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_missing_model_skips_the_generation_with_one_warning_and_a_note(
    script_class, always_visible, webui, images, caplog, tmp_path
):
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = str(tmp_path / "missing-model")
    script = script_class()
    off, off_saved = generate(script, make_p(), batches_of(images), False)
    with caplog.at_level(logging.DEBUG, logger="clipprobe"):
        processed, saved = generate(script, make_p(), batches_of(images), True)
    (warning,) = _warnings(caplog)  # one line for the generation, not one per image
    assert warning.exc_info is None and "\n" not in warning.getMessage()
    assert "probe after generation skipped for this generation" in warning.getMessage()
    assert "missing-model" in warning.getMessage()
    parse = fake_host.parse_generation_parameters
    for text, reference in zip(processed.infotexts, off.infotexts):
        note = parse(text)["ClipProbe"]
        assert note.startswith("skipped, ") and "missing-model" in note
        # the rest of the infotext is what the WebUI writes without ClipProbe
        assert text.replace(f"ClipProbe: {fake_host.quote(note)}, ", "") == reference
    assert saved.keys() == off_saved.keys()


def test_webui_clip_that_cannot_load_is_one_warning_and_the_truth_in_the_api(
    script_class, always_visible, webui, interrogator, images, caplog
):
    from clipprobe_ext.webui import api

    def offline_clip_load():  # what clip.load does without network: urllib's error
        interrogator.calls.append("load_clip_model")
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    interrogator.load_clip_model = offline_clip_load
    settings.on_ui_settings()
    assert api.models_endpoint()["webui_clip_available"] is True  # its file is there
    script = script_class()
    with caplog.at_level(logging.DEBUG, logger="clipprobe"):
        processed, _ = generate(script, make_p(), batches_of(images), True)
    (warning,) = _warnings(caplog)
    assert warning.exc_info is None
    assert "Temporary failure in name resolution" in warning.getMessage()
    assert interrogator.calls.count("load_clip_model") == 1  # not retried per image
    parse = fake_host.parse_generation_parameters
    notes = {parse(text)["ClipProbe"] for text in processed.infotexts}
    (note,) = notes
    assert note.startswith("skipped, Could not load the WebUI's Interrogate CLIP")
    assert len(note) <= len("skipped, ") + always_visible.REASON_CHARS
    assert api.models_endpoint()["webui_clip_available"] is False


def test_unexpected_errors_never_escape(
    script_class, always_visible, webui, monkeypatch, images, caplog
):
    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(always_visible, "probe_report", boom)
    script = script_class()
    off, _ = generate(script, make_p(), batches_of(images), False)
    with caplog.at_level(logging.WARNING, logger="clipprobe"):
        processed, _ = generate(script, make_p(), batches_of(images), True)  # no exception
    assert processed.infotexts == off.infotexts
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 4


def test_interrupted_generation_is_not_probed(
    script_class, always_visible, webui, monkeypatch, images
):
    calls = []
    monkeypatch.setattr(session, "analyze", lambda *a, **k: calls.append(a))
    webui.state.interrupted = True
    script = script_class()
    processed, _ = generate(script, make_p(), batches_of(images), True)
    assert calls == [] and all("ClipProbe" not in t for t in processed.infotexts)


def test_summary_is_answered_only_for_its_own_image(always_visible):
    slot = always_visible.ImageSummary()
    p = types.SimpleNamespace(iteration=1, batch_index=0)
    assert slot(p=p, index=0) is None
    slot.set(1, 0, "2 keep, 1 weak (sofa, red), 0 prune")
    assert slot(p=p, index=0) == "2 keep, 1 weak (sofa, red), 0 prune"
    assert slot(p=p, index=0, use_main_prompt=True) is None  # the grid: nothing counted yet
    assert slot(p=p, index=1) is None
    assert slot(p=types.SimpleNamespace(iteration=0, batch_index=0), index=0) is None
    slot.clear()
    assert slot(p=p, index=0) is None
    # each picture's verdicts count towards the grid's line, cleared or not
    slot.set(
        0, 0, "1 keep, 1 weak (b), 1 prune (c)", {"keep": ["a"], "weak": ["b"], "prune": ["c"]}
    )
    slot.set(0, 1, "2 keep, 0 weak, 1 prune (c)", {"keep": ["a", "b"], "weak": [], "prune": ["c"]})
    slot.clear()
    assert slot(p=p, index=0, use_main_prompt=True) == (
        "2 images: 1 keep in all; weak: b (1 of 2); prune: c (2 of 2)"
    )


def test_batch_line_counts_each_phrase_per_picture():
    from clipprobe_ext.report.summary import batch_summary_text

    pictures = [
        {"keep": ["a", "b"], "weak": ["c"], "prune": ["d"]},
        {"keep": ["a"], "weak": ["b"], "prune": ["d", "c"]},
        {"keep": ["a"], "weak": [], "prune": ["d"], "cannot_judge": ["two cats"]},
    ]
    assert batch_summary_text(pictures) == (
        "3 images: 1 keep in all; weak: b (1 of 3), c (1 of 3); prune: d (3 of 3), c (1 of 3); "
        "cannot judge: two cats (1 of 3)"
    )
    many = [{"prune": [f"p{k}" for k in range(10)]}]
    assert batch_summary_text(many, limit=3) == (
        "1 image: 0 keep in all; prune: p0 (1 of 1), p1 (1 of 1), p2 (1 of 1), ..."
    )


def test_entry_file_exposes_the_script_and_registers(webui, always_visible):
    namespace = runpy.run_path(str(ENTRY))
    classes = [
        v for v in namespace.values() if isinstance(v, type) and issubclass(v, fake_host.Script)
    ]
    assert [c.__name__ for c in classes] == ["ClipProbeScript"]
    cm = webui.callbacks
    assert len(cm["ui_tabs"]) == 1 and len(cm["after_component"]) == 1
