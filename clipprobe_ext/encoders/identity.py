"""Which model an embedding belongs to: ``ModelRef``, the one identity every cache uses.

An embedding can be reused only for the same weights, the same numeric type and the same
image preprocessing.  A name cannot say that: a folder retrained in place keeps its name,
and one model may be reached under two names (a folder and its hub name, the WebUI's
Interrogate CLIP and ``openai-clip:ViT-L/14``).  So the key of every cache (the
in-memory text cache, the reference banks, the embedding store, a user's calibration) is
a fingerprint of the weights themselves plus a description of the preprocessing; the
name only labels reports.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass
from typing import Any

#: Bump when the way a file becomes the encoder's input changes (images.py, audit/scan.py).
PREPROCESS_VERSION = 1
#: Values read from each tensor: enough to tell two trainings apart, cheap on any model.
SAMPLES_PER_TENSOR = 64


@dataclass(frozen=True)
class ModelRef:
    """A loaded model: the name it was given, what its weights are, where it runs.

    ``key`` is what caches use: weights and preprocessing only, so one model under two
    names shares its entries and two models under one name never do.  ``device`` is left
    out of the key (moving weights changes no value beyond rounding); ``dtype`` is in it
    through the fingerprint.  ``source`` is the folder or file the weights came from
    (``None`` when the model was handed over in memory): where the model's own
    calibration is looked for.
    """

    name: str  # as given, with the backend's prefix (hf:..., openai-clip:...)
    fingerprint: str
    device: str
    dtype: str
    preprocessing: str  # ``Preprocessing.key``
    source: str | None = None

    @property
    def key(self) -> str:
        return f"w:{self.fingerprint}|p:{self.preprocessing}"


@dataclass(frozen=True)
class Preprocessing:
    """How a picture becomes the image tower's input.

    ``description`` covers everything that decides the pixels (its hash is ``key``);
    ``resize_edge``/``resample`` are set only when the first step is known to be Pillow's
    ``resize`` of the short side to ``resize_edge`` with filter ``resample``: then the
    audit's reader threads may do that step for the encoder (``audit/prepare.py``).
    """

    description: str
    resize_edge: int | None = None
    resample: int | None = None

    @property
    def key(self) -> str:
        text = f"v{PREPROCESS_VERSION}:{self.description}"
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def describe_transform(transform: Any) -> str:
    """A description of a torchvision-style transform that is the same in every process
    (the default ``repr`` of a function holds its memory address)."""
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, (list, tuple)):
        parts = ", ".join(describe_transform(t) for t in inner)
        return f"{type(transform).__name__}({parts})"
    if callable(transform) and hasattr(transform, "__qualname__"):  # a plain function
        return f"{getattr(transform, '__module__', '')}.{transform.__qualname__}"
    return repr(transform)


def describe_image_processor(processor: Any) -> str:
    """A transformers image processor's settings as sorted JSON."""
    return json.dumps(processor.to_dict(), sort_keys=True, default=str)


# module -> (its dtypes, fingerprint); torch is imported only where weights are read
_fingerprints: weakref.WeakKeyDictionary[Any, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def weights_fingerprint(model: Any) -> str:
    """A hash of the weights: every parameter's name, shape and dtype, and an evenly spaced
    sample of its values (the first and the last among them).  Parameters only, not the
    buffers a library version adds or drops (transformers 4.30 keeps ``position_ids`` in
    the state dict, later versions do not): the same weights read in AUTOMATIC1111 and in
    Forge have one fingerprint, and so one fit.

    Computed once per module and numeric type (``model.half()`` in place changes it;
    moving it between devices does not), so wrapping the same model again costs nothing.
    """
    import torch

    stamp = _dtype_stamp(model)
    known = _fingerprints.get(model)
    if known is not None and known[0] == stamp:
        return known[1]
    digest = hashlib.blake2b(digest_size=10)
    samples = []
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype};".encode())
            flat = tensor.detach().reshape(-1)
            if flat.numel() == 0:
                continue
            # evenly spaced, the first and the last included; integer positions, so the
            # same values are read on any device
            where = (
                torch.arange(SAMPLES_PER_TENSOR) * (flat.numel() - 1) // (SAMPLES_PER_TENSOR - 1)
            )
            samples.append(flat[where.to(flat.device)].float().cpu())
    if samples:
        digest.update(torch.cat(samples).numpy().tobytes())
    fingerprint = digest.hexdigest()
    _fingerprints[model] = (stamp, fingerprint)
    return fingerprint


def _dtype_stamp(model: Any) -> tuple:
    return tuple(sorted({str(p.dtype) for p in model.parameters()}))
