"""The one number format of every output a person reads (text, HTML, pictures, messages).

Rules: a space before a unit (``12.5 %``, ``60 CLIP tokens``); no negative zero
(a value that rounds to zero is written without a sign); a missing or not-finite value
is ``–``; token counts always say which count they are (the WebUI's counter or CLIP's
tokens).  CSV and JSON keep full-precision numbers instead.  Texts are shortened one
way too (``clip_text``).
"""

from __future__ import annotations

import math

MISSING = "–"
TEXT_WIDTH = 40


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def fixed(x: float | None, digits: int) -> str:
    """``x`` with ``digits`` decimals; ``-0.0000`` is written ``0.0000``."""
    if not _finite(x):
        return MISSING
    text = f"{float(x):.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def signed(x: float | None, digits: int = 4) -> str:
    """A difference with its sign (``+0.0123``, ``-0.0123``); one that rounds to zero
    has none (``0.0000``)."""
    text = fixed(x, digits)
    if text == MISSING or text.startswith("-") or not text.strip("0."):
        return text
    return "+" + text


def similarity(x: float | None) -> str:
    """A cosine similarity: four decimals."""
    return fixed(x, 4)


def presence(x: float | None) -> str:
    """A calibrated presence (0 to 1): two decimals."""
    return fixed(x, 2)


def zscore(x: float | None) -> str:
    """A value in units of a spread (``cosine_z``): two decimals."""
    return fixed(x, 2)


def percent(p: float | None, digits: int = 1) -> str:
    """A fraction in percent: ``0.125 -> "12.5 %"``; a positive share under the last
    digit shown is ``"<0.1 %"``."""
    if not _finite(p):
        return MISSING
    smallest = 10.0**-digits
    if 0 < 100 * float(p) < smallest:
        return f"<{fixed(smallest, digits)} %"
    return f"{fixed(100 * float(p), digits)} %"


def with_spread(value: str, spread: float | None, text: str | None = None) -> str:
    """``value ± spread`` (``text``: the spread already formatted), or ``value`` alone
    when the spread is missing."""
    if value == MISSING or not _finite(spread):
        return value
    return f"{value} ± {text if text is not None else spread}"


def count(n: int, unit: str) -> str:
    """``1 chunk``, ``2 chunks``."""
    return f"{n} {unit}{'' if n == 1 else 's'}"


def clip_tokens(n: int) -> str:
    """Tokens CLIP reads: ``60 CLIP tokens``."""
    return count(n, "CLIP token")


def webui_count(n: int | str, limit: int | None = None) -> str:
    """The WebUI's token counter, as it shows it: ``WebUI count 102/150``."""
    return f"WebUI count {n}/{limit}" if limit else f"WebUI count {n}"


def change(before: str, after: str) -> str:
    """``before → after``."""
    return f"{before} → {after}"


def fraction(p: float | None) -> float:
    """``p`` clamped to [0, 1] for a bar's length; 0 when missing or not finite."""
    return min(max(float(p), 0.0), 1.0) if _finite(p) else 0.0


def clip_text(text: str, width: int = TEXT_WIDTH) -> str:
    """One line of at most ``width`` characters (an ellipsis when cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
