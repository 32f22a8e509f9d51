"""Pictures of the world that make claims CLIP cannot judge: where things are, and how many.

Two kinds, drawn with the world's own shapes, colours and renderer (no style, so every
object is visible unless another covers it):

- ``position_scene``: a world scene (``World.scene``, its ``eval`` split) with two
  visible objects far enough apart, and the claim about them that holds ("a red circle
  left of a blue square", or "above") together with its swap ("a blue square left of a
  red circle"): the same words, the claim false.
- ``count_scene``: ``k`` copies (2 or 3) of one object, sometimes beside one other
  object, and the claim that holds ("two red circles") with the wrong number
  ("three red circles").

Every claim's truth is known from the drawing.  The world model never saw these words in
training ("two", plurals, "left of"), as a real CLIP saw them only as a bag of words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from world.scenes import SPLITS, World, WorldObject, _background, _label, _render

NUMBERS = {2: "two", 3: "three"}
#: Objects this far apart (a share of the side) make an unambiguous left/right or above.
MIN_APART = 0.3


@dataclass(frozen=True)
class Claim:
    """A picture, the claim that holds in it and the claim that does not."""

    kind: str  # "position" or "count"
    image: Image.Image
    true: str
    wrong: str
    others: tuple[str, ...]  # the phrases of the picture's other visible objects


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "sh", "ch", "x")) else "s")


def position_scene(world: World, index: int) -> Claim | None:
    """Scene ``index`` with a true position claim and its swap; None when the scene has
    no two visible objects far enough apart."""
    scene = world.scene(index, split="eval", style=None)
    size = world.spec.image_size
    visible = [o for o in scene.objects if o.visible]
    rng = np.random.default_rng([world.spec.seed, 7, index])
    pairs = [(a, b) for a in visible for b in visible if a is not b and a.phrase != b.phrase]
    rng.shuffle(pairs)
    for a, b in pairs:
        dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
        if dx >= MIN_APART * size and abs(dy) < dx:
            true, wrong = f"{a.phrase} left of {b.phrase}", f"{b.phrase} left of {a.phrase}"
        elif dy >= MIN_APART * size and abs(dx) < dy:
            true, wrong = f"{a.phrase} above {b.phrase}", f"{b.phrase} above {a.phrase}"
        else:
            continue
        others = tuple(o.phrase for o in visible if o is not a and o is not b)
        return Claim("position", scene.image, true, wrong, others)
    return None


def count_scene(world: World, index: int) -> Claim | None:
    """``k`` copies of one object (k = 2 or 3), sometimes with one other object; None
    when they do not fit apart or one of them ends up covered."""
    spec = world.spec
    size = spec.image_size
    rng = np.random.default_rng([spec.seed, SPLITS["eval"], 1_000_000 + index])
    k = int(rng.integers(2, 4))
    colour, shape = str(rng.choice(spec.colours)), str(rng.choice(spec.shapes))
    kinds = [(colour, shape)] * k
    if rng.random() < 0.5:
        other = (str(rng.choice(spec.colours)), str(rng.choice(spec.shapes)))
        if other != (colour, shape):
            kinds.append(other)
    background = _background(rng)
    objects: list[WorldObject] = []
    for _ in range(300):
        if len(objects) == len(kinds):
            break
        r = rng.uniform(0.11, 0.17) * size
        c = (rng.uniform(r, size - r), rng.uniform(r, size - r))
        if all(np.hypot(c[0] - o.centre[0], c[1] - o.centre[1]) >= 2.2 * r for o in objects):
            objects.append(WorldObject(*kinds[len(objects)], c, r, np.zeros((size, size), bool)))
    if len(objects) < len(kinds):
        return None
    image, objects = _render(objects, background, size)
    _label(objects, None, background, size)
    if not all(o.visible for o in objects):
        return None
    phrase = f"{colour} {plural(shape)}"
    wrong = 5 - k  # two <-> three
    others = tuple(o.phrase for o in objects[k:])
    return Claim("count", image, f"{NUMBERS[k]} {phrase}", f"{NUMBERS[wrong]} {phrase}", others)
