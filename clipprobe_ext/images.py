"""Load any image the user hands over, safely, as a small RGB picture for CLIP.

Images come from uploads, files and base64 text, so anything may arrive: truncated
downloads, random bytes, 16-bit scans, transparent PNGs, decompression bombs.  A bad image
must be a clear ``ImageError``, never a half-grey picture or an exhausted machine.  CLIP
reads 224 pixels a side, so big images are shrunk on the way in.

A source is bytes, a path (``str`` or ``os.PathLike``: always a path, never guessed to be
base64) or a PIL image.  Base64 text is turned into bytes by ``decode_base64`` first, the
one base64 rule of every entry point.

Public API: ``load_image(source)``, ``load_image_with_parameters(source)``;
``decode_image(source) -> (RGB at full size, parameters)`` and ``fit(image)`` (the two
halves of the latter, for a caller that cuts the full picture first: a WebUI grid);
``decode_base64(text, what)``; ``check_image_path(path)``; ``to_rgb(image)``.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import math
import os
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import ImageError
from .infotext import read_parameters

# 64 megapixels (8000 x 8000) is far beyond any generated or upscaled picture people
# analyse, and decoding it already takes ~256 MB as RGBA; larger headers are refused
# before any pixel is decoded.  Pillow's own bomb limit (~179 MP) would allow 4x more.
MAX_PIXELS = 64_000_000
# CLIP sees 224 px; anything above this is shrunk right after decoding to save memory.
MAX_SIDE = 4096

ImageSource = str | os.PathLike | bytes | bytearray | Image.Image
_DATA_URL = re.compile(r"^data:image/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
_SHOWN_NAME = 200  # characters of a file name quoted in a message


def load_image(source: ImageSource) -> Image.Image:
    """The image as RGB, at most MAX_SIDE pixels a side; ImageError when unusable."""
    return load_image_with_parameters(source)[0]


def load_image_with_parameters(source: ImageSource) -> tuple[Image.Image, str | None]:
    """RGB image plus the WebUI parameters text it carries (read before conversion)."""
    image, parameters = decode_image(source)
    return fit(image, source), parameters


def decode_image(source: ImageSource) -> tuple[Image.Image, str | None]:
    """The whole picture as RGB (not shrunk), and its WebUI parameters text or None.

    For a PIL ``source`` in RGB the result is that very image: ``fit`` it, crop it or copy
    it, never draw on it."""
    if isinstance(source, Image.Image):
        image = source
        _check_size(image.size)
        _decode(image)
    else:
        image = _open_checked(source)
    parameters = read_parameters(image)
    return to_rgb(image), parameters


def fit(image: Image.Image, source: object = None) -> Image.Image:
    """``image`` at most MAX_SIDE pixels a side (a shrunk copy when ``image is source``:
    the caller's own picture is never changed in place)."""
    if max(image.size) <= MAX_SIDE:
        return image
    if image is source:
        image = image.copy()
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS, reducing_gap=3.0)
    return image


def decode_base64(text: str, what: str = "The image") -> bytes:
    """The bytes of base64 text, with or without a ``data:image/...;base64,`` prefix.

    Strict: only the base64 alphabet with its padding (white space is ignored), so a file
    path, a URL or text that merely resembles base64 is refused, never opened or guessed.
    """
    body = _DATA_URL.sub("", text.strip(), count=1)
    body = "".join(body.split())
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(
            f"{what} must be a base64-encoded image or a data:image/...;base64 URL."
        ) from exc
    if not data:
        raise ImageError(f"{what} is empty.")
    return data


def _open_checked(source: str | os.PathLike | bytes | bytearray) -> Image.Image:
    """Open, check the header size, verify the file's structure, then decode it."""
    opener = _opener(source)
    with _pillow_errors():
        probe = opener()
        _check_size(probe.size)
        probe.verify()  # chunk checksums and structure, without decoding pixels
        image = opener()
        if image.format == "JPEG" and max(image.size) > MAX_SIDE:
            # decode at 1/2, 1/4 or 1/8 scale, never below MAX_SIDE on the long side
            f = MAX_SIDE / max(image.size)
            image.draft("RGB", (math.ceil(image.width * f), math.ceil(image.height * f)))
        _decode(image)
    return image


def _opener(source: str | os.PathLike | bytes | bytearray):
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        return lambda: Image.open(io.BytesIO(data))
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    check_image_path(path)
    if os.path.isdir(path):
        raise ImageError(f"Could not read the image: {_shown(path)} is a folder.")
    return lambda: Image.open(path)


def check_image_path(path: str | os.PathLike) -> None:
    """``ImageError`` saying why ``path`` cannot be opened: missing, a dangling symbolic
    link, a symbolic-link loop (which ``os.path.exists`` reports as plain "missing")."""
    try:
        os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        name = _shown(os.fspath(path))
        code = getattr(exc, "errno", None)
        if code == errno.ELOOP:
            raise ImageError(f"Could not read {name}: it is a symbolic-link loop.") from exc
        if code == errno.ENOENT and os.path.islink(path):
            target = os.readlink(path)
            raise ImageError(
                f"Could not read {name}: it is a symbolic link to {target}, which does not exist."
            ) from exc
        if code in (errno.ENOENT, errno.ENAMETOOLONG) or isinstance(exc, ValueError):
            raise ImageError(f"Could not find the image file: {name}") from exc
        raise ImageError(f"Could not read {name}: {exc.strerror or exc}.") from exc


def _shown(name: str) -> str:
    """A file name for a message: a long one (base64 text sent as a path) is cut short."""
    return name if len(name) <= _SHOWN_NAME else name[: _SHOWN_NAME - 1] + "…"


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"Could not read the image: it is {width}x{height} pixels.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is too large: {width}x{height} pixels "
            f"({width * height:,}); the limit is {MAX_PIXELS:,}."
        )


def _decode(image: Image.Image) -> None:
    """Decode all pixels now, so that a truncated file fails here and not later."""
    with _pillow_errors():
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        if previous:  # another extension may have switched this on globally
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


@contextmanager
def _pillow_errors() -> Iterator[None]:
    """Turns whatever Pillow raises on bad input into one clear ImageError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            count = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
            raise ImageError(
                f"The image is too large: {count}; the limit is {MAX_PIXELS:,}."
            ) from exc
        except FileNotFoundError as exc:
            raise ImageError(f"Could not find the image file: {exc.filename}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError("Could not read the image: it is not an image file.") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            reason = str(exc).rstrip(".") or type(exc).__name__
            if "truncated" in reason.lower():
                reason = "the file is truncated"
            raise ImageError(f"Could not read the image: {reason}.") from exc


# --------------------------------------------------------------------------- modes


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: transparency over white, 16-bit and float scaled to 8 bits."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"Could not read the image: mode {mode} is not supported.") from exc


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit and 32-bit integers (0..65535) and floats (0..1 or 0..255) to 8 bits.

    Pillow's own convert() clips these to 255, which turns most 16-bit pictures white.
    """
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0  # 0..1 floats, else already 0..255
        values = np.nan_to_num(values, nan=0.0, posinf=255.0 / scale, neginf=0.0) * scale
    else:  # 16-bit samples, also when Pillow hands them over as 32-bit "I"
        values = np.clip(values, 0, 65535) / 257.0
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")
