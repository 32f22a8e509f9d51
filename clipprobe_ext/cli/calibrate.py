"""``clipprobe calibrate DIR...``: fit where "seen" begins for a model, on your own pictures
(docs/calibration.md).

The fit itself is ``audit.calibrate``; this module runs it and writes its report.  A
folder that cannot calibrate the model is an error (status 1) with the reason, and the
previous fit is left as it was; ``--dry-run`` saves nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clipprobe_ext.cli.arguments import (
    add_folder_arguments,
    add_model_arguments,
    folder_options,
    load_encoder,
)
from clipprobe_ext.cli.progress import Progress
from clipprobe_ext.cli.shell import Interrupted, Outcome
from clipprobe_ext.errors import ClipProbeError

NAME = "calibrate"
HELP = 'fit where "seen" begins for a model, on a folder of your generated pictures'
DESCRIPTION = (
    "Calibrate a model on your own pictures: every picture of the folders against every "
    'phrase of their prompts, asked for or not, gives where "seen" begins for this '
    "model, without labels. The fit is saved for the model's weights and used by every "
    "later analysis and audit."
)
EPILOG = (
    "A model without a fit of its own is uncalibrated: no presence score, no pruning by "
    "it. Use pictures from varied prompts (at least 60 pictures, 10 distinct phrases)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_folder_arguments(p)
    add_model_arguments(p)
    p.add_argument("--cache", metavar="PATH", help="the embedding store (SQLite file)")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the asked and not-asked populations with the cut points into a PNG",
    )
    p.add_argument("--json", action="store_true", help="write the result as JSON")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--dry-run", action="store_true", help="fit and report, but save nothing")


def run(args: argparse.Namespace, progress: Progress) -> Outcome:
    """Calibrate ``args.model`` on ``args.folders``: the report as text or JSON."""
    options = folder_options(args)
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        raise ClipProbeError(f"Cannot write the plot: no folder {Path(args.plot).parent}")
    from clipprobe_ext.audit.calibrate import calibrate_on_folders
    from clipprobe_ext.audit.pipeline import AuditInterrupted

    progress(f"Loading {args.model}")
    encoder = load_encoder(args.model, args.device)
    try:
        result = calibrate_on_folders(
            args.folders, encoder, options, progress=progress.count, save=not args.dry_run
        )
    except AuditInterrupted as exc:
        raise Interrupted(
            f"interrupted after {exc.stats.read} files; nothing was fitted or saved; "
            f"{exc.stats.encoded} new embeddings are kept in the store"
        ) from exc
    progress.clear()
    from clipprobe_ext.report.calibration import (
        calibration_data,
        calibration_plot,
        calibration_text,
    )
    from clipprobe_ext.report.data import dumps

    if args.plot:
        try:
            Path(args.plot).write_bytes(calibration_plot(result))
        except OSError as exc:
            raise ClipProbeError(f"Could not write {args.plot}: {exc.strerror or exc}") from exc
    if args.json:
        return Outcome(dumps(calibration_data(result)) + "\n")
    return Outcome(calibration_text(result))
