"""The ClipProbe tab built with the real gradio (3.41 as in A1111 1.10, 4.40 as in Forge; CI
runs both), its handlers run on the tiny CLIP."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from PIL import PngImagePlugin
from webui_grids import grid_infotext, noisy_picture, webui_grid

from clipprobe_ext import probe
from clipprobe_ext.errors import PromptError
from clipprobe_ext.probe import ProbeOptions
from clipprobe_ext.prompt import parse_prompt, require_measurable
from clipprobe_ext.webui import exports, model_source, session, tab, tab_handlers
from clipprobe_ext.webui.model_source import WEBUI_CLIP

PROMPT = "a girl, red umbrella, <lora:rainy:0.7>, rain, city at night"
NEGATIVE = "blurry, lowres"
INFOTEXT = (
    f"{PROMPT}\nNegative prompt: {NEGATIVE}\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1"
)


def _pnginfo(text):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    return info


def with_parameters(image, text=INFOTEXT):
    """The image as the WebUI saves it (PNG ``parameters`` chunk), read back as gradio would."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=_pnginfo(text))
    buffer.seek(0)
    from PIL import Image

    loaded = Image.open(buffer)
    loaded.load()
    return loaded


@pytest.fixture()
def built(webui):
    return tab.on_ui_tabs()  # the WebUI calls it outside any gr.Blocks


GRADIO_4 = int(gr.__version__.split(".", 1)[0]) >= 4


def _events(blocks):
    """Every event listener of ``blocks`` as ``{"fn", "targets": [(id, trigger)], "inputs",
    "outputs", "js", "backend_fn"}``, whichever gradio recorded them (3: ``fns`` beside
    ``dependencies`` dicts; 4: ``fns``, a dict of ``BlockFunction``)."""
    if GRADIO_4:
        return [
            {
                "fn": f.fn,
                "targets": [tuple(t) for t in f.targets],
                "inputs": _ids(f.inputs),
                "outputs": _ids(f.outputs),
                "js": f.js,
                "backend_fn": f.fn is not None,
            }
            for f in blocks.fns.values()
        ]
    return [
        {
            "fn": f.fn,
            "targets": [(target, dep["trigger"]) for target in dep["targets"]],
            "inputs": dep["inputs"],
            "outputs": dep["outputs"],
            "js": dep["js"],
            "backend_fn": dep["backend_fn"],
        }
        for f, dep in zip(blocks.fns, blocks.dependencies)
    ]


def _parent_of(blocks, component):
    for block in blocks.blocks.values():
        if component in getattr(block, "children", []):
            return block
    raise AssertionError(f"{component} has no parent")


def _handler(blocks, fn):
    for event in _events(blocks):
        if event["fn"] is fn:
            return event
    raise AssertionError(f"{fn} is not wired")


def _choices(dropdown):
    """A dropdown's choice values (gradio 4 keeps ``(label, value)`` pairs)."""
    return [c[1] if isinstance(c, tuple) else c for c in dropdown.choices]


def _ids(components):
    return [c._id for c in components]


def test_tab_is_returned_for_on_ui_tabs_and_is_a_paste_target(webui, built):
    [(blocks, title, tabname)] = built
    assert isinstance(blocks, gr.Blocks)
    assert (title, tabname) == ("ClipProbe", "clipprobe")
    target = webui.paste_fields["clipprobe"]
    image = next(
        b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "clipprobe_image"
    )
    assert target["init_img"] is image
    names = [name for _, name in target["fields"]]
    assert names == ["Prompt", "Negative prompt"]
    by_name = {name: comp.elem_id for comp, name in target["fields"]}
    assert by_name == {"Prompt": "clipprobe_prompt", "Negative prompt": "clipprobe_neg_prompt"}


