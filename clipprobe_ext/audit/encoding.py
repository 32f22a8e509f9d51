"""How the audit keys the model's work, and keeps text embeddings across runs.

An embedding is only reusable for the same weights, the same numeric type and the same
image preprocessing.  The model id names the weights as the user named them; a
fingerprint of the weights themselves catches a model retrained in the same folder, and
the preprocessing description catches a changed resize or crop.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from clipprobe_ext.audit.store import EmbeddingStore
from clipprobe_ext.encoders.base import ClipEncoder, TextEmbeddingCache, TokenChunk

#: Bump when the way a file becomes the encoder's input changes (images.py, scan.py).
PREPROCESS_VERSION = 1


def model_key(encoder: ClipEncoder) -> str:
    """``model id | weights fingerprint | preprocessing``: the store's model column."""
    digest = hashlib.blake2b(digest_size=10)
    model = getattr(encoder, "model", None)
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                head = tensor.detach().reshape(-1)[:16].float().cpu().numpy()
                digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
                digest.update(head.tobytes())
    return f"{encoder.model_id}|w:{digest.hexdigest()}|p:{_preprocessing(encoder)}"


def _preprocessing(encoder: Any) -> str:
    processor = getattr(encoder, "processor", None)
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None and hasattr(image_processor, "to_dict"):
        described = json.dumps(image_processor.to_dict(), sort_keys=True, default=str)
    elif getattr(encoder, "preprocess", None) is not None:
        described = repr(encoder.preprocess)
    else:
        described = type(encoder).__name__
    text = f"v{PREPROCESS_VERSION}:{described}"
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


class StoreTextCache(TextEmbeddingCache):
    """The encoder's in-memory text cache, backed by the store.

    Installed as ``encoder.cache`` for the run: a chunk missing in memory is looked up in
    the store before the text tower runs, and what the tower computes is written back
    (``flush``), so a second audit encodes no phrase and no prompt variant again.
    """

    def __init__(self, inner: TextEmbeddingCache, store: EmbeddingStore, key: str) -> None:
        super().__init__(inner.max_items)
        self.inner = inner
        self.store = store
        self.key = key
        self.pending: list[tuple[str, Any]] = []

    def __len__(self) -> int:
        return len(self.inner)

    def get(self, model_id: str, chunk: TokenChunk) -> torch.Tensor | None:
        found = self.inner.get(model_id, chunk)
        if found is not None:
            return found
        stored = self.store.text_embedding(self.key, _chunk_key(chunk))
        if stored is None:
            return None
        tensor = torch.from_numpy(stored)
        self.inner.put(model_id, chunk, tensor)
        return tensor

    def put(self, model_id: str, chunk: TokenChunk, embedding: torch.Tensor) -> None:
        self.inner.put(model_id, chunk, embedding)
        self.pending.append((_chunk_key(chunk), embedding.numpy()))

    def clear(self) -> None:
        self.inner.clear()

    def flush(self) -> None:
        if self.pending:
            self.store.put_batch(self.key, texts=self.pending)
            self.pending = []


def _chunk_key(chunk: TokenChunk) -> str:
    return " ".join(map(str, chunk))
