"""Loading images safely: every source kind, every mode, and every way a file can be bad."""

from __future__ import annotations

import base64
import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipprobe_ext.errors import ImageError
from clipprobe_ext.images import (
    MAX_SIDE,
    decode_base64,
    load_image,
    load_image_with_parameters,
    to_rgb,
)


def encoded(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiny_png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims a huge size; only one row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- sources


def test_loads_a_path_str_pathlike_bytes_and_decoded_base64(tmp_path: Path) -> None:
    original = Image.new("RGB", (20, 10), (10, 200, 30))
    data = encoded(original)
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    sources = [
        str(path),
        path,
        data,
        bytearray(data),
        decode_base64(b64),
        decode_base64("data:image/png;base64," + b64),
        decode_base64(" data:image/png;base64,\n" + b64[:40] + "\n" + b64[40:] + "\n"),
        original,
    ]
    for source in sources:
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (20, 10)
        assert image.getpixel((3, 3)) == (10, 200, 30)


def test_a_string_is_a_path_never_base64(tmp_path: Path, monkeypatch) -> None:
    """Before: a string of 16 base64 characters that was no file was decoded as an image."""
    b64 = base64.b64encode(encoded(Image.new("RGB", (4, 4)))).decode()
    monkeypatch.chdir(tmp_path)
    for text in (b64, "data:image/png;base64," + b64):
        with pytest.raises(ImageError, match="Could not find the image file: "):
            load_image(text)
    # a file whose name is valid base64 is opened as that file
    Image.new("RGB", (3, 2), (1, 2, 3)).save(tmp_path / "QUJDRA==", format="PNG")
    assert load_image("QUJDRA==").getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        "aGVsbG8",  # valid letters, missing padding: strict means refused
        "aGVs-G8_",  # the URL-safe alphabet is another encoding
        "%%%%",
        "data:image/png;base64,@@",
        "data:image/png,rawbytes",
        "/home/me/picture.png",
        "file:///home/me/picture.png",
    ],
)
def test_one_strict_base64_rule(text: str) -> None:
    with pytest.raises(ImageError, match="must be a base64-encoded image or a data:image"):
        decode_base64(text)
    with pytest.raises(ImageError, match="^'image' must be"):
        decode_base64(text, "'image'")


