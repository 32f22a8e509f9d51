"""Encoders against the libraries' own forward passes on small real models."""

from __future__ import annotations

import clip
import pytest
import torch
from PIL import Image
from test_report import clip_pixels

from clipprobe_ext.encoders.base import TextEmbeddingCache
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder
from clipprobe_ext.errors import ModelError

TEXTS = ["a girl", "a woman", "umbrella", "wearing sun glass, smiling", "Claude Monet"]


def unit(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().float()
    return t / t.norm(dim=-1, keepdim=True)


def test_hf_texts_match_get_text_features(hf_encoder: HFClipEncoder) -> None:
    inputs = hf_encoder.processor(text=TEXTS, return_tensors="pt", padding="max_length")
    reference = unit(hf_encoder.model.get_text_features(**inputs))
    ours, chunks = hf_encoder.encode_texts(TEXTS)
    assert chunks == [1] * len(TEXTS)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_hf_images_match_get_image_features(hf_encoder: HFClipEncoder, images) -> None:
    pixels = hf_encoder.processor(images=images, return_tensors="pt")["pixel_values"]
    reference = unit(hf_encoder.model.get_image_features(pixel_values=pixels))
    torch.testing.assert_close(hf_encoder.encode_images(images), reference, atol=1e-5, rtol=0)


def test_openai_texts_match_encode_text(openai_encoder: OpenAIClipEncoder) -> None:
    reference = unit(openai_encoder.model.encode_text(clip.tokenize(TEXTS)))
    ours, _ = openai_encoder.encode_texts(TEXTS)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_openai_images_match_encode_image(openai_encoder: OpenAIClipEncoder, images) -> None:
    model, preprocess = openai_encoder.model, openai_encoder.preprocess
    reference = unit(model.encode_image(torch.stack([preprocess(i) for i in images])))
    torch.testing.assert_close(openai_encoder.encode_images(images), reference, atol=1e-5, rtol=0)


def test_openai_fallback_path_for_unknown_text_towers(openai_encoder, monkeypatch) -> None:
    monkeypatch.setattr(openai_encoder, "_text_tower", lambda: None)
    reference = unit(openai_encoder.model.encode_text(clip.tokenize(TEXTS)))
    ours, _ = openai_encoder.encode_texts(TEXTS)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["hf", "openai"])
def test_shared_prefixes_give_the_same_embeddings_for_fewer_tokens(
    kind: str, tiny_hf_clip_dir, tiny_openai_clip_pair
) -> None:
    def fresh():  # an encoder of its own, with an empty text cache (not the weights' shared one)
        if kind == "hf":
            return HFClipEncoder.from_pretrained(
                str(tiny_hf_clip_dir), device="cpu", cache=TextEmbeddingCache()
            )
        return OpenAIClipEncoder(*tiny_openai_clip_pair, cache=TextEmbeddingCache())

    full = "a girl, umbrella, hat, bikini, smiling, blue eye, cloud, tree"
    variants = [full.replace(w, "").replace(", ,", ",") for w in ("hat, ", "cloud, ", "tree")]
    shared = fresh()
    shared.encode_texts([full])
    before = shared.stats.text_tokens
    ours, _ = shared.encode_texts(variants)
    alone = fresh()
    alone.prefix_store.max_items = 0  # nothing kept: every token computed
    reference, _ = alone.encode_texts(variants)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    assert shared.stats.text_tokens - before < alone.stats.text_tokens


def test_cache_encodes_each_text_once_per_model(hf_encoder: HFClipEncoder, trained_clip_dir):
    hf_encoder.encode_texts(["a girl", "umbrella"])
    forwards = hf_encoder.stats.text_forwards
    again, _ = hf_encoder.encode_texts(["umbrella", "a girl", "  A GIRL "])
    assert hf_encoder.stats.text_forwards == forwards  # same tokens: cache hits
    torch.testing.assert_close(again[1], again[2])
    # the cache follows the weights, not the name: the same weights under another name
    # reuse the entries, other weights handed the very same cache object never do
    same = HFClipEncoder(hf_encoder.model, hf_encoder.processor, "hf:other", hf_encoder.cache)
    same.encode_texts(["a girl"])
    assert same.stats.text_forwards == 0
    other = HFClipEncoder.from_pretrained(str(trained_clip_dir), "cpu", cache=hf_encoder.cache)
    other.encode_texts(["a girl"])
    assert other.stats.text_forwards == 1


