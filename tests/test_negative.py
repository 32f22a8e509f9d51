"""The negative prompt check on the tiny CLIP trained to tell four pictures apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from trained_clip import CAPTIONS, picture

from clipprobe_ext.analysis.negative import (
    EMBEDDING,
    NOT_SUPPRESSED,
    TAG,
    PresenceScores,
    check_negative,
)
from clipprobe_ext.encoders.hf import HFClipEncoder


@pytest.fixture(scope="module")
def encoder(trained_clip_dir):
    return HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")


def test_a_visible_negative_phrase_is_flagged_not_suppressed(encoder) -> None:
    image = picture(0, seed=777)  # a red circle
    check = check_negative(
        [image],
        "a red circle, a blue square, <lora:detail:0.5>, EasyNegative",
        encoder,
        embeddings={"easynegative"},
    )
    by_text = {p.text: p for p in check.phrases}
    assert by_text["a red circle"].status == "not suppressed"
    assert by_text["a red circle"].reason == NOT_SUPPRESSED
    assert "did not remove it" in by_text["a red circle"].reason
    assert by_text["a blue square"].status == "suppressed"
    assert by_text["<lora:detail:0.5>"].status == "not measurable"
    assert by_text["<lora:detail:0.5>"].reason == TAG
    assert by_text["EasyNegative"].status == "not measurable"
    assert by_text["EasyNegative"].reason == EMBEDDING
    assert [p.text for p in check.not_suppressed] == ["a red circle"]
    d = json.loads(json.dumps(check.to_dict()))
    assert d["not_suppressed"] == [0] and d["phrases"][1]["status"] == "suppressed"


def test_scores_equal_an_independent_softmax(trained_clip_dir, encoder) -> None:
    """Probabilities recomputed with transformers' own forward (logits_per_image)."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(trained_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(trained_clip_dir)
    images = [picture(k, seed=900 + k) for k in range(4)]
    positive = "masterpiece, a yellow triangle"
    negative = ", ".join(CAPTIONS)
    check = check_negative(images, negative, encoder, positive_prompt=positive)
    candidates = list(dict.fromkeys(CAPTIONS + ["masterpiece", "a yellow triangle"]))
    inputs = processor(text=candidates, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        probs = model(**inputs).logits_per_image.softmax(-1).numpy()
    for k, caption in enumerate(CAPTIONS):
        phrase = check.phrases[k]
        np.testing.assert_allclose(phrase.per_image, probs[:, candidates.index(caption)], atol=1e-4)
        floor = max(0.01, 1 / len(candidates))
        assert phrase.visible_in == int((probs[:, candidates.index(caption)] > floor).sum())
    # Each picture shows its own caption: every caption is still visible in one picture.
    for k, caption in enumerate(CAPTIONS):
        assert probs[k, candidates.index(caption)] == probs[k].max()
        assert check.phrases[k].status == "not suppressed"
        assert check.phrases[k].visible_in >= 1
    assert "5 phrases" in check.method


def test_the_scorer_is_pluggable(encoder) -> None:
    seen = {}

    def scorer(enc, image_embs, texts, context):
        seen["texts"], seen["context"] = list(texts), list(context)
        cos = image_embs @ enc.encode_texts(list(texts))[0].numpy().T
        return PresenceScores(cos, cos > 0.2, cos, "cosine above 0.2")

    check = check_negative(
        [picture(1, seed=5)], "a blue square, (ugly:1.3)", encoder, positive_prompt="a cat"
    )
    custom = check_negative(
        [picture(1, seed=5)],
        "a blue square, (ugly:1.3)",
        encoder,
        positive_prompt="a cat",
        scorer=scorer,
    )
    assert seen == {"texts": ["a blue square", "ugly"], "context": ["a cat"]}
    assert custom.method == "cosine above 0.2"
    assert custom.phrases[1].weight == pytest.approx(1.3)
    # Same cosines whatever the scorer: both read the phrases the same way.
    assert [p.cosine for p in custom.phrases] == pytest.approx([p.cosine for p in check.phrases])


def test_empty_negative_prompt_and_no_image(encoder) -> None:
    check = check_negative([picture(2)], "", encoder)
    assert check.phrases == [] and check.notes == ["The negative prompt is empty."]
    from clipprobe_ext.errors import ImageError

    with pytest.raises(ImageError):
        check_negative([], "blurry", encoder)


def test_one_phrase_alone_is_not_measurable_with_a_relative_score(encoder) -> None:
    check = check_negative([picture(0, seed=777)], "a red circle", encoder)
    (phrase,) = check.phrases
    assert phrase.status == "not measurable" and phrase.score is None
    assert "only one" in phrase.reason and phrase.cosine is not None
    paired = check_negative(
        [picture(0, seed=777)], "a red circle", encoder, positive_prompt="a cat"
    )
    assert paired.phrases[0].status == "not suppressed"


def test_rows_and_text_lines(encoder) -> None:
    check = check_negative(
        [picture(0, seed=777)], "a red circle, <lora:x:1>", encoder, positive_prompt="a cat"
    )
    rows = check.rows()
    assert [r["status"] for r in rows] == ["not suppressed", "not measurable"]
    assert rows[0]["score"] == check.phrases[0].score and rows[1]["score"] is None
    lines = check.text_lines()
    assert lines[0].strip().startswith("not suppressed  a red circle (")
    assert lines[-1].startswith("presence: round-1 softmax")
