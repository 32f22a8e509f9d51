"""Regenerate with the pruned prompt, through the fake WebUI's processing path.

The infotexts below are written the way A1111 1.10.1's ``create_infotext`` writes them;
each test states by hand the processing arguments the WebUI's "Send to txt2img" +
Generate would use, and checks that they reached ``process_images``.
"""

from __future__ import annotations

import base64
import io
import re
import types

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from trained_clip import CAPTIONS, picture

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.webui import api
from clipprobe_ext.webui import regenerate as regen

ROUTE = "/clipprobe/v1/regenerate"


SD15 = ("v1-5-pruned-emaonly.safetensors", "cc6cb27103", "6ce0161689" + "b" * 54)
OTHER = (
    "dreamshaper_8.safetensors",
    "879db523c3",
    "879db523c30d3b9017143d56705015e15a2cb5628762c11d086fed9538abd7fd",
)
OLD = ("anything-v3.ckpt", "1a2b3c4d", None)  # no sha256 computed yet: found by old hash


@pytest.fixture()
def wui(webui):
    """The fake WebUI with three checkpoints, SD 1.5 loaded and selected."""
    infos = {}
    for name, old_hash, sha in (SD15, OTHER, OLD):
        infos[name] = webui.add_checkpoint(name, old_hash, sha)
    webui.load_checkpoint(infos[SD15[0]])
    webui.opts.sd_model_checkpoint = infos[SD15[0]].title
    webui.infos = infos
    return webui


BASIC = (
    "masterpiece, a red circle, best quality, green stripes\n"
    "Negative prompt: blurry, text\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, "
    "Version: v1.10.1"
)
HIRES = (
    "a castle on a hill, (sunset:1.2), <lora:detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 28, Sampler: Euler a, Schedule type: Exponential, CFG scale: 6.5, Seed: 42, "
    "Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Variation seed: 7, "
    "Variation seed strength: 0.3, Denoising strength: 0.55, RNG: CPU, ENSD: 31337, "
    'Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "detail: '
    '0123456789ab", ADetailer model: face_yolov8n.pt, Version: v1.10.1'
)
OLD_NAMES = (
    "portrait of a woman, film grain\n"
    "Steps: 30, Sampler: DPM++ 2M SDE Karras, CFG scale: 5, Seed: 99, Size: 640x448, "
    "Model hash: 1a2b3c4d, Model: anything-v3, Denoising strength: 0.4, "
    "Hires resize: 1280x896, Hires upscaler: R-ESRGAN 4x+, Hires sampler: Euler, "
    "Version: v1.7.0"
)
IMG2IMG = (
    "a cat on a sofa\n"
    "Negative prompt: dog\n"
    "Steps: 20, Sampler: Euler, Schedule type: Automatic, CFG scale: 7, Seed: 5, "
    "Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Denoising strength: 0.75, Version: v1.10.1"
)
INPAINT = IMG2IMG.replace("Denoising strength: 0.75", "Denoising strength: 0.75, Mask blur: 4")


def run(wui, infotext, prompt, **kwargs):
    result = regen.regenerate(infotext, prompt, **kwargs)
    (call,) = wui.processing_calls
    return result, call


