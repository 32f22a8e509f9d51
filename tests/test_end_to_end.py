"""End to end on a model that has learned something: the right phrase must win."""

from __future__ import annotations

import pytest
from trained_clip import CAPTIONS, picture

from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze


@pytest.mark.parametrize("kind", range(len(CAPTIONS)))
def test_the_phrase_that_is_in_the_picture_ranks_first(trained_clip_dir, kind: int) -> None:
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    prompt = "masterpiece, " + ", ".join(CAPTIONS) + ", <lora:detail:0.6>"
    image = picture(kind, seed=4242)
    report = analyze([image], prompt, encoder, ProbeOptions(rounds=3))
    first = report.images[0].ranking.rounds[0]
    assert report.phrases[first.top].text == CAPTIONS[kind]
    # The winner has the prompt's highest calibrated presence and is never pruned (it
    # was "keep" under the old rules; "keep" now needs presence >= verdict.SEEN, fitted on
    # the benchmark world, which this briefly trained model does not reach), and removing
    # it from the prompt lowers the similarity.
    verdict = next(v for v in report.verdicts if v.text == CAPTIONS[kind])
    assert verdict.verdict != "prune" and not verdict.pruned
    assert verdict.presence == max(v.presence for v in report.verdicts)
    assert verdict.contribution > 0
    # Pruning never removes the phrase the picture shows.
    assert CAPTIONS[kind] in report.pruning.pruned_prompt
