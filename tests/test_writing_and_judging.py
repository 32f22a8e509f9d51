"""The writing effect in the audit's outputs, and phrases CLIP cannot judge (never pruned).

The audit's writing effect of each phrase is checked against cosines from a fresh
transformers ``CLIPModel`` (nothing of ClipProbe's) and a pair-by-pair AUROC.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_audit import save_png
from test_writing_effect import pairwise_auroc
from trained_clip import CAPTIONS, picture

from clipprobe_ext.analysis.calibration import NOT_SEEN
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.audit.aggregate import normalise
from clipprobe_ext.audit.pipeline import AuditOptions, run_audit
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report import audit as audit_report
from clipprobe_ext.report.audit_page import render_html
from clipprobe_ext.report.data import report_data, to_csv
from clipprobe_ext.report.fragments import render_prompt
from clipprobe_ext.report.summary import summary_text
from clipprobe_ext.report.text import format_table

COUNT = "two red circles"
POSITION = "a square on the left of a circle"


@pytest.fixture(autouse=True)
def _fresh_banks():
    forget_banks()
    yield
    forget_banks()


def prompt_of(n: int) -> str:
    """Every prompt: its shape and "a photo"; circles and squares "masterpiece, best
    quality" together; stripes an absent yellow triangle; every third picture the claims."""
    kind = n % 4
    phrases = ["a photo", CAPTIONS[kind]]
    if kind in (0, 1):
        phrases += ["masterpiece", "best quality"]
    if kind == 2:
        phrases.append(CAPTIONS[3])
    if n % 3 == 0:
        phrases += [COUNT, POSITION]
    return ", ".join(phrases)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("writing")
    for n in range(24):
        save_png(out / f"{n:03}.png", picture(n % 4, seed=300 + n), prompt_of(n))
    return out


@pytest.fixture(scope="module")
def audited(folder, trained_clip_dir, tmp_path_factory):
    forget_banks()
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    cache = str(tmp_path_factory.mktemp("store") / "store.sqlite3")
    return run_audit([folder], encoder, AuditOptions(cache=cache))


def independent_cosines(model_dir, paths, phrases) -> np.ndarray:
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir)
    processor = CLIPProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        text = model.get_text_features(**processor(text=phrases, return_tensors="pt", padding=True))
        images = [Image.open(p).convert("RGB") for p in paths]
        pics = model.get_image_features(**processor(images=images, return_tensors="pt"))
    text = text / text.norm(dim=-1, keepdim=True)
    pics = pics / pics.norm(dim=-1, keepdim=True)
    return (pics @ text.T).double().numpy()


def test_the_writing_effect_equals_an_independent_computation(audited, folder, trained_clip_dir):
    paths = sorted(folder.glob("*.png"))
    phrases = [p.phrase for p in audited.phrases]
    cosines = independent_cosines(trained_clip_dir, paths, phrases)
    prompts = [{normalise(t) for t in prompt_of(int(p.stem)).split(", ")} for p in paths]
    for k, phrase in enumerate(phrases):
        asked = np.array([phrase in s for s in prompts])
        got = audited.phrase(phrase)
        assert (got.written_in, got.not_written_in) == (asked.sum(), (~asked).sum())
        if asked.all():
            assert got.writing_auroc is None and got.writing_note == "everywhere"
            continue
        want = pairwise_auroc(cosines[asked, k], cosines[~asked, k])
        assert got.writing_auroc == pytest.approx(want, abs=1e-9)
    # what writing the drawn shape does, and what writing a word the model never learnt does
    assert audited.phrase("a red circle").writing_auroc > 0.9
    masterpiece = audited.phrase("masterpiece")
    assert masterpiece.writing_note == "confounded"
    assert masterpiece.written_with == ["best quality"]
    assert audited.phrase("best quality").written_with == ["masterpiece"]
    assert audited.phrase("a red circle").written_with == []
    assert audited.writing_pictures == 24


