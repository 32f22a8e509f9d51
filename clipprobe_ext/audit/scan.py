"""Find the pictures of an output folder and read what each one carries.

Listing is cheap (names and dates only); reading happens in worker threads, one file at
a time, and never raises: a picture without generation parameters, a broken file or one
deleted while the audit runs becomes a ``PictureRead`` of that kind, counted and listed
in the report.  A file whose size and date match the store's record is not read again
when its embedding is stored, but for its pixel size (a PNG's first 24 bytes, another
format's header: about 0.1 ms a file when cached); otherwise it is read once, hashed and,
only when the store lacks its embedding, decoded.  A file that may be a WebUI grid (its
pixel size a multiple of the size its parameters give, ``grid.could_be_grid``) is handed
back as a ``grid`` read, for the pipeline to cut or skip once the folder is read.  The
size is read on every run because a store may hold a grid's embedding from before grids
were told apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from PIL import Image, UnidentifiedImageError

from clipprobe_ext.errors import ClipProbeError, first_line
from clipprobe_ext.grid import could_be_grid
from clipprobe_ext.images import load_image_with_parameters
from clipprobe_ext.infotext import GenerationParameters, parse_parameters, read_parameters
from clipprobe_ext.store import EmbeddingStore, FileRecord

with contextlib.suppress(ImportError):  # AVIF, where the environment has the plugin
    import pillow_avif  # noqa: F401

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".avif")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ReadKind = Literal["stored", "decoded", "grid", "no_parameters", "unreadable", "vanished"]


@dataclass
class FileList:
    files: list[str]  # paths to read, sorted
    total_seen: int  # image files found before --since and --limit


def list_files(
    paths: Sequence[str | os.PathLike],
    recursive: bool = False,
    since: datetime | None = None,
    limit: int | None = None,
) -> FileList:
    """Image files under the folders (and files) given; the ``limit`` newest ones.

    A path that does not exist is a ``ClipProbeError`` before any work is done.
    """
    found: dict[str, float] = {}
    for given in paths:
        path = os.path.abspath(os.path.expanduser(os.fspath(given)))
        if os.path.isdir(path):
            for file, mtime in _walk(path, recursive):
                found[file] = mtime
        elif os.path.isfile(path):
            try:
                found[path] = os.stat(path).st_mtime
            except OSError as exc:
                raise ClipProbeError(f"Could not read {given}: {exc.strerror or exc}") from exc
        else:
            raise ClipProbeError(f"No such folder or file: {given}")
    total = len(found)
    if since is not None:
        cutoff = since.timestamp()
        found = {p: m for p, m in found.items() if m >= cutoff}
    chosen = list(found)
    if limit is not None and len(chosen) > limit:
        chosen = sorted(chosen, key=lambda p: (-found[p], p))[:limit]
    return FileList(sorted(chosen), total)


def _walk(folder: str, recursive: bool):
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _walk(entry.path, recursive)
            elif entry.name.lower().endswith(EXTENSIONS) and entry.is_file():
                yield entry.path, entry.stat().st_mtime
        except OSError:  # vanished between listing and stat
            continue


@dataclass
class PictureRead:
    """One file as a worker found it."""

    path: str
    kind: ReadKind
    hash: str | None = None
    prompt: str | None = None
    embedding: object | None = None  # float32 numpy vector when ``stored``
    image: Image.Image | None = None  # RGB when ``decoded`` (to be encoded)
    record: FileRecord | None = None  # a new file record to save, else None
    reason: str = ""


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def read_picture(
    path: str,
    store: EmbeddingStore,
    model_key: str,
    prepare: Callable[[Image.Image], Image.Image] | None = None,
) -> PictureRead:
    """Read one file; never raises for anything about the file itself.

    ``prepare``: applied to the decoded picture in this (reader) thread (``prepare.py``).
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return PictureRead(path, "vanished", reason="deleted during the audit")
    except OSError as exc:
        return PictureRead(path, "unreadable", reason=exc.strerror or str(exc))
    known = store.file_record(path)
    if known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        params = _parsed(known.parameters)
        if params is None:
            return PictureRead(path, "no_parameters", known.hash)
        if params.settings.get("Size") and could_be_grid(_header_size(path), params.settings):
            return PictureRead(path, "grid", known.hash, params.prompt)
        embedding = store.image_embedding(known.hash, model_key)
        if embedding is not None:
            return PictureRead(path, "stored", known.hash, params.prompt, embedding)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return PictureRead(path, "vanished", reason="deleted during the audit")
    except OSError as exc:
        return PictureRead(path, "unreadable", reason=exc.strerror or str(exc))
    digest = content_hash(data)
    try:
        parameters, size = _header(data)
    except Exception as exc:  # anything Pillow raises on a broken file
        return PictureRead(path, "unreadable", digest, reason=_reason(exc))
    record = FileRecord(stat.st_size, stat.st_mtime_ns, digest, parameters)
    params = _parsed(parameters)
    if params is None:
        return PictureRead(path, "no_parameters", digest, record=record)
    if could_be_grid(size, params.settings):
        return PictureRead(path, "grid", digest, params.prompt, record=record)
    embedding = store.image_embedding(digest, model_key)
    if embedding is not None:
        return PictureRead(path, "stored", digest, params.prompt, embedding, record=record)
    try:
        image, _ = load_image_with_parameters(data)
        if prepare is not None:
            image = prepare(image)
    except Exception as exc:  # ImageError, or a decoder bug: one file, not the audit
        return PictureRead(path, "unreadable", digest, reason=_reason(exc))
    return PictureRead(path, "decoded", digest, params.prompt, image=image, record=record)


def _header(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """The WebUI parameters text and the picture's size, without decoding pixels where
    possible."""
    with Image.open(io.BytesIO(data)) as image:
        found = read_parameters(image)
        if found is None and image.format == "PNG":
            image.load()  # text chunks may follow the pixel data
            found = read_parameters(image)
        return found, image.size


def _header_size(path: str) -> tuple[int, int]:
    """The picture's size from its first bytes (PNG: 24 bytes; other formats: Pillow's
    header read); (0, 0) when it cannot be read (then nothing here calls it a grid)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            handle.seek(0)
            with Image.open(handle) as image:
                return image.size
    except Exception:
        return (0, 0)


def _parsed(parameters: str | None) -> GenerationParameters | None:
    """The parameters, when they hold a prompt."""
    if not parameters:
        return None
    parsed = parse_parameters(parameters)
    return parsed if parsed.prompt.strip() else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file, or a format this Pillow cannot read"
    text = first_line(exc)
    prefix = "Could not read the image: "
    return text[len(prefix) :] if text.startswith(prefix) else text
