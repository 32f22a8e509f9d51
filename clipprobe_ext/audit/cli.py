"""``python -m clipprobe_ext audit DIR...``: which of your words show up, folder-wide.

Usage::

    python -m clipprobe_ext audit DIR... [--recursive] [--since DATE] [--limit N]
        [--model NAME] [--device cpu|cuda] [--html REPORT.html] [--json | --csv]
        [--cache PATH] [--workers N] [--batch-size N] [--contribution] [-q]

The table (or ``--json``/``--csv``) goes to stdout, ``--html`` writes a self-contained
report with plots.  Progress is a bar on stderr while it is a terminal.  Embeddings are
kept in an SQLite store (``--cache``, default in the user's cache folder): a re-run, a
moved file or a second folder of the same pictures costs no encode, and a run stopped
at any point continues where it stopped.

A phrase is *seen* in a picture when its calibrated presence score (the single-image
verdicts' score and thresholds) says so; ``--contribution`` adds each phrase's
leave-one-out contribution to the report (one extra text encode per phrase of each
distinct prompt: slower, and not needed for the verdict).

Exit status: 0 done; 1 an error the user can act on, one ``clipprobe: error: ...`` line;
2 a bad command line; 130 interrupted (what was encoded is kept).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.options import DEFAULT_MODEL

PROG = "clipprobe"


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a fraction in [0, 1) such as 0.01 or 1%")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=f"{PROG} audit",
        description=(
            "Audit a folder of generated pictures: for every phrase you keep writing, how "
            "often CLIP finds it in the pictures; habit words are frequent and rarely seen."
        ),
    )
    p.add_argument("folders", nargs="+", metavar="DIR", help="folders (or image files)")
    p.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    p.add_argument("--since", type=_date, metavar="DATE", help="only files modified since DATE")
    p.add_argument("--limit", type=_positive, metavar="N", help="only the N newest files")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"CLIP model (default {DEFAULT_MODEL})")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--html", metavar="REPORT.html", help="write an HTML report with plots")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the report as JSON")
    fmt.add_argument("--csv", action="store_true", help="print one CSV row per phrase")
    p.add_argument("--cache", metavar="PATH", help="the embedding store (SQLite file)")
    p.add_argument("--rounds", type=_positive, default=5, help="elimination rounds (5)")
    p.add_argument("--threshold", type=_fraction, default=0.01, help="ranking threshold (1%%)")
    p.add_argument(
        "--contribution",
        action="store_true",
        help="also measure each phrase's leave-one-out contribution to its prompt's "
        "similarity (one more text encode per phrase and distinct prompt; off by default: "
        "the verdict rests on the presence score)",
    )
    p.add_argument("--no-contribution", action="store_true", help=argparse.SUPPRESS)  # old
    p.add_argument("--workers", type=_positive, default=2, help="reading threads (2)")
    p.add_argument("--batch-size", type=_positive, default=32, help="pictures per encode (32)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def load_encoder(name: str, device: str | None) -> Any:
    """The shared model loader, whichever of its homes this version has."""
    try:
        from clipprobe_ext.encoders.factory import load_encoder as load
    except ImportError:
        from clipprobe_ext.cli import load_encoder as legacy

        return legacy(name, device)
    return load(name, device, None)


class _Bar:
    """A tqdm bar on stderr: files, pictures per second, ETA; silent off a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.enabled = enabled and _isatty(sys.stderr)

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="pic", desc=PROG, file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split()) or 'unknown error'}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``audit`` with ``argv`` (without the word ``audit``); the exit status."""
    from clipprobe_ext.audit.pipeline import AuditInterrupted, AuditOptions, run_audit

    bar = _Bar(enabled=False)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        options = AuditOptions(
            recursive=args.recursive,
            since=args.since,
            limit=args.limit,
            cache=args.cache,
            rounds=args.rounds,
            threshold=args.threshold,
            contribution=args.contribution and not args.no_contribution,
            workers=args.workers,
            batch_size=args.batch_size,
        )
        options.validate()
        for folder in args.folders:
            if not os.path.exists(folder):
                raise ClipProbeError(f"No such folder or file: {folder}")
        bar = _Bar(enabled=not args.quiet)
        with warnings.catch_warnings():
            if not os.environ.get("CLIPPROBE_DEBUG"):
                warnings.simplefilter("ignore")
            encoder = load_encoder(args.model, args.device)
            report = run_audit(args.folders, encoder, options, progress=bar)
        bar.close()
        if args.html:
            from clipprobe_ext.audit.html import render_html

            try:
                Path(args.html).write_text(render_html(report), encoding="utf-8")
            except OSError as exc:
                raise ClipProbeError(f"Could not write {args.html}: {exc.strerror or exc}") from exc
        from clipprobe_ext.audit import report as render

        if args.json:
            text = render.to_json(report) + "\n"
        elif args.csv:
            text = render.to_csv(report)
        else:
            text = render.format_table(report)
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        return 0
    except UsageError as exc:
        _error(f"{exc} (see {PROG} audit --help)")
        return 2
    except ClipProbeError as exc:
        bar.close()
        _error(str(exc))
        return 1
    except AuditInterrupted as exc:
        bar.close()
        print(
            f"{PROG}: interrupted after {exc.stats.read} files; {exc.stats.encoded} new "
            "embeddings are kept in the store, the next run continues from there",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        bar.close()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an environment failure: still one line
        bar.close()
        if os.environ.get("CLIPPROBE_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (set CLIPPROBE_DEBUG=1 for a traceback)")
        return 1
