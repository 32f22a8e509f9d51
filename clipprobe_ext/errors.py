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


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of an exception's message, for one-line messages; for an empty
    message ``empty``, or the exception's type name when that is ``None``."""
    lines = str(exc).strip().splitlines()
    if lines:
        return lines[0]
    return type(exc).__name__ if empty is None else empty
