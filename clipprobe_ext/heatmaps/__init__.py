"""Where in the picture CLIP sees each phrase: relevance maps from the image tower."""

from clipprobe_ext.heatmaps.compute import Heatmap, HeatmapRun, centre_crop_box, phrase_heatmaps
from clipprobe_ext.heatmaps.relevance import DEFAULT_METHOD, METHODS

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Heatmap",
    "HeatmapRun",
    "centre_crop_box",
    "phrase_heatmaps",
]
