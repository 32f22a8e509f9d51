"""Prompt variants that try to bring a missing phrase into the picture.

Each variant changes only what it says it changes: the wanted phrases' attention weight,
their place (moved to the front, or into a chunk of their own after ``BREAK``), or a
competing phrase's weight.  Every variant is checked with the WebUI's own weighting rules
(``webui_weights``): each kept character keeps the weight it had, the wanted phrases get
the weight the variant names, and the kept phrases still read as before.  A variant that
cannot be written that way is left out with its reason, never offered half right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .parser import ParsedPrompt, parse_prompt
from .removal import plan_removal
from .webui_weights import same_weight, webui_char_weights

VariantKind = Literal["weight", "front", "own_chunk", "weaken"]

#: The wanted phrases' attention weights tried by default, as the WebUI writes them.
RAISED_WEIGHTS = (1.2, 1.4, 1.6)
#: The competing phrase's weight is multiplied by this.
WEAKEN_FACTOR = 0.8

_OWN_WEIGHT_RE = re.compile(r"^\((?P<inner>.*):\s*(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))\s*\)$", re.S)


@dataclass(frozen=True)
class Variant:
    """One prompt to generate, and what it changed."""

    kind: VariantKind
    label: str  # what changed, in words: "weight 1.4", "moved to the front", ...
    prompt: str
    phrases: tuple[int, ...]  # the phrases changed (indices of the original parse)


@dataclass(frozen=True)
class Skipped:
    kind: VariantKind
    label: str
    reason: str


def bring_in_variants(
    parsed: ParsedPrompt,
    wanted: Sequence[int],
    competitor: int | None = None,
    weights: Sequence[float] = RAISED_WEIGHTS,
) -> tuple[list[Variant], list[Skipped]]:
    """The variants for ``wanted`` (phrase indices), and those that could not be written.

    ``competitor``: a phrase that dominates the wanted ones (the analysis' choice); its
    weight is lowered in one more variant.
    """
    wanted = sorted(set(wanted))
    if not wanted:
        raise ValueError("no phrase to bring in")
    for i in [*wanted, *([competitor] if competitor is not None else [])]:
        if not 0 <= i < len(parsed.phrases) or not parsed.phrases[i].measurable:
            raise ValueError(f"phrase {i} is not a measurable phrase of the prompt")
    out: list[Variant] = []
    skipped: list[Skipped] = []

    def offer(kind: VariantKind, label: str, build) -> None:
        try:
            prompt, changed = build()
        except _Refused as exc:
            skipped.append(Skipped(kind, label, str(exc)))
            return
        if prompt == parsed.prompt or any(v.prompt == prompt for v in out):
            skipped.append(Skipped(kind, label, "it would not change the prompt"))
            return
        out.append(Variant(kind, label, prompt, changed))

    for target in weights:
        offer("weight", f"weight {_number(target)}", lambda t=target: _weighted(parsed, wanted, t))
    offer("front", "moved to the front", lambda: _moved(parsed, wanted, "front"))
    offer("own_chunk", "in a chunk of its own (BREAK)", lambda: _moved(parsed, wanted, "end"))
    if competitor is not None and competitor not in wanted:
        text = parsed.phrases[competitor].text
        offer("weaken", f"{text!r} weakened", lambda: _weakened(parsed, competitor))
    return out, skipped


class _Refused(Exception):
    """This variant cannot be written cleanly (the message says why)."""


def _number(value: float) -> str:
    """A weight as people write it: ``1.4``, ``0.83``."""
    return f"{round(value, 2):g}"


def _weight_of(parsed: ParsedPrompt, weights: list[float | None], index: int) -> float:
    phrase = parsed.phrases[index]
    chars = [w for w in weights[phrase.start : phrase.end] if w is not None]
    return sum(chars) / len(chars) if chars else 1.0


def _reweighted_raw(raw: str, factor: float) -> str:
    """``raw`` with its weight multiplied by ``factor``: its own ``(x:N)`` rewritten when
    it has one, else wrapped in a new ``(...:factor)``."""
    own = _OWN_WEIGHT_RE.match(raw)
    if own and _balanced(own.group("inner")):
        return f"({own.group('inner')}:{_number(float(own.group('number')) * factor)})"
    return f"({raw}:{_number(factor)})"


def _balanced(text: str) -> bool:
    depth, escaped = 0, False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _set_weights(parsed: ParsedPrompt, targets: dict[int, float]) -> tuple[str, list[int]]:
    """The prompt with each phrase's raw text rewritten to reach its target weight, and the
    origin of each character (-1 for what was added)."""
    weights = webui_char_weights(parsed.prompt)
    text, origin, last = [], [], 0
    for index in sorted(targets):
        phrase = parsed.phrases[index]
        current = _weight_of(parsed, weights, index)
        if current <= 0:
            raise _Refused(f"{phrase.text!r} has no positive weight to scale")
        factor = targets[index] / current
        new = _reweighted_raw(phrase.raw, factor)
        text.append(parsed.prompt[last : phrase.start])
        origin.extend(range(last, phrase.start))
        text.append(new)
        origin.extend([-1] * len(new))
        last = phrase.end
    text.append(parsed.prompt[last:])
    origin.extend(range(last, len(parsed.prompt)))
    return "".join(text), origin


def _check(
    parsed: ParsedPrompt,
    new: str,
    origin: Sequence[int],
    expected: dict[int, float],
) -> None:
    """Refuse unless every kept character weighs as before, every phrase reads as before,
    and each phrase of ``expected`` has that weight (to the written precision)."""
    before = webui_char_weights(parsed.prompt)
    after = webui_char_weights(new)
    for k, source in enumerate(origin):
        if source >= 0 and not same_weight(after[k], before[source]):
            raise _Refused("another part of the prompt would change its weight")
    reparsed = parse_prompt(new, granularity=parsed.granularity)
    old_texts = sorted(p.text for p in parsed.phrases)
    if sorted(p.text for p in reparsed.phrases) != old_texts:
        raise _Refused("the prompt would read differently")
    for index, weight in expected.items():
        text = parsed.phrases[index].text
        match = [p for p in reparsed.phrases if p.text == text]
        if not match or not all(abs(p.weight - weight) <= 0.01 * weight for p in match):
            got = ", ".join(_number(p.weight) for p in match) or "none"
            raise _Refused(f"{text!r} would weigh {got}, not {_number(weight)}")


def _weighted(parsed: ParsedPrompt, wanted: list[int], target: float) -> tuple[str, tuple]:
    weights = webui_char_weights(parsed.prompt)
    if all(_weight_of(parsed, weights, i) >= target - 1e-9 for i in wanted):
        raise _Refused(f"the phrase already weighs {_number(target)} or more")
    targets = {i: max(target, _weight_of(parsed, weights, i)) for i in wanted}
    new, origin = _set_weights(parsed, targets)
    _check(parsed, new, origin, _written(parsed, weights, targets))
    return new, tuple(wanted)


def _written(parsed: ParsedPrompt, weights, targets: dict[int, float]) -> dict[int, float]:
    """The weights the rewritten phrases really get (the factor is written rounded)."""
    out = {}
    for i, target in targets.items():
        current = _weight_of(parsed, weights, i)
        own = _OWN_WEIGHT_RE.match(parsed.phrases[i].raw)
        if own and _balanced(own.group("inner")):
            number = float(own.group("number"))
            out[i] = current / number * float(_number(number * target / current))
        else:
            out[i] = current * float(_number(target / current))
    return out


def _weakened(parsed: ParsedPrompt, index: int) -> tuple[str, tuple]:
    weights = webui_char_weights(parsed.prompt)
    targets = {index: _weight_of(parsed, weights, index) * WEAKEN_FACTOR}
    new, origin = _set_weights(parsed, targets)
    _check(parsed, new, origin, _written(parsed, weights, targets))
    return new, (index,)


def _standalone(parsed: ParsedPrompt, weights, index: int) -> str:
    """The phrase's raw text, written so that it keeps its weight outside its group."""
    phrase = parsed.phrases[index]
    alone = webui_char_weights(phrase.raw)
    chars = [w for w in alone if w is not None]
    own = sum(chars) / len(chars) if chars else 1.0
    current = _weight_of(parsed, weights, index)
    if abs(own - current) <= 1e-9 * max(1.0, abs(current)):
        return phrase.raw
    return _reweighted_raw(phrase.raw, current / own)


def _moved(parsed: ParsedPrompt, wanted: list[int], where: str) -> tuple[str, tuple]:
    """The wanted phrases cut out (cleanly) and written again at the front, or after a
    ``BREAK`` at the end (a chunk of their own)."""
    if where == "front" and wanted == list(range(len(wanted))):
        raise _Refused("the phrase is at the front already")
    if re.search(r"\bAND\b", parsed.prompt):
        raise _Refused(
            "the prompt has sub-prompts (AND): moving a phrase between them "
            "changes what it conditions"
        )
    weights = webui_char_weights(parsed.prompt)
    pieces = [_standalone(parsed, weights, i) for i in wanted]
    rest = [i for i, p in enumerate(parsed.phrases) if i not in wanted]
    if not rest:
        raise _Refused("the prompt holds nothing else")
    plan = plan_removal(None, parsed, wanted)
    if plan.blocker is not None:
        raise _Refused(f"the phrase cannot be cut out cleanly ({plan.blocker})")
    sep = ", " if parsed.granularity == "phrase" else " "
    moved = sep.join(pieces)
    if where == "front":
        new = moved + sep + plan.text
        origin = [-1] * (len(moved) + len(sep)) + list(plan.origin)
    else:
        tail = " BREAK " + moved
        new = plan.text.rstrip(", ") + tail
        kept = len(plan.text.rstrip(", "))
        origin = list(plan.origin[:kept]) + [-1] * len(tail)
    expected = {i: _weight_of(parsed, weights, i) for i in wanted}
    _check(parsed, new, origin, expected)
    return new, tuple(wanted)
