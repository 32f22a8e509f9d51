"""The analyses checked against independent computations with the real (tiny) model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clipprobe_ext.analysis.pruning import lazy_greedy_prune, naive_greedy_prune, similarity_floor
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.errors import ClipProbeError, ImageError, PromptError
from clipprobe_ext.probe import ProbeOptions, analyze, parse_synonyms
from clipprobe_ext.prompt import parse_prompt, remove_phrases
from clipprobe_ext.report.data import report_data
from clipprobe_ext.report.reasons import note as note_text

# The phrase list of the original article's second listing.
ARTICLE_TEXTS = [
    "a girl", "a woman", "umbrella", "parasol", "hat", "bikini", "wearing sun glass",
    "smiling", "looking at viewer", "blue eye", "brown eye", "cloud", "tree",
    "Claude Monet", "Minecraft", "ukiyoe", "illustration", "Vincent van Gogh",
]  # fmt: skip


def original_method(model, processor, image, arr_text, rounds=5, threshold=0.01):
    """The article's find_keywords loop, as written: the full model every round."""
    arr_text = list(arr_text)
    out = []
    for _round in range(1, rounds + 1):
        inputs = processor(text=arr_text, images=image, return_tensors="pt", padding=True)
        with torch.no_grad():
            probs = model(**inputs).logits_per_image.softmax(dim=1)
        probs = probs.numpy().flatten()
        reported = [(t, float(p)) for t, p in zip(arr_text, probs) if p > threshold]
        out.append((list(arr_text), probs.tolist(), reported))
        arr_text.remove(arr_text[int(np.argmax(probs))])
    return out


def test_elimination_ranking_equals_the_original_script(hf_encoder: HFClipEncoder, images):
    prompt = ", ".join(ARTICLE_TEXTS)
    report = analyze(images[:1], prompt, hf_encoder, ProbeOptions(contribution=False, prune=False))
    reference = original_method(hf_encoder.model, hf_encoder.processor, images[0], ARTICLE_TEXTS)
    texts = {p.index: p.text for p in report.phrases}
    assert len(report.images[0].ranking.rounds) == 5
    for ours, (cands, probs, reported) in zip(report.images[0].ranking.rounds, reference):
        assert [texts[i] for i in ours.candidates] == cands
        np.testing.assert_allclose(ours.probabilities, probs, atol=1e-5)
        assert [(texts[i], pytest.approx(p, abs=1e-5)) for i, p in ours.above(0.01)] == reported
    # The spread is real: not every probability is the same.
    assert np.ptp(report.images[0].ranking.rounds[0].probabilities) > 1e-3


def test_synonym_groups_rank_within_the_group(hf_encoder: HFClipEncoder, images):
    groups = parse_synonyms("girl | woman; umbrella|parasol|sunshade\n")
    assert groups == [["girl", "woman"], ["umbrella", "parasol", "sunshade"]]
    report = analyze(images[:1], "a girl, umbrella", hf_encoder, ProbeOptions(synonyms=groups))
    for group, result in zip(groups, report.images[0].synonyms):
        inputs = hf_encoder.processor(
            text=group, images=images[0], return_tensors="pt", padding=True
        )
        with torch.no_grad():
            probs = hf_encoder.model(**inputs).logits_per_image.softmax(dim=1)[0].numpy()
        np.testing.assert_allclose(result.probabilities, probs, atol=1e-5)
        assert result.texts == group


