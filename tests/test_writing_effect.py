"""Writing effect per phrase: the trained tiny CLIP's cosines, AUROC checked pair by pair."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from trained_clip import CAPTIONS, picture

from clipprobe_ext.audit.writing_effect import auroc, writing_effects
from clipprobe_ext.encoders.hf import HFClipEncoder


def pairwise_auroc(yes, no) -> float:
    """Independent: every (asked, not asked) pair compared, ties half."""
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(yes, no)]
    return sum(wins) / len(wins)


@pytest.fixture(scope="module")
def folder(trained_clip_dir):
    """16 pictures (4 seeds of each kind); prompts: the kind's caption, plus "masterpiece,
    best quality" together on circles and squares, "a yellow triangle" (absent) on
    stripes."""
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    phrases = [*CAPTIONS, "masterpiece", "best quality"]
    kinds = [k for k in range(4) for _ in range(4)]
    images = encoder.encode_images([picture(k, seed=10 + i) for i, k in enumerate(kinds)])
    text, _ = encoder.encode_texts(phrases)
    cosines = images.numpy() @ text.numpy().T
    asked = np.zeros(cosines.shape, dtype=bool)
    for row, kind in enumerate(kinds):
        asked[row, kind] = True
        if kind in (0, 1):
            asked[row, 4] = asked[row, 5] = True
        if kind == 2:
            asked[row, 3] = True
    return phrases, cosines, asked


def test_auroc_equals_pairwise_count(folder):
    phrases, cosines, asked = folder
    for effect, k in zip(writing_effects(phrases, cosines, asked), range(len(phrases))):
        yes, no = cosines[asked[:, k], k], cosines[~asked[:, k], k]
        assert effect.with_count == len(yes) and effect.without_count == len(no)
        assert effect.auroc == pytest.approx(pairwise_auroc(yes, no))


def test_ties_count_half():
    assert auroc(np.array([1.0, 2.0]), np.array([1.0, 0.0])) == pytest.approx(
        pairwise_auroc([1.0, 2.0], [1.0, 0.0])
    )


def test_the_drawn_shape_is_what_writing_changes(folder):
    phrases, cosines, asked = folder
    effects = {e.phrase: e for e in writing_effects(phrases, cosines, asked)}
    assert effects["a red circle"].auroc > 0.9
    assert effects["a blue square"].auroc > 0.9


def test_phrases_written_together_are_confounded(folder):
    phrases, cosines, asked = folder
    effects = {e.phrase: e for e in writing_effects(phrases, cosines, asked)}
    assert effects["masterpiece"].confounded_with == ("best quality",)
    assert effects["best quality"].confounded_with == ("masterpiece",)
    assert effects["a red circle"].confounded_with == ()


def test_too_few_pictures_on_a_side_give_no_auroc(folder):
    phrases, cosines, asked = folder
    everywhere = asked.copy()
    everywhere[:, 4] = True
    effect = writing_effects(phrases, cosines, everywhere)[4]
    assert effect.auroc is None and effect.without_count == 0
