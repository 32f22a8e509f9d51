"""The presence score's reference banks for the audit, built once per model and stored.

The banks (``analysis.references``: everyday phrases and pictures of nothing) are the
same inputs and the same encodes as the single-image path's, so the audit's presence is
the single-image presence.  Here they are also kept in the audit's store: the phrases
through the store-backed text cache like any phrase, the pictures in their own table, so
a second audit, even in a fresh process, encodes no bank.
"""

from __future__ import annotations

import numpy as np

from clipprobe_ext.analysis.calibration import calibration_for
from clipprobe_ext.analysis.references import (
    IMAGE_COUNT,
    NEUTRAL_PHRASES,
    ReferenceBanks,
    reference_images,
)
from clipprobe_ext.audit.store import EmbeddingStore
from clipprobe_ext.encoders.base import ClipEncoder

#: Rename when ``reference_images`` changes: the stored bank pictures are then re-encoded.
BANK = "reference-images-v1"

_BANKS: dict[str, ReferenceBanks] = {}


def audit_banks(encoder: ClipEncoder, store: EmbeddingStore, key: str) -> ReferenceBanks:
    """The banks of the model ``key`` names (``encoding.model_key``): from memory, else
    from the store, else encoded once and stored.

    The phrases go through ``encoder.encode_texts``: during an audit the encoder's cache
    is the store-backed one, so they are stored with the other phrases.
    """
    banks = _BANKS.get(key)
    if banks is not None:
        return banks
    phrases, _ = encoder.encode_texts(list(NEUTRAL_PHRASES))
    images = store.bank_images(key, BANK, IMAGE_COUNT)
    if images is None:
        images = encoder.encode_images(reference_images()).numpy()
        store.put_bank_images(key, BANK, images)
    banks = ReferenceBanks(
        encoder.model_id,
        phrases.numpy().astype(np.float64),
        np.asarray(images, dtype=np.float32).astype(np.float64),
        calibration=calibration_for(encoder.model_id),
    )
    _BANKS[key] = banks
    return banks


def forget_audit_banks() -> None:
    """Drop the in-memory banks (tests: prove the store alone serves a second run)."""
    _BANKS.clear()
