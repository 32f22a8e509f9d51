"""A transformers ``CLIPModel`` + ``CLIPProcessor`` (hub name or local folder)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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
from clipprobe_ext.encoders.identity import Preprocessing, describe_image_processor
from clipprobe_ext.encoders.text_tower import Tower, hf_tower
from clipprobe_ext.errors import ModelError, first_line

log = logging.getLogger(__name__)


class HFClipEncoder(ClipEncoder):
    """Wraps a loaded transformers CLIP; use ``from_pretrained`` to load one."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str,
        cache: TextEmbeddingCache | None = None,
        batch_size: int = 32,
        source: str | None = None,
    ) -> None:
        super().__init__(model.eval(), model_id, cache, batch_size, source)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self._preprocessing: Preprocessing | None = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache: TextEmbeddingCache | None = None,
        local_files_only: bool = False,
        cache_dir: str | None = None,
        *,
        model_id: str | None = None,
    ) -> HFClipEncoder:
        """Load weights and processor; a missing or offline model is a ``ModelError``.

        ``encoders.load_encoder`` is the entry point that checks the local cache first;
        this only loads.  ``model_id``: the name to report (default ``hf:<name_or_dir>``).
        """
        from transformers import CLIPProcessor

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        folder = Path(name_or_dir) if os.path.isdir(name_or_dir) else None
        try:
            model = _load_model(name_or_dir, folder, dtype, local_files_only, cache_dir)
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
        source = str(folder.resolve()) if folder is not None else None
        return cls(
            model.to(device), processor, model_id or f"hf:{name_or_dir}", cache, source=source
        )

    def tokenize(self, text: str) -> list[int]:
        # verbose=False: long prompts are chunked on purpose, not "longer than the
        # specified maximum sequence length" (a warning that reached the terminal)
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return list(ids)

    def preprocessing(self) -> Preprocessing:
        if self._preprocessing is None:
            processor = self.processor.image_processor
            size = getattr(processor, "size", None)
            exact = (
                getattr(processor, "do_resize", False)
                and isinstance(size, dict)
                and set(size) == {"shortest_edge"}
            )
            self._preprocessing = Preprocessing(
                describe_image_processor(processor),
                int(size["shortest_edge"]) if exact else None,
                int(getattr(processor, "resample", Image.BICUBIC)) if exact else None,
            )
        return self._preprocessing

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

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        # transformers (4.30 has no input_data_format) guesses where the channels are from
        # the array's shape: an image 1 or 3 pixels high read as height-width-channels looks
        # channels-first ("mean must have 1 elements"), a 7x3 one is silently misread.
        # Channels-first arrays are never misread: the guess checks the first axis first.
        arrays = [channels_first(bounded_aspect(image)) for image in images]
        return self.processor.image_processor(arrays, return_tensors="pt")["pixel_values"]

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        device, dtype = self._device_dtype()
        return self.model.get_image_features(pixel_values=pixels.to(device, dtype))


# -- loading ---------------------------------------------------------------------------------

_SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")


def _load_model(
    name_or_dir: str,
    folder: Path | None,
    dtype: torch.dtype,
    local_files_only: bool,
    cache_dir: str | None,
) -> Any:
    """The CLIPModel: straight from the folder's weights file when that provably gives what
    ``from_pretrained`` gives, else through ``from_pretrained``."""
    from transformers import CLIPModel

    if folder is not None:
        model = _load_folder(folder)
        if model is not None:
            return model.to(dtype)
    return CLIPModel.from_pretrained(
        name_or_dir, torch_dtype=dtype, local_files_only=local_files_only, cache_dir=cache_dir
    )


def _load_folder(folder: Path) -> Any | None:
    """A CLIPModel built without initialising its weights, then given the file's tensors.

    ``from_pretrained`` of transformers 4.30 first fills every weight with random values
    (most of a ViT-B/32's load time on a CPU), then copies the file's tensors over them;
    here the weights are read once and nothing is initialised or copied.  ``None`` (the
    caller then uses ``from_pretrained``) unless the file holds exactly the model's
    tensors in one file: sharded weights, other key names or shapes, missing or extra
    tensors, or a file ``torch.load`` refuses all go the long way.
    """
    weights = next((folder / f for f in _SINGLE_FILES if (folder / f).is_file()), None)
    if weights is None or not _is_clip_config(folder / "config.json"):
        return None
    try:
        from transformers import CLIPConfig, CLIPModel
        from transformers.modeling_utils import no_init_weights

        config = CLIPConfig.from_pretrained(folder)
        with _no_torch_init(), no_init_weights():
            model = CLIPModel(config)
        state = _read_weights(weights)
        if not isinstance(state, dict):
            return None
        expected = model.state_dict()
        _add_missing_position_ids(state, expected)
        if set(state) != set(expected) or any(
            tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()
        ):
            return None
        model.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:  # anything unusual: from_pretrained knows more cases
        log.debug("ClipProbe: %s goes through from_pretrained (%s)", folder, first_line(exc))
        return None
    return model.eval()


_INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)
_skipping = threading.local()
_patching = threading.Lock()


@contextlib.contextmanager
def _no_torch_init() -> Iterator[None]:
    """``torch.nn.init`` does nothing in this thread for the block (the layers' own
    ``reset_parameters``); other threads (a WebUI generation) initialise as usual.

    Not the meta device: its ``normal_`` imports ``torch._dynamo`` (seconds)."""
    from torch.nn import init

    def skipping(original: Callable) -> Callable:
        @functools.wraps(original)
        def call(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(_skipping, "on", False):
                return tensor
            return original(tensor, *args, **kwargs)

        return call

    with _patching:
        originals = {n: getattr(init, n) for n in _INIT_FUNCTIONS if hasattr(init, n)}
        for name, original in originals.items():
            setattr(init, name, skipping(original))
        _skipping.on = True
        try:
            yield
        finally:
            _skipping.on = False
            for name, original in originals.items():
                setattr(init, name, original)


def _read_weights(path: Path) -> Any:
    """The file's tensors in memory of their own: never a memory map of the file, which a
    model saved again into the same folder would truncate under the loaded one (SIGBUS)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {k: v.clone() for k, v in load_file(str(path)).items()}
    return torch.load(str(path), map_location="cpu", weights_only=True)


def _add_missing_position_ids(state: dict, expected: dict) -> None:
    """Files written by later transformers leave out the ``position_ids`` buffers (0..n-1)."""
    for key, value in expected.items():
        if key.endswith("position_ids") and key not in state:
            state[key] = torch.arange(value.shape[-1]).expand(tuple(value.shape)).clone()


def _is_clip_config(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == "clip"
    except (OSError, ValueError, AttributeError):
        return False
