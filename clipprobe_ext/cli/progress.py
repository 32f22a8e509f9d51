"""Progress on stderr: one self-overwriting line, only while stderr is a terminal.

Every subcommand shows its progress through ``Progress``: ``progress(message, fraction)``
for a step (the analysis' callback), ``progress.count(done, total, message)`` for work
counted in files (the audit's, with its rate and time left).  Never on stdout, which
holds only the document; ``-q`` switches it off.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

PROG = "clipprobe"  # the command's name, in every line it writes
WIDTH = 100  # characters of the line at most


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything without a working ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """The status line; ``prefix`` goes before each message (e.g. ``group 2/3: ``)."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled and isatty(stream)
        self.prefix = ""
        self._shown = 0
        self._last = float("-inf")
        self._message = ""
        self._counting: tuple[float, int, str] | None = None  # (started, done, message)

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if self.enabled:
            self._show(message, fraction, time.monotonic())

    def count(self, done: int, total: int, message: str) -> None:
        """``message done/total``, with the rate and the time left once they are known."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return  # at most ten redraws a second, and always the last one
        if self._counting is None or self._counting[2] != message:
            self._counting = (now, done, message)  # a new count: its own rate
        started, first, _ = self._counting
        text = f"{message} {done}/{total}"
        if now - started >= 1.0 and done > first:
            rate = (done - first) / (now - started)
            left = (total - done) / rate
            text += f", {rate:.1f}/s, {int(left) // 60}:{int(left) % 60:02d} left"
        self._show(text, done / total if total else None, now)

    def _show(self, message: str, fraction: float | None, now: float) -> None:
        if message == self._message and now - self._last < 0.1:
            return  # the same step counting up: redraw at most ten times a second
        self._last, self._message = now, message
        text = f"{PROG}: {self.prefix}{message}"
        if fraction is not None:
            text += f" {100 * max(0.0, min(1.0, fraction)):3.0f}%"
        self._draw(text[:WIDTH])

    def clear(self) -> None:
        """Remove the line (before the document, an error or a skipped-file message)."""
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0

    def _draw(self, text: str) -> None:
        pad = " " * max(0, self._shown - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._shown = len(text)
