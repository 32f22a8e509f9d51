"""Which folders a request from the API may have ClipProbe read: the WebUI's own output
folders and what is inside them, nothing else.

The tab's user types a folder on the machine they run the WebUI on, but an HTTP caller
is untrusted: a path it sends is resolved (``..`` and symbolic links followed, ``~`` not
expanded) and accepted only inside one of the folders the WebUI saves pictures to
(Settings -> Paths for saving: ``outdir_samples``, the txt2img/img2img/extras folders,
the grids' folders, the "Save" button's folder; relative ones from the WebUI's working
folder, as the WebUI itself resolves them).
"""

from __future__ import annotations

import os

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.webui import host

#: The WebUI's settings naming a folder it writes pictures to (1.10's ``shared_options``).
OUTPUT_OPTIONS = (
    "outdir_samples",
    "outdir_txt2img_samples",
    "outdir_img2img_samples",
    "outdir_extras_samples",
    "outdir_grids",
    "outdir_txt2img_grids",
    "outdir_img2img_grids",
    "outdir_save",
    "outdir_init_images",
)

OUTSIDE = (
    "'{path}' is outside the folders the WebUI saves pictures to (Settings -> Paths for "
    "saving); the API reads only those and the folders inside them."
)
NOT_A_FOLDER = "'{path}' is not a folder."


def output_folders() -> list[str]:
    """The resolved folders of ``OUTPUT_OPTIONS`` that are set, and the outputs folder
    the tab offers (``audit_tab.default_folder``), without repeats."""
    from clipprobe_ext.webui.audit_tab import default_folder

    opts = host.opts()
    found: list[str] = []
    for value in [*(getattr(opts, name, "") or "" for name in OUTPUT_OPTIONS), default_folder()]:
        if isinstance(value, str) and value.strip():
            resolved = os.path.realpath(os.path.abspath(value.strip()))
            if resolved not in found:
                found.append(resolved)
    return found


def api_folder(path: str) -> str:
    """``path`` resolved, if a request may have it read; ``ClipProbeError`` otherwise."""
    text = (path or "").strip()
    if not text or "\x00" in text:
        raise ClipProbeError("Give the path of a folder of generated pictures.")
    resolved = os.path.realpath(os.path.abspath(text))
    if not any(_inside(resolved, root) for root in output_folders()):
        raise ClipProbeError(OUTSIDE.format(path=text))
    if not os.path.isdir(resolved):
        raise ClipProbeError(NOT_A_FOLDER.format(path=text))
    return resolved


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive on Windows
        return False