def test_empty_base64_is_refused() -> None:
    for text in ("", "  ", "data:image/png;base64,"):
        with pytest.raises(ImageError, match="is empty"):
            decode_base64(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="Could not find the image file: .*nothing.png"):
        load_image(tmp_path / "nothing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(str(tmp_path))


def test_random_bytes_are_not_an_image() -> None:
    with pytest.raises(ImageError, match="Could not read the image: it is not an image file"):
        load_image(os.urandom(2000))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file_is_an_error_not_a_grey_picture(fmt: str, keep: float) -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    data = encoded(noise, fmt)
    with pytest.raises(ImageError, match="Could not read the image: the file is truncated"):
        load_image(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match="Could not read the image"):
        load_image(Image.open(io.BytesIO(data[: int(len(data) * keep)])))  # lazy PIL image


def test_png_with_a_corrupted_chunk_is_an_error() -> None:
    data = bytearray(encoded(Image.new("RGB", (32, 32), "blue")))
    data[40] ^= 0xFF  # inside the IDAT data: its checksum no longer matches
    with pytest.raises(ImageError, match="Could not read the image"):
        load_image(bytes(data))


# 400 MP trips Pillow's own bomb check, 81 MP and 64.008 MP only ours
@pytest.mark.parametrize("size", [(20000, 20000), (9000, 9000), (8001, 8000)])
def test_huge_header_is_refused_fast_with_its_size(size: tuple[int, int]) -> None:
    data = tiny_png_claiming(*size)
    started = time.perf_counter()
    with pytest.raises(ImageError, match="too large") as caught:
        load_image(data)
    assert time.perf_counter() - started < 1.0
    assert f"{size[0] * size[1]:,}" in str(caught.value)


def test_huge_in_memory_image_is_refused() -> None:
    huge = Image.new("1", (8001, 8000))
    with pytest.raises(ImageError, match="8001x8000"):
        load_image(huge)


def test_large_images_are_downscaled_keeping_the_aspect_ratio() -> None:
    big = Image.new("RGB", (5000, 2500), (255, 0, 0))
    for source in (big, encoded(big, "JPEG", quality=90), encoded(big, "PNG")):
        image = load_image(source)
        assert max(image.size) <= MAX_SIDE
        assert image.size[0] == 2 * image.size[1]
        r, g, b = image.getpixel((100, 100))
        assert r > 240 and g < 15 and b < 15
    assert big.size == (5000, 2500)  # the caller's image is left alone


def test_large_jpeg_is_shrunk_to_the_side_limit() -> None:
    data = encoded(Image.new("RGB", (9000, 4000), (0, 0, 255)), "JPEG")
    image = load_image(data)
    # draft() decodes at 1/2 scale (4500 px), thumbnail() takes it to the limit
    assert image.size == (MAX_SIDE, round(4000 * MAX_SIDE / 9000))


# --------------------------------------------------------------------------- modes


def test_rgba_is_composited_over_white() -> None:
    image = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    image.putpixel((0, 0), (0, 0, 255, 255))
    image.putpixel((1, 0), (0, 0, 0, 128))
    rgb = load_image(encoded(image))
    assert rgb.getpixel((0, 0)) == (0, 0, 255)
    assert rgb.getpixel((2, 2)) == (255, 255, 255)
    assert rgb.getpixel((1, 0)) == (127, 127, 127)


def test_la_and_palette_with_transparency_are_composited_over_white() -> None:
    la = Image.new("LA", (2, 2), (0, 0))
    assert load_image(encoded(la)).getpixel((0, 0)) == (255, 255, 255)
    p = Image.new("P", (2, 2), 0)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    data = encoded(p, transparency=0)
    rgb = load_image(data)
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 1)) == (0, 255, 0)


def test_greyscale_and_bilevel_become_rgb() -> None:
    assert load_image(Image.new("L", (2, 2), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert load_image(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_images_are_scaled_not_clipped(mode: str) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    if mode == "I;16":
        image = Image.fromarray(values, "I;16")
    elif mode == "I;16B":
        image = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    else:
        image = Image.fromarray(values.astype(np.int32), "I")
    assert image.mode == mode
    rgb = to_rgb(image)
    assert [rgb.getpixel((x, 0))[0] for x in range(4)] == [0, 1, 128, 255]


def test_16_bit_png_file_round_trip() -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    data = encoded(Image.fromarray(values, "I;16"))
    rgb = load_image(data)
    assert [rgb.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128,) * 3, (255,) * 3]


def test_float_images_are_scaled() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert [to_rgb(unit).getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    bytes_range = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32), "F")
    assert [to_rgb(bytes_range).getpixel((x, 0))[0] for x in range(3)] == [0, 100, 255]


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    rgb = load_image(encoded(cmyk, "JPEG", quality=95))
    r, g, b = rgb.getpixel((4, 4))
    assert rgb.mode == "RGB" and r > 230 and g < 30 and b < 30


# --------------------------------------------------------------------------- parameters


def test_parameters_are_read_before_conversion() -> None:
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler, Size: 4x4")
    data = encoded(Image.new("RGBA", (4, 4), (1, 2, 3, 255)), pnginfo=info)
    image, parameters = load_image_with_parameters(data)
    assert image.mode == "RGB"
    assert parameters == "a cat\nSteps: 20, Sampler: Euler, Size: 4x4"
    assert load_image_with_parameters(encoded(Image.new("RGB", (4, 4))))[1] is None


def test_symbolic_link_loop_and_dangling_link(tmp_path: Path) -> None:
    """Before: both read "Could not find the image file" like a plain missing file."""
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    with pytest.raises(ImageError, match="symbolic-link loop"):
        load_image(str(loop))
    dangling = tmp_path / "dangling.png"
    os.symlink(tmp_path / "gone.png", dangling)
    with pytest.raises(ImageError, match="symbolic link to .*gone.png, which does not exist"):
        load_image(str(dangling))
