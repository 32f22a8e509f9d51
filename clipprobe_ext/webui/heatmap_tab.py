"""The tab's heatmaps: computed with the analysis when the "Heatmaps" box is ticked, kept
in a ``gr.State``, shown per phrase on a click in the coloured prompt.

Public API (plain values, no gradio import):

- ``compute(encoder, report, pictures, progress) -> HeatmapState``: the maps of the first
  picture (a grid's first cell), run by ``session.analyze`` (``after``) while the model
  is still on its device; cost: one image-tower pass with one backward per phrase batch.
- ``HeatmapState``: the picture, ``{phrase index: Heatmap}`` (the index is the one of
  the coloured prompt's ``data-index``) and each phrase's presence on that picture;
  ``gallery()`` gives every phrase's overlay with a caption a person can read (the tab's
  gallery), ``first()`` the phrase shown before any click.
- ``show(index, state, opacity) -> (overlay image | None, note html)``: the click and the
  opacity slider: ``heatmaps.render.overlay`` of the stored map, nothing recomputed.  The
  note names the phrase, its presence and the map's score with its unit (the cosine
  similarity of picture and phrase), and warns when the map peaks where another
  phrase's does (``heatmaps.trust``).
- ``region(point, state) -> note html``: a click on the map: the phrases ranked by how
  much of their map falls around that point (``heatmaps.region``), no model pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.heatmaps.cli_output import report_heatmaps, report_phrases
from clipprobe_ext.heatmaps.compute import Heatmap
from clipprobe_ext.heatmaps.region import rank_region
from clipprobe_ext.heatmaps.render import CROP_NOTE, DEFAULT_OPACITY, overlay
from clipprobe_ext.heatmaps.trust import peak_patches
from clipprobe_ext.report.messages import message_box
from clipprobe_ext.report.numbers import presence, similarity
from clipprobe_ext.report.region import region_text, shared_peak_warning

CLICK_HINT = "Click a phrase in the coloured prompt to see where CLIP sees it in the picture."
NOT_COMPUTED = 'Tick "Heatmaps" and run Analyze to see where CLIP sees each phrase.'
NOT_MEASURABLE = "This phrase is not measured (an extra-network tag or an empty phrase)."
CLICK_ANOTHER = (
    "Click another phrase of the prompt for its map, or a point of the map to see which "
    "phrases made that region."
)


@dataclass
class HeatmapState:
    image: Image.Image
    maps: dict[int, Heatmap] = field(default_factory=dict)
    pictures: int = 1  # how many pictures the analysis had (maps: the first one's)
    presence: dict[int, float | None] = field(default_factory=dict)  # on that picture
    seen_from: float | None = None  # where presence says "seen"

    def cropped(self) -> bool:
        box = next(iter(self.maps.values())).crop_box if self.maps else None
        return box is not None and tuple(box) != (0, 0, *self.image.size)

    def distinct(self) -> list[Heatmap]:
        """Each phrase's map once, in prompt order."""
        return list({h.phrase: h for _, h in sorted(self.maps.items())}.values())

    def sharing_peak(self, index: int) -> list[str]:
        """The other phrases whose map peaks on the same patch as phrase ``index``'s."""
        maps = self.distinct()
        peaks = dict(zip((h.phrase for h in maps), peak_patches([h.grid for h in maps])))
        mine = peaks[self.maps[index].phrase]
        return [
            p for p, peak in peaks.items() if peak == mine >= 0 and p != self.maps[index].phrase
        ]

    def first(self) -> int | None:
        """The phrase shown before any click: the first measured one in the prompt."""
        return min(self.maps) if self.maps else None

    def caption(self, index: int, where: str = "") -> str:
        """What a phrase's map shows, in words: its presence on this picture, and the
        map's score with its unit (``where``: words after the phrase)."""
        heatmap = self.maps[index]
        value = self.presence.get(index)
        parts = []
        if value is not None:
            bound = f", seen from {presence(self.seen_from)}" if self.seen_from is not None else ""
            parts.append(f"presence {presence(value)}{bound}")
        parts.append(f"cosine similarity of picture and phrase {similarity(heatmap.score)}")
        return f"“{heatmap.phrase}”{where}: " + "; ".join(parts)

    def gallery(self, opacity: float = DEFAULT_OPACITY) -> list[tuple[Image.Image, str]]:
        """Every distinct phrase's overlay with its caption, in prompt order."""
        seen: set[str] = set()
        items = []
        for index in sorted(self.maps):
            heatmap = self.maps[index]
            if heatmap.phrase in seen:
                continue
            seen.add(heatmap.phrase)
            items.append((overlay(self.image, heatmap, opacity), self.caption(index)))
        return items

    def note(self) -> str:
        parts = [CLICK_HINT]
        if self.cropped():
            parts.append(f"{CROP_NOTE}: the map covers only that centre crop of the picture.")
        if self.pictures > 1:
            parts.append(f"Heatmaps of the first of the {self.pictures} pictures.")
        return " ".join(parts)


def compute(
    encoder: Any, report: Any, pictures: Sequence[Image.Image], progress: Any = None
) -> HeatmapState:
    """The maps of the first picture of ``report``, keyed by the phrases' indices."""
    first = pictures[0].convert("RGB")
    [maps] = report_heatmaps(encoder, report, [first], progress=progress)
    texts = report_phrases(report)
    by_text = dict(zip(texts, maps))
    bounds = getattr(report, "bounds", None)
    state = HeatmapState(
        first,
        pictures=len(pictures),
        seen_from=bounds.seen_from if bounds is not None else None,
    )
    scores = report.images[0].presence if report.images else None
    for phrase in report.phrases:
        if phrase.measurable and phrase.text in by_text:
            state.maps[phrase.index] = by_text[phrase.text]
            if scores is not None and phrase.index < len(scores):
                state.presence[phrase.index] = scores[phrase.index]
    return state


def show(index: Any, state: HeatmapState | None, opacity: Any) -> tuple[Image.Image | None, str]:
    """The overlay of phrase ``index`` at ``opacity`` (0..1), and the note under it."""
    if not isinstance(state, HeatmapState) or not state.maps:
        return None, message_box(NOT_COMPUTED)
    try:
        i = int(str(index).strip())
    except ValueError:
        return None, message_box(state.note())
    heatmap = state.maps.get(i)
    if heatmap is None:
        return None, message_box(NOT_MEASURABLE)
    try:
        alpha = min(1.0, max(0.0, float(opacity)))
    except (TypeError, ValueError):
        alpha = DEFAULT_OPACITY
    note = state.caption(i, " on the first picture" if state.pictures > 1 else "") + "."
    note += f" {CROP_NOTE}; outside it is dimmed." if state.cropped() else ""
    others = state.sharing_peak(i)
    note += f" {shared_peak_warning(heatmap.phrase, others)}" if others else ""
    note += f" {CLICK_ANOTHER}"
    return overlay(state.image, heatmap, alpha), message_box(note)


def region(point: Any, state: HeatmapState | None) -> str:
    """The phrases ranked around a clicked ``point`` ([x, y] in the picture's pixels)."""
    if not isinstance(state, HeatmapState) or not state.maps:
        return message_box(NOT_COMPUTED)
    try:
        ranking = rank_region(state.distinct(), list(point))
    except (ClipProbeError, TypeError) as exc:
        text = str(exc) if isinstance(exc, ClipProbeError) else "Click a point of the map."
        return message_box(text)
    where = "of the first picture" if state.pictures > 1 else ""
    return message_box(region_text(list(point), ranking, where))
