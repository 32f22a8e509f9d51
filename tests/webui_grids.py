"""WebUI grids as the WebUI makes them, for the tests of grid recognition everywhere."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, PngImagePlugin


def webui_grid(pictures, rows, background=(255, 255, 255)):
    """``modules/images.py`` ``image_grid`` of 1.10.1 with ``rows`` given (its layout: cells
    of the largest size, row by row, a smaller image centred, background elsewhere)."""
    cols = -(-len(pictures) // rows)
    w, h = map(max, zip(*(img.size for img in pictures)))
    grid = Image.new("RGB", size=(cols * w, rows * h), color=background)
    for i, img in enumerate(pictures):
        img_w, img_h = img.size
        w_offset = 0 if img_w == w else (w - img_w) // 2
        h_offset = 0 if img_h == h else (h - img_h) // 2
        grid.paste(img, box=(i % cols * w + w_offset, i // cols * h + h_offset))
    return grid


def grid_infotext(prompt, negative, width, height, extra=""):
    """The infotext a grid carries: its first picture's (``use_main_prompt``)."""
    return (
        f"{prompt}\nNegative prompt: {negative}\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
        f"Seed: 1, Size: {width}x{height}, Batch size: 4, Batch pos: 0{extra}"
    )


def noisy_picture(seed, size=(64, 48)):
    """A seeded noisy picture (never uniform, as a generated image never is)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))


def png_bytes(image, text=None):
    """``image`` as a PNG file's bytes, ``text`` in its ``parameters`` chunk."""
    info = None
    if text is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", text)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()