def test_the_writing_effect_in_every_output(audited):
    table = audit_report.format_table(audited)
    lines = table.split("Phrases (most frequent first")[1].splitlines()
    header = next(line for line in lines if "writing" in line.split())
    column = header.split().index("writing") - len(header.split())  # counted from the end

    def cell(phrase: str) -> str:
        row = next(line for line in lines if line.strip().startswith(phrase + " "))
        verdict_words = (
            len(audited.phrase(phrase).verdict.split("_")) + audited.phrase(phrase).habit
        )
        return row.split()[column - verdict_words + 1]

    assert cell("a photo") == "all"  # in every prompt: nothing to compare with
    circle = audited.phrase("a red circle")
    assert cell("a red circle") == f"{circle.writing_auroc:.2f}"
    assert cell("masterpiece") == f"{audited.phrase('masterpiece').writing_auroc:.2f}*"
    together = next(line for line in lines if line.strip().startswith("Written together:"))
    assert "best quality + masterpiece" in together.split(": ", 1)[1].split("; ")
    data = json.loads(audit_report.to_json(audited))
    found = next(p for p in data["phrases"] if p["phrase"] == "masterpiece")
    assert found["written_with"] == ["best quality"] and found["writing_note"] == "confounded"
    rows = {r["phrase"]: r for r in csv.DictReader(io.StringIO(audit_report.to_csv(audited)))}
    assert float(rows["a red circle"]["writing_auroc"]) == circle.writing_auroc
    assert rows["masterpiece"]["written_with"] == "best quality"
    assert (
        rows["a photo"]["writing_note"] == "everywhere" and rows["a photo"]["writing_auroc"] == ""
    )
    page = render_html(audited)
    assert "Does writing it change what CLIP sees?" in page
    assert page.count("data:image/png;base64,") == 3  # frequency, seen rate, writing effect
    assert "In every prompt, nothing to compare with: a photo" in page


def test_claims_clip_cannot_judge_are_never_habit_words(audited):
    for text, kind in ((COUNT, "count"), (POSITION, "position")):
        p = audited.phrase(text)
        assert p.verdict == "cannot_judge" and not p.habit and p.cannot_judge == kind
        assert p.seen is not None  # its numbers stay
    # frequent enough to be one: in half the prompts, and rarely if ever seen
    p = audited.phrase(COUNT)
    assert p.prompts >= 0.2 * audited.prompts and p.seen_rate < 0.25
    assert COUNT not in audited.habit_words
    page = render_html(audited)
    assert "CLIP cannot judge a number of things (&#x27;two&#x27;)" in page
    table = audit_report.format_table(audited)
    assert "CLIP cannot judge a position ('on the left of')" in table


def test_claims_clip_cannot_judge_are_never_pruned(trained_clip_dir):
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    prompt = f"a red circle, {COUNT.replace('red circles', 'blue squares')}, {POSITION}, no stripes"
    report = analyze(
        [picture(0, seed=4242)], prompt, encoder, ProbeOptions(rounds=2, tolerance=0.2)
    )
    verdicts = {v.text: v for v in report.verdicts}
    claims = ["two blue squares", POSITION, "no stripes"]
    for text in claims:
        v = verdicts[text]
        assert v.verdict == "cannot_judge" and not v.pruned and v.presence is not None
    # without the rule they would be pruning candidates: not seen by their presence
    assert any(verdicts[t].presence < NOT_SEEN for t in claims)
    texts = {p.index: p.text for p in report.phrases}
    assert not {texts[i] for i in report.pruning.removed} & set(claims)
    table = " ".join(format_table(report).split())
    assert (
        "CLIP cannot judge a position ('on the left of'): it reads a caption as a bag of words"
        in table
    )
    data = report_data(report)
    row = next(v for v in data["verdicts"] if v["text"] == "no stripes")
    assert row["verdict"] == "cannot_judge"
    assert (row["why"]["code"], row["why"]["kind"], row["why"]["cue"]) == (
        "cannot_judge",
        "negation",
        "no",
    )
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert {r["verdict"] for r in rows if r["text"] in claims} == {"cannot_judge"}
    assert render_prompt(report).count('class="cp-phrase cp-cannot_judge"') == len(claims) + 1
    assert "3 cannot judge (two blue squares" in summary_text(report)
