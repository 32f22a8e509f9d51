"""The busy domain: the world's objects in pictures that look less like a diagram.

Plain pictures are flat colour with a few large shapes, easier than anything a real CLIP
sees. Busy pictures (224 px) keep the vocabulary, styles and labels and add what makes
real pictures hard:
- a textured background (smooth colour noise, gradients, stripes, fine checks,
  blotches, sometimes two blended);
- clutter that is no phrase of the vocabulary (lines, scribbles, dots, irregular blobs, in
  any colours), some behind the objects and some over them;
- objects from small to large (``WorldSpec.radius``);
- camera noise (slight blur, mild Gaussian noise); "grainy" adds a coarse grain, much
  stronger, that survives the shrink to a model's input size.

Labels stay honest, as in the plain world, and add what busy pictures hide: an object
covered (by objects or clutter) for more than 40 %, narrower than ``MIN_READ_PIXELS``
once the picture is shrunk to ``spec.read_size`` (``"size"``), or whose surroundings are
mostly within ``MIN_CONTRAST`` of its colour after the style (``"background"``) is
hidden. Fine checks are drawn under the size limit, so no background is a nameable
square; dots are far under it, so none is a nameable circle.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from world.scenes import (
    COLOURS,
    DARK,
    MIN_CONTRAST,
    SPLITS,
    Scene,
    World,
    WorldObject,
    _apply_style,
    _draw,
    _place,
    blur_radius,
    pixel_block,
    training_caption,
)

MIN_READ_PIXELS = 10  # narrowest readable object at the read size (about a patch of 8)
SUPERSAMPLE = 2  # shapes and clutter are drawn at twice the size, then shrunk
BASE_NOISE = 5.0  # grey levels, every picture
BASE_BLUR = 0.6  # pixels at 224, every picture (times 0.5-1.5)
GRAIN = 40.0  # grey levels of the "grainy" style's grain
SURROUND = 1.35  # what lies around an object: within this many radii of its centre
BLENDS_IN = 0.4  # hidden when more than this share of its surroundings matches its colour
_SALT = 7  # busy pictures draw from other random streams than plain ones


def busy_scene(world: World, index: int, split: str, style, like) -> Scene:
    """Scene ``index`` of ``split`` in a busy world (``World.scene`` calls this)."""
    spec = world.spec
    rng = np.random.default_rng([spec.seed, SPLITS[split], index, _SALT])
    size = spec.image_size
    n = int(rng.integers(1, spec.max_objects + 1))
    if style is True:
        style = str(rng.choice(spec.styles)) if rng.random() < spec.style_probability else None
    kinds = None
    if like is not None:
        kinds, style = [(o.colour, o.shape) for o in like.objects], like.style
        n = len(kinds)
    texture = background_texture(rng, size // 2)  # smooth enough at half the side
    objects = _place(rng, spec, n, size, None, kinds)
    clean, shapes = _render(rng, objects, texture, size)
    _label(objects, shapes, clean, style, spec)
    image = photograph(Image.fromarray(clean), style, rng, size)
    quality = [
        str(t) for t in rng.choice(spec.quality_tags, int(rng.integers(0, 3)), replace=False)
    ]
    caption = training_caption(objects, style, quality, rng)
    mean = tuple(int(v) for v in texture.reshape(-1, 3).mean(0))
    return Scene(index, split, image, objects, style, quality, caption, mean)


# -- background --------------------------------------------------------------------------


def _colour(rng, low: float = 40, high: float = 215) -> np.ndarray:
    return rng.uniform(low, high, 3).astype(np.float32)


def _smooth_noise(rng, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Random values on a ``cells`` grid, bicubically enlarged: soft, blotchy variation."""
    grid = rng.uniform(0, 255, (cells, cells, channels)).astype(np.uint8)
    mode = "RGB" if channels == 3 else "L"
    image = Image.fromarray(grid.squeeze(), mode).resize((size, size), Image.BICUBIC)
    out = np.asarray(image, np.float32) / 255
    return out if channels == 3 else out[..., None]


