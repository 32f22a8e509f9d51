"""``clipprobe IMAGE...`` (or ``clipprobe analyze IMAGE...``): probe a prompt against images.

The options and their behaviour are documented in docs/cli.md.  Invariants: without
``--prompt`` images are grouped by the prompt they carry and each group is its own report;
a WebUI grid is cut into its pictures (``inputs``); with several images a file that cannot
be used is skipped with one ``clipprobe: skipped FILE: reason`` line and the rest is
analysed (exit status 3).  Exit status and output: ``cli.shell``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from clipprobe_ext import options as analysis_options
from clipprobe_ext.cli.arguments import add_model_arguments, add_output_arguments, load_encoder
from clipprobe_ext.cli.progress import Progress, isatty
from clipprobe_ext.cli.shell import Outcome, UsageError, skipped
from clipprobe_ext.errors import ClipProbeError, ModelError, PromptError
from clipprobe_ext.options import ProbeOptions, check_prompt_length, options_from_args

NAME = "analyze"
HELP = "which phrases of a prompt show up in the images (the default command)"
DESCRIPTION = (
    "Ask CLIP which phrases of a Stable Diffusion prompt actually show up in the "
    "images: elimination rounds, synonym groups, in-context contribution, verdicts "
    "and a pruned prompt that keeps the CLIP score."
)
EPILOG = (
    "Without --prompt each image's prompt is read from its WebUI generation "
    "parameters; images with different prompts are analysed as separate groups. "
    "A WebUI grid is cut into its pictures."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or WebP files")
    p.add_argument("--prompt", help="the prompt (default: read from each image's parameters)")
    add_model_arguments(p)
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
    p.add_argument(
        "--region",
        metavar="X,Y[,X1,Y1]",
        type=region_argument,
        help="rank the phrases by how much of their heatmap falls in this point or box of "
        "each image (pixels from the top left); computes the heatmaps",
    )
    analysis_options.add_arguments(p)
    add_output_arguments(
        p,
        json_help="write the report as JSON",
        csv_help="write one CSV row per image and phrase",
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the table (auto: when stdout is a terminal and NO_COLOR is unset)",
    )


# -- inputs ------------------------------------------------------------------------------


def region_argument(text: str) -> list[float]:
    """``X,Y`` or ``X0,Y0,X1,Y1`` in pixels."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in (2, 4):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a region is a point X,Y or a box X0,Y0,X1,Y1 in pixels"
        )
    return values


def region_notes(report: Any, maps: Sequence[Any], region: Sequence[float]) -> list[str]:
    """Per image, the phrases ranked in ``region`` (a region outside what CLIP saw of an
    image is said, not fatal)."""
    from clipprobe_ext.heatmaps.region import rank_region
    from clipprobe_ext.report.region import region_text

    notes = []
    for analysis, image_maps in zip(report.images, maps):
        try:
            notes.append(region_text(region, rank_region(image_maps, region), analysis.label))
        except ClipProbeError as exc:
            notes.append(f"{analysis.label}: {exc}")
    return notes


def _labels(paths: Sequence[str]) -> list[str]:
    """File names, or the paths as given where two files share a name."""
    names = [Path(p).name for p in paths]
    return [n if names.count(n) == 1 else p for n, p in zip(names, paths)]


Skip = Callable[[str, str], None]


class InputGroup(NamedTuple):
    """Pictures sharing a prompt, with the negative prompt of each (``""`` where none is
    checked) and the notes their inputs came with (a grid cut into its pictures, ...)."""

    prompt: str
    images: list[Any]
    labels: list[str]
    negatives: list[str]
    notes: list[str]


