"""A procedural picture world whose truth is known for every phrase.

Pictures hold 1-4 objects ("a red circle") of random size and position on a plain
background; a global style may change the whole picture (greyscale, pixelated, ...).
Captions for training add quality tags ("masterpiece") at random, as real prompt/image
data does: they carry no visual meaning, and a model trained here learns that.

Honest labels: what a style or another object hides is not called present.
- ``greyscale`` hides every colour: each object is ``hidden`` (its shape alone, "a circle",
  is still visible and is what the training caption says);
- ``pixelated`` hides objects whose diameter is under ``3 x`` the pixel block;
- ``blurry`` hides objects whose radius is under ``2.5 x`` the blur radius;
- an object whose colour, after the style, is too close to the background's is hidden
  (by the style, or by ``background`` when there is none).
- an object covered for more than 40 % by later objects is hidden (``occlusion``).
Hidden objects are neither present nor absent: benchmarks leave them out.

A second domain, "busy" (``domain_spec("busy")``, ``world.busy``), draws the same
vocabulary at 224 px on textured, cluttered backgrounds, at several scales, with camera
noise; its labels add objects too small to read or lost in their surroundings.

    from world import World, WorldSpec
    world = World(WorldSpec(seed=0, image_size=64))
    scene = world.scene(17, split="eval")     # deterministic per (seed, split, index)
    scene.image                                # PIL RGB, image_size x image_size
    scene.style                                # "pixelated" or None
    scene.caption                              # "masterpiece, a red circle, pixelated, ..."
    for obj in scene.objects:                  # in drawing order
        obj.phrase, obj.colour, obj.shape      # "a red circle", "red", "circle"
        obj.mask                               # bool array [H, W]: its visible pixels
        obj.visible, obj.hidden_by             # False, "pixelated" (or "greyscale", ...)
    scene.present_phrases()                    # visible objects' phrases + the style
    world.spec.object_phrases()                # every "a {colour} {shape}" of the vocabulary
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 215, 20),
    "purple": (140, 40, 180),
    "orange": (245, 130, 20),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon", "diamond", "ring")
# The default world's shapes: hexagon and diamond are left out, being a circle and a
# square to within a few pixels at this size (any world may name them).
DEFAULT_SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
STYLES = ("greyscale", "pixelated", "blurry", "dark", "grainy")
# Other ways captions name a style (caption variety); evaluation prompts use the first.
STYLE_WORDS = {
    "greyscale": ("greyscale", "black and white"),
    "pixelated": ("pixelated", "pixel art"),
    "blurry": ("blurry", "out of focus"),
    "dark": ("dark", "low light"),
    "grainy": ("grainy", "film grain"),
}
QUALITY_TAGS = (
    "masterpiece",
    "best quality",
    "high quality",
    "highly detailed",
    "8k",
    "award winning",
    "trending on artstation",
    "sharp focus",
)
SPLITS = {"train": 0, "eval": 1, "bank": 2}
DOMAINS = ("plain", "busy")


@dataclass(frozen=True)
class WorldSpec:
    """Everything that defines a world; two equal specs draw identical pictures."""

    seed: int = 0
    image_size: int = 64
    colours: tuple[str, ...] = tuple(COLOURS)
    shapes: tuple[str, ...] = DEFAULT_SHAPES
    styles: tuple[str, ...] = STYLES
    quality_tags: tuple[str, ...] = QUALITY_TAGS
    max_objects: int = 4
    style_probability: float = 0.5
    radius: tuple[float, float] = (0.15, 0.3)  # object radius as a share of the side
    # "plain" (one flat background colour) or "busy" (``world.busy``: textures, clutter,
    # objects at several scales, camera noise); see ``domain_spec`` for the busy defaults
    domain: str = "plain"
    # Busy labels: an object narrower than ``MIN_READ_PIXELS`` once the picture is shrunk
    # to this side (the smallest model input the labels are honest for) is hidden.
    read_size: int = 64

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; one of {', '.join(DOMAINS)}")

    def object_phrases(self) -> list[str]:
        return [object_phrase(c, s) for c in self.colours for s in self.shapes]

    def key(self, seed_free: bool = False) -> str:
        """Short hash of the spec (without the seed when ``seed_free``): cache folder names."""
        data = asdict(self)
        if self.domain == "plain":  # the plain world keeps the keys it had before domains
            del data["domain"], data["read_size"]
        if seed_free:
            data.pop("seed")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def domain_spec(domain: str = "plain", seed: int = 0, **changes) -> WorldSpec:
    """The world of ``domain``: busy pictures are 224 px with objects from small to large."""
    if domain == "busy":
        changes = {"image_size": 224, "radius": (0.07, 0.32), **changes}
    return WorldSpec(seed=seed, domain=domain, **changes)


def object_phrase(colour: str | None, shape: str) -> str:
    word = colour or shape
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}" + (f" {shape}" if colour else "")


@dataclass
class WorldObject:
    colour: str
    shape: str
    centre: tuple[float, float]  # pixels
    radius: float  # pixels
    mask: np.ndarray = field(repr=False)  # bool [H, W], the pixels of it left uncovered
    area: int = 0  # pixels the object would cover alone
    visible: bool = True
    hidden_by: str | None = None  # the style or "occlusion" that hides it

    @property
    def phrase(self) -> str:
        return object_phrase(self.colour, self.shape)


@dataclass
class Scene:
    index: int
    split: str
    image: Image.Image
    objects: list[WorldObject]
    style: str | None
    quality: list[str]  # quality tags of the training caption
    caption: str  # training caption: visible content + quality tags, random order
    background: tuple[int, int, int]

    def present_phrases(self) -> list[str]:
        """Phrases that are truly visible: objects not hidden, and the style."""
        out = [o.phrase for o in self.objects if o.visible]
        return out + ([self.style] if self.style else [])

    def hidden_phrases(self) -> list[str]:
        """Phrases of objects that are drawn but hidden (neither present nor absent)."""
        return [o.phrase for o in self.objects if not o.visible]

    def canonical_caption(self) -> str:
        """The content alone in a fixed order (retrieval targets)."""
        return ", ".join(sorted(_content_phrases(self.objects, self.style, None)))


class World:
    def __init__(self, spec: WorldSpec | None = None) -> None:
        self.spec = spec or WorldSpec()

    def rng(self, index: int, split: str) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, SPLITS[split], index])

    def scene(
        self, index: int, split: str = "train", style: str | None | bool = True, like=None
    ) -> Scene:
        """Scene ``index`` of ``split``; ``style`` forces one (``None``: no style).

        ``like``: another scene whose objects (colour and shape) and style this one draws
        again in a new layout, as another seed of the same prompt would.
        """
        if self.spec.domain == "busy":
            from world.busy import busy_scene

            return busy_scene(self, index, split, style, like)
        spec, rng = self.spec, self.rng(index, split)
        size = spec.image_size
        n = int(rng.integers(1, spec.max_objects + 1))
        if style is True:
            style = str(rng.choice(spec.styles)) if rng.random() < spec.style_probability else None
        kinds = None
        if like is not None:
            kinds, style = [(o.colour, o.shape) for o in like.objects], like.style
            n = len(kinds)
        background = _background(rng)
        objects = _place(rng, spec, n, size, background, kinds)
        image, objects = _render(objects, background, size)
        image = _apply_style(image, style, rng, size)
        _label(objects, style, background, size)
        quality = [
            str(t) for t in rng.choice(spec.quality_tags, int(rng.integers(0, 3)), replace=False)
        ]
        caption = training_caption(objects, style, quality, rng)
        return Scene(index, split, image, objects, style, quality, caption, background)


def _background(rng: np.random.Generator) -> tuple[int, int, int]:
    base = rng.uniform(95, 165)
    tint = rng.uniform(-18, 18, 3)
    return tuple(int(v) for v in np.clip(base + tint, 0, 255))


def _place(rng, spec: WorldSpec, n: int, size: int, background, kinds=None) -> list[WorldObject]:
    objects: list[WorldObject] = []
    used: set[tuple[str, str]] = set()
    for attempt in range(400 if kinds else 60):
        if len(objects) == n:
            break
        if kinds:
            colour, shape = kinds[len(objects)]
        else:
            colour, shape = str(rng.choice(spec.colours)), str(rng.choice(spec.shapes))
        if (colour, shape) in used:
            continue
        # Forced objects that do not fit after many tries shrink to the smallest size.
        low = spec.radius[0] if attempt < 200 else spec.radius[0] * 0.8
        r = rng.uniform(low, spec.radius[1] if attempt < 200 else low) * size
        c = (rng.uniform(r, size - r), rng.uniform(r, size - r))
        # Little overlap: centres at least 1.3 radii apart.
        if any(
            np.hypot(c[0] - o.centre[0], c[1] - o.centre[1]) < 1.3 * max(r, o.radius)
            for o in objects
        ):
            continue
        used.add((colour, shape))
        objects.append(WorldObject(colour, shape, c, r, np.zeros((size, size), bool)))
    return objects


def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    def poly(k: int, start: float, radii=(1.0,)) -> list[tuple[float, float]]:
        pts = []
        for i in range(k * len(radii)):
            a = start + 2 * np.pi * i / (k * len(radii))
            rr = r * radii[i % len(radii)]
            pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
        return pts

    if shape == "square":
        return poly(4, np.pi / 4, (1.0,))
    if shape == "triangle":
        return poly(3, -np.pi / 2)
    if shape == "star":
        return poly(5, -np.pi / 2, (1.0, 0.42))
    if shape == "hexagon":
        return poly(6, 0)
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.65 * r, cy), (cx, cy + r), (cx - 0.65 * r, cy)]
    if shape == "cross":
        w = 0.33 * r
        return [
            (cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w),
            (cx + r, cy + w), (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r),
            (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w),
        ]  # fmt: skip
    return None  # circle, ring: ellipses


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx, cy, r, fill) -> None:
    outline = _outline(shape, cx, cy, r)
    if outline is not None:
        draw.polygon(outline, fill=fill)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        draw.ellipse((cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r), fill=0)
    else:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)


def _render(objects: list[WorldObject], background, size: int, scale: int = 4):
    """Draw at ``scale`` x and shrink (smooth edges); masks are the uncovered pixels."""
    big = size * scale
    image = Image.new("RGB", (big, big), background)
    owner = Image.new("L", (big, big), 0)  # which object (1-based) owns each pixel
    for k, obj in enumerate(objects, start=1):
        shape_mask = Image.new("L", (big, big), 0)
        cx, cy, r = obj.centre[0] * scale, obj.centre[1] * scale, obj.radius * scale
        _draw(ImageDraw.Draw(shape_mask), obj.shape, cx, cy, r, 255)
        image.paste(COLOURS[obj.colour], mask=shape_mask)
        owner.paste(k, mask=shape_mask)
        obj.area = int((np.asarray(shape_mask.resize((size, size), Image.NEAREST)) > 0).sum())
    small = image.resize((size, size), Image.BOX)
    owners = np.asarray(owner.resize((size, size), Image.NEAREST))
    for k, obj in enumerate(objects, start=1):
        obj.mask = owners == k
    return small, objects


def _apply_style(image: Image.Image, style: str | None, rng, size: int) -> Image.Image:
    if style is None:
        return image
    if style == "greyscale":
        return image.convert("L").convert("RGB")
    if style == "pixelated":
        block = pixel_block(size)
        small = image.resize((size // block, size // block), Image.BOX)
        return small.resize((size, size), Image.NEAREST)
    if style == "blurry":
        return image.filter(ImageFilter.GaussianBlur(blur_radius(size)))
    if style == "dark":
        return Image.fromarray((np.asarray(image, np.float32) * DARK).astype(np.uint8))
    if style == "grainy":
        noise = rng.normal(0, 32, (size, size, 1))
        arr = np.asarray(image, np.float32) + noise
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    raise ValueError(f"unknown style {style!r}")


DARK = 0.4
MIN_CONTRAST = 30.0  # mean |channel difference| to the background, after the style


def pixel_block(size: int) -> int:
    return max(2, size // 12)


def blur_radius(size: int) -> float:
    return size / 28


def _styled_colour(rgb, style: str | None) -> np.ndarray:
    c = np.asarray(rgb, np.float64)
    if style == "greyscale":
        return np.full(3, c @ [0.299, 0.587, 0.114])
    if style == "dark":
        return c * DARK
    return c


def _label(objects: list[WorldObject], style: str | None, background, size: int) -> None:
    """Mark what the picture does not show (see the module docstring)."""
    for obj in objects:
        if obj.mask.sum() < 0.6 * obj.area:
            obj.visible, obj.hidden_by = False, "occlusion"
        elif style == "greyscale":
            obj.visible, obj.hidden_by = False, "greyscale"
        elif style == "pixelated" and 2 * obj.radius < 3 * pixel_block(size):
            obj.visible, obj.hidden_by = False, "pixelated"
        elif style == "blurry" and obj.radius < 2.5 * blur_radius(size):
            obj.visible, obj.hidden_by = False, "blurry"
        else:
            diff = np.abs(
                _styled_colour(COLOURS[obj.colour], style) - _styled_colour(background, style)
            )
            if diff.mean() < MIN_CONTRAST * (DARK if style == "dark" else 1):
                obj.visible, obj.hidden_by = False, style or "background"


def _content_phrases(objects, style, rng, style_word: str | None = None) -> list[str]:
    out = []
    for obj in objects:
        if obj.visible:
            out.append(obj.phrase)
        elif obj.hidden_by == "greyscale":
            out.append(object_phrase(None, obj.shape))  # the shape is still there
    if style:
        out.append(style_word or style)
    return out


def training_caption(objects, style, quality, rng: np.random.Generator) -> str:
    """What the picture shows plus its quality tags, in random order, style words varied."""
    word = str(rng.choice(STYLE_WORDS[style])) if style else None
    parts = _content_phrases(objects, style, rng, word) + list(quality)
    order = rng.permutation(len(parts))
    return ", ".join(parts[i] for i in order)