def test_events_are_wired(webui):
    t = tab.create_tab()
    analyze = _handler(t.blocks, tab_handlers.analyze)
    assert analyze["targets"] == [(t.analyze_button._id, "click")]
    assert analyze["inputs"] == _ids(
        [
            t.task_id,
            t.image,
            t.prompt,
            t.synonyms,
            t.rounds,
            t.threshold,
            t.tolerance,
            t.granularity,
            t.model,
            t.negative_prompt,
            t.heatmaps,
        ]
    )
    assert analyze["js"] == "clipprobe_submit"  # task id + the WebUI's progress bar
    assert t.task_id.visible is False
    assert "progress-container" in _parent_of(t.blocks, t.result).elem_classes
    assert analyze["outputs"] == _ids(
        [
            t.result,
            t.prompt_view,
            t.status,
            t.model,
            t.pruned_prompt,
            t.send_txt2img,
            t.send_img2img,
            t.regenerate_button,
            t.details,
            t.verdicts_view,
            t.rounds_view,
            t.tokens_view,
            t.negative_view,
            t.json_file,
            t.csv_file,
            t.heatmap_state,
            t.heatmap_gallery,
            t.heatmap_column,
            t.heatmap_view,
            t.heatmap_note,
            t.report_state,
            t.regenerate_result,
            t.comparison_gallery,
            t.comparison_file,
            t.region_note,
        ]
    )
    change = _handler(t.blocks, tab_handlers.image_changed)
    assert change["targets"] == [(t.image._id, "change")]
    assert change["outputs"] == _ids([t.prompt, t.negative_prompt, t.status])
    sends = {
        event["targets"][0][0]: event
        for event in _events(t.blocks)
        if event["js"] and event["js"].startswith("clipprobe_send_to_")
    }
    assert {event["targets"][0][1] for event in sends.values()} == {"click"}
    assert sends[t.send_txt2img._id]["js"] == "clipprobe_send_to_txt2img"
    assert sends[t.send_img2img._id]["js"] == "clipprobe_send_to_img2img"
    # the best bring-in variant's prompt goes the same way, from its own hidden box
    assert sends[t.bring_in_send._id]["js"] == "clipprobe_send_to_txt2img"
    assert sends.pop(t.bring_in_send._id)["inputs"] == [t.bring_in_prompt._id]
    for dep in sends.values():
        assert dep["inputs"] == [t.pruned_prompt._id] and dep["backend_fn"] is False
    assert t.pruned_prompt.visible is False
    assert t.negative_prompt.interactive is not False  # checked now: editable
    assert _choices(t.model) and t.model.value == WEBUI_CLIP
    for component in (t.rounds, t.threshold, t.tolerance, t.model):  # defaults from Settings
        assert component.do_not_save_to_config is True


def test_defaults_come_from_settings(webui, tiny_hf_clip_dir):
    from clipprobe_ext.webui import settings

    settings.on_ui_settings()
    opts = webui.opts
    opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    # percent options are kept in percent in Settings, as the sliders show them
    opts.clipprobe_rounds = 7
    opts.clipprobe_threshold_percent, opts.clipprobe_tolerance_percent = 5, 2
    t = tab.create_tab()
    assert t.model.value == str(tiny_hf_clip_dir) and _choices(t.model)[0] == str(tiny_hf_clip_dir)
    assert (t.rounds.value, t.threshold.value, t.tolerance.value) == (7, 5, 2)


def test_image_with_parameters_fills_both_prompts(webui, images):
    prompt, negative, status = tab_handlers.image_changed(with_parameters(images[0]))
    assert prompt["value"] == PROMPT
    assert negative["value"] == NEGATIVE
    assert status == ""


def test_image_without_parameters_keeps_the_typed_prompt(webui, images):
    prompt, negative, status = tab_handlers.image_changed(images[0])
    assert "value" not in prompt  # gr.update(): the user's text stays
    assert negative["value"] == ""
    assert "No generation parameters" in status


def test_cleared_image_changes_nothing(webui):
    prompt, negative, status = tab_handlers.image_changed(None)
    assert "value" not in prompt and "value" not in negative and status == ""


# -- what gradio itself does with the tab's values ------------------------------------------


def _shown(component, output):
    """What gradio sends the browser for a handler's ``output`` to ``component``: an update
    dict goes through the gradio's own update path (3.41: ``get_specific_update``, which
    rejects an argument the component's ``update`` lacks; 4.x: the component is rebuilt
    from its constructor arguments plus the update), anything else through ``postprocess``."""
    from gradio import blocks

    if isinstance(output, dict) and output.get("__type__") in ("update", "generic_update"):
        if not GRADIO_4:
            return blocks.postprocess_update_dict(component, dict(output))
        kwargs = {**component.constructor_args, **output, "render": False}
        kwargs.pop("value", None)
        kwargs.pop("__type__")
        return blocks.postprocess_update_dict(component.__class__(**kwargs), dict(output))
    return component.postprocess(output)


def _uploaded(component, path):
    """What a handler gets when the PNG file at ``path`` is uploaded into ``component``."""
    if GRADIO_4:
        from gradio.data_classes import FileData

        return component.preprocess(FileData(path=str(path), orig_name=path.name))
    import base64

    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return component.preprocess(f"data:image/png;base64,{data}")


def _received_back(component, shown):
    """What a handler gets from ``component`` after gradio showed ``shown`` in it."""
    if GRADIO_4 and isinstance(shown, dict):
        from gradio.data_classes import FileData

        shown = FileData(**shown)
    return component.preprocess(shown)


def test_uploaded_png_fills_the_prompts(webui, images, tmp_path):
    t = tab.create_tab()
    path = tmp_path / "upload.png"
    with_parameters(images[0]).save(path, pnginfo=_pnginfo(INFOTEXT))
    image = _uploaded(t.image, path)
    prompt, negative, status = tab_handlers.image_changed(image)
    assert _shown(t.prompt, prompt)["value"] == PROMPT
    assert _shown(t.negative_prompt, negative)["value"] == NEGATIVE
    assert status == ""