def test_long_text_is_read_in_chunks_and_averaged(hf_encoder: HFClipEncoder) -> None:
    words = [f"word{i}" for i in range(60)]
    text = ", ".join(words)
    tokens = hf_encoder.tokenize(text)
    assert len(tokens) > 75
    embedding, chunks = hf_encoder.encode_texts([text])
    assert chunks == [len(hf_encoder.chunks_of(text))] and chunks[0] >= 2
    # Independent: split the token list at the chunks, run the model on each, average.
    bos, eos = hf_encoder.tokenizer.bos_token_id, hf_encoder.tokenizer.eos_token_id
    rows = []
    for chunk in hf_encoder.chunks_of(text):
        ids = torch.tensor([[bos, *chunk, eos]])
        rows.append(unit(hf_encoder.model.get_text_features(input_ids=ids))[0])
    reference = unit(torch.stack(rows).mean(0, keepdim=True))
    torch.testing.assert_close(embedding, reference, atol=1e-5, rtol=0)
    assert [t for c in hf_encoder.chunks_of(text) for t in c] == tokens


def test_missing_model_folder_is_a_clear_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="Could not load the CLIP model"):
        HFClipEncoder.from_pretrained(str(tmp_path / "nowhere"), device="cpu")


def test_open_clip_models_work_through_the_openai_encoder() -> None:
    """open_clip's CLIP has the openai layout: the same encoder serves it."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from open_clip.transform import image_transform

    torch.manual_seed(1)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=2, width=64, patch_size=8, image_size=32, head_width=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
    ).eval()
    with torch.no_grad():
        model.token_embedding.weight.normal_(0, 1.0)
    encoder = OpenAIClipEncoder(model, image_transform(32, is_train=False), "open_clip:tiny")
    assert encoder._text_tower() is not None
    reference = unit(model.encode_text(clip.tokenize(TEXTS)))
    ours, _ = encoder.encode_texts(TEXTS)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_weights_refused_by_a_safe_unpickler_are_a_clear_model_error(
    tiny_hf_clip_dir, monkeypatch
) -> None:
    """The WebUI's modules/safe.py makes torch.load return None for files it refuses."""
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: None)
    with pytest.raises(ModelError, match="safetensors"):
        HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu")


def make_image(seed: int, size: tuple[int, int]):
    """A seeded random RGB picture of any size (conftest's gradients need 2+ pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


TINY_SIZES = [(1, 1), (3, 1), (7, 3), (500, 1), (1, 3), (3, 7), (2, 1), (64, 48)]


@pytest.mark.parametrize("size", TINY_SIZES)
def test_hf_tiny_and_thin_images_are_read_right(hf_encoder: HFClipEncoder, size) -> None:
    """Before: 1-3 pixels high raised "mean must have 1 elements"; 7x3 was misread."""
    image = make_image(5, (max(size[0], 1), max(size[1], 1)))
    pixels = clip_pixels(image, hf_encoder.processor.image_processor)[None]
    reference = unit(hf_encoder.model.get_image_features(pixel_values=pixels))
    torch.testing.assert_close(hf_encoder.encode_images([image]), reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(1, 1), (3, 1), (7, 3), (500, 1), (1, 500)])
def test_openai_tiny_and_thin_images(openai_encoder: OpenAIClipEncoder, size) -> None:
    image = make_image(5, size)
    reference = unit(openai_encoder.model.encode_image(openai_encoder.preprocess(image)[None]))
    torch.testing.assert_close(openai_encoder.encode_images([image]), reference, atol=1e-4, rtol=0)


def test_extreme_strip_keeps_only_a_bounded_centre() -> None:
    from PIL import Image

    from clipprobe_ext.encoders.base import MAX_ASPECT, bounded_aspect

    strip = bounded_aspect(Image.new("RGB", (4096, 1)))
    assert strip.size == (MAX_ASPECT, 1)
    assert bounded_aspect(Image.new("RGB", (2, 4096))).size == (2, 2 * MAX_ASPECT)


def test_openai_clip_converted_to_fp16_encodes_texts_like_its_encode_text() -> None:
    """``clip.load`` on a GPU runs ``convert_weights``: fp16 linears, an fp32 token table.
    The text tower used the token table's dtype and failed "mat1 and mat2 must have the
    same dtype"; it must follow the blocks, as ``encode_text`` does."""
    import tiny_clip
    from clip.model import convert_weights

    model, preprocess = tiny_clip.tiny_openai_clip(seed=3)
    convert_weights(model)
    assert model.token_embedding.weight.dtype == torch.float32
    assert model.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    encoder = OpenAIClipEncoder(model, preprocess, model_id="openai-clip:tiny-fp16")
    ours, _ = encoder.encode_texts(TEXTS)
    with torch.inference_mode():
        reference = unit(model.encode_text(clip.tokenize(TEXTS)))
    assert reference.dtype == torch.float32 and torch.isfinite(reference).all()
    # fp16 arithmetic on both sides, in a different order: agree to fp16 precision
    torch.testing.assert_close(ours, reference, atol=5e-3, rtol=0)
    # and the images go through the converted image tower too
    image = encoder.encode_images([Image.new("RGB", (40, 30), (200, 20, 20))])
    assert image.shape == (1, reference.shape[1]) and torch.isfinite(image).all()
