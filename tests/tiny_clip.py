"""Small CLIP models with the real CLIP vocabulary and seeded random weights.

No real weights can be downloaded here, so tests build these at test time (in about a
second) and load them through the same code paths a real model takes:
``CLIPModel.from_pretrained(folder)`` and the openai ``clip.model.CLIP`` class.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

TEXT_WIDTH = 32
EMBED_DIM = 16
IMAGE_SIZE = 32


def _bpe_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """The vocabulary and merges of CLIP's tokenizer, from the file openai-clip ships."""
    from clip.simple_tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, merges


def save_clip_tokenizer(folder: Path):
    """CLIP's real BPE vocabulary as a transformers ``CLIPTokenizer`` saved in ``folder``.

    Returns ``(tokenizer, vocab)``; every tiny or trained test and bench CLIP reads text
    through it, so their token ids are the real CLIP's.
    """
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _bpe_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )
    return tokenizer, vocab


def save_tiny_hf_clip(folder: Path, seed: int = 0) -> Path:
    """Write a transformers CLIP (model, tokenizer, image processor) into ``folder``."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
    )

    tokenizer, vocab = save_clip_tokenizer(folder)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 2 * TEXT_WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": IMAGE_SIZE,
            "patch_size": 8,
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 2 * TEXT_WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=EMBED_DIM,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    # Random init leaves all texts nearly parallel; widen the spread so rankings differ.
    with torch.no_grad():
        model.text_model.embeddings.token_embedding.weight.normal_(0, 1.0)
        model.logit_scale.fill_(4.0)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_openai_clip(seed: int = 0):
    """A ``(model, preprocess)`` pair like ``clip.load`` returns, small and random."""
    from clip.clip import _transform
    from clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=EMBED_DIM,
        image_resolution=IMAGE_SIZE,
        vision_layers=2,
        vision_width=64,
        vision_patch_size=8,
        context_length=77,
        vocab_size=49408,
        transformer_width=TEXT_WIDTH,
        transformer_heads=2,
        transformer_layers=2,
    )
    with torch.no_grad():
        model.token_embedding.weight.normal_(0, 1.0)
        model.logit_scale.fill_(4.0)
    return model.eval(), _transform(IMAGE_SIZE)


def save_openai_clip_file(path: Path, seed: int = 0) -> Path:
    """A small openai CLIP saved the way openai's checkpoints are (TorchScript), with the
    sizes ``clip.load``'s ``build_model`` can read back (64-wide heads)."""
    import warnings

    from clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(16, 32, 2, 64, 8, 77, 49408, 64, 1, 2).eval()
    example = (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(path))
    return path
