"""The fit in force and "Calibrate on this folder" through the fake host: the tab's
handlers, the models route and ``POST /clipprobe/v1/calibrate``, on the trained tiny CLIP.

The folder is the trained CLIP's world as WebUI outputs: one shape per picture, prompts
asking for it and sometimes for shapes not drawn, so the counts a fit rests on are known
from the files written, and the fit itself is checked against the engine's own
calibration of the same folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import PngImagePlugin
from trained_clip import picture
from trained_clip import shapes_folder as shapes

from clipprobe_ext.analysis.calibration import (
    CALIBRATION_FILE,
    PresenceCalibration,
    calibration_for,
    save_user_calibration,
    user_calibration_path,
)
from clipprobe_ext.analysis.fit_state import UNCALIBRATED_WORDS
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.audit.calibrate import calibrate_on_folders
from clipprobe_ext.audit.pipeline import AuditOptions
from clipprobe_ext.encoders import factory, known_refs
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.webui import api, audit_tab, fit_view, session, settings

PICTURES = 64  # 16 of each shape; calibration needs 40


def save_png(path: Path, image, prompt: str) -> Path:
    """A picture as the WebUI saves it, its prompt in the ``parameters`` chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"{prompt}\nSteps: 2, Sampler: Euler, Seed: 1, Size: 64x64")
    image.save(path, pnginfo=info)
    return path


@pytest.fixture(autouse=True)
def _fresh_banks():
    forget_banks()
    yield
    forget_banks()


def shapes_folder(folder: Path, count: int = PICTURES, seed: int = 3) -> Path:
    """``count`` pictures with prompts (``trained_clip.shapes_folder``, 64 px)."""
    shapes(folder, count, seed=seed, picture_seed=500, size=64, save=save_png)
    return folder


@pytest.fixture()
def outputs(webui, tmp_path) -> Path:
    """The WebUI's outputs folder, holding a day of txt2img pictures."""
    root = tmp_path / "outputs"
    webui.opts.outdir_samples = ""
    webui.opts.outdir_txt2img_samples = str(root / "txt2img-images")
    shapes_folder(root / "txt2img-images" / "2026-12-03")
    return root


@pytest.fixture()
def model(trained_clip_dir, tmp_path) -> str:
    """The trained tiny CLIP without a fit of its own, as the WebUI's default model."""
    folder = tmp_path / "model"
    shutil.copytree(trained_clip_dir, folder)
    (folder / CALIBRATION_FILE).unlink()
    return str(folder)


@pytest.fixture()
def default_model(webui, model) -> str:
    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = model
    return model


def ref_of(folder: str):
    """The identity the session's job gives the model (CPU, float32)."""
    return HFClipEncoder.from_pretrained(folder, device="cpu").ref


def _state(line: str) -> str:
    match = re.search(r'data-fit="([a-z]+)"', line)
    assert match, line
    return match.group(1)


