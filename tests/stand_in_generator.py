"""A stand-in for Stable Diffusion whose pictures follow the prompt's weights in a known way.

It draws one of the trained CLIP's four pictures (``trained_clip.picture``), chosen from
the prompt's WebUI weights (``parse_prompt``, checked against the WebUI's parser
elsewhere):

- a caption phrase can be drawn when its weight reaches its ``NEED`` (the blue square is
  hard to draw: it needs 1.3; the others 1.0);
- of those, the one with the highest weight is drawn (a tie: the first in the prompt),
  so a phrase raised above the others pushes them out;
- none: a plain grey picture (nothing of the prompt shows).

The seed jitters the picture as ``picture`` does, so different seeds give different
pictures of the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from trained_clip import CAPTIONS, picture

from clipprobe_ext.prompt import parse_prompt

NEED = {"a red circle": 1.0, "a blue square": 1.3, "green stripes": 1.0, "a yellow triangle": 1.0}


def drawn(prompt: str) -> str | None:
    """The caption the stand-in draws for ``prompt`` (None: nothing)."""
    best = None
    for phrase in parse_prompt(prompt).phrases:
        eligible = phrase.text in NEED and phrase.weight >= NEED[phrase.text] - 1e-9
        if eligible and (best is None or phrase.weight > best.weight + 1e-9):
            best = phrase
    return None if best is None else best.text


def stand_in(prompt: str, seed: int, size: int = 96) -> Image.Image:
    text = drawn(prompt)
    if text is None:
        grey = 128 + seed % 64
        return Image.new("RGB", (size, size), (grey, grey, grey))
    return picture(CAPTIONS.index(text), seed=seed, size=size)


def fit_stand_in_model(trained: Path, folder: Path, seed: int) -> tuple[Path, Any]:
    """A copy of the trained CLIP at ``folder`` with a presence fit of its own: "seen"
    starts halfway between the lowest ``cosine_z`` of a caption on its own stand-in
    picture (seed ``seed``) and the highest on the others' and the grey one, so each drawn
    caption is seen and nothing else is (asserted, so a model that cannot tell them
    apart fails here, not later).  Returns (folder, fit)."""
    import shutil

    import numpy as np

    from clipprobe_ext.analysis.calibration import write_calibration
    from clipprobe_ext.analysis.presence import cosine_z
    from clipprobe_ext.analysis.references import forget_banks, reference_banks
    from clipprobe_ext.encoders.hf import HFClipEncoder

    shutil.copytree(trained, folder)
    forget_banks()
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    drawn_texts = ["a red circle", "a blue square", "green stripes"]
    prompts = [f"({text}:1.5)" for text in drawn_texts] + ["nothing"]
    images = encoder.encode_images([stand_in(p, seed) for p in prompts]).numpy()
    texts, _ = encoder.encode_texts(drawn_texts)
    banks = reference_banks(encoder, images.shape[1])
    z = cosine_z(images.astype(np.float64), texts.numpy().astype(np.float64), banks)
    own = np.diag(z[: len(drawn_texts)])
    others = z[~np.eye(len(prompts), len(drawn_texts), dtype=bool)].reshape(-1)
    assert own.min() > others.max() + 0.05, (own, others)
    seen_z = float(own.min() + others.max()) / 2
    fit = write_calibration(folder, seen_z - 1.0, seen_z, "the stand-in generator's test fit")
    forget_banks()
    return folder, fit
