"""Which phrases CLIP cannot judge (positions, counts, negations, text)."""

import pytest

from clipprobe_ext.analysis.judgeable import unjudgeable


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a cat on the left of a dog", "position"),
        ("a red ball to the right of a box", "position"),
        ("a lamp above the table", "position"),
        ("a boy in front of a house", "position"),
        ("a bird in the background", "position"),
        ("three apples", "count"),
        ("2 cats", "count"),
        ("2girls", "count"),
        ("a pair of shoes", "count"),
        ("several birds", "count"),
        ("no hat", "negation"),
        ("no humans", "negation"),
        ("a man without glasses", "negation"),
        ("not smiling", "negation"),
        ('a sign that says "open"', "text"),
        ("a poster with the text hello", "text"),
        ("the word love", "text"),
        ("'cafe' neon sign", "text"),
    ],
)
def test_claims_clip_cannot_judge(text, kind):
    found = unjudgeable(text)
    assert found is not None and found.kind == kind, (text, found)
    assert found.cue in " ".join(text.lower().split())


@pytest.mark.parametrize(
    "text",
    [
        "masterpiece",
        "best quality",
        "8k",
        "4k uhd",
        "1girl",
        "solo",
        "35mm photograph",
        "1080p",
        "3d render",
        "90s anime",
        "a woman, 24 years old",
        "4x upscaled",
        "a red umbrella",
        "white background",
        "girl's dress",
        "knotted rope",
        "underwater",
        "nosebleed",
        "Germany",
        "f/1.8",
        "20th century",
    ],
)
def test_phrases_clip_can_judge(text):
    assert unjudgeable(text) is None, (text, unjudgeable(text))


def test_describe_names_kind_and_cue():
    assert unjudgeable("three apples").describe() == "a number of things ('three')"
