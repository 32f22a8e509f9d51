"""From what a caller has to the pictures to analyse, with their prompt and negative prompt.

Every entry point (command line, audit, tab, API, regeneration) hands over one image --
bytes, a path or a PIL image -- and maybe a prompt and a negative prompt, and needs the
same answer: the picture(s), the prompt (given, else the one in the image's generation
parameters), the negative prompt, and where each came from.  A WebUI grid is cut into its
pictures here (``grid.detect``, on the picture before it is shrunk), so a grid is the batch
it was wherever it arrives.

One rule for the negative prompt: a given one (``""``: none) is used as is; without one,
the negative prompt stored in the image goes with the prompt stored there, and a given
prompt gets none (the stored negative prompt belongs to another prompt).

Public API: ``resolve(source, prompt=None, negative=None, ...) -> Resolved``;
``stored_parameters(image) -> GenerationParameters | None`` (the prompt boxes' filling,
never an error); ``Origin``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from clipprobe_ext import grid as grids
from clipprobe_ext.errors import ClipProbeError, PromptError
from clipprobe_ext.images import ImageSource, decode_image, fit
from clipprobe_ext.infotext import (
    GenerationParameters,
    check_text,
    parse_parameters,
    prompt_from_parameters,
    read_parameters,
)
from clipprobe_ext.options import check_prompt_length

log = logging.getLogger("clipprobe")

Origin = Literal["given", "parameters"]


@dataclass
class Resolved:
    """One input, ready to analyse: its pictures share the prompt and negative prompt."""

    pictures: list[Image.Image]  # RGB, at most ``images.MAX_SIDE`` a side; a grid's in order
    labels: list[str]
    prompt: str
    negative: str  # "" when there is none to check
    prompt_from: Origin
    negative_from: Origin | None  # None: no negative prompt
    parameters: GenerationParameters | None  # what the image carries (None: none readable)
    grid: grids.Grid | None = None  # the grid the pictures were cut from
    notes: list[str] = field(default_factory=list)  # for the report: a grid, a negative left out


def resolve(
    source: ImageSource,
    prompt: str | None = None,
    negative: str | None = None,
    *,
    label: str = "image",
    cell_label: str = "{label} {n}",
    name: str = "the image",
    ask: str = "give the prompt it was made with",
) -> Resolved:
    """The pictures of ``source`` with their prompt and negative prompt.

    ``prompt``: ``None`` or blank reads the image's; ``negative``: see the module docstring.
    ``label`` names the picture in reports (a grid's pictures: ``cell_label`` with ``label``
    and ``n`` from 1); ``name`` is the image in messages ("the image", a file name) and
    ``ask`` how the caller's user supplies a missing prompt.  Raises ``ImageError``
    (unreadable) or ``PromptError`` (no prompt, a prompt over the limit or not text);
    parameters that cannot be read are an error only when the prompt has to come from them.
    """
    given = prompt if prompt is not None and prompt.strip() else None
    if given is not None:
        check_prompt_length(given, "The prompt given")
    if negative is not None:
        check_prompt_length(negative, "The negative prompt given")
    whole, text = decode_image(source)
    parameters, found = _prompt_in(text, name, required=given is None)
    if given is None and not found.strip():
        where = (
            "has no prompt in its generation parameters"
            if text
            else "holds no generation parameters (PNG 'parameters' chunk or EXIF UserComment)"
        )
        raise PromptError(f"{_sentence(name)} {where}; {ask}.")
    notes: list[str] = []
    negative_from: Origin | None = None
    if negative is not None:
        negative_from = "given"
    elif given is None and parameters is not None and parameters.negative_prompt.strip():
        negative = _stored_negative(parameters.negative_prompt, notes)
        negative_from = "parameters" if negative else None
    found_grid = grids.detect(whole, parameters.settings) if parameters is not None else None
    if found_grid is None:
        pictures, labels = [fit(whole, source)], [label]
    else:
        pictures = [fit(cell) for cell in found_grid.cells(whole)]
        labels = [cell_label.format(label=label, n=n) for n in range(1, found_grid.count + 1)]
        notes.insert(0, found_grid.describe(_sentence(name), prompt_given=given is not None))
    return Resolved(
        pictures=pictures,
        labels=labels,
        prompt=given if given is not None else found,
        negative=negative or "",
        prompt_from="given" if given is not None else "parameters",
        negative_from=negative_from,
        parameters=parameters,
        grid=found_grid,
        notes=notes,
    )


def stored_parameters(image: Image.Image | None) -> GenerationParameters | None:
    """The generation parameters of ``image`` when they hold a prompt, else None.

    For filling prompt boxes when an image arrives: a missing or unreadable metadata block
    is the same as none (logged), never an error."""
    if image is None:
        return None
    try:
        text = read_parameters(image)
        if not text:
            return None
        prompt_from_parameters(text)  # too long, or not text: as good as none
    except Exception:
        log.warning("ClipProbe: could not read the image's generation parameters", exc_info=True)
        return None
    params = parse_parameters(text)
    return params if params.prompt.strip() else None


def _prompt_in(
    text: str | None, name: str, required: bool
) -> tuple[GenerationParameters | None, str]:
    """The parsed parameters and their prompt; when the prompt is given, parameters that
    cannot be read only cost their grid test (None)."""
    if not text:
        return None, ""
    try:
        found = prompt_from_parameters(text, name)
    except ClipProbeError:
        if required:
            raise
        return None, ""
    return parse_parameters(text), found


def _stored_negative(negative: str, notes: list[str]) -> str:
    """The stored negative prompt, or "" (and a note) when it cannot be checked."""
    try:
        return check_text(check_prompt_length(negative, "The stored negative prompt"))
    except PromptError as exc:
        notes.append(f"The negative prompt was not checked: {exc}")
        return ""


def _sentence(name: str) -> str:
    """``name`` at the start of a sentence ("the image" -> "The image"; a path as it is)."""
    return name[:1].upper() + name[1:] if name.startswith(("the ", "this ")) else name
