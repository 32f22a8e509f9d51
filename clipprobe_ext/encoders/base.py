"""The one interface every CLIP backend implements, and what they share.

A backend only knows how to tokenize, how to turn pictures into its image tower's input,
how to run its text tower on a batch of token chunks and its image tower on pixels;
this base class adds what makes the analyses fast and correct on any backend: the
model's identity (``ref``, ``encoders.identity``), the text-embedding cache (in memory,
and in an embedding store when one is attached), batching by length, the WebUI's
75-token chunking for long prompts, unit normalisation and ``torch.inference_mode()``.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from clipprobe_ext.chunking import BREAK, chunk_tokens
from clipprobe_ext.encoders.identity import ModelRef, Preprocessing, weights_fingerprint
from clipprobe_ext.encoders.text_tower import PrefixStore, Tower, encode_sequences

if TYPE_CHECKING:
    from clipprobe_ext.store import EmbeddingStore

log = logging.getLogger(__name__)

TokenChunk = tuple[int, ...]


class TextEmbeddingCache:
    """Unit text embeddings keyed by (model key, token chunk), least recently used dropped first.

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


_text_caches: dict[str, TextEmbeddingCache] = {}


def text_cache_for(key: str) -> TextEmbeddingCache:
    """The in-memory text cache shared by every encoder of the model ``key`` (``ModelRef.key``):
    a new encoder around the same weights (the WebUI makes one per run) starts warm."""
    cache = _text_caches.get(key)
    if cache is None:
        cache = _text_caches[key] = TextEmbeddingCache()
    return cache