def test_basic_txt2img_parameters_reach_the_processing(wui) -> None:
    result, call = run(wui, BASIC, "a red circle, green stripes", id_task="task(cp-1)")
    f = call["fields"]
    assert f["prompt"] == "a red circle, green stripes"
    assert f["negative_prompt"] == "blurry, text"
    assert (f["steps"], f["cfg_scale"], f["seed"]) == (20, 7.0, 1234567890)
    assert (f["width"], f["height"]) == (512, 768)
    # "DPM++ 2M" + "Karras": Karras is that sampler's default, so the WebUI pastes "Automatic".
    assert (f["sampler_name"], f["scheduler"]) == ("DPM++ 2M", "Automatic")
    assert f["enable_hr"] is False and f["subseed_strength"] == 0
    assert (f["batch_size"], f["n_iter"], f["styles"]) == (1, 1, [])
    assert f["do_not_save_samples"] and f["do_not_save_grid"]
    assert call["settings"] == {"CLIP_stop_at_last_layers": 2}  # Clip skip, during the run
    assert wui.opts.CLIP_stop_at_last_layers == 1  # restored afterwards
    assert call["checkpoint"] == wui.infos[SD15[0]].title
    assert result.plan.checkpoint.status == "same" and result.plan.warnings == []
    assert result.image.size == (512, 768)
    assert "Steps: 20" in result.infotext and result.infotext.startswith("a red circle")
    # Under the queue lock, as a job of its own, with the WebUI's progress bookkeeping.
    assert call["lock_held"] and call["job"] == regen.JOB
    assert wui.state.history == [("begin", regen.JOB), ("end", regen.JOB)]
    names = [(name, task, held) for name, task, held in wui.progress.calls]
    assert names == [
        ("add_task_to_queue", "task(cp-1)", False),
        ("start_task", "task(cp-1)", True),
        ("finish_task", "task(cp-1)", False),
    ]
    assert call["p"].scripts is None and call["p"].closed


def test_hires_fix_variation_seed_and_settings(wui) -> None:
    # No "Clip skip" in the infotext means 1 (the WebUI's rule), even where Settings say 2.
    wui.opts.CLIP_stop_at_last_layers = 2
    result, call = run(wui, HIRES, "a castle on a hill, (sunset:1.2), <lora:detail:0.6>")
    f = call["fields"]
    assert (f["steps"], f["cfg_scale"], f["seed"]) == (28, 6.5, 42)
    assert (f["sampler_name"], f["scheduler"]) == ("Euler a", "Exponential")
    assert (f["subseed"], f["subseed_strength"]) == (7, 0.3)
    assert f["enable_hr"] is True and f["denoising_strength"] == 0.55
    assert (f["hr_scale"], f["hr_second_pass_steps"], f["hr_upscaler"]) == (1.5, 10, "Latent")
    assert (f["hr_resize_x"], f["hr_resize_y"]) == (0, 0)
    assert f["hr_checkpoint_name"] is None
    assert f["hr_sampler_name"] is None and f["hr_scheduler"] is None
    assert call["settings"] == {
        "randn_source": "CPU",
        "eta_noise_seed_delta": 31337,
        "CLIP_stop_at_last_layers": 1,
    }
    assert wui.opts.CLIP_stop_at_last_layers == 2  # restored
    assert result.image.size == (768, 768)  # 512 x 1.5
    assert result.plan.not_reproduced == ["ADetailer model"]
    assert "ADetailer model" in result.plan.notes[-1]


def test_old_sampler_names_hires_resize_and_a_checkpoint_switch(wui) -> None:
    result, call = run(wui, OLD_NAMES, "portrait of a woman")
    f = call["fields"]
    # "DPM++ 2M SDE Karras" (before 1.9) is sampler + scheduler; Karras is not its default.
    assert (f["sampler_name"], f["scheduler"]) == ("DPM++ 2M SDE", "Karras")
    assert (f["width"], f["height"], f["steps"], f["seed"]) == (640, 448, 30, 99)
    assert f["enable_hr"] and (f["hr_resize_x"], f["hr_resize_y"]) == (1280, 896)
    assert f["hr_upscaler"] == "R-ESRGAN 4x+" and f["hr_sampler_name"] == "Euler"
    # Version 1.7.0 < 1.7.0-225: the WebUI's back-compat downcasts alphas_cumprod.
    assert call["settings"]["use_downcasted_alpha_bar"] is True
    # The loaded SD 1.5 is not the picture's: found by its old hash, loaded for the run.
    assert result.plan.checkpoint.status == "switch"
    assert call["checkpoint"] == "anything-v3.ckpt"
    assert call["settings"]["sd_model_checkpoint"] == "anything-v3.ckpt"
    (warning,) = result.plan.warnings
    assert "is not the picture's (anything-v3 [1a2b3c4d])" in warning
    assert wui.opts.sd_model_checkpoint == wui.infos[SD15[0]].title  # restored