def test_image_sent_from_another_tab_keeps_its_parameters(webui, images):
    """ "Send to ClipProbe": the WebUI's paste function outputs a PIL image (with its
    infotext) into the tab's image box; the box's own change event then reads it back."""
    t = tab.create_tab()
    shown = t.image.postprocess(with_parameters(images[1]))
    image = _received_back(t.image, shown)
    assert image.size == images[1].size
    prompt, negative, status = tab_handlers.image_changed(image)
    assert prompt["value"] == PROMPT and negative["value"] == NEGATIVE and status == ""


def test_outputs_are_accepted_by_gradio(webui, images, tiny_hf_clip_dir):
    t = tab.create_tab()
    values = _run(images[0], PROMPT, str(tiny_hf_clip_dir), full=True)
    shown = {
        name: _shown(component, value)
        for name, component, value in zip(tab_handlers.TabResult.OUTPUTS, t.outputs(), values)
        if not isinstance(component, gr.State)
    }
    assert shown["result"] == values[0] and "cp-answer" in shown["result"]
    assert shown["details"]["visible"] is True  # the sections show once there is a result
    for name, file_name in (
        ("json_file", "clipprobe-report.json"),
        ("csv_file", "clipprobe-report.csv"),
    ):
        assert shown[name]["visible"] is True  # shown once there is a result
        value = shown[name]["value"]
        value = value if isinstance(value, dict) else value.model_dump()
        assert value["orig_name"] == file_name
    for name in ("send_txt2img", "send_img2img", "regenerate_button"):
        button = shown[name]
        assert button["__type__"] == "update" and button["visible"] is True
        assert button.get("interactive", button.get("mode") == "dynamic") is True
    failed_values = _run(None, PROMPT, WEBUI_CLIP, full=True)
    failed = {
        name: _shown(component, value)
        for name, component, value in zip(
            tab_handlers.TabResult.OUTPUTS, t.outputs(), failed_values
        )
        if not isinstance(component, gr.State)
    }
    assert all(
        failed[n]["visible"] is False and failed[n]["value"] is None
        for n in ("json_file", "csv_file")
    )
    assert failed["details"]["visible"] is False
    for name in ("send_txt2img", "send_img2img", "regenerate_button"):
        button = failed[name]
        assert button["visible"] is False
        assert button.get("interactive", button.get("mode") == "dynamic") is False
    for update in tab_handlers.image_changed(images[0])[:2] + tab_handlers.image_changed(None)[:2]:
        _shown(t.prompt, update)


def _run(
    image,
    prompt,
    model,
    synonyms="",
    rounds=4,
    threshold=0.0,
    tolerance=2,  # percent, as the slider shows it
    gran="phrase",
    id_task="",
    negative="",
    heatmaps=False,
    full=False,
):
    """The Analyze click's outputs (all of them, in order, with ``full=True``); else
    ``(page, pruned prompt, JSON file, CSV file, send to txt2img, send to img2img)``, the
    page being every HTML the click shows (answer, prompt, detail sections) in order."""
    out = tab_handlers.analyze(
        id_task,
        image,
        prompt,
        synonyms,
        rounds,
        threshold,
        tolerance,
        gran,
        model,
        negative,
        heatmaps,
    )
    assert len(out) == len(tab_handlers.TabResult.OUTPUTS)
    if full:
        return out
    named = dict(zip(tab_handlers.TabResult.OUTPUTS, out))
    page = "".join(named[name] for name in PAGE)
    return (
        page,
        named["pruned_prompt"],
        named["json_file"],
        named["csv_file"],
        named["send_txt2img"],
        named["send_img2img"],
    )


PAGE = ("result", "prompt_view", "verdicts_view", "rounds_view", "tokens_view", "negative_view")


def test_analysis_renders_the_real_report(webui, images, tiny_hf_clip_dir, hf_encoder):
    out = _run(images[0], PROMPT, str(tiny_hf_clip_dir), synonyms="girl | woman; rain | snow")
    page, pruned, json_file, csv_file, send_t2i, send_i2i = out
    assert json_file["visible"] is True and csv_file["visible"] is True
    json_path, csv_path = json_file["value"], csv_file["value"]
    expected = probe.analyze(
        [images[0]],
        PROMPT,
        hf_encoder,
        ProbeOptions(
            rounds=4, threshold=0.0, tolerance=0.02, synonyms=[["girl", "woman"], ["rain", "snow"]]
        ),
    )
    assert "clipprobe-error" not in page
    for v in expected.verdicts:
        phrase = expected.phrases[v.index]
        span = re.search(
            rf'<span class="cp-phrase cp-(\w+)" data-index="{v.index}"[^>]*>([^<]*)</span>', page
        )
        assert span is not None, phrase.text
        assert span.group(1) == v.verdict
        assert span.group(2) == PROMPT[phrase.start : phrase.end]
    assert 'cp-unmeasurable" data-index="2"' in page and "&lt;lora:rainy:0.7&gt;" in page
    assert pruned == expected.pruning.pruned_prompt
    assert send_t2i["interactive"] is True and send_i2i["interactive"] is True
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    assert data["prompt"] == PROMPT
    assert [v["verdict"] for v in data["verdicts"]] == [v.verdict for v in expected.verdicts]
    assert data["pruning"]["pruned_prompt"] == pruned
    rows = list(csv.DictReader(io.StringIO(Path(csv_path).read_text(encoding="utf-8"))))
    assert rows and {r["text"] for r in rows} >= {"a girl", "rain"}
    verdict_of = {int(r["phrase_index"]): r["verdict"] for r in rows if r["verdict"]}
    assert verdict_of == {v.index: v.verdict for v in expected.verdicts}


