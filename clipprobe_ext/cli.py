"""``python -m clipprobe_ext``: probe a prompt against images from the command line.

Usage::

    python -m clipprobe_ext IMAGE... [--prompt TEXT] [--model NAME_OR_DIR]
        [--device cpu|cuda] [--rounds N] [--threshold PERCENT] [--tolerance PERCENT]
        [--synonyms "a|b"]... [--words] [--no-contribution] [--no-prune]
        [--negative TEXT] [--heatmaps DIR]
        [--json | --csv] [-o FILE] [--color auto|always|never] [-q]

Prompt: ``--prompt`` applies to every image.  Without it, each image's prompt is read
from the generation parameters the WebUI stores in it (PNG ``parameters`` text chunk,
JPEG/WebP EXIF UserComment); images sharing a prompt are analysed together as one
batch, and each distinct prompt is a separate *prompt group* with its own report (the
table shows them one after another, ``--json`` writes an array of reports instead of a
single report object, ``--csv`` numbers them in its ``group`` column).  An image without
parameters and no ``--prompt`` is an error.

Negative prompt: ``--negative TEXT`` is checked against every image (``--negative ""``: no
check); without it, a group whose prompt was read from the images checks the negative
prompt stored with them (the first image's, when they differ: the report says so).

Heatmaps: ``--heatmaps DIR`` writes, per image, one overlay PNG per measurable phrase, a
contact sheet and the raw maps as JSON (``heatmaps.cli_output``).

Model: a transformers hub name (default ``openai/clip-vit-base-patch32``; needs the
Hugging Face cache or network) or a local folder holding a transformers CLIP;
``openai-clip:NAME`` loads the openai ``clip`` package's model (``openai-clip:ViT-L/14``,
the WebUI's Interrogate CLIP; or ``openai-clip:/path/to/ViT-L-14.pt``).

Options: defaults and bounds come from ``clipprobe_ext.options`` (see ``--help``);
``--threshold``/``--tolerance`` take a percentage (``5%``) or a fraction (``0.05``).

Output: the table goes to stdout (or ``-o FILE``); ``--json``/``--csv`` write only the
document there.  Progress is shown on stderr while it is a terminal (never on stdout);
``-q`` silences it.

Several images: a file that cannot be used (unreadable, no prompt, a prompt too long or not
text) is skipped with one ``clipprobe: skipped FILE: reason`` line on stderr, and the rest
is analysed; so is a prompt group whose prompt cannot be analysed.

Exit status: 0 done; 3 done, but some files were skipped; 1 an error the user can act on
(unreadable image, no prompt, model not available, every file skipped, ...), reported as
one ``clipprobe: error: ...`` line on stderr; 2 a bad command line; 130 interrupted.
Prompts (given or read from an image) are at most ``options.MAX_PROMPT_CHARS`` (20,000)
characters.  Set ``CLIPPROBE_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TextIO

from clipprobe_ext.errors import ClipProbeError, ModelError, PromptError
from clipprobe_ext.options import (
    DEFAULT_MODEL,
    MODEL,
    ProbeOptions,
    add_arguments,
    check_prompt_length,
    options_from_args,
)

PROG = "clipprobe"
SKIPPED = 3  # exit status: done, but some files were skipped (each named on stderr)


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=(
            "Ask CLIP which phrases of a Stable Diffusion prompt actually show up in the "
            "images: elimination rounds, synonym groups, in-context contribution, verdicts "
            "and a pruned prompt that keeps the CLIP score."
        ),
        epilog=(
            "Without --prompt each image's prompt is read from its WebUI generation "
            "parameters; images with different prompts are analysed as separate groups."
        ),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or WebP files")
    p.add_argument("--prompt", help="the prompt (default: read from each image's parameters)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"{MODEL.help} (default {DEFAULT_MODEL})",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument(
        "--negative",
        metavar="TEXT",
        help="the negative prompt to check against the images (default: the one stored in "
        'each image\'s parameters when the prompt is read from them; "" for none)',
    )
    p.add_argument(
        "--heatmaps",
        metavar="DIR",
        help="write a heatmap overlay per phrase, a contact sheet and the maps as JSON "
        "for every image into DIR",
    )
    add_arguments(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="write the report as JSON")
    fmt.add_argument("--csv", action="store_true", help="write one CSV row per image and phrase")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the table (auto: when stdout is a terminal and NO_COLOR is unset)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


# -- progress ----------------------------------------------------------------------------


class _Status:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and _isatty(stream)
        self.prefix = ""
        self._shown = 0
        self._last = 0.0
        self._message = ""

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if message == self._message and now - self._last < 0.1:
            return  # the same step counting up: redraw at most ten times a second
        self._last, self._message = now, message
        text = f"{PROG}: {self.prefix}{message}"
        if fraction is not None:
            text += f" {100 * max(0.0, min(1.0, fraction)):3.0f}%"
        text = text[:100]
        pad = " " * max(0, self._shown - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._shown = len(text)

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- inputs ------------------------------------------------------------------------------


def _labels(paths: Sequence[str]) -> list[str]:
    """File names, or the paths as given where two files share a name."""
    names = [Path(p).name for p in paths]
    return [n if names.count(n) == 1 else p for n, p in zip(names, paths)]


Skip = Callable[[str, str], None]


class InputGroup(NamedTuple):
    """Images sharing a prompt, with the negative prompts stored in them (one per image;
    ``""`` where none was, or the prompt came from ``--prompt``)."""

    prompt: str
    images: list[Any]
    labels: list[str]
    negatives: list[str]


def load_inputs(
    paths: Sequence[str], prompt: str | None, skip: Skip | None = None
) -> list[InputGroup]:
    """One ``InputGroup`` per prompt, in order of first appearance.

    A file that cannot be used raises its ``ClipProbeError``, or, with ``skip``, is passed
    to ``skip(path, reason)`` and left out."""
    from clipprobe_ext.images import check_image_path, load_image, load_image_with_parameters
    from clipprobe_ext.infotext import parse_parameters, prompt_from_parameters

    if prompt is not None:
        if not prompt.strip():
            raise PromptError("The prompt given with --prompt is empty.")
        check_prompt_length(prompt, "The prompt given with --prompt")

    groups: dict[str, InputGroup] = {}
    for path, label in zip(paths, _labels(paths)):
        try:
            check_image_path(path)
            negative = ""
            if prompt is not None:
                image, found = load_image(path), prompt
            else:
                image, parameters = load_image_with_parameters(path)
                found = prompt_from_parameters(parameters, path)
                # checked as text and for size by prompt_from_parameters
                negative = parse_parameters(parameters).negative_prompt if parameters else ""
                if not found.strip():
                    raise PromptError(
                        f"{path} has no prompt in its generation parameters (PNG 'parameters' "
                        "chunk or EXIF UserComment); pass one with --prompt."
                    )
        except ClipProbeError as exc:
            if skip is None:
                raise
            skip(path, str(exc))
            continue
        group = groups.setdefault(found, InputGroup(found, [], [], []))
        group.images.append(image)
        group.labels.append(label)
        group.negatives.append(negative)
    return list(groups.values())


def group_negative(group: InputGroup, given: str | None) -> tuple[str, str | None]:
    """The negative prompt to check for a group, and a note when its images disagree."""
    if given is not None:
        return given, None
    from clipprobe_ext.infotext import check_text

    found = list(dict.fromkeys(group.negatives))
    negative, note = (found[0] if found else ""), None
    if len(found) > 1:
        note = (
            f"The images of this group store {len(found)} different negative prompts; the one "
            f"checked is {group.labels[0]}'s."
        )
    try:  # a stored negative prompt that cannot be read costs only its own check
        check_text(check_prompt_length(negative, "The stored negative prompt"))
    except PromptError as exc:
        return "", f"The negative prompt was not checked: {exc}"
    return negative, note


# -- model -------------------------------------------------------------------------------


def load_encoder(name: str, device: str | None = None) -> Any:
    """A ``ClipEncoder`` for ``name`` (``clipprobe_ext.encoders.factory``); ``ModelError``.

    Its text embeddings and reference banks are kept in the user's embedding store, so a
    second run pays for neither again."""
    from clipprobe_ext.encoders.factory import load_encoder as load

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ModelError("--device cuda was asked for, but this PyTorch sees no CUDA GPU.")
    return load(name, device)


# -- main --------------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> ProbeOptions:
    try:
        return options_from_args(args)
    except ClipProbeError as exc:
        raise UsageError(str(exc)) from exc


def _render(reports: list[Any], args: argparse.Namespace, color: bool) -> str:
    from clipprobe_ext import report as render

    if args.json:
        return render.to_json(reports[0] if len(reports) == 1 else reports) + "\n"
    if args.csv:
        return render.to_csv(reports)
    return render.format_table(reports, color=color)


def _use_color(args: argparse.Namespace, stdout: TextIO) -> bool:
    if args.json or args.csv or args.color == "never":
        return False
    if args.color == "always":
        return True
    return args.output is None and _isatty(stdout) and not os.environ.get("NO_COLOR")


def _error(message: str) -> None:
    message = " ".join(str(message).split()) or "unknown error"
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    status: _Status | None = None
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        options = _options(args)
        status = _Status(sys.stderr, enabled=not args.quiet)
        skipped: list[str] = []

        def skip(path: str, reason: str) -> None:
            status.clear()
            print(f"{PROG}: skipped {path}: {' '.join(reason.split())}", file=sys.stderr)
            skipped.append(path)

        # One file: its error is the error.  Several: a bad one is skipped, not fatal.
        batch = skip if len(args.images) > 1 else None
        status("Reading images")
        groups = load_inputs(args.images, args.prompt, batch)
        if not groups:
            raise ClipProbeError(f"None of the {len(args.images)} images could be analysed.")

        from clipprobe_ext.probe import analyze

        reports = []
        with warnings.catch_warnings():
            # deprecation chatter of torch/transformers/huggingface_hub is not for the user
            if not os.environ.get("CLIPPROBE_DEBUG"):
                warnings.simplefilter("ignore")
            status(f"Loading {args.model}")
            encoder = load_encoder(args.model, args.device)
            for n, group in enumerate(groups, start=1):
                prompt, images, labels = group.prompt, group.images, group.labels
                if len(groups) > 1:
                    status.prefix = f"group {n}/{len(groups)}: "
                negative, note = group_negative(group, args.negative)
                try:
                    result = analyze(images, prompt, encoder, options, labels, status, negative)
                except ModelError:
                    raise
                except ClipProbeError as exc:  # this group's prompt: its files are skipped
                    if batch is None or len(groups) == 1 and not skipped:
                        raise
                    for label in labels:
                        skip(label, str(exc))
                    continue
                if note:
                    result.notes.append(note)
                if args.heatmaps:
                    from clipprobe_ext.heatmaps.cli_output import write_report_heatmaps

                    written = write_report_heatmaps(encoder, result, images, args.heatmaps, status)
                    result.notes.append(
                        f"Heatmaps: {len(written)} files written to {args.heatmaps}."
                    )
                reports.append(result)
        if not reports:
            raise ClipProbeError(f"None of the {len(args.images)} images could be analysed.")
        status.clear()
        text = _render(reports, args, _use_color(args, sys.stdout))
        if args.output:
            try:
                Path(args.output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ClipProbeError(
                    f"Could not write {args.output}: {exc.strerror or exc}"
                ) from exc
        else:
            _write_stdout(text)
        return SKIPPED if skipped else 0
    except UsageError as exc:
        _clear(status)
        _error(f"{exc} (see {PROG} --help)")
        return 2
    except ClipProbeError as exc:
        _clear(status)
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _clear(status)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an environment failure: still one line
        _clear(status)
        if os.environ.get("CLIPPROBE_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (set CLIPPROBE_DEBUG=1 for a traceback)")
        return 1


def _clear(status: _Status | None) -> None:
    if status is not None:
        status.clear()


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except UnicodeEncodeError:
        data = text.encode(sys.stdout.encoding or "utf-8", errors="replace")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
