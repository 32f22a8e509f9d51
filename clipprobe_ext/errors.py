"""Errors the user can act on.

Every failure that comes from the user's input or environment is raised as a
``ClipProbeError`` whose message is one clear sentence; the CLI prints it as one
line, the tab shows it, the API returns it as a 4xx JSON error.
"""


class ClipProbeError(Exception):
    """Base class: the message is meant for the user, as is."""


class PromptError(ClipProbeError):
    """The prompt is empty, or holds nothing CLIP can measure."""


class ImageError(ClipProbeError):
    """The image is missing, unreadable, corrupt or too large."""


class ModelError(ClipProbeError):
    """The CLIP model could not be loaded, or went away during a run."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), for one-line messages."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
