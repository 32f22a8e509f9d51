"""The tab's heatmaps: computed with the analysis when the "Heatmaps" box is ticked, kept
in a ``gr.State``, shown per phrase on a click in the coloured prompt.

Public API (plain values, no gradio import):

- ``compute(encoder, report, pictures, progress) -> HeatmapState``: the maps of the first
  picture (a grid's first cell), run by ``session.analyze`` (``after``) while the model
  is still on its device; cost: one image-tower pass with one backward per phrase batch.
- ``HeatmapState``: the picture and ``{phrase index: Heatmap}`` (the index is the one of
  the coloured prompt's ``data-index``); ``contact_sheet()`` draws all of them.
- ``show(index, state, opacity) -> (overlay image | None, note html)``: the click and the
  opacity slider: ``heatmaps.render.overlay`` of the stored map, nothing recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from clipprobe_ext.heatmaps.cli_output import report_heatmaps, report_phrases
from clipprobe_ext.heatmaps.compute import Heatmap
from clipprobe_ext.heatmaps.render import CROP_NOTE, DEFAULT_OPACITY, contact_sheet, overlay
from clipprobe_ext.report.messages import message_box

CLICK_HINT = "Click a phrase in the coloured prompt to see where CLIP sees it in the picture."
NOT_COMPUTED = 'Tick "Heatmaps" and run Analyze to see where CLIP sees each phrase.'
NOT_MEASURABLE = "This phrase is not measured (an extra-network tag or an empty phrase)."


@dataclass
class HeatmapState:
    image: Image.Image
    maps: dict[int, Heatmap] = field(default_factory=dict)
    pictures: int = 1  # how many pictures the analysis had (maps: the first one's)

    def ordered(self) -> list[Heatmap]:
        """Each distinct phrase's map once, in prompt order."""
        seen: dict[str, Heatmap] = {}
        for index in sorted(self.maps):
            seen.setdefault(self.maps[index].phrase, self.maps[index])
        return list(seen.values())

    def cropped(self) -> bool:
        box = next(iter(self.maps.values())).crop_box if self.maps else None
        return box is not None and tuple(box) != (0, 0, *self.image.size)

    def contact_sheet(self, opacity: float = DEFAULT_OPACITY) -> Image.Image | None:
        maps = self.ordered()
        return contact_sheet(self.image, maps, opacity) if maps else None

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
    state = HeatmapState(first, pictures=len(pictures))
    for phrase in report.phrases:
        if phrase.measurable and phrase.text in by_text:
            state.maps[phrase.index] = by_text[phrase.text]
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
    title = f"“{heatmap.phrase}”: score {heatmap.score:.3f}."
    note = title + (f" {CROP_NOTE}; outside it is dimmed." if state.cropped() else "")
    return overlay(state.image, heatmap, alpha), message_box(note)