def test_word_granularity_and_prompt_from_the_image(webui, images, tiny_hf_clip_dir):
    page, *_ = _run(with_parameters(images[1]), "", str(tiny_hf_clip_dir), gran="word")
    assert "clipprobe-error" not in page
    # word by word: "red" and "umbrella" are phrases of their own
    assert re.search(r'data-index="\d+"[^>]*>red</span>', page)
    assert re.search(r'data-index="\d+"[^>]*>umbrella</span>', page)
    assert re.search(r"CLIP sees \d+ of \d+ words in the picture", page)  # not "phrases"
    assert " phrases in the picture" not in page


def _error(out):
    page, pruned, json_file, csv_file, send_t2i, _ = out
    assert pruned == ""
    for file in (json_file, csv_file):  # hidden again
        assert file["value"] is None and file["visible"] is False
    assert send_t2i["interactive"] is False
    match = re.search(r'<div class="clipprobe-error[^"]*"[^>]*>(.*)</div>', page, re.S)
    assert match, page
    assert "Traceback" not in page
    return match.group(1)


def test_no_image(webui):
    assert "Add an image first" in _error(_run(None, PROMPT, WEBUI_CLIP))


def test_image_without_parameters_and_empty_prompt(webui, images, tiny_hf_clip_dir):
    message = _error(_run(images[0], "  ", str(tiny_hf_clip_dir)))
    assert "no generation parameters" in message


def test_prompt_of_only_lora_tags(webui, images, tiny_hf_clip_dir):
    prompt = "<lora:a:1>, <lora:b:0.5>"
    message = _error(_run(images[0], prompt, str(tiny_hf_clip_dir)))
    with pytest.raises(PromptError) as info:  # the engine's own message, shown as it is
        require_measurable(parse_prompt(prompt))
    assert message == html.escape(str(info.value))


def test_model_that_fails_to_load(webui, images, tmp_path):
    message = _error(_run(images[0], PROMPT, str(tmp_path / "no-such-model")))
    assert "no-such-model" in message


def test_webui_clip_without_interrogator(webui, images):
    message = _error(_run(images[0], PROMPT, WEBUI_CLIP))
    assert message == html.escape(model_source.NO_INTERROGATOR)


def test_interrogator_unloaded_mid_run(webui, interrogator, images, monkeypatch):
    real = probe.analyze

    def unload_then_analyze(
        images_, prompt, encoder, options=None, labels=None, progress=None, negative=""
    ):
        interrogator.clip_model = None  # e.g. Interrogate CLIP's own unload
        return real(images_, prompt, encoder, options, labels, progress)

    monkeypatch.setattr(probe, "analyze", unload_then_analyze)
    message = _error(_run(images[0], PROMPT, WEBUI_CLIP))
    assert "unloaded or replaced" in message


def test_unexpected_error_is_one_line_and_logged(webui, images, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(session, "analyze", boom)
    with caplog.at_level(logging.ERROR, logger="clipprobe"):
        message = _error(_run(images[0], PROMPT, WEBUI_CLIP))
    assert "RuntimeError: kaput" in message and "second line" not in message
    assert any(r.exc_info for r in caplog.records)


def test_second_user_waits_for_the_first(webui, images, tiny_hf_clip_dir):
    lock = webui.queue_lock
    results = []
    lock.acquire()  # someone else's job (a generation, another user's analysis)
    try:
        worker = threading.Thread(
            target=lambda: results.append(_run(images[0], PROMPT, str(tiny_hf_clip_dir)))
        )
        worker.start()
        time.sleep(0.3)
        assert results == []  # waiting, not failing
    finally:
        lock.release()
    worker.join(60)
    assert results and "clipprobe-error" not in results[0][0]


# -- the WebUI's progress bar (modules.progress task ids) -------------------------------------

TASK = "task(abc123xyz)"


def _calls(webui):
    """``(name, id, lock held)`` of the fake progress registry, record_results aside."""
    return list(webui.progress.calls)


def _assert_task_over(webui, task=TASK):
    assert webui.progress.task_status(task) == (False, False, True)  # completed
    assert webui.progress.current_task is None and task not in webui.progress.pending_tasks
    assert webui.progress.recorded_results == []  # the restore slots stay txt2img's
    assert not webui.queue_lock.locked()


def test_task_is_queued_before_the_lock_and_started_inside_it(webui, images, tiny_hf_clip_dir):
    lock = webui.queue_lock
    results = []
    lock.acquire()  # a generation is running
    try:
        worker = threading.Thread(
            target=lambda: results.append(
                _run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=TASK)
            )
        )
        worker.start()
        deadline = time.monotonic() + 10
        while TASK not in webui.progress.pending_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        # "In queue: 1/1" on the bar while the generation holds the lock
        assert webui.progress.task_status(TASK) == (False, True, False)
        assert _calls(webui) == [("add_task_to_queue", TASK, True)]
        assert results == []
    finally:
        lock.release()
    worker.join(60)
    assert results and "clipprobe-error" not in results[0][0]
    seen = _calls(webui)
    assert seen == [
        ("add_task_to_queue", TASK, True),  # the generation's lock, not ours
        ("start_task", TASK, True),
        ("finish_task", TASK, False),
    ]
    _assert_task_over(webui)