def test_checkpoint_mismatch_is_warned_before_running(wui) -> None:
    wui.load_checkpoint(wui.infos[OTHER[0]])
    plan = regen.plan_regeneration(BASIC, "a red circle")
    assert plan.checkpoint.status == "switch"
    assert plan.checkpoint.loaded_title == wui.infos[OTHER[0]].title
    assert "dreamshaper_8.safetensors [879db523c3]" in plan.warnings[0]
    assert plan.override_settings["sd_model_checkpoint"] == wui.infos[SD15[0]].title
    kept = regen.plan_regeneration(BASIC, "a red circle", use_original_checkpoint=False)
    assert "sd_model_checkpoint" not in kept.override_settings
    assert kept.checkpoint.status == "kept" and "used anyway, as asked" in kept.warnings[0]
    assert len(kept.warnings) == 1
    missing = regen.plan_regeneration(BASIC.replace("6ce0161689", "deadbeef00"), "a red circle")
    assert missing.checkpoint.status == "missing"
    assert "does not have" in missing.warnings[0]
    assert "sd_model_checkpoint" not in missing.override_settings
    assert wui.processing_calls == []  # planning runs nothing


def test_img2img_is_refused_unless_allowed(wui) -> None:
    for text in (IMG2IMG, INPAINT):
        with pytest.raises(ClipProbeError, match="img2img"):
            regen.regenerate(text, "a cat")
    assert wui.processing_calls == []
    result, call = run(wui, INPAINT, "a cat", allow_txt2img=True)
    assert result.plan.kind == "img2img"
    assert call["fields"]["enable_hr"] is False
    assert (call["fields"]["steps"], call["fields"]["seed"]) == (20, 5)
    assert "input picture" in result.plan.warnings[0]