def _independent_similarity(encoder_dir, image, text: str) -> float:
    """Cosine similarity from a fresh model and processor, nothing of ClipProbe's."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(encoder_dir)
    processor = CLIPProcessor.from_pretrained(encoder_dir)
    with torch.no_grad():
        t = model.get_text_features(**processor(text=[text], return_tensors="pt"))
        i = model.get_image_features(**processor(images=image, return_tensors="pt"))
    return float(torch.nn.functional.cosine_similarity(t, i).item())


def test_contribution_is_the_leave_one_out_drop(hf_encoder, tiny_hf_clip_dir, images):
    prompt = "(masterpiece:1.2), a girl, <lora:styleA:0.8>, umbrella, [cloud], tree"
    report = analyze(images[:1], prompt, hf_encoder, ProbeOptions(prune=False))
    contribution = report.images[0].contribution
    texts = [p.text for p in report.phrases if p.measurable]
    assert texts == ["masterpiece", "a girl", "umbrella", "cloud", "tree"]
    full = _independent_similarity(tiny_hf_clip_dir, images[0], ", ".join(texts))
    assert contribution.full_similarity == pytest.approx(full, abs=1e-5)
    lora = next(p for p in report.phrases if not p.measurable)
    assert contribution.contributions[lora.index] is None
    for phrase in report.measurable:
        rest = ", ".join(t for t in texts if t != phrase.text)
        without = _independent_similarity(tiny_hf_clip_dir, images[0], rest)
        assert contribution.contributions[phrase.index] == pytest.approx(full - without, abs=1e-5)


def test_pruned_prompt_keeps_the_similarity_and_the_users_text(
    hf_encoder, tiny_hf_clip_dir, images
):
    prompt = "a girl, (umbrella:1.3), hat,\nbikini BREAK smiling, cloud, tree, <lora:x:1>"
    report = analyze(images[:2], prompt, hf_encoder, ProbeOptions(tolerance=0.05))
    pruning = report.pruning
    assert pruning is not None and pruning.steps, "random weights leave room to prune"
    floor = similarity_floor(pruning.original_similarity, 0.05)
    assert all(step.similarity >= floor for step in pruning.steps)
    parsed = parse_prompt(prompt)
    assert pruning.pruned_prompt == remove_phrases(prompt, parsed, pruning.removed)
    kept = [p for p in parsed.phrases if p.measurable and p.index not in pruning.removed]
    # BREAK stays between kept text; with nothing kept on one side it goes
    both_sides = {p.index < 4 for p in kept} == {True, False}
    assert "<lora:x:1>" in pruning.pruned_prompt
    assert ("BREAK" in pruning.pruned_prompt) == both_sides
    # The reported final similarity is a real measurement of what is left (one chunk here:
    # the kept phrases joined by ", " per BREAK segment, chunk embeddings averaged).
    segments = [
        ", ".join(p.text for p in kept if p.index < 4),
        ", ".join(p.text for p in kept if p.index >= 4),
    ]
    segments = [s for s in segments if s]
    fresh = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu")
    chunk_embs, _ = fresh.encode_texts(segments)
    text = chunk_embs.mean(0)
    text = text / text.norm()
    sims = fresh.encode_images(images[:2]) @ text
    assert pruning.final_similarity == pytest.approx(float(sims.mean()), abs=1e-5)


def test_batch_verdicts_aggregate_over_images(hf_encoder: HFClipEncoder, images):
    report = analyze(images, "a girl, umbrella, hat, cloud", hf_encoder)
    assert len(report.images) == 3
    for verdict in report.verdicts:
        best = [a.ranking.max_probability(verdict.index) for a in report.images]
        contribs = [a.contribution.contributions[verdict.index] for a in report.images]
        assert verdict.max_probability == pytest.approx(np.mean(best))
        assert verdict.max_probability_std == pytest.approx(np.std(best))
        assert verdict.contribution == pytest.approx(np.mean(contribs))
        assert verdict.verdict in ("keep", "weak", "prune")
        assert verdict.pruned == (verdict.index in report.pruning.removed)
    json.dumps(report_data(report), allow_nan=False)  # plain numbers all the way down


def test_long_prompt_is_chunked_and_said(hf_encoder: HFClipEncoder, images):
    prompt = ", ".join(f"detail{i} word{i}" for i in range(40))
    report = analyze(images[:1], prompt, hf_encoder, ProbeOptions(prune=False))
    [long] = [n for n in report.notes if n.code == "long_prompt"]
    assert long.limit == 75 and long.count >= 2
    assert "longer than 75 CLIP tokens" in note_text(long)
    # Phrases past token 75 still count: each has a real contribution.
    assert all(
        report.images[0].contribution.contributions[p.index] is not None for p in report.measurable
    )


def test_second_image_with_the_same_prompt_encodes_no_text(hf_encoder, images):
    prompt = "a girl, umbrella, hat, bikini, cloud"
    analyze(images[:1], prompt, hf_encoder)
    forwards = hf_encoder.stats.text_forwards
    analyze(images[1:2], prompt, hf_encoder, ProbeOptions(prune=False))
    assert hf_encoder.stats.text_forwards == forwards
    assert hf_encoder.stats.image_forwards == 2


@pytest.mark.parametrize(
    ("prompt", "error", "message"),
    [
        ("", PromptError, "empty"),
        ("  ,, \n", PromptError, "empty"),
        ("<lora:a:1>, <hypernet:b:0.5>", PromptError, "extra-network"),
    ],
)
def test_bad_prompts_are_clear_errors(hf_encoder, images, prompt, error, message):
    with pytest.raises(error, match=message):
        analyze(images[:1], prompt, hf_encoder)


def test_bad_options_and_missing_images(hf_encoder, images):
    with pytest.raises(ImageError):
        analyze([], "a girl", hf_encoder)
    with pytest.raises(ClipProbeError, match="Rounds"):
        analyze(images[:1], "a girl", hf_encoder, ProbeOptions(rounds=0))
    with pytest.raises(PromptError, match="two alternatives"):
        analyze(images[:1], "a girl", hf_encoder, ProbeOptions(synonyms=[["girl"]]))


def coverage_oracle(weights: np.ndarray):
    """A similarity that never rises when a phrase is removed (monotone, submodular)."""

    def oracle(variants):
        return np.array([1 - np.prod([1 - weights[i] for i in v]) for v in variants])

    return oracle


@pytest.mark.parametrize("n", [20, 60])
def test_lazy_greedy_equals_naive_greedy_with_fewer_measurements(n: int):
    rng = np.random.default_rng(n)
    weights = rng.uniform(0.0, 0.08, size=n) ** 2
    oracle = coverage_oracle(weights)
    phrases = list(range(n))
    everything = frozenset(phrases)
    original = float(oracle([everything])[0])
    loo = oracle([everything - {i} for i in phrases])
    lazy = lazy_greedy_prune(phrases, original, loo, oracle, tolerance=0.02)
    naive = naive_greedy_prune(phrases, original, oracle, tolerance=0.02)
    assert lazy.steps == naive.steps and len(lazy.steps) > 1
    assert lazy.evaluations < naive.evaluations / 3


@pytest.mark.parametrize("seed", range(5))
def test_speculative_batches_take_the_same_steps_as_one_at_a_time(seed: int):
    """Any oracle, monotone or not: speculation changes the cost, never the result."""
    rng = np.random.default_rng(seed)
    n = 30
    weights = rng.normal(0, 0.02, size=n)
    pairs = rng.normal(0, 0.01, size=(n, n))

    def oracle(variants):
        out = []
        for v in variants:
            idx = sorted(v)
            out.append(0.3 + weights[idx].sum() + pairs[np.ix_(idx, idx)].sum() / n)
        return np.array(out)

    phrases = list(range(n))
    everything = frozenset(phrases)
    original = float(oracle([everything])[0])
    loo = oracle([everything - {i} for i in phrases])
    one = lazy_greedy_prune(phrases, original, loo, oracle, tolerance=0.05, speculate=1)
    many = lazy_greedy_prune(phrases, original, loo, oracle, tolerance=0.05, speculate=8)
    assert many.steps == one.steps and len(one.steps) > 2
    assert many.calls < one.calls