def test_task_is_active_with_clipprobe_progress_while_it_runs(
    webui, images, tiny_hf_clip_dir, monkeypatch
):
    real = probe.analyze
    during = []

    def watching(images_, prompt, encoder, options=None, labels=None, progress=None, negative=""):
        def report(message, fraction):
            state = webui.state
            during.append((webui.progress.task_status(TASK), state.textinfo, state.job_count))
            progress(message, fraction)

        return real(images_, prompt, encoder, options, labels, report)

    monkeypatch.setattr(probe, "analyze", watching)
    page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=TASK)
    assert "clipprobe-error" not in page
    assert during and all(status == (True, False, False) for status, _, _ in during)
    assert all(text.startswith("ClipProbe: ") and count == 1 for _, text, count in during)
    _assert_task_over(webui)


def test_task_finished_after_an_error_before_the_lock(webui):
    assert "Add an image first" in _error(_run(None, PROMPT, WEBUI_CLIP, id_task=TASK))
    assert _calls(webui) == [("add_task_to_queue", TASK, False), ("finish_task", TASK, False)]
    _assert_task_over(webui)


def test_model_that_cannot_load_fails_before_the_lock(webui, images, tmp_path):
    # transformers models are loaded before the queue lock is taken: the task never starts
    message = _error(_run(images[0], PROMPT, str(tmp_path / "no-such-model"), id_task=TASK))
    assert "no-such-model" in message
    assert [name for name, _, _ in _calls(webui)] == ["add_task_to_queue", "finish_task"]
    _assert_task_over(webui)


def test_task_finished_after_a_clipprobe_error_inside_the_lock(
    webui, interrogator, images, monkeypatch
):
    def unload_then_analyze(*args, **kwargs):
        interrogator.clip_model = None  # e.g. Interrogate CLIP's own unload
        return real(*args, **kwargs)

    real = probe.analyze
    monkeypatch.setattr(probe, "analyze", unload_then_analyze)
    message = _error(_run(images[0], PROMPT, WEBUI_CLIP, id_task=TASK))
    assert "unloaded or replaced" in message
    assert [name for name, _, _ in _calls(webui)] == [
        "add_task_to_queue",
        "start_task",
        "finish_task",
    ]
    assert _calls(webui)[1] == ("start_task", TASK, True)
    _assert_task_over(webui)


def test_task_finished_after_an_unexpected_error(webui, images, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(session, "analyze", boom)
    assert "RuntimeError: kaput" in _error(_run(images[0], PROMPT, WEBUI_CLIP, id_task=TASK))
    assert _calls(webui) == [("add_task_to_queue", TASK, False), ("finish_task", TASK, False)]
    _assert_task_over(webui)


def test_task_finished_after_an_unexpected_error_once_started(
    webui, images, tiny_hf_clip_dir, monkeypatch
):
    def disk_full(report):
        raise OSError("No space left on device")

    monkeypatch.setattr(exports, "write_exports", disk_full)
    message = _error(_run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=TASK))
    assert "OSError: No space left on device" in message
    assert [name for name, _, _ in _calls(webui)] == [
        "add_task_to_queue",
        "start_task",
        "finish_task",
    ]
    _assert_task_over(webui)


@pytest.mark.parametrize("id_task", [None, "", "abc", "task(x"])
def test_no_task_id_means_no_bookkeeping(webui, images, tiny_hf_clip_dir, id_task):
    page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=id_task)
    assert "clipprobe-error" not in page
    assert _calls(webui) == []


def test_without_modules_progress_the_analysis_still_runs(webui, images, tiny_hf_clip_dir):
    registry, webui.progress = webui.progress, None  # an older/forked WebUI
    page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=TASK)
    assert "clipprobe-error" not in page
    assert registry.calls == []


def test_failing_progress_bookkeeping_costs_nothing(
    webui, images, tiny_hf_clip_dir, monkeypatch, caplog
):
    def broken(id_task):
        raise KeyError(id_task)

    monkeypatch.setattr(webui.progress, "start_task", broken)
    monkeypatch.setattr(webui.progress, "finish_task", broken)
    with caplog.at_level(logging.ERROR, logger="clipprobe"):
        page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), id_task=TASK)
    assert "clipprobe-error" not in page
    assert not webui.queue_lock.locked()
    assert any("progress.start_task" in r.getMessage() for r in caplog.records)
    assert webui.state.job == ""


