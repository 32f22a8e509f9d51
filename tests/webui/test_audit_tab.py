"""The tab's "Audit a folder" section through the fake host, on the tiny CLIP."""

from __future__ import annotations

import html
import json
import re

import pytest
from PIL import PngImagePlugin
from trained_clip import picture

from clipprobe_ext.audit.pipeline import AuditOptions, run_audit
from clipprobe_ext.encoders import factory
from clipprobe_ext.webui import audit_tab, session

PROMPTS = [
    "a red circle, masterpiece, best quality",
    "a blue square, masterpiece, 8k",
    "green stripes, best quality",
]


def _png(path, kind, prompt):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"{prompt}\nSteps: 2, Sampler: Euler, Seed: {kind}, Size: 64x64")
    picture(kind, seed=kind, size=64).save(path, pnginfo=info)


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "outputs"
    (root / "txt2img-images" / "2026-11-27").mkdir(parents=True)
    for kind, prompt in enumerate(PROMPTS):
        _png(root / "txt2img-images" / "2026-11-27" / f"0000{kind}.png", kind, prompt)
    (root / "notes.txt").write_text("not a picture")
    return root


def _page(box: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', box)
    assert match, box
    return html.unescape(match.group(1))


def test_default_folder_is_the_webuis_outputs(webui, tmp_path):
    opts = webui.opts
    opts.outdir_samples = ""
    opts.outdir_txt2img_samples = str(tmp_path / "outputs" / "txt2img-images")
    assert audit_tab.default_folder() == str(tmp_path / "outputs")
    opts.outdir_samples = str(tmp_path / "mine")
    assert audit_tab.default_folder() == str(tmp_path / "mine")


def test_audit_lists_the_phrases_of_the_folder(webui, folder, tiny_hf_clip_dir):
    box, files = audit_tab.audit_click("task(audit-1)", str(folder), True, 0, str(tiny_hf_clip_dir))
    assert "clipprobe-error" not in box, box
    page = _page(box)
    assert "data:image/png;base64," in page  # the plots travel inside the page
    for phrase in ("a red circle", "a blue square", "green stripes", "masterpiece", "8k"):
        assert phrase in page
    html_path, json_path = files["value"]
    assert files["visible"] is True
    with open(html_path, encoding="utf-8") as f:
        assert f.read() == page
    with open(json_path, encoding="utf-8") as f:
        data = json.load(f)
    # the same audit run directly on the same files agrees, phrase by phrase
    encoder = factory.load_encoder(str(tiny_hf_clip_dir), "cpu")
    direct = run_audit([folder], encoder, AuditOptions(recursive=True))
    ours = {p["phrase"]: (p["prompts"], p["pictures"], p["seen"]) for p in data["phrases"]}
    theirs = {p.phrase: (p.prompts, p.pictures, p.seen) for p in direct.phrases}
    assert ours == theirs and ours["masterpiece"][:2] == (2, 2)
    # as a job of its own under the lock, with the WebUI's progress bookkeeping
    history = webui.state.history
    assert history[0] == ("begin", "clipprobe-audit") and [h[0] for h in history] == [
        "begin",
        "end",
    ]
    assert [c[:2] for c in webui.progress.calls] == [
        ("add_task_to_queue", "task(audit-1)"),
        ("start_task", "task(audit-1)"),
        ("finish_task", "task(audit-1)"),
    ]


def test_not_recursive_finds_nothing_at_the_top(webui, folder, tiny_hf_clip_dir):
    box, _ = audit_tab.audit_click("", str(folder), False, 0, str(tiny_hf_clip_dir))
    page = _page(box)
    assert "a red circle" not in page


def test_stop_returns_what_was_done(webui, folder, tiny_hf_clip_dir, monkeypatch):
    shown = []

    real = session.Job.show

    def progress(job, message, fraction=None):
        real(job, message, fraction)
        if message.startswith("Audit "):  # not "Loading the CLIP model"
            shown.append(message)
            webui.state.interrupt()  # the user presses Stop after the first file

    monkeypatch.setattr(session.Job, "show", progress)
    box, files = audit_tab.audit_click("", str(folder), True, 0, str(tiny_hf_clip_dir))
    assert "Stopped" in box and files["visible"] is True
    with open(files["value"][1], encoding="utf-8") as f:
        data = json.load(f)
    assert data["interrupted"] is True
    assert shown and shown[0].startswith("Audit ")


def test_stop_button_interrupts_the_webui_job(webui):
    audit_tab.stop_click()
    assert webui.state.interrupted is True


@pytest.mark.parametrize("bad", ["", "   ", "{file}", "{missing}"])
def test_paths_that_are_not_folders_are_refused(webui, folder, monkeypatch, bad):
    def never(*args, **kwargs):
        raise AssertionError("no work for a bad path")

    monkeypatch.setattr(session, "run", never)
    path = bad.format(file=folder / "notes.txt", missing=folder / "nope")
    box, files = audit_tab.audit_click("", path, True, 0, None)
    assert "clipprobe-error" in box and files["visible"] is False
    assert "folder" in box
