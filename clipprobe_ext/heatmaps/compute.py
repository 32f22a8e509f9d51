"""Heatmaps for a picture and its phrases: the entry point the CLI, tab and API call.

Cost: one image-tower forward (activations kept, no autograd) and one backward for all
phrases together through the short path after the last attention (see ``relevance``);
the phrase embeddings come from the encoder's text cache like every other analysis.
Runs on the encoder's model where it is (device, dtype): callers inside the WebUI call it
while the model is loaded, like ``analyze``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.heatmaps.relevance import DEFAULT_METHOD, METHODS, relevance
from clipprobe_ext.heatmaps.tower import TowerPass, ViTTower, run_tower, tower_of

Box = tuple[int, int, int, int]  # left, top, right, bottom in the original picture's pixels


@dataclass
class Heatmap:
    """Where CLIP sees one phrase in one picture.

    ``grid`` covers only the centre square CLIP saw (``crop_box`` in the original picture),
    rows top to bottom, values in [0, 1] (1 = most relevant patch; all zero when no patch
    speaks for the phrase).  ``score`` is the cosine similarity of picture and phrase.
    """

    phrase: str
    method: str
    grid: np.ndarray  # [g, g] float32
    crop_box: Box
    score: float

    @property
    def peak(self) -> tuple[float, float]:
        """(x, y) of the hottest patch's centre, in original-picture pixels."""
        g = self.grid.shape[0]
        row, col = np.unravel_index(int(np.argmax(self.grid)), self.grid.shape)
        left, top, right, bottom = self.crop_box
        return left + (col + 0.5) / g * (right - left), top + (row + 0.5) / g * (bottom - top)


def centre_crop_box(size: tuple[int, int]) -> Box:
    """The centre square CLIP's preprocessing keeps (resize shortest side, centre crop)."""
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


class HeatmapRun:
    """One kept tower pass of one picture; maps for any phrases and methods come from it."""

    def __init__(self, encoder: ClipEncoder, image: Image.Image) -> None:
        self.encoder = encoder
        self.image = image if image.mode == "RGB" else image.convert("RGB")
        self.tower: ViTTower = tower_of(encoder)
        self.pixels = self.tower.pixels(self.image)
        self.kept: TowerPass = run_tower(self.tower, self.pixels)
        encoder.stats.image_forwards += 1
        self.crop_box = centre_crop_box(self.image.size)

    def maps(self, phrases: Sequence[str], method: str = DEFAULT_METHOD) -> list[Heatmap]:
        if not phrases:
            return []
        text, _ = self.encoder.encode_texts(list(phrases))
        scores, grids = relevance(self.tower, self.kept, text, method)
        return [
            Heatmap(phrase, method, grid.numpy(), self.crop_box, float(score))
            for phrase, grid, score in zip(phrases, grids, scores)
        ]


def phrase_heatmaps(
    encoder: ClipEncoder,
    image: Image.Image,
    phrases: Sequence[str],
    method: str = DEFAULT_METHOD,
) -> list[Heatmap]:
    """One ``Heatmap`` per phrase (same order); ``ModelError`` for image towers that are no ViT."""
    if method not in METHODS:
        raise ValueError(f"Unknown heatmap method {method!r}; choose one of {', '.join(METHODS)}.")
    with torch.inference_mode(False):
        return HeatmapRun(encoder, image).maps(phrases, method)
