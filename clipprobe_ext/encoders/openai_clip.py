"""An openai-``clip`` model object with its preprocess: what the WebUI's interrogator holds."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from clipprobe_ext.encoders.base import ClipEncoder, TextEmbeddingCache, TokenChunk, bounded_aspect
from clipprobe_ext.encoders.identity import Preprocessing, describe_transform
from clipprobe_ext.encoders.text_tower import Tower, openai_tower


@functools.cache
def _simple_tokenizer() -> Any:
    """openai clip's tokenizer, built once: it reads the BPE file, and the WebUI makes a new
    encoder around its Interrogate CLIP for every run."""
    from clip.simple_tokenizer import SimpleTokenizer

    return SimpleTokenizer()


class OpenAIClipEncoder(ClipEncoder):
    """Wraps ``clip.model.CLIP`` (as returned by ``clip.load``) and its preprocess transform.

    The model is used as it is, on whatever device and dtype it has at each call, so the
    WebUI can keep owning it (and moving it) without ClipProbe making a copy.
    """

    def __init__(
        self,
        model: Any,
        preprocess: Callable[[Image.Image], torch.Tensor],
        model_id: str = "openai-clip:ViT-L/14",
        cache: TextEmbeddingCache | None = None,
        batch_size: int = 32,
        source: str | None = None,
    ) -> None:
        super().__init__(model, model_id, cache, batch_size, source)
        self.preprocess = preprocess
        self._tokenizer = _simple_tokenizer()
        self._sot = self._tokenizer.encoder["<|startoftext|>"]
        self._eot = self._tokenizer.encoder["<|endoftext|>"]
        self.context_length = int(model.context_length)

    def tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text))

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(describe_transform(self.preprocess))

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = self.model.token_embedding.weight
        return param.device, param.dtype

    def _text_tower(self) -> tuple[Tower, torch.device, int, int] | None:
        tower = openai_tower(self.model)
        if tower is None:
            return None
        device, _ = self._device_dtype()
        return tower, device, self._sot, self._eot

    def _encode_chunks(self, chunks: Sequence[TokenChunk]) -> torch.Tensor:
        """``encode_text`` on 77-token rows: the fallback for unknown text towers."""
        device, _ = self._device_dtype()
        ids = torch.zeros((len(chunks), self.context_length), dtype=torch.long)
        for row, chunk in enumerate(chunks):
            seq = [self._sot, *chunk, self._eot]
            ids[row, : len(seq)] = torch.tensor(seq)
        return self.model.encode_text(ids.to(device))

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.preprocess(bounded_aspect(image)) for image in images])

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        device, dtype = self._device_dtype()
        return self.model.encode_image(pixels.to(device, dtype))
