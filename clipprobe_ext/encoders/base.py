"""The one interface every CLIP backend implements, and what they share.

A backend only knows how to tokenize, how to run its text tower on a batch of token
chunks and how to run its image tower; this base class adds what makes the analyses
fast and correct on any backend: the text-embedding cache, batching by length,
the WebUI's 75-token chunking for long prompts, unit normalisation and
``torch.inference_mode()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from clipprobe_ext.chunking import BREAK, chunk_tokens
from clipprobe_ext.encoders.text_tower import PrefixStore, Tower, encode_sequences

TokenChunk = tuple[int, ...]


class TextEmbeddingCache:
    """Unit text embeddings keyed by (model id, token chunk), least recently used dropped first.

    Re-analysing after an edit then encodes only the phrases that changed.  Keyed by
    tokens rather than strings so that texts differing only in case or spacing, which
    CLIP reads identically, share an entry.
    """

    def __init__(self, max_items: int = 50_000) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, TokenChunk], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, model_id: str, chunk: TokenChunk) -> torch.Tensor | None:
        key = (model_id, chunk)
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def put(self, model_id: str, chunk: TokenChunk, embedding: torch.Tensor) -> None:
        self._items[(model_id, chunk)] = embedding
        self._items.move_to_end((model_id, chunk))
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


@dataclass
class EncodeStats:
    """Counts of real model work, for benchmarks and tests of the cache."""

    image_forwards: int = 0  # images run through the image tower
    text_forwards: int = 0  # token chunks run through the text tower
    text_batches: int = 0
    text_tokens: int = 0  # token positions computed by the text tower (shared prefixes skipped)


# Progress callback: (message, fraction done in [0, 1] or None when unknown).
Progress = Callable[[str, float | None], None]


class ClipEncoder(ABC):
    """Encode images and texts to unit vectors in CLIP's joint space (float32, CPU)."""

    #: Tokens CLIP reads, start and end markers included.
    context_length: int = 77

    def __init__(
        self,
        model: Any,
        model_id: str,
        cache: TextEmbeddingCache | None = None,
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self._model_id = model_id
        self._comma: int | None = None
        self.cache = cache if cache is not None else TextEmbeddingCache()
        self.batch_size = batch_size
        self.stats = EncodeStats()
        self.prefix_store = PrefixStore()
        self._store_device: torch.device | None = None

    # -- what a backend provides -------------------------------------------------------
    @property
    def model_id(self) -> str:
        """Stable id of the weights: cache entries of different models never mix."""
        return self._model_id

    @property
    def logit_scale(self) -> float:
        """The model's learned softmax temperature (``logit_scale.exp()``, 100 for OpenAI CLIP)."""
        return float(self.model.logit_scale.detach().float().exp().item())

    @property
    def comma_token(self) -> int:
        """Token id of ``,`` (where the WebUI prefers to cut long prompts)."""
        if self._comma is None:
            self._comma = self.tokenize(",")[0]
        return self._comma

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without start/end markers and without truncation."""

    @abstractmethod
    def _encode_chunks(self, chunks: Sequence[TokenChunk]) -> torch.Tensor:
        """Text-tower features of chunks of at most ``context_length - 2`` tokens."""

    def _text_tower(self) -> tuple[Tower, torch.device, int, int] | None:
        """(tower, device, start id, end id) for prefix-sharing encodes; ``None`` to
        always use ``_encode_chunks``."""
        return None

    def _encode_chunk_batch(self, chunks: Sequence[TokenChunk]) -> torch.Tensor:
        spec = self._text_tower()
        if spec is None:
            self.stats.text_tokens += sum(len(c) + 2 for c in chunks)
            return self._encode_chunks(chunks)
        tower, device, bos, eos = spec
        if device != self._store_device:  # the model moved: stored keys are elsewhere
            self.prefix_store.clear()
            self._store_device = device
        seqs = [(bos, *chunk, eos) for chunk in chunks]
        features, computed = encode_sequences(tower, seqs, self.prefix_store, device)
        self.stats.text_tokens += computed
        return features

    @abstractmethod
    def _encode_image_batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Image-tower features of RGB images."""

    # -- shared behaviour --------------------------------------------------------------
    @property
    def chunk_length(self) -> int:
        return self.context_length - 2

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Unit embeddings of the images, [len(images), dim]."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = list(images[start : start + self.batch_size])
                out.append(_unit(self._encode_image_batch(batch)))
                self.stats.image_forwards += len(batch)
        return torch.cat(out) if out else torch.empty(0, 0)

    def chunks_of(self, text: str | Sequence[str]) -> list[TokenChunk]:
        """The 75-token chunks CLIP reads for a text.

        A sequence of strings is read as segments that a ``BREAK`` separates, so a
        prompt's forced chunk boundaries survive.
        """
        segments = [text] if isinstance(text, str) else list(text)
        tokens: list[int] = []
        for i, segment in enumerate(segments):
            if i:
                tokens.append(BREAK)
            tokens.extend(self.tokenize(segment))
        chunks = [tuple(c) for c in chunk_tokens(tokens, self.comma_token, self.chunk_length)]
        nonempty = [c for c in chunks if c]
        return nonempty or [()]

    def encode_texts(
        self, texts: Sequence[str | Sequence[str]], progress: Progress | None = None
    ) -> tuple[torch.Tensor, list[int]]:
        """Unit embeddings of the texts, [len(texts), dim], and each text's chunk count.

        A text longer than 75 tokens is read the way the WebUI conditions it: cut into
        chunks (see ``chunking``), each chunk encoded, the chunk embeddings averaged.
        """
        chunked = [self.chunks_of(t) for t in texts]
        table = self.encode_chunks([c for cs in chunked for c in cs], progress)
        rows = [torch.stack([table[c] for c in cs]).mean(0) for cs in chunked]
        if not rows:
            return torch.empty(0, 0), []
        return _unit(torch.stack(rows)), [len(cs) for cs in chunked]

    def encode_chunks(
        self, chunks: Sequence[TokenChunk], progress: Progress | None = None
    ) -> dict[TokenChunk, torch.Tensor]:
        """Unit embedding of every distinct chunk; only chunks missing from the cache run."""
        table: dict[TokenChunk, torch.Tensor] = {}
        missing: list[TokenChunk] = []
        for chunk in dict.fromkeys(chunks):
            cached = self.cache.get(self.model_id, chunk)
            if cached is None:
                missing.append(chunk)
            else:
                table[chunk] = cached
        # Similar lengths together: a batch pads to its longest chunk.
        missing.sort(key=len)
        done = 0
        with torch.inference_mode():
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                features = _unit(self._encode_chunk_batch(batch))
                self.stats.text_forwards += len(batch)
                self.stats.text_batches += 1
                for chunk, feature in zip(batch, features):
                    feature = feature.clone()
                    self.cache.put(self.model_id, chunk, feature)
                    table[chunk] = feature
                done += len(batch)
                if progress is not None:
                    progress(f"Encoding texts {done}/{len(missing)}", done / len(missing))
        return table


# CLIP's preprocessing scales the short side to 224 and keeps the centre square; a
# 4096x1 strip would first become 917,504x224 pixels (600 MB).  Beyond this ratio only
# the centre strip is kept before preprocessing: still 64 times wider than what CLIP sees.
MAX_ASPECT = 64


def bounded_aspect(image: Image.Image) -> Image.Image:
    """``image``, or its centre strip of at most ``MAX_ASPECT``:1 for extreme shapes."""
    width, height = image.size
    if width > MAX_ASPECT * height:
        left = (width - MAX_ASPECT * height) // 2
        return image.crop((left, 0, left + MAX_ASPECT * height, height))
    if height > MAX_ASPECT * width:
        top = (height - MAX_ASPECT * width) // 2
        return image.crop((0, top, width, top + MAX_ASPECT * width))
    return image


def channels_first(image: Image.Image) -> np.ndarray:
    """RGB pixels as a uint8 array [3, height, width]."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1))


def _unit(features: torch.Tensor) -> torch.Tensor:
    features = features.detach().float().cpu()
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
