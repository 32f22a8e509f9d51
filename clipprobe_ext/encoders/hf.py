"""A transformers ``CLIPModel`` + ``CLIPProcessor`` (hub name or local folder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from clipprobe_ext.encoders.base import (
    ClipEncoder,
    TextEmbeddingCache,
    TokenChunk,
    bounded_aspect,
    channels_first,
)
from clipprobe_ext.encoders.text_tower import Tower, hf_tower
from clipprobe_ext.errors import ModelError, first_line


class HFClipEncoder(ClipEncoder):
    """Wraps a loaded transformers CLIP; use ``from_pretrained`` to load one."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str,
        cache: TextEmbeddingCache | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__(model.eval(), model_id, cache, batch_size)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.context_length = int(model.config.text_config.max_position_embeddings)

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache: TextEmbeddingCache | None = None,
        local_files_only: bool = False,
        cache_dir: str | None = None,
    ) -> HFClipEncoder:
        """Load weights and processor; a missing or offline model is a ``ModelError``.

        ``encoders.loader.load_encoder`` is the entry point that checks the local cache
        first; this only loads."""
        from transformers import CLIPModel, CLIPProcessor

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        try:
            model = CLIPModel.from_pretrained(
                name_or_dir,
                torch_dtype=dtype,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
            )
            processor = CLIPProcessor.from_pretrained(
                name_or_dir, local_files_only=local_files_only, cache_dir=cache_dir
            )
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Could not load the CLIP model '{name_or_dir}': it is neither a local folder "
                "with a transformers CLIP nor available offline in the Hugging Face cache "
                f"({first_line(exc)})."
            ) from exc
        except Exception as exc:  # e.g. the WebUI's safe unpickler returned None
            raise ModelError(
                f"Could not read the weights of the CLIP model '{name_or_dir}' "
                f"({first_line(exc)}). Inside the WebUI, whose safe unpickler refuses some "
                "pytorch_model.bin files, use a folder saved as safetensors or start it with "
                "--disable-safe-unpickle."
            ) from exc
        return cls(model.to(device), processor, f"hf:{name_or_dir}", cache)

    def tokenize(self, text: str) -> list[int]:
        # verbose=False: long prompts are chunked on purpose, not "longer than the
        # specified maximum sequence length" (a warning that reached the terminal)
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return list(ids)

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.model.parameters())
        return param.device, param.dtype

    def _text_tower(self) -> tuple[Tower, torch.device, int, int]:
        device, _ = self._device_dtype()
        return (
            hf_tower(self.model),
            device,
            self.tokenizer.bos_token_id,
            self.tokenizer.eos_token_id,
        )

    def _encode_chunks(self, chunks: Sequence[TokenChunk]) -> torch.Tensor:
        device, _ = self._device_dtype()
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        width = max(len(c) for c in chunks) + 2
        ids = torch.full((len(chunks), width), eos, dtype=torch.long)
        mask = torch.zeros((len(chunks), width), dtype=torch.long)
        for row, chunk in enumerate(chunks):
            seq = [bos, *chunk, eos]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        # CLIP pools at the first end token and its attention is causal, so padding
        # after it changes nothing: batches need not be padded to 77.
        return self.model.get_text_features(
            input_ids=ids.to(device), attention_mask=mask.to(device)
        )

    def _encode_image_batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        device, dtype = self._device_dtype()
        # transformers (4.30 has no input_data_format) guesses where the channels are from
        # the array's shape: an image 1 or 3 pixels high read as height-width-channels looks
        # channels-first ("mean must have 1 elements"), a 7x3 one is silently misread.
        # Channels-first arrays are never misread: the guess checks the first axis first.
        arrays = [channels_first(bounded_aspect(image)) for image in images]
        pixels = self.processor.image_processor(arrays, return_tensors="pt")["pixel_values"]
        return self.model.get_image_features(pixel_values=pixels.to(device, dtype))