# -- "Send to ClipProbe" in other tabs -------------------------------------------------------


def test_send_to_buttons_in_galleries_and_png_info(webui):
    from clipprobe_ext.webui import callbacks

    send_to = callbacks.register()
    fire = webui.fire_after_component
    with gr.Blocks():
        txt2img_gallery = gr.Gallery(elem_id="txt2img_gallery")
        fire(txt2img_gallery, elem_id="txt2img_gallery")
        with gr.Row():
            for name in ("img2img", "inpaint", "extras"):
                extras = gr.Button("x", elem_id=f"txt2img_send_to_{name}")
                fire(extras, elem_id=extras.elem_id)
        img2img_gallery = gr.Gallery(elem_id="img2img_gallery")
        fire(img2img_gallery)
        with gr.Row():
            button = gr.Button("x", elem_id="img2img_send_to_extras")
            fire(button)
        png_image = gr.Image(elem_id="pnginfo_image", type="pil")
        fire(png_image)
        png_text = gr.Textbox(visible=False, elem_id="pnginfo_generation_info")
        fire(png_text)
        with gr.Row():
            for name in ("txt2img", "img2img", "inpaint", "extras"):
                fire(gr.Button(f"Send to {name}", elem_id=f"{name}_tab"))
    bindings = {b.paste_button.elem_id: b for b in webui.paste_buttons}
    assert set(bindings) == {
        "txt2img_send_to_clipprobe",
        "img2img_send_to_clipprobe",
        "pnginfo_send_to_clipprobe",
    }
    t2i = bindings["txt2img_send_to_clipprobe"]
    assert t2i.tabname == "clipprobe" and t2i.source_image_component is txt2img_gallery
    assert t2i.source_tabname == "txt2img" and t2i.source_text_component is None
    assert t2i.paste_button.parent is extras.parent  # next to the WebUI's own send buttons
    i2i = bindings["img2img_send_to_clipprobe"]
    assert i2i.source_image_component is img2img_gallery and i2i.source_tabname == "img2img"
    png = bindings["pnginfo_send_to_clipprobe"]
    assert png.source_image_component is png_image and png.source_text_component is png_text
    assert png.source_tabname is None
    assert send_to.buttons.keys() == {"txt2img", "img2img", "pnginfo"}


def test_register_wires_every_callback(webui):
    from clipprobe_ext.webui import api, callbacks, settings

    callbacks.register()
    cm = webui.callbacks
    assert cm["ui_settings"] == [settings.on_ui_settings]
    assert cm["ui_tabs"] == [tab.on_ui_tabs]
    assert cm["app_started"] == [api.on_app_started]
    assert len(cm["after_component"]) == 1
    [(_, title, tabname)] = webui.fire_ui_tabs()
    assert (title, tabname) == ("ClipProbe", "clipprobe")


def test_sixteen_bit_and_transparent_uploads_are_converted_properly(
    webui, tiny_hf_clip_dir, hf_encoder, tmp_path
):
    """gradio's own RGB conversion would clip a 16-bit picture to white; the box keeps the
    mode and the engine scales it, so the analysis sees the real picture."""
    import numpy as np
    from PIL import Image

    from clipprobe_ext.images import to_rgb

    t = tab.create_tab()
    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)  # a 16-bit greyscale PNG
    uploaded = _uploaded(t.image, path)
    assert uploaded.mode.startswith("I")  # not already clipped by gradio
    page = _run(uploaded, "a girl, rain", str(tiny_hf_clip_dir))[0]
    expected = probe.analyze([to_rgb(Image.open(path))], "a girl, rain", hf_encoder)
    clipped = probe.analyze([Image.open(path).convert("RGB")], "a girl, rain", hf_encoder)
    similarity = expected.images[0].contribution.full_similarity
    assert abs(similarity - clipped.images[0].contribution.full_similarity) > 1e-4
    assert f"{similarity:.4f}" in page

    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent red
    path = tmp_path / "alpha.png"
    rgba.save(path)
    uploaded = _uploaded(t.image, path)
    assert uploaded.mode == "RGBA"
    assert "clipprobe-error" not in _run(uploaded, "a girl", str(tiny_hf_clip_dir))[0]


# -- a grid is analysed as the batch it is ---------------------------------------------------


def _grid_infotext(width, height, extra=""):
    return grid_infotext(PROMPT, NEGATIVE, width, height, extra)


def _numbers(report_dict):
    """What an analysis measured, per image and per phrase (the report minus its options)."""
    return {k: report_dict[k] for k in ("phrases", "images", "verdicts", "pruning")}