def test_bad_infotexts_are_clear_errors(wui) -> None:
    with pytest.raises(ClipProbeError, match="no generation parameters"):
        regen.plan_regeneration("", "a cat")
    with pytest.raises(ClipProbeError, match="lack Steps"):
        regen.plan_regeneration("a cat\nSampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "x")
    with pytest.raises(ClipProbeError, match="unreadable"):
        regen.plan_regeneration(BASIC.replace("Steps: 20", "Steps: many"), "a cat")


def _kind_of(prompt: str) -> int:
    found = [(prompt.find(c), k) for k, c in enumerate(CAPTIONS) if c in prompt]
    return min(found)[1] if found else 3


def _png(image: Image.Image, text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture()
def tiny_world(wui, trained_clip_dir, monkeypatch):
    """process_images draws the first caption of the prompt with the seed: the pruned
    prompt that keeps the red circle regenerates the very same picture."""
    from clipprobe_ext.webui import settings

    wui.generate = lambda p: picture(_kind_of(p.prompt), seed=p.seed, size=p.width)
    wui.opts.data[settings.KEY_MODEL] = str(trained_clip_dir)
    text = BASIC.replace("Size: 512x768", "Size: 96x96")
    original = Image.open(io.BytesIO(_png(picture(0, seed=1234567890, size=96), text)))
    return types.SimpleNamespace(text=text, original=original, model=str(trained_clip_dir))


def test_end_to_end_compare_on_the_tiny_clip(tiny_world) -> None:
    same, comparison = regen.regenerate_and_compare(
        tiny_world.original, "a red circle, green stripes", model_name=tiny_world.model
    )
    assert comparison.ssim == pytest.approx(1.0)  # same seed, same first caption
    assert comparison.regenerated_similarity == pytest.approx(comparison.original_similarity)
    assert comparison.tokens.tokens_saved == 1 + 1 + 2 + 1  # masterpiece, best quality
    assert comparison.kept_lost == []
    lost, worse = regen.regenerate_and_compare(
        tiny_world.original, "best quality, green stripes", model_name=tiny_world.model
    )
    assert worse.ssim < 0.9
    assert worse.regenerated_similarity < worse.original_similarity
    stripes = next(p for p in worse.phrases if p.text == "green stripes")
    assert stripes.kept and stripes.regenerated > stripes.original


def test_a_grid_regenerates_and_compares_its_first_picture(tiny_world) -> None:
    """A grid carries its first picture's parameters: that picture is regenerated and
    compared.  Before: the whole grid was compared with one regenerated picture."""
    from webui_grids import webui_grid

    other = picture(1, seed=7, size=96)
    grid = Image.open(
        io.BytesIO(_png(webui_grid([tiny_world.original, other], 1), tiny_world.text))
    )
    original, text, found = regen.original_picture(grid)
    assert text == tiny_world.text and found.grid is not None and found.grid.count == 2
    assert np.array_equal(np.asarray(original), np.asarray(tiny_world.original.convert("RGB")))
    _, comparison = regen.regenerate_and_compare(
        grid, "a red circle, green stripes", model_name=tiny_world.model
    )
    assert comparison.ssim == pytest.approx(1.0)
    assert comparison.regenerated_similarity == pytest.approx(comparison.original_similarity)


def test_the_comparison_is_against_the_prompt_the_user_analysed(tiny_world) -> None:
    """The tab's prompt was edited before Analyze: the comparison scores that prompt's
    phrases, with the analysis' own presence, not the infotext's prompt."""
    from clipprobe_ext.webui import session, settings

    edited = "a red circle, green stripes, a yellow triangle"
    report, _ = session.analyze(
        [tiny_world.original], edited, settings.probe_options(), tiny_world.model
    )
    _, comparison = regen.regenerate_and_compare(
        tiny_world.original, "a red circle", model_name=tiny_world.model, report=report
    )
    assert comparison.original_prompt == edited != tiny_world.text.splitlines()[0]
    assert [p.text for p in comparison.phrases] == [p.text for p in report.measurable]
    presence = {v.index: v.presence for v in report.verdicts}
    for p in comparison.phrases:
        assert p.original == pytest.approx(presence[p.index], abs=1e-6)
    assert comparison.original_similarity == pytest.approx(report.pruning.original_similarity)
    # the same picture came back (same seed, same first caption): nothing changed
    assert [p.regenerated for p in comparison.phrases] == pytest.approx(
        [p.original for p in comparison.phrases], abs=1e-6
    )


def test_api_route(tiny_world, wui) -> None:
    app = FastAPI()
    api.on_app_started(None, app)
    api.on_app_started(None, app)
    assert [r.path for r in app.router.routes].count(ROUTE) == 1
    client = TestClient(app)
    buffer = io.BytesIO()
    tiny_world.original.save(buffer, format="PNG", pnginfo=_pnginfo(tiny_world.text))
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), "prompt": "a red circle"}
    response = client.post(ROUTE, json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["plan"]["params"]["seed"] == 1234567890
    assert data["comparison"]["ssim"] == pytest.approx(1.0)
    returned = Image.open(io.BytesIO(base64.b64decode(data["image"])))
    assert returned.size == (96, 96) and "Steps: 20" in returned.info["parameters"]
    img2img = dict(body, infotext=INPAINT.replace("512x512", "96x96"))
    response = client.post(ROUTE, json=img2img)
    assert response.status_code == 400 and "img2img" in response.json()["detail"]
    response = client.post(ROUTE, json=dict(body, unknown=1))
    assert response.status_code == 422


def test_api_route_has_the_same_auth(wui) -> None:
    wui.cmd_opts.api_auth = "user:secret"
    app = FastAPI()
    api.on_app_started(None, app)
    client = TestClient(app)
    response = client.post(ROUTE, json={"image": "AAAA"})
    assert response.status_code == 401
    response = client.post(ROUTE, json={"image": "AAAA"}, auth=("user", "secret"))
    assert response.status_code == 400  # authenticated; the image is not a picture


def _pnginfo(text: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    return info


def test_tab_preflight_shows_the_warnings_before_the_click(wui, tiny_world) -> None:
    from clipprobe_ext.webui import regenerate_tab

    wui.load_checkpoint(wui.infos[OTHER[0]])
    box = regenerate_tab.preflight_html(tiny_world.original, "a red circle")
    assert "seed 1234567890" in box and "DPM++ 2M / Automatic" in box
    assert "is not the picture&#x27;s" in box  # the mismatch, escaped
    assert wui.processing_calls == []
    assert regenerate_tab.NO_PROMPT in regenerate_tab.preflight_html(tiny_world.original, " ")
    assert regenerate_tab.NO_IMAGE in regenerate_tab.preflight_html(None, "a red circle")


def test_tab_click_regenerates_compares_and_saves(wui, tiny_world) -> None:
    import json

    from clipprobe_ext.webui import regenerate_tab

    html_box, pictures, saved = regenerate_tab.regenerate_click(
        "task(cp-tab)", tiny_world.original, "a red circle, green stripes", False, None
    )
    assert "clipprobe-error" not in html_box, html_box
    assert re.search(r"SSIM \(1: the same picture\)</th><td[^>]*></td><td[^>]*>1\.000<", html_box)
    # the two pictures as a gallery shows them; the PNG with the numbers is the download
    [(original, first), (regenerated, second)] = pictures
    assert first.startswith("original") and second.startswith("pruned prompt")
    assert original.size == regenerated.size == (96, 96)
    assert "Steps: 20" in regenerated.info["parameters"]
    with Image.open(saved) as png:
        assert png.width > 2 * 96  # the side-by-side with the numbers drawn under it
        data = json.loads(png.info["clipprobe-comparison"])
    assert data["comparison"]["ssim"] == pytest.approx(1.0)
    assert data["plan"]["params"]["seed"] == 1234567890
    assert [c[:2] for c in wui.progress.calls] == [
        ("add_task_to_queue", "task(cp-tab)"),
        ("start_task", "task(cp-tab)"),
        ("finish_task", "task(cp-tab)"),
    ]
    inpaint = Image.open(io.BytesIO(_png(tiny_world.original, INPAINT)))
    box, *rest = regenerate_tab.regenerate_click("task(x)", inpaint, "a cat", False, None)
    assert "img2img" in box and rest == [None, None]


def test_tab_wiring_regenerates_with_the_infotexts_parameters(wui, tiny_world) -> None:
    """The tab's button: wrap_gradio_call (not the GPU variant: regenerate takes the lock),
    its own task id and bar, preflight after each analysis and on the checkbox."""
    import inspect

    from test_tab import _events, _ids

    from clipprobe_ext.webui import regenerate_tab, tab

    t = tab.create_tab()
    events = _events(t.blocks)
    [click] = [e for e in events if inspect.unwrap(e["fn"]) is tab.regenerate_and_show]
    assert click["fn"] is not tab.regenerate_and_show  # wrapped in wrap_gradio_call
    assert t.comparison_gallery.visible is False and t.comparison_file.visible is False
    # the button opens the Regenerate section first (its bar and result are in it), then runs
    [opening] = [e for e in events if e["fn"] is tab.open_regenerate_section]
    assert opening["targets"] == [(t.regenerate_button._id, "click")]
    assert opening["outputs"] == _ids([t.regenerate_section])
    assert tab.open_regenerate_section()["open"] is True
    assert click["js"] == "clipprobe_submit_regenerate"
    assert click["inputs"] == _ids(
        [
            t.regenerate_task_id,
            t.image,
            t.pruned_prompt,
            t.allow_txt2img,
            t.model,
            t.report_state,
            t.regenerate_seeds,
        ]
    )
    assert click["outputs"] == _ids([t.regenerate_result, t.comparison_gallery, t.comparison_file])
    preflights = [e for e in events if e["fn"] is regenerate_tab.preflight_html]
    assert len(preflights) == 3  # after Analyze (.then), when the checkbox or the seeds change
    for event in preflights:
        assert event["inputs"] == _ids(
            [t.image, t.pruned_prompt, t.allow_txt2img, t.regenerate_seeds]
        )
        assert event["outputs"] == _ids([t.regenerate_preflight])
    targets = [p["targets"][0] for p in preflights if p["targets"]]
    assert (t.allow_txt2img._id, "change") in targets
    assert (t.regenerate_seeds._id, "change") in targets

    # the wired callable, as gradio calls it: the infotext's parameters reach processing
    lock = wui.queue_lock
    assert not lock.locked()
    box, pictures, saved = click["fn"](
        "task(cp-wired)", tiny_world.original, "a red circle, green stripes", False, None
    )
    assert "1.000" in box, box
    assert pictures["visible"] and saved["visible"]
    [_, (regenerated, _)], saved = pictures["value"], saved["value"]
    (call,) = wui.processing_calls
    f = call["fields"]
    assert f["prompt"] == "a red circle, green stripes"
    assert (f["negative_prompt"], f["steps"], f["cfg_scale"], f["seed"]) == (
        "blurry, text",
        20,
        7.0,
        1234567890,
    )
    assert (f["width"], f["height"], f["sampler_name"]) == (96, 96, "DPM++ 2M")
    assert call["lock_held"] and not lock.locked()
    assert regenerated.size == (96, 96) and saved.endswith(".png")
    inpaint = Image.open(io.BytesIO(_png(tiny_world.original, INPAINT)))
    box, *hidden = click["fn"]("task(x)", inpaint, "a cat", False, None)
    assert "img2img" in box and all(h["visible"] is False for h in hidden)


def test_forge_without_a_checkpoint_is_a_clear_message(wui, monkeypatch) -> None:
    """Forge's parse_generation_parameters does ``checkpoint in opts.sd_model_checkpoint``,
    a TypeError when no checkpoint is selected (seen live in Forge)."""
    from clipprobe_ext.webui import host, regenerate_tab

    real = host.parse_generation_parameters

    def forge_like(text):
        params = real(text)
        if "Model" in params:
            params["Model"] in wui.opts.sd_model_checkpoint  # noqa: B015
        return params

    monkeypatch.setattr(host, "parse_generation_parameters", forge_like)
    wui.opts.sd_model_checkpoint = None
    with pytest.raises(ClipProbeError, match="no checkpoint selected"):
        regen.plan_regeneration(BASIC, "a red circle")
    image = Image.open(io.BytesIO(_png(Image.new("RGB", (8, 8)), BASIC)))
    assert "no checkpoint selected" in regenerate_tab.preflight_html(image, "a red circle")


def test_the_plan_is_pure_data_in_data_out() -> None:
    """No WebUI (not even the fake): the WebUI's readings come in as data, the request
    goes out; plan.py imports nothing of the WebUI glue."""
    import ast
    from pathlib import Path

    from clipprobe_ext.webui.regenerate import plan

    source = Path(plan.__file__).read_text(encoding="utf-8")
    imported = [
        node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    ]
    assert not [m for m in imported if m and m.startswith("clipprobe_ext.webui")]
    picture = plan.PictureParameters(
        written={"Steps": "20", "Seed": "5", "Size": "64x32", "ADetailer model": "face"},
        negative_prompt="blurry",
        params={"Steps": "20", "Seed": "5", "Size-1": "64", "Size-2": "32", "CFG scale": "6"},
        samplers=("Euler a", "Automatic", "Use same sampler", "Use same scheduler"),
        overrides={"CLIP_stop_at_last_layers": 2},
        setting_labels=frozenset({"Clip skip"}),
    )
    check = plan.CheckpointCheck("abc", "sd15", "other [def]", "def", "switch", "sd15 [abc]", "x")
    request = plan.plan_request(picture, "a cat", check)
    assert request.params == {
        "batch_size": 1,
        "n_iter": 1,
        "styles": [],
        "cfg_scale": 6.0,
        "width": 64,
        "height": 32,
        "steps": 20,
        "seed": 5,
        "sampler_name": "Euler a",
        "scheduler": "Automatic",
        "enable_hr": False,
        "prompt": "a cat",
        "negative_prompt": "blurry",
    }
    assert request.override_settings == {
        "CLIP_stop_at_last_layers": 2,
        "sd_model_checkpoint": "sd15 [abc]",
    }
    assert request.warnings == ["x"] and request.not_reproduced == ["ADetailer model"]
    assert plan.prompt_to_regenerate(" ", _Report("a cat"), "a cat, a hat") == "a cat"
    with pytest.raises(ClipProbeError, match="no shorter prompt"):
        plan.prompt_to_regenerate(None, _Report("a cat, a hat"), "a cat, a hat")


class _Report:
    def __init__(self, pruned: str) -> None:
        self.pruning = types.SimpleNamespace(pruned_prompt=pruned)
