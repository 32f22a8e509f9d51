"""JSON, CSV and table rendering of a real analysis by a (tiny, random) CLIP.

The numbers are checked against an independent computation: the transformers
``CLIPModel`` forward pass (``logits_per_image``), softmaxed and eliminated in numpy.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re

import numpy as np
import pytest
import torch

from clipprobe_ext.analysis.pruning import similarity_floor
from clipprobe_ext.probe import ProbeOptions, analyze, parse_synonyms
from clipprobe_ext.report import fragments as render
from clipprobe_ext.report.data import csv_columns, report_data, to_csv, to_json
from clipprobe_ext.report.numbers import percent
from clipprobe_ext.report.reasons import pruning_outcome
from clipprobe_ext.report.text import format_table
from clipprobe_ext.results import (
    ContributionResult,
    ImageAnalysis,
    PhraseInfo,
    PhraseVerdict,
    ProbeReport,
    PruneResult,
    PruneStep,
    RankingResult,
    RankingRound,
    VerdictReason,
)

PROMPT = "a red umbrella, a girl, (rain:1.2), city street at night, neon lights"
TEXTS = ["a red umbrella", "a girl", "rain", "city street at night", "neon lights"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clip_logits(model_dir, images, texts, written_out: bool = False) -> np.ndarray:
    """``logit_scale * cos(image, text)`` from transformers' own CLIP forward, [images, texts].

    ``written_out``: pixels from ``clip_pixels`` instead of the processor (which misreads
    images 1-3 pixels high)."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(model_dir))
    if written_out:
        inputs = processor(text=list(texts), return_tensors="pt", padding=True)
        pixels = [clip_pixels(im, processor.image_processor) for im in images]
        inputs["pixel_values"] = torch.stack(pixels)
    else:
        inputs = processor(text=list(texts), images=list(images), return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**inputs).logits_per_image.double().numpy()


def clip_pixels(image, processor) -> torch.Tensor:
    """CLIP's preprocessing written out (short side to the crop size, bicubic; centre
    crop; scale and normalise) with PIL and numpy: channels are never guessed."""
    from PIL import Image

    size = processor.size["shortest_edge"]
    crop = processor.crop_size["height"]
    w, h = image.size
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    arr = np.asarray(image.convert("RGB").resize(new, Image.BICUBIC), dtype=np.float32)
    top, left = (arr.shape[0] - crop) // 2, (arr.shape[1] - crop) // 2
    arr = arr[top : top + crop, left : left + crop] / 255.0
    arr = (arr - np.array(processor.image_mean)) / np.array(processor.image_std)
    return torch.tensor(arr.transpose(2, 0, 1), dtype=torch.float32)


def elimination(logits: np.ndarray, rounds: int) -> list[dict[int, float]]:
    """The method, written out: softmax, drop the top, repeat; {phrase: probability}."""
    remaining = list(range(len(logits)))
    out = []
    for _ in range(min(rounds, len(logits))):
        z = logits[remaining]
        p = np.exp(z - z.max())
        p /= p.sum()
        out.append(dict(zip(remaining, p.tolist())))
        del remaining[int(np.argmax(p))]
    return out


@pytest.fixture()
def report(hf_encoder, images) -> ProbeReport:
    options = ProbeOptions(rounds=4, synonyms=parse_synonyms("girl | woman; umbrella | parasol"))
    return analyze(images[:2], PROMPT, hf_encoder, options, labels=["a.png", "b.png"])


def test_json_has_every_round_probability_as_computed_by_clip(report, images, tiny_hf_clip_dir):
    data = json.loads(to_json(report))
    texts = [p["text"] for p in data["phrases"]]
    assert texts == TEXTS
    logits = clip_logits(tiny_hf_clip_dir, images[:2], TEXTS)
    for m, image in enumerate(data["images"]):
        expected = elimination(logits[m], 4)
        assert [r["round"] for r in image["ranking"]["rounds"]] == [1, 2, 3, 4]
        for r, want in zip(image["ranking"]["rounds"], expected):
            assert r["candidates"] == sorted(want)
            got = dict(zip(r["candidates"], r["probabilities"]))
            for i, p in want.items():
                assert isinstance(got[i], float)
                assert got[i] == pytest.approx(p, abs=2e-5)
            assert r["top"] == max(want, key=want.get)


