"""Heatmaps as files (``--heatmaps DIR``) and as JSON with base64 PNGs (the API).

Files per picture: ``<stem>-NN-<phrase>.png`` (one overlay per phrase, NN its position
in the prompt's measurable phrases), ``<stem>-contact.png`` (the contact sheet) and
``<stem>-heatmaps.json`` (the raw maps, scores and crop box).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from clipprobe_ext.encoders.base import ClipEncoder, Progress
from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.heatmaps.compute import Heatmap, phrase_heatmaps
from clipprobe_ext.heatmaps.region import rank_region
from clipprobe_ext.heatmaps.relevance import DEFAULT_METHOD
from clipprobe_ext.heatmaps.render import CROP_NOTE, DEFAULT_OPACITY, contact_sheet, overlay
from clipprobe_ext.heatmaps.trust import shared_peaks


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of a phrase."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return cleaned[:limit].rstrip("-") or "phrase"


def write_heatmaps(
    image: Image.Image,
    heatmaps: Sequence[Heatmap],
    out_dir: str | Path,
    stem: str = "image",
    opacity: float = DEFAULT_OPACITY,
    region: Sequence[float] | None = None,
) -> list[Path]:
    """Write the overlays, the contact sheet and the JSON of ``heatmaps``; the paths written.

    A folder that cannot be made or written is a ``ClipProbeError``.
    """
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ClipProbeError(f"--heatmaps needs a folder, but {folder} is a file.")
    stem = slug(stem, 60)
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for n, heatmap in enumerate(heatmaps, start=1):
            path = folder / f"{stem}-{n:02d}-{slug(heatmap.phrase)}.png"
            overlay(image, heatmap, opacity).save(path)
            written.append(path)
        if heatmaps:
            path = folder / f"{stem}-contact.png"
            contact_sheet(image, heatmaps, opacity).save(path)
            written.append(path)
        path = folder / f"{stem}-heatmaps.json"
        data = heatmaps_data(image, heatmaps, region)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        written.append(path)
    except OSError as exc:
        raise ClipProbeError(
            f"Could not write heatmaps to {folder}: {exc.strerror or exc}"
        ) from exc
    return written


def heatmaps_data(
    image: Image.Image, heatmaps: Sequence[Heatmap], region: Sequence[float] | None = None
) -> dict[str, Any]:
    """The maps as plain JSON data (no pictures): each phrase's grid and score, whether its
    peak is shared with another phrase's (``trust.shared_peaks``), and with ``region`` the
    phrases ranked there (``region.rank_region``)."""
    width, height = image.size
    box = list(heatmaps[0].crop_box) if heatmaps else [0, 0, width, height]
    shared = shared_peaks([h.grid for h in heatmaps])
    data = {
        "image_size": [width, height],
        "crop_box": box,
        "note": CROP_NOTE if box != [0, 0, width, height] else "",
        "method": heatmaps[0].method if heatmaps else DEFAULT_METHOD,
        "phrases": [
            {
                "phrase": h.phrase,
                "score": round(h.score, 6),
                "grid": [[round(float(v), 4) for v in row] for row in h.grid],
                "shared_peak": shared[k],
            }
            for k, h in enumerate(heatmaps)
        ],
    }
    if region is not None:
        data["region"] = {
            "region": [float(v) for v in region],
            "ranking": [
                {"phrase": s.phrase, "share": round(s.share, 6), "lift": round(s.lift, 6)}
                for s in rank_region(heatmaps, region)
            ],
        }
    return data


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmaps_json(
    image: Image.Image,
    heatmaps: Sequence[Heatmap],
    overlays: bool = True,
    sheet: bool = True,
    opacity: float = DEFAULT_OPACITY,
    region: Sequence[float] | None = None,
) -> dict[str, Any]:
    """``heatmaps_data`` plus, when asked for, base64 PNGs: each phrase's ``overlay_png``
    and the ``contact_sheet_png`` (the API's pictures on request)."""
    data = heatmaps_data(image, heatmaps, region)
    if overlays:
        for entry, heatmap in zip(data["phrases"], heatmaps):
            entry["overlay_png"] = png_base64(overlay(image, heatmap, opacity))
    if sheet:
        data["contact_sheet_png"] = (
            png_base64(contact_sheet(image, heatmaps, opacity)) if heatmaps else None
        )
    return data


def report_phrases(report: Any) -> list[str]:
    """The measurable phrases of a ``ProbeReport``, each once, in prompt order."""
    return list(dict.fromkeys(p.text for p in report.phrases if p.measurable))


def report_heatmaps(
    encoder: ClipEncoder,
    report: Any,
    images: Sequence[Image.Image],
    method: str = DEFAULT_METHOD,
    progress: Progress | None = None,
) -> list[list[Heatmap]]:
    """Heatmaps of every measurable phrase of ``report`` for each of its images."""
    phrases = report_phrases(report)
    out = []
    for n, picture in enumerate(images):
        if progress is not None:
            progress(f"Heatmaps {n + 1}/{len(images)}", n / max(1, len(images)))
        out.append(phrase_heatmaps(encoder, picture, phrases, method))
    return out


def write_report_heatmaps(
    report: Any,
    images: Sequence[Image.Image],
    all_maps: Sequence[Sequence[Heatmap]],
    out_dir: str | Path,
    opacity: float = DEFAULT_OPACITY,
    region: Sequence[float] | None = None,
) -> list[Path]:
    """``--heatmaps DIR``: the files of every image of ``report`` (stems from its labels),
    from its maps (``report_heatmaps``)."""
    written: list[Path] = []
    stems: list[str] = []
    for analysis, picture, maps in zip(report.images, images, all_maps):
        stem = slug(Path(analysis.label).stem or "image", 60)
        stem = stem if stem not in stems else f"{stem}-{len(stems) + 1}"
        stems.append(stem)
        written += write_heatmaps(picture, maps, out_dir, stem, opacity, region)
    return written