def load_inputs(
    paths: Sequence[str],
    prompt: str | None,
    skip: Skip | None = None,
    negative: str | None = None,
) -> list[InputGroup]:
    """One ``InputGroup`` per prompt, in order of first appearance.

    A file that cannot be used raises its ``ClipProbeError``, or, with ``skip``, is passed
    to ``skip(path, reason)`` and left out."""
    from clipprobe_ext.inputs import resolve

    if prompt is not None:
        if not prompt.strip():
            raise PromptError("The prompt given with --prompt is empty.")
        check_prompt_length(prompt, "The prompt given with --prompt")
    if negative is not None:
        check_prompt_length(negative, "The negative prompt given with --negative")

    groups: dict[str, InputGroup] = {}
    for path, label in zip(paths, _labels(paths)):
        try:
            found = resolve(
                path,
                prompt,
                negative,
                label=label,
                cell_label="{label}#{n}",
                name=path,
                ask="pass one with --prompt",
            )
        except ClipProbeError as exc:
            if skip is None:
                raise
            skip(path, str(exc))
            continue
        group = groups.setdefault(found.prompt, InputGroup(found.prompt, [], [], [], []))
        group.images.extend(found.pictures)
        group.labels.extend(found.labels)
        group.negatives.extend([found.negative] * len(found.pictures))
        group.notes.extend(note for note in found.notes if note not in group.notes)
    return list(groups.values())


def group_negative(group: InputGroup) -> tuple[str, str | None]:
    """The negative prompt to check for a group, and a note when its images disagree."""
    found = list(dict.fromkeys(group.negatives))
    if len(found) > 1:
        return found[0], (
            f"The images of this group store {len(found)} different negative prompts; the one "
            f"checked is {group.labels[0]}'s."
        )
    return (found[0] if found else ""), None


# -- run ---------------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> ProbeOptions:
    try:
        return options_from_args(args)
    except ClipProbeError as exc:
        raise UsageError(str(exc)) from exc


def _render(reports: list[Any], args: argparse.Namespace, color: bool) -> str:
    from clipprobe_ext.report import data, text

    if args.json:
        return data.to_json(reports[0] if len(reports) == 1 else reports) + "\n"
    if args.csv:
        return data.to_csv(reports)
    return text.format_table(reports, color=color)


def _use_color(args: argparse.Namespace, stdout: Any) -> bool:
    if args.json or args.csv or args.color == "never":
        return False
    if args.color == "always":
        return True
    return args.output is None and isatty(stdout) and not os.environ.get("NO_COLOR")


def run(args: argparse.Namespace, status: Progress) -> Outcome:
    """The analysis of ``args.images``: one report per prompt group."""
    options = _options(args)
    dropped: list[str] = []

    def skip(path: str, reason: str) -> None:
        status.clear()
        skipped(path, reason)
        dropped.append(path)

    # One file: its error is the error.  Several: a bad one is skipped, not fatal.
    batch = skip if len(args.images) > 1 else None
    status("Reading images")
    groups = load_inputs(args.images, args.prompt, batch, args.negative)
    if not groups:
        raise ClipProbeError(f"None of the {len(args.images)} images could be analysed.")

    from clipprobe_ext.heatmaps.cli_output import report_heatmaps, write_report_heatmaps
    from clipprobe_ext.probe import analyze

    reports = []
    status(f"Loading {args.model}")
    encoder = load_encoder(args.model, args.device)
    for n, group in enumerate(groups, start=1):
        prompt, images, labels = group.prompt, group.images, group.labels
        if len(groups) > 1:
            status.prefix = f"group {n}/{len(groups)}: "
        negative, note = group_negative(group)
        try:
            result = analyze(images, prompt, encoder, options, labels, status, negative)
        except ModelError:
            raise
        except ClipProbeError as exc:  # this group's prompt: its files are skipped
            if batch is None or len(groups) == 1 and not dropped:
                raise
            for label in labels:
                skip(label, str(exc))
            continue
        result.notes.extend(group.notes)
        if note:
            result.notes.append(note)
        if args.heatmaps or args.region:
            maps = report_heatmaps(encoder, result, images, progress=status)
            if args.heatmaps:
                written = write_report_heatmaps(
                    result, images, maps, args.heatmaps, region=args.region
                )
                result.notes.append(f"Heatmaps: {len(written)} files written to {args.heatmaps}.")
            if args.region:
                result.notes.extend(region_notes(result, maps, args.region))
        reports.append(result)
    if not reports:
        raise ClipProbeError(f"None of the {len(args.images)} images could be analysed.")
    status.clear()
    return Outcome(_render(reports, args, _use_color(args, sys.stdout)), skipped=bool(dropped))