def test_json_pruning_and_options_round_trip(report):
    data = json.loads(to_json(report, indent=None))
    assert data["model_id"] == report.model_id
    assert data["options"]["rounds"] == 4
    assert data["pruning"]["removed"] == report.pruning.removed
    assert data["pruning"]["pruned_prompt"] == report.pruning.pruned_prompt
    assert len(data["verdicts"]) == len(TEXTS)
    # several reports: one array
    both = json.loads(to_json([report, report]))
    assert isinstance(both, list) and len(both) == 2


def _tiny_report(value: float) -> ProbeReport:
    phrases = [PhraseInfo(0, "cat", 1.0, 0, 3), PhraseInfo(1, "<lora:x:1>", 1.0, 5, 15, False)]
    ranking = RankingResult(0.01, [RankingRound(1, [0], [value], 0)])
    contribution = ContributionResult(value, [value, None], [value, None])
    verdict = PhraseVerdict(
        0, "cat", "keep", value, value, value, value, False, VerdictReason("uncalibrated")
    )
    return ProbeReport(
        model_id="m",
        prompt="cat, <lora:x:1>",
        phrases=phrases,
        images=[ImageAnalysis("x.png", ranking, [], contribution)],
        verdicts=[verdict],
        pruning=PruneResult(value, 0.01, [PruneStep(0, value)], "", 3),
        options=ProbeOptions(rounds=1, threshold=0.01, tolerance=0.01),
        notes=[],
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_become_null(bad):
    rep = _tiny_report(bad)

    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    data = json.loads(to_json(rep), parse_constant=refuse)
    assert data["images"][0]["ranking"]["rounds"][0]["probabilities"] == [None]
    assert data["verdicts"][0]["contribution"] is None
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert rows[0]["round_1"] == "" and rows[0]["contribution"] == ""
    text = format_table(rep)
    assert "nan" not in text.lower() and "inf" not in text.lower()
    page = html.unescape(render.render_report(rep))  # printed "nan%" before
    assert "nan" not in page.lower() and "inf" not in page.lower()
    assert "–" in page and "–" in text


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_to_dict_itself_is_clean(bad):
    """The API returns ``report_data()`` as it is: before, a NaN there was a 500."""
    data = report_data(_tiny_report(bad))
    json.dumps(data, allow_nan=False)  # raises on NaN / inf
    assert data["pruning"]["original_similarity"] is None
    assert data["pruning"]["final_similarity"] is None
    assert data["images"][0]["contribution"]["full_similarity"] is None


def test_text_and_html_show_the_same_numbers(report):
    """One view model: each probability reads the same in the table and the HTML."""
    text = format_table(report)
    page = html.unescape(render.render_report(report))
    for analysis in report.images:
        for r in analysis.ranking.rounds:
            for _, p in r.above(report.options.threshold):
                assert percent(p) in text and percent(p) in page
        for group in analysis.synonyms:
            for p in group.probabilities:
                assert percent(p) in text and percent(p) in page
    tiny = [p for a in report.images for g in a.synonyms for p in g.probabilities if p < 0.001]
    if tiny:  # the HTML printed "0.0%" where the table said "<0.1 %"
        assert "<0.1 %" in page and "0.0%" not in page


def _pruned(original: float, final: float | None, tolerance: float = 0.01) -> str:
    steps = [PruneStep(0, final)] if final is not None else []
    return pruning_outcome(PruneResult(original, tolerance, steps, "cat", 3))


def test_pruning_outcome_with_negative_similarity():
    """Before: "-0.0213 -> 0.0965: keeps -453.5 %", "-0.0401 -> -0.0273: keeps 68.0 %"."""
    assert _pruned(-0.0213, 0.0965) == "Similarity -0.0213 → 0.0965: up by 0.1178."
    assert _pruned(-0.0401, -0.0273) == "Similarity -0.0401 → -0.0273: up by 0.0128."
    # the search's rule: at most tolerance x |original| lower (similarity_floor)
    allowed = -0.0366 - similarity_floor(-0.0366, 0.01)
    assert allowed == pytest.approx(0.000366)
    assert _pruned(-0.0366, None) == (
        "Nothing can go: every removal lowers the similarity (-0.0366) by more than the "
        "allowed 0.0004 (1.0 % of its size)."
    )


def test_pruning_outcome_down_within_and_beyond():
    assert _pruned(0.25, 0.248, 0.01) == (
        "Similarity 0.2500 → 0.2480: down by 0.0020, within the allowed loss of 0.0025 "
        "(1.0 % of its size)."
    )
    assert "beyond the allowed loss" in _pruned(0.25, 0.2, 0.01)
    assert "keeps" not in format_table(_tiny_report(0.5))


def test_csv_rows_and_numbers(report):
    text = to_csv(report)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == csv_columns(4)
    n = len(TEXTS)
    assert len(rows) == 2 * n + n
    assert [r["image"] for r in rows] == ["a.png"] * n + ["b.png"] * n + ["mean"] * n
    assert {r["group"] for r in rows} == {"1"}
    removed = set(report.pruning.removed)
    for m, analysis in enumerate(report.images):
        mine = rows[m * n : (m + 1) * n]
        for row, phrase in zip(mine, report.phrases):
            assert int(row["phrase_index"]) == phrase.index
            assert row["text"] == phrase.text
            assert float(row["weight"]) == phrase.weight
            assert PROMPT[int(row["span_start"]) : int(row["span_end"])].strip("()")
            assert row["pruned"] == ("true" if phrase.index in removed else "false")
            for r in analysis.ranking.rounds:
                cell = row[f"round_{r.round}"]
                if phrase.index in r.candidates:
                    want = r.probabilities[r.candidates.index(phrase.index)]
                    assert float(cell) == want  # full precision
                else:
                    assert cell == ""
            c = analysis.contribution
            assert float(row["contribution"]) == c.contributions[phrase.index]
            assert float(row["similarity_without"]) == c.similarity_without[phrase.index]
            assert float(row["max_probability"]) == analysis.ranking.max_probability(phrase.index)
            tops = [r.round for r in analysis.ranking.rounds if r.top == phrase.index]
            assert row["top_round"] == (str(tops[0]) if tops else "")
    verdicts = {v.index: v for v in report.verdicts}
    for row in rows[2 * n :]:
        i = int(row["phrase_index"])
        best = [a.ranking.max_probability(i) for a in report.images]
        assert float(row["max_probability"]) == pytest.approx(np.mean(best))
        assert float(row["max_probability_std"]) == pytest.approx(np.std(best))
        assert float(row["max_probability"]) == pytest.approx(verdicts[i].max_probability)
        contribs = [a.contribution.contributions[i] for a in report.images]
        assert float(row["contribution"]) == pytest.approx(np.mean(contribs))
        assert row["verdict"] == verdicts[i].verdict
        assert row["round_1"] == ""


def test_csv_without_contribution_and_non_measurable_phrase(hf_encoder, images):
    options = ProbeOptions(rounds=2, contribution=False, prune=False)
    rep = analyze(images[:1], "a cat, <lora:style:0.8>, a dog", hf_encoder, options)
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    lora = [r for r in rows if r["text"].startswith("<lora")]
    assert lora and all(r["verdict"] == "" and r["max_probability"] == "" for r in lora)
    assert all(r["contribution"] == "" and r["pruned"] == "false" for r in rows)


def test_table_lists_rounds_verdicts_and_pruned_prompt(report):
    text = format_table(report)
    assert not ANSI.search(text)
    for label in ("a.png", "b.png"):
        assert f"── {label} " in text
    for heading in ("Elimination rounds", "Synonym groups", "In-context contribution"):
        assert text.count(heading) == 2
    assert "Verdicts (mean ± spread over 2 images)" in text
    assert "rain ×1.2" in text
    # round 1 of image 1: every phrase above the threshold, with its probability in %
    r1 = report.images[0].ranking.rounds[0]
    block = text.split("── a.png")[1].split("Synonym groups")[0]
    for i, p in r1.above(0.01):
        assert re.search(rf"\b{i}\s+{re.escape(report.phrases[i].text)}.*\s{100 * p:.1f} %", block)
    # probabilities are right-aligned in one column
    ends = {m.end() for line in block.splitlines()[2:] for m in re.finditer(r"\d+\.\d %", line)}
    assert len(ends) == 1
    for v in report.verdicts:
        assert re.search(rf"\b{v.index}\s+{re.escape(v.text)}[^\n]*\b{v.verdict}\b", text)
    if report.pruning.steps:
        assert report.pruning.pruned_prompt.strip().split(",")[0] in text
        assert "removed:" in text and pruning_outcome(report.pruning)[:40] in text


def test_table_colour_only_when_asked(report):
    coloured = format_table(report, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == format_table(report)


def test_table_single_image_has_no_spread(hf_encoder, images):
    rep = analyze(images[:1], PROMPT, hf_encoder, ProbeOptions(rounds=2))
    text = format_table(rep)
    assert "±" not in text
    assert "Verdicts" in text
    several = format_table([rep, rep])
    assert "Prompt group 1 of 2" in several and "Prompt group 2 of 2" in several