def _pictures(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.png"))


# -- the fit line ----------------------------------------------------------------------------


def test_a_model_never_used_is_unknown_then_uncalibrated(webui, model):
    line = audit_tab.fit_line(model)
    assert _state(line) == "unknown" and "first used" in line
    # opening the model in a job tells its weights: from then on the state is known
    session.run(lambda job: job.encoder, model=model)
    line = audit_tab.fit_line(model)
    assert _state(line) == "uncalibrated"
    assert UNCALIBRATED_WORDS in line
    # and it survives the process: the identity is kept in the user's cache
    known_refs.forget()
    assert _state(audit_tab.fit_line(model)) == "uncalibrated"


def test_a_folder_with_its_own_fit_is_known_without_loading(
    webui, trained_clip_dir, model, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("nothing is loaded to name a folder's own fit")

    monkeypatch.setattr(factory, "load_encoder", never)
    line = audit_tab.fit_line(str(trained_clip_dir))
    assert _state(line) == "own" and "own fit" in line and "from a file in its folder" in line
    # the dropdown's other model reads differently (the line follows the dropdown)
    assert _state(audit_tab.fit_line(model)) == "unknown"


def test_a_retrained_folder_is_unknown_again(webui, model):
    session.run(lambda job: job.encoder, model=model)
    assert _state(audit_tab.fit_line(model)) == "uncalibrated"
    weights = next(p for p in Path(model).iterdir() if p.suffix in (".bin", ".safetensors"))
    os.utime(weights, ns=(1, 1))  # the files changed: the weights may not be the same
    assert _state(audit_tab.fit_line(model)) == "unknown"


def test_the_fit_lines_follow_the_dropdowns_analyses_and_calibrations(webui):
    import gradio  # noqa: F401  (the tab is built with the real gradio)
    from test_tab import _events

    from clipprobe_ext.webui import tab

    t = tab.create_tab()
    lines = [e for e in _events(t.blocks) if e["fn"] is audit_tab.fit_line]
    main = [e for e in lines if e["outputs"] == [t.fit._id]]
    audit = [e for e in lines if e["outputs"] == [t.audit.fit._id]]
    assert all(e["inputs"] == [t.model._id] for e in main)
    targets = [target for e in main for target in e["targets"]]
    assert (t.model._id, "change") in targets and (t.model._id, "blur") in targets
    assert len(main) == 4  # the dropdown (change, blur), after Analyze, after a calibration
    assert sorted(e["targets"][0][1] for e in audit) == ["blur", "change"]
    assert all(e["targets"][0][0] == t.audit.model._id for e in audit)
    assert all(e["inputs"] == [t.audit.model._id] for e in audit)
    [click] = [e for e in _events(t.blocks) if e["fn"] is audit_tab.calibrate_click]
    assert click["targets"] == [(t.audit.calibrate_button._id, "click")]
    assert click["js"] == "clipprobe_submit_calibrate"
    assert click["outputs"] == [t.audit.calibration._id, t.audit.fit._id]


# -- Calibrate on this folder ---------------------------------------------------------------


def test_calibrate_from_the_tab_fits_saves_and_shows(webui, outputs, default_model):
    box, line = audit_tab.calibrate_click("task(cal-1)", str(outputs), True, 0, default_model)
    assert "clipprobe-error" not in box, box
    assert "Calibration of" in box and 'src="data:image/png;base64,' in box
    today = date.today().isoformat()
    assert _state(line) == "calibrated"
    assert f"calibrated on {_pictures(outputs)} of your pictures, {today}" in line
    # the fit saved is the one the engine fits on the same folder, for the same weights
    ref = ref_of(default_model)
    saved = json.loads(user_calibration_path(ref.fingerprint).read_text())
    assert saved["metadata"]["pictures"] == PICTURES
    direct = calibrate_on_folders(
        [outputs],
        HFClipEncoder.from_pretrained(default_model, device="cpu"),
        AuditOptions(recursive=True),
        save=False,
    )
    assert calibration_for(ref).to_dict() | {"source": ""} == direct.fit.to_dict() | {"source": ""}
    # a WebUI job of its own, under the lock, with the WebUI's progress bookkeeping
    assert webui.state.history[0] == ("begin", "clipprobe-calibrate")
    assert [c[:2] for c in webui.progress.calls] == [
        ("add_task_to_queue", "task(cal-1)"),
        ("start_task", "task(cal-1)"),
        ("finish_task", "task(cal-1)"),
    ]
    # the dropdown's line says the same afterwards
    assert audit_tab.fit_line(default_model) == line


def test_a_refusal_shows_its_message_and_keeps_the_previous_fit(webui, tmp_path, model):
    ref = ref_of(model)
    before = PresenceCalibration(0.5, 1.2, "calibrated on 99 of your pictures, 2026-11-30")
    path = save_user_calibration(ref, before, {"pictures": 99, "date": "2026-11-30"})
    saved = path.read_bytes()
    few = tmp_path / "few"
    few.mkdir()
    for n in range(12):  # too few, and all of one prompt
        save_png(few / f"{n}.png", picture(n % 4, seed=n, size=64), "a red circle")
    box, line = audit_tab.calibrate_click("", str(few), True, 0, model)
    assert "clipprobe-error" in box and "at least 60" in box
    assert audit_tab.UNCHANGED in box
    assert path.read_bytes() == saved
    assert calibration_for(ref).seen_z == 1.2
    assert _state(line) == "calibrated" and "calibrated on 99 of your pictures, 2026-11-30" in line


def test_stop_during_the_calibration_saves_nothing(webui, outputs, model, monkeypatch):
    real = session.Job.show

    def show(job, message, fraction=None):
        real(job, message, fraction)
        if message.startswith("Calibration "):
            webui.state.interrupt()  # the user presses Stop after the first file

    monkeypatch.setattr(session.Job, "show", show)
    box, line = audit_tab.calibrate_click("", str(outputs), True, 0, model)
    assert "clipprobe-error" in box and "stopped" in box
    assert not user_calibration_path(ref_of(model).fingerprint).exists()
    assert _state(line) == "uncalibrated"


@pytest.mark.parametrize("bad", ["", "{file}", "{missing}"])
def test_paths_that_are_not_folders_are_refused_before_any_work(webui, outputs, monkeypatch, bad):
    def never(*args, **kwargs):
        raise AssertionError("no work for a bad path")

    monkeypatch.setattr(session, "run", never)
    notes = outputs / "notes.txt"
    notes.write_text("not a picture")
    path = bad.format(file=notes, missing=outputs / "nope")
    box, _ = audit_tab.calibrate_click("", path, True, 0, None)
    assert "clipprobe-error" in box and "folder" in box


# -- the routes ------------------------------------------------------------------------------


def client_for(webui) -> TestClient:
    app = FastAPI()
    webui.callbacks["app_started"].append(api.on_app_started)
    webui.fire_app_started(None, app)
    return TestClient(app)


def test_models_route_reports_each_models_fit(webui, outputs, default_model):
    client = client_for(webui)
    fits = client.get("/clipprobe/v1/models").json()["fits"]
    assert fits[default_model] == {"fit": None, "why": fit_view.UNKNOWN}
    response = client.post(
        "/clipprobe/v1/calibrate", json={"folders": [webui.opts.outdir_txt2img_samples]}
    )
    assert response.status_code == 200, response.text
    fits = client.get("/clipprobe/v1/models").json()["fits"]
    fit = fits[default_model]["fit"]
    assert fit["state"] == "calibrated" and fit["pictures"] == PICTURES
    assert fit["date"] == date.today().isoformat()
    assert fit["source"] == calibration_for(ref_of(default_model)).source
    # the Interrogate CLIP was never loaded: unknown, and why
    assert fits[fit_view.model_choices.WEBUI_CLIP]["fit"] is None


@pytest.fixture()
def route(webui, outputs, default_model) -> TestClient:
    return client_for(webui)


def test_calibrate_route_answers_the_calibration(route, outputs, default_model):
    response = route.post("/clipprobe/v1/calibrate", json={"folders": [str(outputs)]})
    assert response.status_code == 200, response.text
    body = response.json()
    ref = ref_of(default_model)
    assert body["saved"] == str(user_calibration_path(ref.fingerprint)) and not body["dry_run"]
    assert body["pictures"] == PICTURES and body["previous"] is None
    in_force = calibration_for(ref)
    assert body["fit"] | {"source": ""} == in_force.to_dict() | {"source": ""}
    assert body["fit"]["source"] in in_force.source
    assert body["fit_state"]["state"] == "calibrated"
    assert body["text"].startswith("Calibration of")


def test_a_dry_run_saves_nothing(route, outputs, default_model):
    response = route.post(
        "/clipprobe/v1/calibrate", json={"folders": [str(outputs)], "dry_run": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["saved"] is None
    assert not user_calibration_path(ref_of(default_model).fingerprint).exists()
    assert body["fit_state"]["state"] == "uncalibrated"


def test_a_refusal_is_400_and_keeps_the_previous_fit(route, webui, outputs, default_model):
    ref = ref_of(default_model)
    path = save_user_calibration(ref, PresenceCalibration(0.5, 1.2, "an earlier fit"))
    saved = path.read_bytes()
    few = outputs / "few"
    few.mkdir()
    for n in range(5):
        save_png(few / f"{n}.png", picture(n % 4, seed=n, size=64), "a red circle")
    response = route.post("/clipprobe/v1/calibrate", json={"folders": [str(few)]})
    assert response.status_code == 400
    assert response.json()["error"] == "CalibrationRefused"
    assert path.read_bytes() == saved


@pytest.mark.parametrize(
    "where", ["{outside}", "{outputs}/../elsewhere", "{outputs}/link", "~", "/", "{outputs}/nope"]
)
def test_folders_outside_the_webuis_outputs_are_refused(
    route, outputs, tmp_path, monkeypatch, where
):
    def never(*args, **kwargs):
        raise AssertionError("no work for a refused folder")

    elsewhere = shapes_folder(tmp_path / "elsewhere", count=4)
    (outputs / "link").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setattr(session, "run", never)
    path = where.format(outside=elsewhere, outputs=outputs)
    response = route.post("/clipprobe/v1/calibrate", json={"folders": [str(outputs), path]})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "outside the folders the WebUI saves pictures to" in detail or "not a folder" in detail


def test_unknown_model_and_unknown_fields_are_refused(route, outputs, tmp_path):
    response = route.post(
        "/clipprobe/v1/calibrate", json={"folders": [str(outputs)], "model": str(tmp_path)}
    )
    assert response.status_code == 400 and response.json()["error"] == "ModelError"
    response = route.post("/clipprobe/v1/calibrate", json={"folders": [], "save": True})
    assert response.status_code == 422


def test_the_calibrate_route_needs_the_same_credentials(webui, outputs, default_model):
    webui.cmd_opts.api_auth = "alice:s3cret"
    client = client_for(webui)
    body = {"folders": [str(outputs)], "dry_run": True}
    response = client.post("/clipprobe/v1/calibrate", json=body)
    assert response.status_code == 401
    response = client.post("/clipprobe/v1/calibrate", json=body, auth=("alice", "s3cret"))
    assert response.status_code == 200, response.text
