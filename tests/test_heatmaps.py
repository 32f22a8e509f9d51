"""Heatmaps: real tiny CLIPs, checked against the models' own forward and autograd."""

from __future__ import annotations

import base64
import copy
import io
import json

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image, ImageDraw

from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder
from clipprobe_ext.errors import ClipProbeError, ModelError
from clipprobe_ext.heatmaps import METHODS, HeatmapRun, centre_crop_box, phrase_heatmaps
from clipprobe_ext.heatmaps.chefer_layers import chefer_from
from clipprobe_ext.heatmaps.cli_output import (
    heatmaps_json,
    report_heatmaps,
    write_heatmaps,
    write_report_heatmaps,
)
from clipprobe_ext.heatmaps.render import contact_sheet, overlay
from clipprobe_ext.heatmaps.tower import run_tower, tower_of

PHRASES = ["a red circle", "a blue square", "green stripes", "a yellow triangle"]


def two_shapes(size: tuple[int, int] = (96, 96)) -> Image.Image:
    """The red circle on the left half, the blue square on the right half."""
    width, height = size
    image = Image.new("RGB", size, (200, 200, 200))
    draw = ImageDraw.Draw(image)
    side, cy, cx = 44, height // 2, width // 2
    draw.ellipse((cx - 46, cy - side // 2, cx - 2, cy + side // 2), fill=(220, 30, 30))
    draw.rectangle((cx + 2, cy - side // 2, cx + 46, cy + side // 2), fill=(30, 60, 220))
    return image


@pytest.fixture()
def trained_encoder(trained_clip_dir):
    return HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")


@pytest.mark.parametrize("method", ["chefer-2", "grad-eclip", "chefer"])
def test_trained_clip_puts_each_shape_where_it_is(trained_encoder, method):
    circle, square = phrase_heatmaps(trained_encoder, two_shapes(), PHRASES[:2], method)
    half = circle.grid.shape[1] // 2
    assert circle.grid[:, :half].sum() > 2 * circle.grid[:, half:].sum()
    assert square.grid[:, half:].sum() > square.grid[:, :half].sum()
    assert circle.peak[0] < 48  # its hottest patch too


def test_wide_picture_maps_the_centre_crop(trained_encoder):
    wide = Image.new("RGB", (192, 96), (200, 200, 200))
    wide.paste(two_shapes(), (48, 0))
    (circle,) = phrase_heatmaps(trained_encoder, wide, ["a red circle"], "chefer")
    assert circle.crop_box == (48, 0, 144, 96)
    assert 48 <= circle.peak[0] < 96  # the left half of the square CLIP saw
    square = phrase_heatmaps(trained_encoder, two_shapes(), ["a red circle"], "chefer")[0]
    assert np.argmax(circle.grid) == np.argmax(square.grid)  # same crop, resampled alike
    assert np.corrcoef(circle.grid.ravel(), square.grid.ravel())[0, 1] > 0.9


def _openai_encoder(pair, dtype):
    """The WebUI's ``model.half()`` in ``dtype``; layer norms stay float32 because
    openai clip's LayerNorm computes in float32 and CPU refuses mixed dtypes there."""
    model, preprocess = pair
    model = copy.deepcopy(model).to(dtype)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()
    return OpenAIClipEncoder(model, preprocess, model_id=f"oa:{dtype}")


@pytest.mark.parametrize("kind", ["hf", "openai"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_maps_finite_with_the_grid_shape(kind, dtype, tiny_hf_clip_dir, tiny_openai_clip_pair):
    if kind == "hf":
        encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu", dtype=dtype)
    else:
        encoder = _openai_encoder(tiny_openai_clip_pair, dtype)
    image = make_image(4, size=(64, 48))
    run = HeatmapRun(encoder, image)
    for method in METHODS:
        maps = run.maps(PHRASES, method)
        assert [m.phrase for m in maps] == PHRASES
        for heatmap in maps:
            assert heatmap.grid.shape == (4, 4)  # 32 px / 8 px patches
            assert heatmap.grid.dtype == np.float32
            assert np.isfinite(heatmap.grid).all() and np.isfinite(heatmap.score)
            assert heatmap.grid.min() >= 0 and heatmap.grid.max() <= 1
            assert heatmap.crop_box == (8, 0, 56, 48)
    if dtype != torch.float32:  # gradients of a low-precision model still point somewhere
        assert any(m.grid.max() == 1 for m in run.maps(PHRASES, "chefer"))


@pytest.mark.parametrize("kind", ["hf", "openai"])
def test_tower_pass_equals_the_models_image_features(kind, hf_encoder, openai_encoder):
    encoder = hf_encoder if kind == "hf" else openai_encoder
    image = make_image(5)
    tower = tower_of(encoder)
    kept = run_tower(tower, tower.pixels(image))
    with torch.no_grad():
        expected = encoder._encode_image_batch([image])[0].float()
    torch.testing.assert_close(kept.features, expected, atol=1e-5, rtol=1e-5)
    assert len(kept.attentions) == len(tower.blocks)
    torch.testing.assert_close(kept.last_cls_attention.sum(-1), torch.ones(kept.last_q.shape[0]))


def _minmax(x: torch.Tensor) -> np.ndarray:
    x = x - x.min()
    return (x / x.max().clamp_min(1e-30)).detach().numpy()


def test_gradient_methods_equal_autograd_through_the_models_own_attention(trained_encoder):
    """Per phrase, through transformers' own CLIPAttention (its attention probabilities keep
    their gradient): an independent computation of both methods."""
    model = trained_encoder.model
    image = two_shapes()
    pixels = trained_encoder.processor.image_processor([image], return_tensors="pt")["pixel_values"]
    text, _ = trained_encoder.encode_texts(PHRASES)
    batched = {
        m: HeatmapRun(trained_encoder, image).maps(PHRASES, m) for m in ("chefer", "grad-eclip")
    }
    last = model.vision_model.encoder.layers[-1]
    for p in range(len(PHRASES)):
        out = model.vision_model(
            pixel_values=pixels, output_attentions=True, output_hidden_states=True
        )
        attn = out.attentions[-1]
        features = model.visual_projection(out.pooler_output)[0]
        score = features @ text[p] / features.norm()
        (grad,) = torch.autograd.grad(score, attn)
        chefer = (grad * attn).clamp(min=0).mean(1)[0, 0, 1:]
        h = last.layer_norm1(out.hidden_states[-2])[0]
        cosine = torch.nn.functional.cosine_similarity(
            last.self_attn.k_proj(h)[1:], last.self_attn.q_proj(h)[:1], dim=-1
        )
        loosened = (cosine - cosine.min()) / (cosine.max() - cosine.min())
        eclip = torch.relu(grad[0, :, 0, 1:].sum(0) * loosened)
        np.testing.assert_allclose(batched["chefer"][p].grid.ravel(), _minmax(chefer), atol=1e-4)
        np.testing.assert_allclose(batched["grad-eclip"][p].grid.ravel(), _minmax(eclip), atol=1e-4)
        assert batched["chefer"][p].score == pytest.approx(score.item(), abs=1e-5)


@pytest.mark.parametrize("kind", ["hf", "openai"])
def test_last_block_shortcut_equals_the_full_rule_from_the_last_block(
    kind, hf_encoder, openai_encoder
):
    """``chefer`` (gradient through the class token's path only) against plain autograd
    through the whole last block on P copies (``chefer_layers``)."""
    encoder = hf_encoder if kind == "hf" else openai_encoder
    run = HeatmapRun(encoder, make_image(13))
    text, _ = encoder.encode_texts(PHRASES)
    full = chefer_from(run.tower, run.kept, text, start=len(run.tower.blocks) - 1)
    for heatmap, reference in zip(run.maps(PHRASES, "chefer"), full):
        np.testing.assert_allclose(heatmap.grid.ravel(), _minmax(reference), atol=1e-5)
    every = run.maps(PHRASES, "chefer-all")
    assert not np.allclose(every[0].grid, run.maps(PHRASES, "chefer")[0].grid)
    # the last k blocks: k = 3 is every block of a model that has no more
    blocks = len(run.tower.blocks)
    three = chefer_from(run.tower, run.kept, text, start=max(0, blocks - 3))
    for heatmap, reference in zip(run.maps(PHRASES, "chefer-3"), three):
        np.testing.assert_allclose(heatmap.grid.ravel(), _minmax(reference), atol=1e-5)


@pytest.mark.parametrize("kind", ["hf", "openai"])
def test_batched_equals_one_phrase_at_a_time(kind, hf_encoder, openai_encoder):
    encoder = hf_encoder if kind == "hf" else openai_encoder
    image = make_image(6)
    for method in ("chefer", "grad-eclip", "chefer-2", "chefer-3", "chefer-all"):
        batched = phrase_heatmaps(encoder, image, PHRASES, method)
        for phrase, heatmap in zip(PHRASES, batched):
            (alone,) = phrase_heatmaps(encoder, image, [phrase], method)
            np.testing.assert_allclose(heatmap.grid, alone.grid, atol=1e-5)
            assert heatmap.score == pytest.approx(alone.score, abs=1e-6)
    maps = phrase_heatmaps(encoder, image, PHRASES, "chefer")
    assert not np.allclose(maps[0].grid, maps[1].grid)  # phrases differ, so do their maps


def test_works_under_inference_mode_and_counts_one_forward(hf_encoder):
    before = hf_encoder.stats.image_forwards
    with torch.inference_mode():
        maps = phrase_heatmaps(hf_encoder, make_image(7), PHRASES)
    assert len(maps) == 4 and hf_encoder.stats.image_forwards == before + 1
    assert phrase_heatmaps(hf_encoder, make_image(7), []) == []


def test_non_vit_tower_is_a_clear_error():
    from clip.clip import _transform
    from clip.model import CLIP

    torch.manual_seed(0)
    resnet = CLIP(16, 64, (1, 1, 1, 1), 8, None, 77, 49408, 32, 2, 2).eval()
    encoder = OpenAIClipEncoder(resnet, _transform(64), model_id="openai-clip:tiny-rn")
    with pytest.raises(ModelError, match="vision-transformer"):
        phrase_heatmaps(encoder, make_image(1), ["a cat"])


def test_unknown_method_is_refused(hf_encoder):
    with pytest.raises(ValueError, match="grad-eclip"):
        phrase_heatmaps(hf_encoder, make_image(1), ["a cat"], "gradcam++")


def test_centre_crop_box():
    assert centre_crop_box((64, 48)) == (8, 0, 56, 48)
    assert centre_crop_box((30, 90)) == (0, 30, 30, 60)
    assert centre_crop_box((50, 50)) == (0, 0, 50, 50)


def test_overlay_blends_the_colormap_inside_the_crop(hf_encoder):
    import matplotlib

    image = make_image(8, size=(80, 40))
    heatmap = phrase_heatmaps(hf_encoder, image, ["a cat"], "centre")[0]
    clear = np.asarray(overlay(image, heatmap, opacity=0.0), np.int16)
    np.testing.assert_array_equal(clear[16:38, 22:58], np.asarray(image, np.int16)[16:38, 22:58])
    assert clear[:, :18].mean() < np.asarray(image, np.int16)[:, :18].mean()  # unseen: dimmed
    full = np.asarray(overlay(image, heatmap, opacity=1.0))
    hot = np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255
    np.testing.assert_allclose(full[20, 40], hot, atol=12)  # the centre prior's peak
    square = make_image(8, size=(40, 40))
    plain = overlay(square, phrase_heatmaps(hf_encoder, square, ["a"], "centre")[0], 0.0)
    np.testing.assert_array_equal(np.asarray(plain), np.asarray(square))
    with pytest.raises(ValueError, match="opacity"):
        overlay(image, heatmap, opacity=1.5)


def test_write_heatmaps_files(hf_encoder, tmp_path):
    image = make_image(9, size=(64, 48))
    maps = phrase_heatmaps(hf_encoder, image, ["a red circle", "blue/square!"])
    written = write_heatmaps(image, maps, tmp_path / "out", stem="pic 1.png")
    names = [p.name for p in written]
    assert names == [
        "pic-1-png-01-a-red-circle.png",
        "pic-1-png-02-blue-square.png",
        "pic-1-png-contact.png",
        "pic-1-png-heatmaps.json",
    ]
    for path in written[:2]:
        assert Image.open(path).size == image.size
    sheet = Image.open(written[2])
    assert sheet.size[0] == 2 * 224
    data = json.loads(written[3].read_text())
    assert data["crop_box"] == [8, 0, 56, 48] and data["note"]
    assert [p["phrase"] for p in data["phrases"]] == ["a red circle", "blue/square!"]
    np.testing.assert_allclose(data["phrases"][0]["grid"], maps[0].grid, atol=1e-4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ClipProbeError, match="is a file"):
        write_heatmaps(image, maps, tmp_path / "file")


def test_heatmaps_json_has_decodable_pngs(hf_encoder):
    image = make_image(10, size=(48, 64))
    maps = phrase_heatmaps(hf_encoder, image, ["a", "b", "c"])
    data = heatmaps_json(image, maps, opacity=0.3)
    json.dumps(data)
    for entry in data["phrases"]:
        assert Image.open(io.BytesIO(base64.b64decode(entry["overlay_png"]))).size == (48, 64)
    sheet = Image.open(io.BytesIO(base64.b64decode(data["contact_sheet_png"])))
    assert sheet.size == contact_sheet(image, maps).size


def test_write_report_heatmaps_for_every_image(hf_encoder, tmp_path):
    from clipprobe_ext.probe import ProbeOptions, analyze

    images = [make_image(11), make_image(12)]
    report = analyze(
        images,
        "a cat, (a dog:1.2), <lora:x:1>, a cat",
        hf_encoder,
        ProbeOptions(contribution=False, prune=False),
        labels=["one.png", "one.png"],
    )
    maps = report_heatmaps(hf_encoder, report, images)
    written = write_report_heatmaps(report, images, maps, tmp_path)
    overlays = sorted(
        p.name for p in written if p.name.endswith(".png") and "contact" not in p.name
    )
    assert overlays == [
        "one-01-a-cat.png",
        "one-02-a-dog.png",
        "one-2-01-a-cat.png",
        "one-2-02-a-dog.png",
    ]