def _one_texture(rng, size: int) -> np.ndarray:
    kind = int(rng.integers(5))
    a, b = _colour(rng), _colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # smooth colour noise around a base colour
        return a + (_smooth_noise(rng, size, int(rng.integers(3, 9))) - 0.5) * rng.uniform(60, 140)
    if kind == 1:  # linear or radial gradient
        if rng.random() < 0.6:
            angle = rng.uniform(0, 2 * np.pi)
            t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
        else:
            cx, cy = rng.uniform(0.2, 0.8, 2)
            t = np.hypot(xx - cx, yy - cy) / 0.8
        t = np.clip(t, 0, 1)[..., None]
        return a * (1 - t) + b * t
    if kind == 2:  # stripes at an angle, hard or soft
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.035, 0.18)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        wave = np.sin(2 * np.pi * phase)
        t = ((wave > 0) if rng.random() < 0.5 else (wave + 1) / 2).astype(np.float32)[..., None]
        b = a + (b - a) * rng.uniform(0.3, 0.8)  # stripes of moderate contrast
        return a * (1 - t) + b * t
    if kind == 3:  # fine checks, under the readable size (never a nameable square)
        cell = max(2, round(rng.uniform(0.025, 0.05) * size))
        ix, iy = np.meshgrid(np.arange(size) // cell, np.arange(size) // cell)
        t = ((ix + iy) % 2).astype(np.float32)[..., None]
        b = a + (b - a) * rng.uniform(0.2, 0.6)
        return a * (1 - t) + b * t
    # blotches: irregular patches of a second colour, soft edges
    field = _smooth_noise(rng, size, int(rng.integers(4, 10)), channels=1)
    t = np.clip((field - rng.uniform(0.4, 0.6)) * 8 + 0.5, 0, 1)
    return a * (1 - t) + b * t


def background_texture(rng, size: int) -> np.ndarray:
    """A textured background, float32 [size, size, 3] in 0-255 (enlarged when drawn)."""
    texture = _one_texture(rng, size)
    if rng.random() < 0.4:  # two textures blended
        alpha = rng.uniform(0.25, 0.5)
        texture = texture * (1 - alpha) + _one_texture(rng, size) * alpha
    if rng.random() < 0.3:  # a fine texture on top (paper, fabric)
        texture = texture + noise(rng, size, 1) * rng.uniform(6, 14)
    return np.clip(texture, 0, 255)


# -- clutter -----------------------------------------------------------------------------


def _clutter_colour(rng) -> tuple[int, int, int]:
    if rng.random() < 0.3:  # also the vocabulary's colours: a red line is not a red star
        return COLOURS[str(rng.choice(list(COLOURS)))]
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _clutter(rng, size: int, front: bool, objects=()) -> list[tuple]:
    """Drawing orders (kind, points, width, colour) at picture scale; never a vocabulary
    shape: lines, random-walk scribbles, dots far under the readable size, and blobs whose
    outline is irregular (several behind the objects, now and then one in front)."""
    out = []
    for _ in range(int(rng.integers(0, 3 if front else 5))):  # straight lines
        x0, y0 = rng.uniform(0, size, 2)
        length, angle = rng.uniform(0.15, 0.8) * size, rng.uniform(0, 2 * np.pi)
        end = (x0 + length * np.cos(angle), y0 + length * np.sin(angle))
        out.append(("line", [(x0, y0), end], rng.uniform(1, 3.5), _clutter_colour(rng)))
    for _ in range(int(rng.integers(0, 3))):  # scribbles
        steps = int(rng.integers(6, 18))
        turns = np.cumsum(rng.normal(0, 0.9, steps))
        lengths = rng.uniform(0.02, 0.07, steps) * size
        start = rng.uniform(0, size, 2)
        pts = start + np.cumsum(np.stack([np.cos(turns), np.sin(turns)], 1) * lengths[:, None], 0)
        out.append(("line", [tuple(p) for p in pts], rng.uniform(1, 2.5), _clutter_colour(rng)))
    dots = int(rng.integers(0, 30 if front else 60))
    colour = _clutter_colour(rng)
    for _ in range(dots):
        centre = rng.uniform(0, size, 2)
        out.append(("dot", [tuple(centre)], rng.uniform(0.6, 1.6), colour))
    blobs = int(rng.random() < 0.35) if front else int(rng.integers(1, 6))
    for _ in range(blobs):  # irregular blobs (in front: one that overlaps an object)
        k = int(rng.integers(7, 13))
        radius = rng.uniform(0.03, 0.1) * size
        centre = rng.uniform(0, size, 2)
        if front and objects:
            obj = objects[int(rng.integers(len(objects)))]
            radius = obj.radius * rng.uniform(0.6, 1.3)
            turn = rng.uniform(0, 2 * np.pi)
            centre = np.add(
                obj.centre,
                obj.radius * rng.uniform(0.2, 1.3) * np.array([np.cos(turn), np.sin(turn)]),
            )
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = radius * rng.uniform(0.35, 1.0, k)
        pts = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
        out.append(("blob", [tuple(p) for p in pts], 0, _clutter_colour(rng)))
    return out


def _draw_clutter(draws: list[tuple[ImageDraw.ImageDraw, object]], orders, scale: int) -> None:
    """Each order on every (draw, fill) pair: ``fill`` None draws its own colour."""
    for kind, pts, width, colour in orders:
        pts = [(x * scale, y * scale) for x, y in pts]
        for draw, fill in draws:
            ink = colour if fill is None else fill
            if kind == "line":
                draw.line(pts, fill=ink, width=max(1, round(width * scale)), joint="curve")
            elif kind == "dot":
                (x, y), r = pts[0], width * scale
                draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
            else:
                draw.polygon(pts, fill=ink)


# -- rendering and labels ----------------------------------------------------------------


def _render(rng, objects: list[WorldObject], texture: np.ndarray, size: int):
    """The clean picture (uint8, before style and noise) and each object's whole shape.

    Sets each object's ``mask`` (its pixels left uncovered by later objects and front
    clutter) and ``area`` (the pixels it would cover alone)."""
    s = SUPERSAMPLE
    big = size * s
    canvas = Image.fromarray(texture.astype(np.uint8)).resize((big, big), Image.BILINEAR)
    owner = Image.new("L", (big, big), 0)
    behind = _clutter(rng, size, front=False)
    front = _clutter(rng, size, front=True, objects=objects)
    _draw_clutter([(ImageDraw.Draw(canvas), None)], behind, s)
    shapes = []
    for k, obj in enumerate(objects, start=1):
        # drawn in its own box (whole pixels of the picture, so the shrink lines up)
        (cx, cy), r = obj.centre, obj.radius
        x0, y0 = max(0, int(cx - r) - 1), max(0, int(cy - r) - 1)
        x1, y1 = min(size, int(np.ceil(cx + r)) + 2), min(size, int(np.ceil(cy + r)) + 2)
        local = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
        _draw(ImageDraw.Draw(local), obj.shape, (cx - x0) * s, (cy - y0) * s, r * s, 255)
        canvas.paste(COLOURS[obj.colour], (x0 * s, y0 * s, x1 * s, y1 * s), mask=local)
        owner.paste(k, (x0 * s, y0 * s, x1 * s, y1 * s), mask=local)
        shape = np.zeros((size, size), bool)
        shape[y0:y1, x0:x1] = np.asarray(local.resize((x1 - x0, y1 - y0), Image.NEAREST)) > 0
        obj.area = int(shape.sum())
        shapes.append(shape)
    _draw_clutter([(ImageDraw.Draw(canvas), None), (ImageDraw.Draw(owner), 0)], front, s)
    owners = np.asarray(owner.resize((size, size), Image.NEAREST))
    for k, obj in enumerate(objects, start=1):
        obj.mask = owners == k
    return np.asarray(canvas.resize((size, size), Image.BOX)), shapes


def _styled(pixels: np.ndarray, style: str | None) -> np.ndarray:
    """Colours as the style leaves them ([..., 3], float)."""
    pixels = pixels.astype(np.float32)
    if style == "greyscale":
        return np.repeat(pixels @ np.float32([0.299, 0.587, 0.114])[:, None], 3, -1)
    if style == "dark":
        return pixels * DARK
    return pixels


def blends_in(obj: WorldObject, shape: np.ndarray, clean: np.ndarray, style) -> float:
    """Share of the pixels around the object (within ``SURROUND`` radii of its centre,
    outside its shape) whose colour, after the style, is within the contrast limit."""
    size = clean.shape[0]
    cx, cy, reach = obj.centre[0], obj.centre[1], SURROUND * obj.radius
    x0, x1 = max(0, int(cx - reach)), min(size, int(np.ceil(cx + reach)) + 1)
    y0, y1 = max(0, int(cy - reach)), min(size, int(np.ceil(cy + reach)) + 1)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    around = (np.hypot(xx + 0.5 - cx, yy + 0.5 - cy) <= reach) & ~shape[y0:y1, x0:x1]
    if not around.any():
        return 0.0
    pixels = _styled(clean[y0:y1, x0:x1][around], style)
    own = _styled(np.asarray(COLOURS[obj.colour])[None], style)
    limit = MIN_CONTRAST * (DARK if style == "dark" else 1)
    return float((np.abs(pixels - own).mean(-1) < limit).mean())


def _label(objects, shapes, clean: np.ndarray, style: str | None, spec) -> None:
    """Mark what the picture does not show (see the module docstring).

    Size and contrast come before the styles: a greyscale object is still named by its
    shape in training captions, which must not name a shape nobody can see."""
    size = spec.image_size
    for obj, shape in zip(objects, shapes):
        if obj.mask.sum() < 0.6 * obj.area:
            obj.visible, obj.hidden_by = False, "occlusion"
        elif 2 * obj.radius * spec.read_size / size < MIN_READ_PIXELS:
            obj.visible, obj.hidden_by = False, "size"
        elif blends_in(obj, shape, clean, style) > BLENDS_IN:
            obj.visible, obj.hidden_by = False, "background"
        elif style == "greyscale":
            obj.visible, obj.hidden_by = False, "greyscale"
        elif style == "pixelated" and 2 * obj.radius < 3 * pixel_block(size):
            obj.visible, obj.hidden_by = False, "pixelated"
        elif style == "blurry" and obj.radius < 2.5 * blur_radius(size):
            obj.visible, obj.hidden_by = False, "blurry"


def photograph(image: Image.Image, style: str | None, rng, size: int) -> Image.Image:
    """Slight blur, the style, then camera noise (and the coarse grain of "grainy")."""
    image = image.filter(ImageFilter.BoxBlur(BASE_BLUR * size / 224 * rng.uniform(0.5, 1.5)))
    if style != "grainy":
        image = _apply_style(image, style, rng, size)
    arr = np.asarray(image, np.float32) + noise(rng, size, 3) * BASE_NOISE
    if style == "grainy":  # grains about 3 px across at 224, one pixel at 64
        arr = arr + noise(rng, size, 1, grain=3) * GRAIN + noise(rng, size, 3) * 8
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


_NOISE: dict[tuple[int, int, int], np.ndarray] = {}
_TILES, _SLACK = 6, 32


def noise(rng, size: int, channels: int, grain: int = 1) -> np.ndarray:
    """Standard normal noise [size, size, channels] (grains ``grain`` pixels across): a
    window of a fixed bank, chosen, shifted and turned by ``rng``.  Drawing fresh normals
    for every picture cost more than the rest of the picture."""
    key = (size, channels, grain)
    if key not in _NOISE:
        bank_rng = np.random.default_rng([size, channels, grain])
        side = size + _SLACK
        cells = -(-side // grain)
        tiles = bank_rng.standard_normal((_TILES, cells, cells, channels), dtype=np.float32)
        if grain > 1:  # enlarge smoothly, then restore unit spread
            tiles = np.stack([
                np.stack([
                    np.asarray(Image.fromarray(t[..., c], "F").resize((side, side), Image.BILINEAR))
                    for c in range(channels)
                ], -1)
                for t in tiles
            ])  # fmt: skip
            tiles /= tiles.std()
        _NOISE[key] = tiles
    tile = _NOISE[key][int(rng.integers(_TILES))]
    dx, dy = (int(v) for v in rng.integers(0, _SLACK + 1, 2))
    window = tile[dy : dy + size, dx : dx + size]
    return np.rot90(window, int(rng.integers(4)))
