"""The weight the WebUI gives each character of a prompt, as ``parse_prompt_attention`` reads
the raw text (extra-network tags cut, sub-prompts split at ``AND``).

The pruner uses it to refuse a removal that would change the weight of kept text: an
unmatched ``(`` weighs everything after it by 1.1 in the WebUI, so cutting it (or cutting
the ``)`` that closed it) changes text the user kept.  It follows the WebUI's rules
(``modules/prompt_parser.py`` 1.10.1: ``re_attention``, unmatched brackets stretched to
the end), without scheduling: a schedule reads as a square bracket here, which is enough to
compare a prompt before and after a cut (the parser checks what schedules read).
"""

from __future__ import annotations

import math
import re

from .parser import TAG_RE

_AND_RE = re.compile(r"\bAND\b")
_BREAK_RE = re.compile(r"\bBREAK\b")
_ATTENTION_RE = re.compile(
    r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:"
)


def webui_char_weights(prompt: str) -> list[float | None]:
    """Per character of ``prompt``: its attention weight, or None where it is syntax (a
    bracket, a weight, a tag, a backslash, ``AND``/``BREAK``)."""
    weights: list[float | None] = [None] * len(prompt)
    kept = [k for k in range(len(prompt))]
    for m in reversed(list(TAG_RE.finditer(prompt))):
        del kept[m.start() : m.end()]  # positions of the text without tags
    text = "".join(prompt[k] for k in kept)
    last = 0
    for m in [*_AND_RE.finditer(text), None]:
        end = len(text) if m is None else m.start()
        _read(text, last, end, kept, weights)
        last = end if m is None else m.end()
    return weights


def _read(text: str, lo: int, hi: int, pos: list[int], weights: list[float | None]) -> None:
    runs: list[tuple[int, int]] = []  # text runs, as spans of ``text``
    ranges: list[tuple[int, int, float]] = []  # multiply runs[a:b] by m
    round_open: list[int] = []
    square_open: list[int] = []
    for m in _ATTENTION_RE.finditer(text, lo, hi):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            runs.append((m.start() + 1, m.end()))
        elif token == "(":
            round_open.append(len(runs))
        elif token == "[":
            square_open.append(len(runs))
        elif weight is not None and round_open:
            try:
                factor = float(weight)
            except ValueError:  # the WebUI itself fails on "(a:1.2.3)"
                factor = float("nan")
            ranges.append((round_open.pop(), len(runs), factor))
        elif token == ")" and round_open:
            ranges.append((round_open.pop(), len(runs), 1.1))
        elif token == "]" and square_open:
            ranges.append((square_open.pop(), len(runs), 1 / 1.1))
        else:
            runs.append((m.start(), m.end()))
    ranges += [(start, len(runs), 1.1) for start in round_open]
    ranges += [(start, len(runs), 1 / 1.1) for start in square_open]
    factors = _products(len(runs), ranges)
    for (a, b), factor in zip(runs, factors):
        for k in range(a, b):
            weights[pos[k]] = factor
        for w in _BREAK_RE.finditer(text, a, b):  # a BREAK marker is no text
            for k in range(w.start(), w.end()):
                weights[pos[k]] = None


def _products(n: int, ranges: list[tuple[int, int, float]]) -> list[float]:
    """The product of the factors of the ranges over each of n runs, in O(n + ranges), in
    log space (a factor applies from its start and is taken out at its end); zeros, signs
    and NaNs are counted apart."""
    events: list[list[tuple[float, int]]] = [[] for _ in range(n + 1)]
    for a, b, factor in ranges:
        if a < b:
            events[a].append((factor, 1))
            events[b].append((factor, -1))
    out, log_sum, zeros, negatives, nans = [], 0.0, 0, 0, 0
    for k in range(n):
        for factor, step in events[k]:
            if math.isnan(factor):
                nans += step
            elif factor == 0:
                zeros += step
            else:
                log_sum += step * math.log(abs(factor))
                negatives += step * (factor < 0)
        if nans:
            out.append(math.nan)
        elif zeros:
            out.append(0.0)
        else:
            out.append((-1.0) ** negatives * math.exp(min(log_sum, 709.0)))
    return out


def same_weight(a: float | None, b: float | None) -> bool:
    """Equal weights, up to the rounding of the log-space products."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
