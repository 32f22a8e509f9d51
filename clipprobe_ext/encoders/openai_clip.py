"""An openai-``clip`` model object with its preprocess: what the WebUI's interrogator holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from clipprobe_ext.encoders.base import ClipEncoder, TextEmbeddingCache, TokenChunk


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
    ) -> None:
        super().__init__(cache, batch_size)
        from clip.simple_tokenizer import SimpleTokenizer

        self.model = model
        self.preprocess = preprocess
        self._model_id = model_id
        self._tokenizer = SimpleTokenizer()
        self._sot = self._tokenizer.encoder["<|startoftext|>"]
        self._eot = self._tokenizer.encoder["<|endoftext|>"]
        self.context_length = int(model.context_length)
        self._comma = self.tokenize(",")[0]

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().float().exp().item())

    @property
    def comma_token(self) -> int:
        return self._comma

    def tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text))

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = self.model.token_embedding.weight
        return param.device, param.dtype

    def _encode_chunks(self, chunks: Sequence[TokenChunk]) -> torch.Tensor:
        device, dtype = self._device_dtype()
        width = max(len(c) for c in chunks) + 2
        ids = torch.zeros((len(chunks), width), dtype=torch.long)
        ends = torch.empty(len(chunks), dtype=torch.long)
        for row, chunk in enumerate(chunks):
            seq = [self._sot, *chunk, self._eot]
            ids[row, : len(seq)] = torch.tensor(seq)
            ends[row] = len(seq) - 1
        ids = ids.to(device)
        if not _has_standard_text_tower(self.model):
            full = torch.zeros((len(chunks), self.context_length), dtype=torch.long, device=device)
            full[:, :width] = ids
            return self.model.encode_text(full)
        return _encode_text_short(self.model, ids, ends.to(device), dtype)

    def _encode_image_batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        device, dtype = self._device_dtype()
        pixels = torch.stack([self.preprocess(image) for image in images])
        return self.model.encode_image(pixels.to(device, dtype))


def _has_standard_text_tower(model: Any) -> bool:
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    return blocks is not None and all(hasattr(b, "attn") and hasattr(b, "ln_1") for b in blocks)


def _encode_text_short(
    model: Any, ids: torch.Tensor, ends: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """``model.encode_text`` on sequences shorter than 77 tokens.

    The text tower is causal and pools at the end token, so the padding up to 77 that
    ``encode_text`` requires changes nothing but the cost; this runs the same blocks on
    the real length only (checked against ``encode_text`` in the tests).
    """
    length = ids.shape[1]
    x = model.token_embedding(ids).type(dtype) + model.positional_embedding[:length].type(dtype)
    mask = torch.full((length, length), float("-inf"), device=ids.device).triu_(1).to(x.dtype)
    x = x.permute(1, 0, 2)
    for block in model.transformer.resblocks:
        h = block.ln_1(x)
        x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_final(x.permute(1, 0, 2)).type(dtype)
    pooled = x[torch.arange(x.shape[0], device=x.device), ends]
    return pooled @ model.text_projection
