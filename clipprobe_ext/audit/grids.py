"""Is a WebUI grid's picture also in the folder?  Compared by pixels, not by name or seed.

The WebUI can save both a batch's pictures and their grid into one outputs folder; the
audit must count each picture once.  A grid cell is the picture itself pasted into the
grid, so the two are the same pixels (PNG) or nearly (JPEG/WebP, each compressed on its
own).  Both are reduced to a 32×32 average ("fingerprint") and compared by their mean
absolute difference.  Measured on the bench world's scenes (``bench/world``; each batch a
scene and three more seeds of its prompt, saved alone and as a 2×2 grid, in PNG, JPEG and
WebP at quality 50 to 95): the same picture differs by at most 0.44 levels at
512 px and 3.5 at 64 px, another seed of the same prompt by at least 17 at 512 px and 4.2
at 64 px.  Names and infotexts are not used: a grid's infotext is only its first
picture's, and names change with the user's settings.

Public API: ``fingerprint(image)``, ``same_picture(a, b)``, ``FolderPictures`` (the
fingerprints of a folder's pictures of one size, read once and kept).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from PIL import Image

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.images import load_image

SIDE = 32  # pixels a side of a fingerprint
#: Mean absolute difference (0..255 levels) up to which two fingerprints are one picture.
SAME_PICTURE = 4.0


def fingerprint(image: Image.Image) -> np.ndarray:
    """The picture as 32×32 RGB box averages, float32."""
    small = image.convert("RGB").resize((SIDE, SIDE), Image.BOX)
    return np.asarray(small, dtype=np.float32)


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) <= SAME_PICTURE


class FolderPictures:
    """Fingerprints of pictures, each file decoded at most once for all the grids."""

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[int, int] | None] = {}
        self._prints: dict[str, np.ndarray | None] = {}

    @property
    def decoded(self) -> int:
        """Files decoded to compare (their header had the cell's size)."""
        return len(self._prints)

    def find(
        self, cell: Image.Image, size: tuple[int, int], candidates: Iterable[str]
    ) -> str | None:
        """The first of ``candidates`` of ``size`` pixels that is ``cell``, or None."""
        wanted = fingerprint(cell)
        for path in candidates:
            found = self._fingerprint(path, size)
            if found is not None and same_picture(wanted, found):
                return path
        return None

    def _fingerprint(self, path: str, size: tuple[int, int]) -> np.ndarray | None:
        if path not in self._sizes:
            self._sizes[path] = _header_size(path)
        if self._sizes[path] != size:
            return None
        if path not in self._prints:
            try:
                self._prints[path] = fingerprint(load_image(path))
            except ClipProbeError:  # broken or gone since it was audited: not this cell
                self._prints[path] = None
        return self._prints[path]


def _header_size(path: str) -> tuple[int, int] | None:
    try:
        with Image.open(path) as header:  # the size, without decoding the pixels
            return header.size
    except (OSError, ValueError, SyntaxError):
        return None


def same_folder(path: str, other: str) -> bool:
    return os.path.dirname(path) == os.path.dirname(other)
