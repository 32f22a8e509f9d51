"""The benchmark world's busy domain and the zoo's openai clip conversion (bench/)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from world import World, WorldSpec, domain_spec  # noqa: E402
from world.busy import MIN_READ_PIXELS, blends_in  # noqa: E402
from world.scenes import COLOURS, WorldObject  # noqa: E402


def test_plain_world_keeps_its_cache_keys():
    """Cached model folders are named by these keys (bench/README.md names them): adding
    domains must not rename the plain world's models."""
    from world.model import Recipe

    assert WorldSpec().key() == "eb1010508b9c"
    assert Recipe().key() == "f052c9de"
    assert domain_spec("busy").key() != WorldSpec().key()


def test_busy_pictures_are_deterministic_and_224_px():
    world = World(domain_spec("busy", seed=3))
    a, b = world.scene(5, "eval"), world.scene(5, "eval")
    assert a.image.size == (224, 224)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.caption == b.caption
    assert not np.array_equal(np.asarray(a.image), np.asarray(world.scene(6, "eval").image))


def test_busy_labels_follow_their_rules():
    """Every visible object is uncovered enough and wide enough at the read size; every
    object hidden for its size is too narrow (recomputed here from masks and radii)."""
    spec = domain_spec("busy")
    world = World(spec)
    reasons = set()
    for i in range(60):
        for obj in world.scene(i, "eval").objects:
            width = 2 * obj.radius * spec.read_size / spec.image_size
            reasons.add(obj.hidden_by)
            if obj.visible:
                assert obj.mask.sum() >= 0.6 * obj.area
                assert width >= MIN_READ_PIXELS
            elif obj.hidden_by == "size":
                assert width < MIN_READ_PIXELS
            elif obj.hidden_by == "occlusion":
                assert obj.mask.sum() < 0.6 * obj.area
    assert {None, "size"} <= reasons  # small objects are drawn, and read as hidden


def _disc(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1]) <= radius


def test_an_object_lost_in_its_surroundings_blends_in():
    size, centre, radius = 64, (32.0, 32.0), 10.0
    shape = _disc(size, centre, radius)
    obj = WorldObject("red", "circle", centre, radius, shape, int(shape.sum()))
    on_red = np.broadcast_to(np.array(COLOURS["red"], np.uint8), (size, size, 3)).copy()
    on_blue = on_red.copy()
    on_blue[~shape] = COLOURS["blue"]
    assert blends_in(obj, shape, on_red, None) == 1.0
    assert blends_in(obj, shape, on_blue, None) == 0.0
    # red and green are far apart in colour, but nearly alike in grey
    on_green = on_red.copy()
    on_green[~shape] = (0, 105, 0)
    assert blends_in(obj, shape, on_green, None) == 0.0
    assert blends_in(obj, shape, on_green, "greyscale") == 1.0


def _grain(image: Image.Image) -> float:
    """Spread of what a 3x3 median removes, at a 64 px model's input size."""
    from PIL import ImageFilter

    small = image.resize((64, 64), Image.BICUBIC)
    smooth = small.filter(ImageFilter.MedianFilter(3))
    return float((np.asarray(small, np.float32) - np.asarray(smooth, np.float32)).std())


def test_grainy_is_much_stronger_than_the_camera_noise():
    world = World(domain_spec("busy"))
    ratios = [
        _grain(world.scene(i, "eval", style="grainy").image)
        / _grain(world.scene(i, "eval", style=None).image)
        for i in range(8)
    ]
    # the same scene with and without the style: the clutter's edges are in both
    assert np.median(ratios) > 3 and min(ratios) > 1.5, ratios


def test_openai_clip_file_gives_the_same_embeddings(tmp_path):
    """A transformers CLIP with heads = width // 64, converted, read back by
    ``clip.load`` through ClipProbe's own encoders."""
    pytest.importorskip("clip")
    import torch
    from world.model import Recipe, build_model
    from zoo_openai import compare, save_openai

    from clipprobe_ext.encoders.factory import clear_cache

    spec = WorldSpec(image_size=32)
    recipe = Recipe(width=64, text_width=64, vision_layers=1, text_layers=1, embed_dim=16)
    folder = tmp_path / "hf"
    model, processor = build_model(spec, Recipe(**{**vars(recipe), "openai_heads": True}), folder)
    with torch.no_grad():  # away from the initial values, which are zeros and ones
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    path = save_openai(folder, tmp_path / "model.pt")
    images = [
        World(domain_spec(d)).scene(i, "eval").image for d in ("plain", "busy") for i in (0, 1)
    ]
    check = compare(folder, path, images, ["a red circle", "masterpiece, a blue star", ""])
    clear_cache()
    for kind in ("images", "texts"):
        # equal up to clip's float16 storage of its linear layers
        assert check[kind]["min_cosine"] > 0.9999, check
    assert check["logit_scale"]["hf"] == pytest.approx(check["logit_scale"]["openai"])


def test_openai_conversion_refuses_heads_clip_would_not_infer(tmp_path):
    from world.model import Recipe, build_model
    from zoo_openai import openai_state_dict

    model, _ = build_model(WorldSpec(image_size=32), Recipe(width=64, text_width=64), tmp_path)
    with pytest.raises(ValueError, match="heads"):
        openai_state_dict(model)


def _colour_blobs(image: Image.Image, colour: str) -> list[tuple[float, float, int]]:
    """Connected regions of ``colour`` in the picture: (x, y) centroid and size."""
    from skimage.measure import label, regionprops

    pixels = np.asarray(image, dtype=np.int32)
    near = np.abs(pixels - np.array(COLOURS[colour])).sum(axis=2) < 60
    return [
        (r.centroid[1], r.centroid[0], int(r.area)) for r in regionprops(label(near)) if r.area >= 8
    ]


def test_relation_claims_hold_in_the_pictures_they_are_drawn_in():
    """Read back from the pixels: a count claim's colour forms that many blobs, and a
    position claim's first object lies left of (or above) the second."""
    from world.relations import NUMBERS, count_scene, position_scene

    world = World(domain_spec("plain", 0))
    counted = checked = 0
    for index in range(40):
        claim = count_scene(world, index)
        if claim is None:
            continue
        number, colour, _ = claim.true.split()
        if any(colour in other for other in claim.others):
            continue  # the other object shares the colour: the blobs would mix
        k = {v: n for n, v in NUMBERS.items()}[number]
        assert len(_colour_blobs(claim.image, colour)) == k, claim.true
        assert (
            claim.wrong.split()[0] != number and claim.wrong.split()[1:] == claim.true.split()[1:]
        )
        counted += 1
    for index in range(60):
        claim = position_scene(world, index)
        if claim is None:
            continue
        word = " left of " if " left of " in claim.true else " above "
        first, second = claim.true.split(word)
        assert claim.wrong == f"{second}{word}{first}"
        colours = [p.split()[1] for p in (first, second, *claim.others)]
        if len(set(colours)) < len(colours):
            continue  # two objects of one colour: the pixels cannot tell them apart
        (a,), (b,) = _colour_blobs(claim.image, colours[0]), _colour_blobs(claim.image, colours[1])
        assert (a[0] < b[0]) if word == " left of " else (a[1] < b[1]), claim.true
        checked += 1
    assert counted >= 10 and checked >= 10
