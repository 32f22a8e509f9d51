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
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from clipprobe_ext.encoders.identity import Preprocessing

Prepare = Callable[[Image.Image], Image.Image]


def reader_resize(spec: Preprocessing) -> Prepare | None:
    """A resize for the reader threads, or None when the encoder's is not known exactly
    (``Preprocessing.resize_edge``: set only where it is Pillow's resize of the short side)."""
    if spec.resize_edge is None or spec.resample is None:
        return None
    edge, resample = spec.resize_edge, spec.resample

    def resize(image: Image.Image) -> Image.Image:
        width, height = image.size
        if image.mode != "RGB" or width != height or width <= edge:
            return image
        return image.resize((edge, edge), resample=resample)

    return resize