@pytest.mark.parametrize(
    ("count", "rows", "extra", "cell"),
    [
        (4, 2, "", None),  # a batch of 4: 2x2 (image_grid's default rows, round(sqrt(4)))
        (3, 2, "", None),  # 3 in 2x2: the last cell is background
        (2, 1, "", None),  # 2 side by side
        (4, 2, ", Hires upscale: 2", (32, 24)),  # infotext Size is the first pass
    ],
)
def test_grid_sent_from_a_batch_is_analysed_as_its_images(
    webui, tiny_hf_clip_dir, hf_encoder, count, rows, extra, cell
):
    from clipprobe_ext.report import data as report_format

    pictures = [noisy_picture(seed=10 + i) for i in range(count)]
    grid = webui_grid(pictures, rows)
    size = cell or pictures[0].size
    sent = with_parameters(grid, _grid_infotext(*size, extra))
    page, pruned, json_file, *_ = _run(sent, PROMPT, str(tiny_hf_clip_dir))
    assert "clipprobe-error" not in page
    assert f"WebUI grid of {count} images" in page
    got = json.loads(Path(json_file["value"]).read_text(encoding="utf-8"))
    expected = probe.analyze(
        pictures,
        PROMPT,
        hf_encoder,
        ProbeOptions(rounds=4, threshold=0.0, tolerance=0.02),
        labels=[f"image {i + 1}" for i in range(count)],
    )
    assert len(got["images"]) == count
    assert _numbers(got) == _numbers(json.loads(report_format.to_json(expected)))


def test_a_picture_that_is_not_a_grid_stays_one_image(webui, images, tiny_hf_clip_dir):
    # the size its infotext gives is its own size (or does not divide it)
    for size in (images[0].size, (40, 40)):
        sent = with_parameters(images[0], _grid_infotext(*size))
        page, _, json_file, *_ = _run(sent, PROMPT, str(tiny_hf_clip_dir))
        assert "WebUI grid" not in page
        data = json.loads(Path(json_file["value"]).read_text(encoding="utf-8"))
        assert len(data["images"]) == 1


# -- the tab's rough edges -----------------------------------------------------------------


def test_send_buttons_stay_off_when_nothing_can_go(webui, images, tiny_hf_clip_dir):
    page, pruned, json_file, _, send_t2i, send_i2i = _run(
        images[0], "a red cube", str(tiny_hf_clip_dir), tolerance=0
    )
    data = json.loads(Path(json_file["value"]).read_text(encoding="utf-8"))
    assert data["pruning"] is not None and data["pruning"]["steps"] == []  # nothing can go
    assert "Nothing can go" in page
    assert pruned == ""  # the unchanged prompt is not offered as a "pruned" one
    assert send_t2i["interactive"] is False and send_i2i["interactive"] is False


def test_empty_tab_puts_analyze_first_and_hides_the_downloads(webui):
    t = tab.create_tab()
    outputs_column = _parent_of(t.blocks, t.analyze_button)
    assert outputs_column.elem_id == "clipprobe_outputs"
    assert outputs_column.children[0] is t.analyze_button  # above the result, like Generate
    assert t.json_file.visible is False and t.csv_file.visible is False


def test_a_pending_run_shows_one_progress_indicator(webui):
    t = tab.create_tab()
    if GRADIO_4:
        (event,) = [f for f in t.blocks.fns.values() if f.fn is tab_handlers.analyze]
        shown = event.show_progress
    else:
        index = next(i for i, f in enumerate(t.blocks.fns) if f.fn is tab_handlers.analyze)
        shown = t.blocks.dependencies[index]["show_progress"]
    # the WebUI's progress bar (clipprobe_submit) only; gradio's would time every output
    assert shown in (False, "hidden")


def test_slider_bounds_labels_and_help_come_from_the_options_spec(webui):
    from clipprobe_ext.options import OPTIONS

    t = tab.create_tab()
    for name in ("rounds", "threshold", "tolerance"):
        slider, spec = getattr(t, name), OPTIONS[name]
        assert (slider.minimum, slider.maximum) == (
            spec.to_display(spec.minimum),
            spec.to_display(spec.maximum),
        )
        assert slider.label.startswith(spec.label) and slider.info == spec.help
    assert t.threshold.label == "Threshold (%)" and t.threshold.value == 1


def test_negative_prompt_box_is_checked_under_the_prompt(webui, images, tiny_hf_clip_dir):
    page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), negative="blurry, lowres")
    assert "Negative prompt, checked" in page
    rows = re.findall(r'<tr class="cp-neg-[^"]*"><td>([^<]*)</td>', page)
    assert rows == ["blurry", "lowres"]
    assert page.index("cp-prompt") < page.index("cp-negative")  # under the prompt
    page, *_ = _run(images[0], PROMPT, str(tiny_hf_clip_dir), negative="")
    assert "Negative prompt, checked" not in page


# -- nothing the tab shows outlives what it describes -------------------------------------


