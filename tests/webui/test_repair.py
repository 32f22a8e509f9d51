"""Bring a phrase in, and confirm a regeneration over several seeds, through the fake
WebUI's processing path: the stand-in generator (``stand_in_generator``) draws what the
prompt's weights say, with the seed the processing gets, so every picture is known."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from presence_formula import mapped
from stand_in_generator import drawn, fit_stand_in_model, stand_in
from test_presence import _independent_presence
from test_regenerate import BASIC, _png, wui  # noqa: F401  (wui: the fixture)

from clipprobe_ext.analysis.calibration import SEEN
from clipprobe_ext.webui import api, bring_in_tab, regenerate_tab, session, settings
from clipprobe_ext.webui.regenerate.plan import estimated_seconds

SEED = 4
PROMPT = "masterpiece, a blue square, best quality"  # the square needs weight 1.3
TEXT = (
    BASIC.replace("masterpiece, a red circle, best quality, green stripes", PROMPT)
    .replace("Size: 512x768", "Size: 96x96")
    .replace("Seed: 1234567890", f"Seed: {SEED}")
)


@pytest.fixture(scope="module")
def model(trained_clip_dir, tmp_path_factory):
    from clipprobe_ext.analysis.references import forget_banks

    yield fit_stand_in_model(trained_clip_dir, tmp_path_factory.mktemp("stand-in") / "m", SEED)
    forget_banks()


@pytest.fixture()
def world(wui, model):  # noqa: F811
    folder, fit = model
    wui.generate = lambda p: stand_in(p.prompt, p.seed, size=p.width)
    wui.opts.data[settings.KEY_MODEL] = str(folder)
    original = Image.open(io.BytesIO(_png(stand_in(PROMPT, SEED), TEXT)))
    report, _ = session.analyze([original], PROMPT, settings.probe_options(), str(folder))
    return wui, original, report, folder, fit


def test_the_picker_lists_prune_and_weak_first_and_the_count_before_the_click(world) -> None:
    fake, original, report, *_ = world
    verdicts = {v.text: v.verdict for v in report.verdicts}
    assert verdicts["a blue square"] in ("prune", "weak")  # not seen in the grey original
    choices = bring_in_tab.phrase_choices(report)
    order = {"prune": 0, "weak": 1, "keep": 2, "cannot_judge": 3}
    assert [order[verdicts[c]] for c in choices] == sorted(order[verdicts[c]] for c in choices)
    box = bring_in_tab.preflight_html(original, ["a blue square"], report)
    assert "6 generations, about 1 s" in box, box  # 3 weights, front, BREAK, a rival weakened
    assert "seed 4" in box and fake.processing_calls == []  # nothing generated before the click
    assert bring_in_tab.NO_REPORT in bring_in_tab.preflight_html(original, ["x"], None)
    assert bring_in_tab.NO_PHRASES in bring_in_tab.preflight_html(original, [], report)
    assert "not a measurable phrase" in bring_in_tab.preflight_html(original, ["a cat"], report)


def test_the_estimate_is_steps_times_area(wui) -> None:  # noqa: F811
    from clipprobe_ext.webui import regenerate

    plan = regenerate.plan_regeneration(BASIC, "a red circle")  # 20 steps at 512x768
    assert estimated_seconds(plan, 7) == pytest.approx(7 * 20 * 1.5 * 0.1)
    hires = BASIC.replace("Version", "Denoising strength: 0.5, Hires upscale: 2, Version")
    plan = regenerate.plan_regeneration(hires, "a red circle")  # + 20 steps at 1024x1536
    assert estimated_seconds(plan, 1) == pytest.approx(20 * 1.5 * 0.1 + 20 * 6 * 0.1)


def test_the_tab_click_generates_each_variant_with_the_pictures_settings(world) -> None:
    fake, original, report, *_ = world
    box, pictures, best = bring_in_tab.bring_in_click(
        "task(cp-bring)", original, ["a blue square"], False, None, report
    )
    assert "clipprobe-error" not in box, box
    assert best == "masterpiece, (a blue square:1.4), best quality"
    prompts = [call["fields"]["prompt"] for call in fake.processing_calls]
    assert len(prompts) == 6 and prompts[1] == best
    for call in fake.processing_calls:  # the picture's own seed and settings, under the lock
        f = call["fields"]
        assert (f["seed"], f["steps"], f["width"], f["negative_prompt"]) == (
            4,
            20,
            96,
            "blurry, text",
        )
        assert call["lock_held"]
    assert [c[:2] for c in fake.progress.calls] == [
        ("add_task_to_queue", "task(cp-bring)"),
        ("start_task", "task(cp-bring)"),
        ("finish_task", "task(cp-bring)"),
    ]
    (first, caption), *variants = pictures
    assert caption == "original" and len(variants) == 6
    assert variants[1][1] == "best: 2. weight 1.4"
    assert variants[1][0].info["parameters"].startswith(best)  # "Send to" works on it
    assert re.search(r'<tr class="cp-best"><th>2\. weight 1\.4</th>', box)
    assert best not in fake.opts.data.values()  # nothing was sent anywhere


def test_interrupt_shows_what_was_done(world) -> None:
    fake, original, report, *_ = world

    def interrupted_during_the_second(p):
        if len(fake.processing_calls) == 2:
            fake.state.interrupt()
        return stand_in(p.prompt, p.seed, size=p.width)

    fake.generate = interrupted_during_the_second
    box, pictures, best = bring_in_tab.bring_in_click(
        "task(x)", original, ["a blue square"], False, None, report
    )
    assert "Interrupted: 1 of 6 variants done" in box
    assert len(pictures) == 2 and best == ""  # weight 1.2 does not bring it in


def test_api_route_answers_each_variant(world) -> None:
    fake, original, _, folder, fit = world
    app = FastAPI()
    api.on_app_started(None, app)
    client = TestClient(app)
    body = {"image": base64.b64encode(_png(stand_in(PROMPT, SEED), TEXT)).decode()}
    response = client.post("/clipprobe/v1/bring-in", json=dict(body, phrases=["a blue square"]))
    assert response.status_code == 200, response.text
    data = response.json()
    assert [v["label"] for v in data["variants"]][:3] == ["weight 1.2", "weight 1.4", "weight 1.6"]
    assert data["best"] == 1 and data["best_prompt"] == data["variants"][1]["prompt"]
    for variant in data["variants"]:
        picture = Image.open(io.BytesIO(base64.b64decode(variant["image"])))
        assert np.array_equal(np.asarray(picture), np.asarray(stand_in(variant["prompt"], SEED)))
        assert variant["wanted_seen"] == (drawn(variant["prompt"]) == "a blue square")
    square = next(p for p in data["variants"][1]["phrases"] if p["text"] == "a blue square")
    z, _ = _independent_presence(
        folder, stand_in(data["best_prompt"], SEED), ["a blue square"], raw_z=True
    )
    assert square["presence"] == pytest.approx(
        float(mapped(z[0], fit.not_seen_z, fit.seen_z)), abs=1e-4
    )
    bad = client.post("/clipprobe/v1/bring-in", json=dict(body, phrases=["a cat"]))
    assert bad.status_code == 400 and "not a measurable phrase" in bad.json()["detail"]
    assert client.post("/clipprobe/v1/bring-in", json=dict(body, phrases=[])).status_code == 422
    fake.cmd_opts.api_auth = "user:secret"
    guarded = FastAPI()
    api.on_app_started(None, guarded)
    denied = TestClient(guarded).post("/clipprobe/v1/bring-in", json=dict(body, phrases=["x"]))
    assert denied.status_code == 401


def _expected_over_seeds(folder, fit, texts, before_prompt, after_prompt, seeds):
    """Presence from a fresh model on the stand-in's pictures, and the paired statistics
    by hand."""
    out = {}
    for prompt, key in ((before_prompt, "before"), (after_prompt, "after")):
        rows = []
        for s in seeds:
            z, _ = _independent_presence(folder, stand_in(prompt, s), texts, raw_z=True)
            rows.append(mapped(z, fit.not_seen_z, fit.seen_z))
        out[key] = np.array(rows)
    diff = out["after"] - out["before"]
    return out, diff


def test_regeneration_over_seeds_equals_an_independent_computation(world) -> None:
    fake, _, _, folder, fit = world
    prompt = "a red circle, green stripes"
    text = TEXT.replace(PROMPT, prompt)
    original = Image.open(io.BytesIO(_png(stand_in(prompt, SEED), text)))
    candidate = "a red circle, (green stripes:1.2)"  # the stripes drawn instead of the circle
    app = FastAPI()
    api.on_app_started(None, app)
    client = TestClient(app)
    body = {"image": base64.b64encode(_png(stand_in(prompt, SEED), text)).decode(), "seeds": 3}
    data = client.post("/clipprobe/v1/regenerate", json=dict(body, prompt=candidate)).json()
    assert data["seeds"]["seeds"] == [SEED, SEED + 1, SEED + 2]
    seeds_called = [(c["fields"]["prompt"], c["fields"]["seed"]) for c in fake.processing_calls]
    assert sorted(seeds_called) == sorted(
        [(candidate, SEED + k) for k in range(3)] + [(prompt, SEED + k) for k in range(3)]
    )
    texts = [p["phrase"] for p in data["seeds"]["phrases"]]
    assert texts == ["a red circle", "green stripes"]
    presence, diff = _expected_over_seeds(
        folder, fit, texts, prompt, candidate, range(SEED, SEED + 3)
    )
    for k, row in enumerate(data["seeds"]["phrases"]):
        assert row["mean_difference"] == pytest.approx(diff[:, k].mean(), abs=1e-4)
        assert row["spread"] == pytest.approx(diff[:, k].std(ddof=1), abs=1e-4)
        seen_before = presence["before"][:, k] >= SEEN
        assert row["seen_before"] == seen_before.sum()
        assert row["kept"] == (seen_before & (presence["after"][:, k] >= SEEN)).sum()
    # the stand-in draws the circle (first, tied at 1.0) for the original prompt and the
    # stripes for the candidate: the circle lost on all three seeds, the stripes gained
    assert (drawn(prompt), drawn(candidate)) == ("a red circle", "green stripes")
    circle, stripes = data["seeds"]["phrases"]
    assert circle["seen_before"] == 3 and circle["kept"] == 0 and stripes["gained"] == 3
    assert circle["mean_difference"] < -0.5 < 0.5 < stripes["mean_difference"]

    # the tab: the same numbers in its table, and the count before the click
    fake.processing_calls.clear()
    box, _, _ = regenerate_tab.regenerate_click(
        "task(s)", original, candidate, False, None, None, 3
    )
    assert "Over 3 seeds (4, 5, 6)" in box
    for k, phrase in enumerate(texts):
        mean = f"{diff[:, k].mean():+.2f}".replace("+0.00", "0.00").replace("-0.00", "0.00")
        assert re.search(rf"<td>{phrase}</td><td[^>]*>{re.escape(mean)} ± ", box), (phrase, box)
    assert len(fake.processing_calls) == 6
    preflight = regenerate_tab.preflight_html(original, candidate, False, 3)
    assert "6 generations" in preflight and "over 3 seeds" in preflight
    assert "between 1 and 8" in regenerate_tab.preflight_html(original, candidate, False, 9).lower()
    too_many = client.post("/clipprobe/v1/regenerate", json=dict(body, prompt=candidate, seeds=9))
    assert too_many.status_code == 422
