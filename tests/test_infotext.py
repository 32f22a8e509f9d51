"""Reading the WebUI's generation parameters from text and from real image files."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipprobe_ext.infotext import decode_user_comment, parse_parameters, read_parameters

INFOTEXT = (
    "girl with an artist's beret, (determined:1.2),\n"
    "blue eyes <lora:film:0.8>\n"
    "Negative prompt: ugly, (((deformed))),\n"
    "[blurry]\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x768, "
    'Lora hashes: "film: 1a2b3c, other: 4d5e", Model hash: 45dee52b'
)


def exif_with_user_comment(comment: bytes, byte_order: str = "MM") -> bytes:
    """EXIF bytes as piexif writes them: IFD0 -> Exif IFD -> UserComment (UNDEFINED)."""
    e = ">" if byte_order == "MM" else "<"
    header = byte_order.encode() + struct.pack(e + "HI", 42, 8)
    exif_ifd_at = 8 + 2 + 12 + 4
    ifd0 = struct.pack(e + "H", 1) + struct.pack(e + "HHII", 0x8769, 4, 1, exif_ifd_at)
    ifd0 += struct.pack(e + "I", 0)
    data_at = exif_ifd_at + 2 + 12 + 4
    exif_ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHII", 0x9286, 7, len(comment), data_at)
    exif_ifd += struct.pack(e + "I", 0)
    return b"Exif\x00\x00" + header + ifd0 + exif_ifd + comment


def saved(fmt: str, **kwargs: object) -> Image.Image:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, fmt, **kwargs)
    buf.seek(0)
    return Image.open(buf)


# --------------------------------------------------------------------------- text


def test_parse_splits_prompt_negative_prompt_and_settings() -> None:
    params = parse_parameters(INFOTEXT)
    assert params.prompt == (
        "girl with an artist's beret, (determined:1.2),\nblue eyes <lora:film:0.8>"
    )
    assert params.negative_prompt == "ugly, (((deformed))),\n[blurry]"
    assert params.settings == {
        "Steps": "20",
        "Sampler": "Euler a",
        "CFG scale": "7",
        "Seed": "965400086",
        "Size": "512x768",
        "Lora hashes": "film: 1a2b3c, other: 4d5e",
        "Model hash": "45dee52b",
    }
    assert params.raw == INFOTEXT


def test_quoted_values_are_json_unquoted() -> None:
    params = parse_parameters('a cat\nSteps: 5, Sampler: DDIM, Note: "say \\"hi\\", then go"')
    assert params.settings["Note"] == 'say "hi", then go'


def test_prompt_only_text_has_no_settings() -> None:
    params = parse_parameters("  a cat, on a mat\nsunset \n")
    assert (params.prompt, params.negative_prompt, params.settings) == (
        "a cat, on a mat\nsunset",
        "",
        {},
    )


def test_a_last_line_with_fewer_than_three_settings_is_prompt() -> None:
    # the WebUI's rule: "Style: noir, Mood: calm" could be prompt text
    params = parse_parameters("a cat\nStyle: noir, Mood: calm")
    assert params.prompt == "a cat\nStyle: noir, Mood: calm"
    assert params.settings == {}


def test_negative_prompt_without_settings() -> None:
    params = parse_parameters("a cat\nNegative prompt: dog")
    assert (params.prompt, params.negative_prompt) == ("a cat", "dog")


# --------------------------------------------------------------------------- files


def test_png_parameters_chunk() -> None:
    info = PngInfo()
    info.add_text("parameters", INFOTEXT)
    assert read_parameters(saved("PNG", pnginfo=info)) == INFOTEXT


def test_png_international_text_chunk() -> None:
    info = PngInfo()
    info.add_itxt("parameters", "ein Hund, Größe \u00fc", zip=True)
    assert read_parameters(saved("PNG", pnginfo=info)) == "ein Hund, Größe \u00fc"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("byte_order", ["MM", "II"])
def test_exif_user_comment_unicode_big_endian(fmt: str, byte_order: str) -> None:
    comment = b"UNICODE\x00" + INFOTEXT.encode("utf-16-be")
    image = saved(fmt, exif=exif_with_user_comment(comment, byte_order))
    assert read_parameters(image) == INFOTEXT
    assert parse_parameters(read_parameters(image) or "").settings["Steps"] == "20"


def test_exif_user_comment_unicode_little_endian_and_non_latin() -> None:
    text = "猫, (夕日:1.2)\nSteps: 20, Sampler: Euler, Size: 512x512"
    comment = b"UNICODE\x00" + "a cat, sunset, ".encode("utf-16-le") + text.encode("utf-16-le")
    image = saved("JPEG", exif=exif_with_user_comment(comment))
    assert read_parameters(image) == "a cat, sunset, " + text


def test_exif_user_comment_ascii() -> None:
    comment = b"ASCII\x00\x00\x00a cat\nSteps: 1, Sampler: A, Size: 8x8\x00"
    image = saved("WEBP", exif=exif_with_user_comment(comment))
    assert read_parameters(image) == "a cat\nSteps: 1, Sampler: A, Size: 8x8"


def test_exif_comment_wins_over_png_chunk_like_in_the_webui() -> None:
    info = PngInfo()
    info.add_text("parameters", "from the chunk")
    exif = exif_with_user_comment(b"UNICODE\x00" + "from exif".encode("utf-16-be"))
    assert read_parameters(saved("PNG", pnginfo=info, exif=exif)) == "from exif"


def test_no_parameters_is_none() -> None:
    assert read_parameters(saved("PNG")) is None
    assert read_parameters(saved("JPEG")) is None
    assert read_parameters(saved("WEBP", exif=exif_with_user_comment(b"UNICODE\x00"))) is None
    info = PngInfo()
    info.add_text("Software", "something else")
    assert read_parameters(saved("PNG", pnginfo=info)) is None


def test_decode_user_comment_with_byte_order_mark_and_unknown_prefix() -> None:
    assert decode_user_comment(b"UNICODE\x00" + "\ufeffhi".encode("utf-16-le")) == "hi"
    assert decode_user_comment(b"plain utf8 text") == "plain utf8 text"


# -- bounded, real text -------------------------------------------------------------------


def test_prompt_from_parameters_reads_the_prompt():
    from clipprobe_ext.infotext import prompt_from_parameters

    text = "a cat, rain\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7"
    assert prompt_from_parameters(text, "x.png") == "a cat, rain"
    assert prompt_from_parameters(None) == ""


def test_parameters_that_are_not_text_are_refused():
    from clipprobe_ext.errors import PromptError
    from clipprobe_ext.infotext import prompt_from_parameters

    for junk in ("a cat\x00\x01\x02", "ok \ufffd\ufffd", "\x1b[31mred"):
        with pytest.raises(PromptError, match="not text"):
            prompt_from_parameters(junk, "x.png")
    assert prompt_from_parameters("tab\tand\r\nnew lines", "x.png") == "tab\tand\nnew lines"


def test_parameters_too_long_are_refused_unparsed(monkeypatch):
    import clipprobe_ext.infotext as infotext
    from clipprobe_ext.errors import PromptError

    monkeypatch.setattr(infotext, "parse_parameters", lambda text: pytest.fail("parsed"))
    with pytest.raises(PromptError, match="80,001 characters"):
        infotext.prompt_from_parameters("a" * 80_001, "x.png")


def test_utf8_in_a_latin1_text_chunk_is_read_as_utf8():
    """An em dash written as UTF-8 bytes into tEXt comes back as 'â\\x80\\x94' (C1 controls)."""
    from PIL import Image

    from clipprobe_ext.infotext import prompt_from_parameters, read_parameters

    image = Image.new("RGB", (4, 4))
    image.info["parameters"] = "girl — rain".encode().decode("latin-1")
    assert prompt_from_parameters(read_parameters(image)) == "girl — rain"