def test_model_note_follows_the_machine_not_the_moment_the_tab_was_built(webui, interrogator):
    """The note was computed once, when the UI was built: it kept saying the WebUI's CLIP
    needs a download after it became available (and the models route said so)."""
    from clipprobe_ext.webui import api

    real = webui.interrogator
    webui.interrogator = None  # the WebUI's CLIP: not there yet
    t = tab.create_tab()
    assert WEBUI_CLIP in t.model.info and "needs a download" in t.model.info
    webui.interrogator = real  # now it is (downloaded, or loaded by Interrogate)
    assert api.models_endpoint()["available_locally"][WEBUI_CLIP] is True
    refresh = _handler(t.blocks, tab_handlers.model_dropdown_update)
    assert refresh["targets"] == [(t.model_refresh._id, "click")]
    assert refresh["outputs"] == _ids([t.model])
    update = refresh["fn"]()
    assert WEBUI_CLIP not in update["info"] and update["info"] == tab_handlers.model_note()
    assert _choices_of(_shown(t.model, update)) == model_source.list_models()
    # and every Analyze answers with the note as it is then
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _run(None, PROMPT, WEBUI_CLIP, full=True)))
    assert out["model"]["info"] == tab_handlers.model_note()


def _choices_of(shown):
    return [c[1] if isinstance(c, (tuple, list)) else c for c in shown["choices"]]


def test_the_image_note_goes_once_an_analysis_ran(webui, images, tiny_hf_clip_dir):
    t = tab.create_tab()
    _, _, status = tab_handlers.image_changed(images[0])
    assert tab_handlers.NO_PARAMETERS_NOTE in status  # typed prompt needed: said
    analyze = _handler(t.blocks, tab_handlers.analyze)
    assert t.status._id in analyze["outputs"]
    out = dict(
        zip(
            tab_handlers.TabResult.OUTPUTS,
            _run(images[0], PROMPT, str(tiny_hf_clip_dir), full=True),
        )
    )
    assert "cp-answer" in out["result"] and out["status"] == ""
    out = dict(zip(tab_handlers.TabResult.OUTPUTS, _run(None, PROMPT, WEBUI_CLIP, full=True)))
    assert out["status"] == ""  # the error box says what is wrong; no stale note beside it


def test_the_answer_comes_first_beside_the_inputs_and_the_numbers_below(webui):
    t = tab.create_tab()
    outputs = _parent_of(t.blocks, t.analyze_button)
    inputs = _parent_of(t.blocks, t.image)
    main = _parent_of(t.blocks, outputs)
    assert main.elem_id == "clipprobe_main" and inputs in main.children
    order = [c._id for c in outputs.children]
    result_row = _parent_of(t.blocks, t.result)
    send_row = _parent_of(t.blocks, t.send_txt2img)
    prompt_row = _parent_of(t.blocks, t.heatmap_column)
    assert order.index(t.analyze_button._id) < order.index(result_row._id)
    assert order.index(result_row._id) < order.index(send_row._id) < order.index(prompt_row._id)
    assert [b._id for b in send_row.children] == _ids(
        [t.send_txt2img, t.send_img2img, t.regenerate_button]
    )
    # the details: one closed section each, below both columns, shown with a result
    assert t.details.visible is False
    page = t.blocks.children  # the tab's top level
    assert page.index(t.details) == page.index(main) + 1
    sections = [s for s in t.details.children if isinstance(s, gr.Accordion)]
    assert [s.label for s in sections] == [
        "Verdicts and numbers",
        "Elimination rounds",
        "Heatmaps of every phrase",
        "Tokens",
        "Negative prompt",
        "Regenerate with the suggested prompt",
        "Try to bring a missing phrase in",
        "Downloads",
    ]
    assert all(s.open is False for s in sections)
    holders = {
        "Verdicts and numbers": t.verdicts_view,
        "Elimination rounds": t.rounds_view,
        "Heatmaps of every phrase": t.heatmap_gallery,
        "Tokens": t.tokens_view,
        "Negative prompt": t.negative_view,
        "Regenerate with the suggested prompt": t.comparison_gallery,
        "Try to bring a missing phrase in": t.bring_in_gallery,
        "Downloads": t.json_file,
    }
    for section in sections:
        inside = {c._id for c in _all_children(section)}
        assert holders[section.label]._id in inside, section.label


def _all_children(block):
    for child in getattr(block, "children", []):
        yield child
        yield from _all_children(child)


def test_analyze_fills_every_section(webui, images, tiny_hf_clip_dir):
    out = dict(
        zip(
            tab_handlers.TabResult.OUTPUTS,
            _run(images[0], PROMPT, str(tiny_hf_clip_dir), negative=NEGATIVE, full=True),
        )
    )
    report = out["report_state"]
    assert out["details"]["visible"] is True
    assert "Verdicts" in out["verdicts_view"] and "Elimination rounds" in out["rounds_view"]
    assert "Token budget" in out["tokens_view"]
    assert "Negative prompt, checked" in out["negative_view"]
    for v in report.verdicts:  # every verdict in its table, every phrase in the prompt
        assert html.escape(v.text) in out["verdicts_view"]
        assert f'data-index="{v.index}"' in out["prompt_view"]
    # an earlier regeneration does not stay on screen beside the new analysis
    assert out["regenerate_result"] == ""
    assert out["comparison_gallery"]["visible"] is False
    assert out["comparison_file"]["visible"] is False
