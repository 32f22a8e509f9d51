"""Move the encoder's resize into the reader threads, without changing a single pixel.

On two cores the image tower's thread also ran the processor's resize of every 512x512
picture to 224 (most of the preprocessing, ~8 % of a ViT-B/32 audit).  The reader
threads can do that resize while the tower runs, when it is provably the same operation:
a transformers CLIP processor resizes the shortest edge with Pillow's ``resize`` and the
processor's filter, so for a square RGB picture ``image.resize((n, n), filter)`` here is
bit for bit what it would have done; the processor's own resize of an n x n picture is
then a copy.  Other shapes and other encoders are left to the encoder as before.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

Prepare = Callable[[Image.Image], Image.Image]


def reader_resize(encoder: object) -> Prepare | None:
    """A resize for the reader threads, or None when the encoder's is not known exactly."""
    processor = getattr(getattr(encoder, "processor", None), "image_processor", None)
    if processor is None or not getattr(processor, "do_resize", False):
        return None
    size = getattr(processor, "size", None)
    if not isinstance(size, dict) or set(size) != {"shortest_edge"}:
        return None
    edge = int(size["shortest_edge"])
    resample = int(getattr(processor, "resample", Image.BICUBIC))

    def resize(image: Image.Image) -> Image.Image:
        width, height = image.size
        if image.mode != "RGB" or width != height or width <= edge:
            return image
        return image.resize((edge, edge), resample=resample)

    return resize
