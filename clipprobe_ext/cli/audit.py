"""``clipprobe audit DIR...``: which of your words show up, folder-wide (docs/audit.md).

The engine is ``audit.pipeline``; this module turns options into ``AuditOptions`` and the
report into the table, JSON, CSV or HTML page.  Files the audit cannot use are listed in
the report, not on stderr: the status is 0 when the audit is done; Ctrl-C exits with 130
and keeps what was encoded.
"""

from __future__ import annotations

import argparse

from clipprobe_ext.cli.arguments import (
    add_folder_arguments,
    add_model_arguments,
    add_output_arguments,
    folder_options,
    load_encoder,
    positive_int,
)
from clipprobe_ext.cli.progress import Progress
from clipprobe_ext.cli.shell import Interrupted, Outcome, write_file
from clipprobe_ext.options import OPTIONS, add_number_argument

NAME = "audit"
HELP = "how often each phrase you keep writing shows up, over a folder of pictures"
DESCRIPTION = (
    "Audit a folder of generated pictures: for every phrase you keep writing, how "
    "often CLIP finds it in the pictures; habit words are frequent and rarely seen."
)
EPILOG = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_folder_arguments(p)
    add_model_arguments(p)
    p.add_argument("--html", metavar="REPORT.html", help="write an HTML report with plots")
    add_output_arguments(
        p,
        json_help="write the report as JSON",
        csv_help="write one CSV row per phrase",
    )
    p.add_argument("--cache", metavar="PATH", help="the embedding store (SQLite file)")
    add_number_argument(p, "rounds")
    add_number_argument(p, "threshold")
    contribution = OPTIONS["contribution"]
    p.add_argument(
        "--contribution",
        action="store_true",
        help=f"also measure the {contribution.label.lower()}: {contribution.help} (one more "
        "text encode per phrase and distinct prompt; off by default: the verdict rests on "
        "the presence score)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=2, metavar="N", help="reading threads (2)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="N", help="pictures per encode (32)"
    )


def run(args: argparse.Namespace, progress: Progress) -> Outcome:
    """The audit of ``args.folders``: the report as a table, JSON or CSV (and HTML)."""
    options = folder_options(
        args,
        rounds=args.rounds,
        threshold=args.threshold,
        contribution=args.contribution,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    from clipprobe_ext.audit.pipeline import AuditInterrupted, run_audit

    progress(f"Loading {args.model}")
    encoder = load_encoder(args.model, args.device)
    try:
        report = run_audit(args.folders, encoder, options, progress=progress.count)
    except AuditInterrupted as exc:
        raise Interrupted(
            f"interrupted after {exc.stats.read} files; {exc.stats.encoded} new embeddings "
            "are kept in the store, the next run continues from there"
        ) from exc
    progress.clear()
    if args.html:
        from clipprobe_ext.report.audit_page import render_html

        write_file(args.html, render_html(report))
    from clipprobe_ext.report import audit as render

    if args.json:
        return Outcome(render.to_json(report) + "\n")
    if args.csv:
        return Outcome(render.to_csv(report))
    return Outcome(render.format_table(report))
