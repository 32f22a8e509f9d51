"""Shared fixtures: small real CLIP models and test images."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import tiny_clip  # noqa: E402


@pytest.fixture(autouse=True)
def _own_user_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty user cache folder (the embedding store, user calibrations)
    and empty in-memory text caches, as every new encoder had before text caches were
    shared by the weights: what one test encoded never answers another's text counts.
    (The reference banks stay in memory for the session, as before; a test that needs
    them built says so with ``forget_banks``.)"""
    from clipprobe_ext.encoders import known_refs
    from clipprobe_ext.encoders.base import forget_text_caches
    from clipprobe_ext.store import forget_open_stores

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
    forget_open_stores()
    forget_text_caches()
    known_refs.forget()
    yield
    forget_open_stores()


def give_test_fit(folder: Path) -> Path:
    """Give the model in ``folder`` the tests' presence fit (``presence_formula.TEST_FIT``)
    as its own: a model without a fit is uncalibrated, and most tests need presence."""
    from presence_formula import TEST_FIT

    from clipprobe_ext.analysis.calibration import write_calibration

    write_calibration(folder, TEST_FIT.not_seen_z, TEST_FIT.seen_z, TEST_FIT.source)
    return folder


@pytest.fixture(scope="session")
def tiny_hf_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a tiny transformers CLIP, loadable with ``from_pretrained``, with
    the tests' presence fit."""
    return give_test_fit(tiny_clip.save_tiny_hf_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def tiny_openai_clip_pair():
    return tiny_clip.tiny_openai_clip()


@pytest.fixture()
def tiny_openai_clip(tiny_openai_clip_pair):
    """``(model, preprocess)`` of a tiny openai ``clip.model.CLIP``."""
    return tiny_openai_clip_pair


@pytest.fixture()
def hf_encoder(tiny_hf_clip_dir: Path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    return HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu")


@pytest.fixture()
def openai_encoder(tiny_openai_clip_pair):
    """The tiny openai CLIP (weights in memory: uncalibrated unless a test saves a fit for
    them, ``calibrated``)."""
    from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder

    model, preprocess = tiny_openai_clip_pair
    return OpenAIClipEncoder(model, preprocess, model_id="openai-clip:tiny")


def fitless_copy(folder: Path, to: Path) -> Path:
    """A copy of the model in ``folder`` without its own fit: uncalibrated, unless a user
    fit is saved for its weights."""
    import shutil

    from clipprobe_ext.analysis.calibration import CALIBRATION_FILE

    shutil.copytree(folder, to)
    (to / CALIBRATION_FILE).unlink(missing_ok=True)
    return to


def calibrated(encoder):
    """``encoder`` with the tests' fit saved for its weights, as a user's fit; returns it."""
    from presence_formula import TEST_FIT

    from clipprobe_ext.analysis.calibration import save_user_calibration
    from clipprobe_ext.analysis.references import forget_banks

    save_user_calibration(encoder.ref, TEST_FIT)
    forget_banks()  # the banks carry the fit they were built with
    return encoder


def folder_ref(folder, fingerprint: str = "f" * 20, name: str | None = None):
    """A ``ModelRef`` of weights in ``folder`` (``None``: handed over in memory), for the
    calibration lookup, which needs only the source and the fingerprint."""
    from clipprobe_ext.encoders.identity import ModelRef

    source = None if folder is None else str(folder)
    return ModelRef(name or f"hf:{folder}", fingerprint, "cpu", "float32", "p", source)


def make_image(seed: int = 0, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A deterministic RGB test picture (gradients and a seeded block pattern)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    base = (x * [1, 0.3, 0.1] + y * [0.1, 0.6, 1]) / 2
    noise = rng.integers(0, 120, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype("uint8"), "RGB")


@pytest.fixture()
def images() -> list[Image.Image]:
    return [make_image(1), make_image(2), make_image(3)]


@pytest.fixture(scope="session")
def trained_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP trained to match four simple pictures with their captions, with the
    tests' presence fit."""
    import trained_clip

    return give_test_fit(trained_clip.save_trained_clip(tmp_path_factory.mktemp("trained-clip")))