def forget_text_caches() -> None:
    _text_caches.clear()


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
        source: str | None = None,
    ) -> None:
        self.model = model
        self._model_id = model_id
        self._comma: int | None = None
        self._cache = cache
        self.batch_size = batch_size
        self.source = source
        self.stats = EncodeStats()
        self.prefix_store = PrefixStore()
        self._store_device: torch.device | None = None
        self._embedding_store: EmbeddingStore | None = None
        self._pins = 0  # embeddings_kept_in blocks open
        self._ref: tuple[tuple[torch.device, torch.dtype], ModelRef] | None = None
        self._pending: list[tuple[str, np.ndarray]] = []  # text embeddings not yet stored

    # -- identity ----------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The model's name as given, with the backend's prefix: what reports show."""
        return self._model_id

    @property
    def ref(self) -> ModelRef:
        """This model's identity (``encoders.identity``): the key of every cache.

        Built again only when the model's device or dtype changed (every text encode asks
        for it)."""
        device, dtype = self._device_dtype()
        known = self._ref
        if known is not None and known[0] == (device, dtype):
            return known[1]
        ref = ModelRef(
            self._model_id,
            self.fingerprint(),
            str(device),
            str(dtype).replace("torch.", ""),
            self.preprocessing().key,
            self.source,
        )
        self._ref = ((device, dtype), ref)
        return ref

    def fingerprint(self) -> str:
        """The weights' fingerprint, computed once per loaded weights."""
        return weights_fingerprint(self.model)

    @abstractmethod
    def preprocessing(self) -> Preprocessing:
        """How a picture becomes the image tower's input (``identity.Preprocessing``)."""

    @property
    def device(self) -> torch.device:
        return self._device_dtype()[0]

    @property
    def dtype(self) -> torch.dtype:
        return self._device_dtype()[1]

    def to(self, device: str | torch.device) -> ClipEncoder:
        """Move the weights to ``device`` (the identity stays: ``ModelRef.key`` has no device)."""
        self.model.to(device)
        return self

    @property
    def logit_scale(self) -> float:
        """The model's learned softmax temperature (``logit_scale.exp()``, 100 for OpenAI CLIP)."""
        return float(self.model.logit_scale.detach().float().exp().item())

    # -- caches --------------------------------------------------------------------------
    @property
    def cache(self) -> TextEmbeddingCache:
        """The in-memory text cache: the one given, else the one shared by this model's key."""
        if self._cache is None:
            return text_cache_for(self.ref.key)
        return self._cache

    @property
    def embedding_store(self) -> EmbeddingStore | None:
        """The store behind the text cache (and the reference banks), if any."""
        return self._embedding_store

    def keep_embeddings_in(self, store: EmbeddingStore | None) -> EmbeddingStore | None:
        """Put ``store`` behind the text cache (``None``: memory only); returns the one before.

        A chunk missing in memory is then looked up in the store before the text tower
        runs, and what the tower computes is written back in one transaction per call.
        A store that fails is dropped, and the encoder goes on in memory.
        """
        self._flush_texts()
        previous, self._embedding_store = self._embedding_store, store
        return previous

    @contextlib.contextmanager
    def embeddings_kept_in(self, store: EmbeddingStore) -> Iterator[ClipEncoder]:
        """``keep_embeddings_in(store)`` for the block, then the store before it again.

        Inside the block the store is pinned: ``load_encoder`` handing out this encoder
        meanwhile leaves it in place."""
        previous = self.keep_embeddings_in(store)
        self._pins += 1
        try:
            yield self
        finally:
            self._pins -= 1
            self.keep_embeddings_in(previous)

    @property
    def store_pinned(self) -> bool:
        return self._pins > 0

    def _stored_texts(self, key: str, chunks: list[TokenChunk]) -> dict[TokenChunk, torch.Tensor]:
        store = self._embedding_store
        if store is None or not chunks:
            return {}
        from clipprobe_ext.store import STORE_ERRORS

        names = {_chunk_key(c): c for c in chunks}
        try:
            found = store.text_embeddings(key, names)
        except STORE_ERRORS as exc:
            self._drop_store(exc)
            return {}
        return {names[name]: torch.from_numpy(vector) for name, vector in found.items()}

    def _flush_texts(self) -> None:
        store, pending = self._embedding_store, self._pending
        self._pending = []
        if store is None or not pending:
            return
        from clipprobe_ext.store import STORE_ERRORS

        try:
            store.put_batch(self.ref.key, texts=pending)
        except STORE_ERRORS as exc:
            self._drop_store(exc)

    def _drop_store(self, exc: BaseException) -> None:
        log.debug("ClipProbe: the embedding store failed (%s); keeping embeddings in memory", exc)
        self._embedding_store = None
        self._pending = []

    # -- what a backend provides -------------------------------------------------------
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
    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        """Where the model runs and its numeric type, as it is now."""

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
    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The image tower's input for RGB ``images``, [len(images), 3, S, S] (float32, CPU)."""

    @abstractmethod
    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image-tower features of ``pixels`` (as ``pixels`` makes them)."""

    def _encode_image_batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self._encode_pixels(self.pixels(images))

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
        """Unit embedding of every distinct chunk; only chunks neither in the cache nor in
        the embedding store run through the text tower."""
        key = self.ref.key
        cache = self._cache if self._cache is not None else text_cache_for(key)
        table: dict[TokenChunk, torch.Tensor] = {}
        missing: list[TokenChunk] = []
        for chunk in dict.fromkeys(chunks):
            cached = cache.get(key, chunk)
            if cached is None:
                missing.append(chunk)
            else:
                table[chunk] = cached
        stored = self._stored_texts(key, missing)
        for chunk, feature in stored.items():
            cache.put(key, chunk, feature)
            table[chunk] = feature
        missing = [c for c in missing if c not in stored]
        # Similar lengths together: a batch pads to its longest chunk.
        missing.sort(key=len)
        done = 0
        keep = self._embedding_store is not None
        with torch.inference_mode():
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                features = _unit(self._encode_chunk_batch(batch))
                self.stats.text_forwards += len(batch)
                self.stats.text_batches += 1
                for chunk, feature in zip(batch, features):
                    feature = feature.clone()
                    cache.put(key, chunk, feature)
                    table[chunk] = feature
                    if keep:
                        self._pending.append((_chunk_key(chunk), feature.numpy()))
                done += len(batch)
                if progress is not None:
                    progress(f"Encoding texts {done}/{len(missing)}", done / len(missing))
        self._flush_texts()
        return table


def _chunk_key(chunk: TokenChunk) -> str:
    """A token chunk as the store's text key."""
    return " ".join(map(str, chunk))


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
