"""The one error shell of every subcommand: exit codes, one-line messages, the output.

Exit status: ``DONE`` 0; ``SKIPPED`` 3, done, but some files named on the command line
were skipped (each named on stderr); ``ERROR`` 1, an error the user can act on (a
``ClipProbeError``: unreadable image, model not available, ...), reported as one
``clipprobe: error: ...`` line on stderr; ``USAGE`` 2, a bad command line;
``INTERRUPTED`` 130.  Anything else is a bug or an environment failure: still one line,
with the traceback only when ``CLIPPROBE_DEBUG=1`` (which also lets the libraries'
warnings through).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from clipprobe_ext.cli.progress import PROG, Progress
from clipprobe_ext.errors import ClipProbeError

DONE, ERROR, USAGE, SKIPPED, INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """A bad command line: exit status 2; ``prog`` is the command whose ``--help`` helps."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the user should know about the work kept (one line)."""

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as ``UsageError`` instead of printed and exited."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


@dataclass
class Outcome:
    """What a command produced: the document for stdout (or ``-o FILE``), and whether
    files were skipped on the way."""

    text: str
    skipped: bool = False


Command = Callable[[argparse.Namespace, Progress], Outcome]


def run_guarded(parse: Callable[[], argparse.Namespace]) -> int:
    """Parse, run the chosen command, write its output; every failure is one line."""
    progress: Progress | None = None
    try:
        try:
            args = parse()
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        progress = Progress(sys.stderr, enabled=not args.quiet)
        with warnings.catch_warnings():
            # deprecation chatter of torch/transformers/huggingface_hub is not for the user
            if not os.environ.get("CLIPPROBE_DEBUG"):
                warnings.simplefilter("ignore")
            outcome = args.run(args, progress)
        progress.clear()
        write_output(outcome.text, args.output)
        return SKIPPED if outcome.skipped else DONE
    except UsageError as exc:
        _clear(progress)
        error(f"{exc} (see {exc.prog} --help)")
        return USAGE
    except ClipProbeError as exc:
        _clear(progress)
        error(str(exc))
        return ERROR
    except KeyboardInterrupt as exc:
        _clear(progress)
        print(f"{PROG}: {getattr(exc, 'message', 'interrupted')}", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # a bug or an environment failure: still one line
        _clear(progress)
        if os.environ.get("CLIPPROBE_DEBUG"):
            raise
        error(f"unexpected {type(exc).__name__}: {exc} (set CLIPPROBE_DEBUG=1 for a traceback)")
        return ERROR


def error(message: str) -> None:
    """``clipprobe: error: MESSAGE`` on stderr, on one line."""
    message = " ".join(str(message).split()) or "unknown error"
    print(f"{PROG}: error: {message}", file=sys.stderr)


def skipped(name: str, reason: str) -> None:
    """``clipprobe: skipped NAME: REASON`` on stderr, on one line."""
    print(f"{PROG}: skipped {name}: {' '.join(reason.split())}", file=sys.stderr)


def write_file(path: str | os.PathLike, text: str) -> None:
    """Write a report file; a ``ClipProbeError`` saying why it could not be written."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ClipProbeError(f"Could not write {os.fspath(path)}: {exc.strerror or exc}") from exc


def write_output(text: str, output: str | None) -> None:
    """``text`` to ``output`` (``-o FILE``), else to stdout."""
    if output:
        write_file(output, text)
        return
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


def _clear(progress: Progress | None) -> None:
    if progress is not None:
        progress.clear()
