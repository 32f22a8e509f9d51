"""Read the generation parameters the WebUI stores in its images ("infotext").

The user drops a generated picture on ClipProbe and expects its prompt to be filled in.
The WebUI writes the text into a PNG ``parameters`` chunk, or into the EXIF
UserComment of JPEG and WebP files; this module finds it and splits it the way the
WebUI's ``parse_generation_parameters`` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from PIL import Image

from clipprobe_ext.errors import PromptError
from clipprobe_ext.options import MAX_PROMPT_CHARS, check_prompt_length

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286

# "Key: value," with the WebUI's rules: keys are words, values may be JSON-quoted
_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_NEGATIVE = "Negative prompt:"

# Prompt, negative prompt and the settings line: longer parameters hold no prompt ClipProbe
# reads, and are refused before they are parsed (a 50 MB chunk took minutes to go through
# the parser and the tokenizer).
MAX_PARAMETERS_CHARS = 4 * MAX_PROMPT_CHARS
# C0 controls but tab and line breaks, DEL, C1 controls, and U+FFFD (what a failed decode
# leaves): no prompt holds them, binary data read as text does.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


@dataclass(frozen=True)
class GenerationParameters:
    prompt: str
    negative_prompt: str
    settings: dict[str, str]  # e.g. {"Steps": "20", "Size": "512x512"}, quotes removed
    raw: str


def parse_parameters(text: str) -> GenerationParameters:
    """Split infotext into prompt, negative prompt and the settings of its last line."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM_RE.findall(last)) < 3:  # the WebUI's test for a settings line
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith(_NEGATIVE):
            negative.append(line[len(_NEGATIVE) :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    settings = {key: _unquote(value) for key, value in _PARAM_RE.findall(last)}
    return GenerationParameters("\n".join(prompt), "\n".join(negative), settings, text)


def check_text(text: str, source: str = "The prompt") -> str:
    """``text`` unchanged, or ``PromptError`` when it is not text (control characters,
    NULs, bytes that did not decode)."""
    bad = _NOT_TEXT.search(text)
    if bad is not None:
        raise PromptError(
            f"{source} is not text: it holds the control character or undecodable byte "
            f"U+{ord(bad.group()):04X} at position {bad.start() + 1}."
        )
    return text


def prompt_from_parameters(text: str | None, source: str = "the image") -> str:
    """The prompt of the parameters text read from an image (``""`` when there is none);
    ``PromptError`` when the text is too long or is not text.  The one way every entry
    point (CLI, tab, API) reads a prompt out of an image."""
    if not text:
        return ""
    if len(text) > MAX_PARAMETERS_CHARS:
        raise PromptError(
            f"The generation parameters stored in {source} are {len(text):,} characters long; "
            f"ClipProbe reads prompts of at most {MAX_PROMPT_CHARS:,} characters."
        )
    check_text(text, f"The generation parameters stored in {source}")
    prompt = parse_parameters(text).prompt
    return check_prompt_length(prompt, f"The prompt stored in {source}")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            loaded = json.loads(value)
        except ValueError:
            return value
        return loaded if isinstance(loaded, str) else value
    return value


def read_parameters(image: Image.Image) -> str | None:
    """The WebUI parameters text stored in the image, or None.

    As in the WebUI, an EXIF UserComment wins over a PNG ``parameters`` chunk.  For a PNG
    whose text chunks follow the pixel data, call this after ``image.load()``.
    """
    info = image.info or {}
    found = info.get("parameters")
    comment = _exif_user_comment(image)
    if comment:
        found = comment
    elif found is None and "comment" in info:  # GIF
        found = info["comment"]
    if isinstance(found, bytes):
        found = found.decode("utf-8", errors="replace")
    if not isinstance(found, str) or not found.strip("\x00").strip():
        return None
    return _repair_latin1(found.strip("\x00"))


def _repair_latin1(text: str) -> str:
    """UTF-8 bytes stored in a PNG tEXt chunk come back from Pillow as Latin-1 ("â\x80\x94"
    for "—"); read them as UTF-8 again when they are valid UTF-8."""
    if not re.search(r"[\x80-\xff]", text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _exif_user_comment(image: Image.Image) -> str | None:
    try:
        value = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    except Exception:  # broken EXIF is no reason to refuse the image
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return decode_user_comment(value)
    return None


def decode_user_comment(data: bytes) -> str:
    """Decode an EXIF UserComment: an 8-byte charset prefix, then the text."""
    prefix, body = data[:8], data[8:]
    if prefix == b"UNICODE\x00":
        return _decode_utf16(body)
    if prefix == b"JIS\x00\x00\x00\x00\x00":
        return body.decode("shift_jis", errors="replace").rstrip("\x00")
    if prefix in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return body.decode("utf-8", errors="replace").rstrip("\x00")
    return data.decode("utf-8", errors="replace").rstrip("\x00")


def _decode_utf16(body: bytes) -> str:
    """UTF-16 of either byte order: piexif writes big-endian, some tools little-endian."""
    if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return body.decode("utf-16", errors="ignore").rstrip("\x00")
    # Latin text has its zero bytes first in big-endian, second in little-endian.
    zeros_even = body[0::2].count(0)
    zeros_odd = body[1::2].count(0)
    order = "utf-16-le" if zeros_odd > zeros_even else "utf-16-be"
    return body.decode(order, errors="ignore").rstrip("\x00")
