"""Reference banks a phrase's similarity is compared against, built once per model.

A cosine similarity means nothing alone: its scale differs from model to model.  Two
fixed banks, the same for any prompt and any model, give the reference:
- ``NEUTRAL_PHRASES``: everyday things and words (COCO-style object names, "a photo"),
  none chosen for a particular model, prompt or benchmark;
- ``reference_images``: procedurally drawn pictures of nothing (plain colours, gradients,
  smooth and white noise, stripes).
Their pairs are unrelated by construction; ``presence`` measures a phrase's cosine in
units of theirs.  (Per-phrase and per-picture levels from the same banks were measured
too, see ``presence``.)  The embeddings are computed once per model (64 phrases, 24
pictures), kept in memory by the model's ``ModelRef.key`` and, where the encoder has an
embedding store, on disk: the phrases like any text, the pictures in the store's bank
table.  So an analysis after the first, even in a fresh process, pays only a matrix
product.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from clipprobe_ext.analysis.calibration import (
    UNCALIBRATED,
    PresenceCalibration,
    calibration_for,
)

NEUTRAL_PHRASES = (
    "a person", "a dog", "a cat", "a car", "a bicycle", "a bird", "a horse", "a boat",
    "a tree", "a house", "a chair", "a table", "a cup", "a book", "a clock", "a phone",
    "a bottle", "a flower", "food", "a building", "a street", "a mountain", "the sky",
    "water", "grass", "a window", "a door", "a bed", "a computer", "a shoe", "a bag",
    "a train", "an airplane", "a bus", "a truck", "a cow", "a sheep", "an elephant",
    "a bear", "a zebra", "a giraffe", "a pizza", "a cake", "a banana", "an apple",
    "a sandwich", "a kite", "a guitar", "a lamp", "a fence", "a bridge", "a road",
    "a river", "a forest", "a city", "a room", "a keyboard", "a spoon", "a bench",
    "a clock tower", "text", "a photo", "an image", "a picture",
)  # fmt: skip
IMAGE_COUNT = 24
IMAGE_SIZE = 224


def reference_images(count: int = IMAGE_COUNT, size: int = IMAGE_SIZE) -> list[Image.Image]:
    """Seeded pictures of nothing in particular (the same on every machine)."""
    rng = np.random.default_rng(20261127)
    out = []
    for k in range(count):
        kind = k % 6
        if kind == 0:  # a plain colour
            arr = np.broadcast_to(rng.integers(0, 256, 3), (size, size, 3))
        elif kind == 1:  # a linear gradient between two colours
            t = np.linspace(0, 1, size)[:, None, None]
            t = t if rng.random() < 0.5 else t.transpose(1, 0, 2)
            a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            arr = (a * (1 - t) + b * t) * np.ones((size, size, 1))
        elif kind == 2:  # smooth noise
            small = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
            arr = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))
        elif kind == 3:  # white noise
            arr = rng.integers(0, 256, (size, size, 3))
        elif kind == 4:  # stripes
            period = int(rng.integers(8, 40))
            on = (np.arange(size) // period) % 2
            a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            arr = np.where(on[None, :, None] == 1, a, b) * np.ones((size, 1, 1))
        else:  # blurred noise blobs
            small = Image.fromarray(rng.integers(0, 256, (size, size, 3)).astype(np.uint8))
            arr = np.asarray(small.filter(ImageFilter.GaussianBlur(size / 20)))
        assert arr.shape == (size, size, 3), arr.shape
        image = np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))
        out.append(Image.fromarray(image, "RGB"))
    return out


@dataclass(frozen=True)
class ReferenceBanks:
    """Unit embeddings of the banks for one model (float64)."""

    model_id: str
    phrases: np.ndarray  # [K, dim] embeddings of NEUTRAL_PHRASES
    images: np.ndarray  # [J, dim] embeddings of reference_images()
    phrase_texts: tuple[str, ...] = NEUTRAL_PHRASES
    # where "seen" begins for this model; None: uncalibrated (no presence)
    calibration: PresenceCalibration | None = None

    def describe(self) -> str:
        fit = self.calibration
        own = (
            ", and each phrase's own similarity to those pictures"
            if fit is not None and fit.uses_phrase_level
            else ""
        )
        return (
            f"the model's unrelated pairs: {len(self.phrase_texts)} everyday phrases x "
            f"{len(self.images)} pictures of nothing (plain colours, gradients, noise, "
            f"stripes){own}; where seen begins: {fit.source if fit is not None else UNCALIBRATED}"
        )


#: Rename when ``reference_images`` changes: the stored bank pictures are then re-encoded.
BANK = "reference-images-v1"

_BANKS: dict[tuple[str, str | None], ReferenceBanks] = {}


def reference_banks(encoder: Any, dim: int | None = None) -> ReferenceBanks:
    """The banks of ``encoder``'s model: from memory, else from its embedding store, else
    encoded (and stored).

    Kept by ``ModelRef.key`` (and the weights' folder, which decides the calibration), so
    two models under one name never share banks.  ``dim``: the embedding width the caller
    has; banks of another width are rebuilt.
    """
    ref = encoder.ref
    banks = _BANKS.get((ref.key, ref.source))
    if banks is None or (dim is not None and banks.phrases.shape[1] != dim):
        phrases, _ = encoder.encode_texts(list(NEUTRAL_PHRASES))
        banks = ReferenceBanks(
            encoder.model_id,
            phrases.numpy().astype(np.float64),
            _bank_images(encoder, ref.key).astype(np.float64),
            calibration=calibration_for(ref),
        )
        _BANKS[(ref.key, ref.source)] = banks
    return banks


def _bank_images(encoder: Any, key: str) -> np.ndarray:
    """The bank pictures' embeddings: stored ones, else encoded now and stored."""
    from clipprobe_ext.store import STORE_ERRORS

    store = encoder.embedding_store
    if store is not None:
        try:
            stored = store.bank_images(key, BANK, IMAGE_COUNT)
        except STORE_ERRORS:
            stored = None
        if stored is not None:
            return stored
    images = encoder.encode_images(reference_images()).numpy()
    if store is not None:
        with contextlib.suppress(*STORE_ERRORS):  # memory only: the next process encodes
            store.put_bank_images(key, BANK, images)
    return images


def forget_banks() -> None:
    """Drop every in-memory bank (tests: prove the store alone serves a second run)."""
    _BANKS.clear()
