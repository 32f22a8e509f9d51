"""Test oracle: how AUTOMATIC1111 1.10.1 reads a positive prompt, character by character.

A faithful copy of the WebUI's own rules, used only by tests as the ground truth for
ClipProbe's weights and for clean pruning.  Origin (AUTOMATIC1111/stable-diffusion-webui,
tag v1.10.1, AGPL-3.0):

* ``modules/extra_networks.py``: ``re_extra_net``; ``<name:args>`` tags are cut out first.
* ``modules/prompt_parser.py``: ``re_AND``/``re_weight`` (``get_multicond_prompt_list``),
  the lark grammar ``schedule_parser`` with ``collect_steps``/``at_step`` of
  ``get_learned_conditioning_prompt_schedules``, and ``parse_prompt_attention`` with
  ``re_attention``/``re_break``.

The copies are verbatim in what they compute; the only addition is bookkeeping: every
character carries the position in the user's prompt it came from, so a test can ask
"which weight does the WebUI give to *this* character of the prompt".  The opt-in test
``test_prompt_webui.py::test_oracle_matches_the_real_webui`` (``WEBUI_DIR=...``) checks
that this copy returns exactly what the real ``modules/prompt_parser.py`` returns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import lark

STEPS = 20  # the WebUI's default sampling steps

# ------------------------------------------------------------ verbatim from the WebUI

re_extra_net = re.compile(r"<(\w+):([^>]+)>")

re_AND = re.compile(r"\bAND\b")
re_weight = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")

schedule_parser = lark.Lark(r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
""")

re_attention = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)

re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


# ------------------------------------------------------------ positioned text

Chars = list[tuple[str, int]]  # (character, position in the user's prompt; -1: none)


def _positioned(text: str, start: int) -> Chars:
    return [(c, start + k) for k, c in enumerate(text)]


def _text(chars: Chars) -> str:
    return "".join(c for c, _ in chars)


def strip_extra_networks(prompt: str) -> Chars:
    """``extra_networks.parse_prompt``: the tags are replaced by nothing."""
    chars: Chars = []
    last = 0
    for m in re_extra_net.finditer(prompt):
        chars += _positioned(prompt[last : m.start()], last)
        last = m.end()
    return chars + _positioned(prompt[last:], last)


def split_and(chars: Chars) -> list[tuple[Chars, float]]:
    """``get_multicond_prompt_list``: sub-prompts at ``AND`` and their ``:weight``."""
    text = _text(chars)
    bounds, last = [], 0
    for m in re_AND.finditer(text):
        bounds.append((last, m.start()))
        last = m.end()
    bounds.append((last, len(text)))
    out = []
    for lo, hi in bounds:
        sub = text[lo:hi]
        match = re_weight.search(sub)
        if match is None:
            out.append((chars[lo:hi], 1.0))
            continue
        weight = float(match.group(2)) if match.group(2) is not None else 1.0
        out.append((chars[lo : lo + match.end(1)], weight))
    return out


# ------------------------------------------------------------ schedules (lark)


@dataclass
class Schedule:
    tree: lark.Tree | None  # None: lark could not parse it, the text is used as it is
    steps: list[int]  # the steps at which the text changes (the WebUI's collect_steps)


def parse_schedule(chars: Chars, steps: int = STEPS) -> Schedule:
    """``get_schedule`` of ``get_learned_conditioning_prompt_schedules`` (new scheduling,
    no hires fix), keeping the parse tree."""
    try:
        tree = schedule_parser.parse(_text(chars))
    except lark.exceptions.LarkError:
        return Schedule(None, [steps])
    res = [steps]

    class CollectSteps(lark.Visitor):
        def scheduled(self, tree):
            s = tree.children[-2]
            v = float(s)
            v = v * steps if "." in s else v  # flt_offset = int_offset = 0
            tree.children[-2] = min(steps, int(v))
            if tree.children[-2] >= 1:
                res.append(tree.children[-2])

        def alternate(self, tree):
            res.extend(range(1, steps + 1))

    CollectSteps().visit(tree)
    return Schedule(tree, sorted(set(res)))


def _flatten(x, offset: list[tuple[str, int]]):
    if isinstance(x, lark.Token):
        for k, c in enumerate(str(x)):
            yield c, offset[x.start_pos + k][1]
    elif isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int):
        yield x
    else:
        for gen in x:
            yield from _flatten(gen, offset)


def at_step(chars: Chars, schedule: Schedule, step: int | None) -> Chars:
    """The text the WebUI conditions on at ``step`` (``at_step``), with positions.

    ``step=None`` is ClipProbe's reading, not the WebUI's: a schedule reads as its end
    (or its start where the end is empty), an alternation as all its options, joined
    by a space standing at the ``|``.
    """
    if schedule.tree is None:
        return list(chars)

    def has_text(part) -> bool:
        return any(not c.isspace() for c, _ in _flatten(part, chars))

    class AtStep(lark.Transformer):
        def scheduled(self, args):
            before, after, _, when, _ = args
            if step is None:
                after = list(_flatten(after, chars))
                yield after if has_text(after) or before is None else before
            else:
                yield before or () if step <= when else after

        def alternate(self, args):
            if step is None:
                yield from self._all_options(args)
            else:
                args = ["" if not arg else arg for arg in args]  # noqa: SIM212 (verbatim)
                yield args[(step - 1) % len(args)]

        def _all_options(self, args):
            options = [list(_flatten(a, chars)) for a in args if a]
            options = [o for o in options if has_text(o)]
            for k, option in enumerate(options):
                if k:
                    yield (" ", option[0][1] - 1)
                yield option

        def start(self, args):
            return list(_flatten(args, chars))

        def plain(self, args):
            yield args[0]

        def __default__(self, data, children, meta):
            yield from children

    return AtStep().transform(schedule.tree)


# ------------------------------------------------------------ attention


BREAK = "BREAK"  # position of a BREAK marker in the output: ("BREAK", position, weight)


def parse_prompt_attention(chars: Chars) -> list[tuple[str, int, float]]:
    """``parse_prompt_attention``, per character: (char, position, weight); a BREAK marker
    is (BREAK, position of the word, weight): -1, times the brackets around it (the WebUI
    multiplies the marker too, and then reads the word as text).

    Raises ValueError where the WebUI does (``(a:1.2.3)``).
    """
    text = _text(chars)
    res: list[list] = []  # [chars, weight]; a BREAK marker is [position, -1]
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    round_bracket_multiplier = 1.1
    square_bracket_multiplier = 1 / 1.1

    def multiply_range(start_position, multiplier):
        for p in range(start_position, len(res)):
            res[p][1] *= multiplier

    for m in re_attention.finditer(text):
        token = m.group(0)
        weight = m.group(1)

        if token.startswith("\\"):
            res.append([chars[m.start() + 1 : m.end()], 1.0])
        elif token == "(":
            round_brackets.append(len(res))
        elif token == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif token == ")" and round_brackets:
            multiply_range(round_brackets.pop(), round_bracket_multiplier)
        elif token == "]" and square_brackets:
            multiply_range(square_brackets.pop(), square_bracket_multiplier)
        else:
            last = m.start()
            for b in re_break.finditer(token):  # re.split(re_break, text)
                res.append([chars[last : m.start() + b.start()], 1.0])
                word = m.start() + b.start() + b.group(0).index("BREAK")
                res.append([chars[word][1], -1])
                last = m.start() + b.end()
            res.append([chars[last : m.end()], 1.0])

    for pos in round_brackets:
        multiply_range(pos, round_bracket_multiplier)

    for pos in square_brackets:
        multiply_range(pos, square_bracket_multiplier)

    out: list = []
    for part, weight in res:
        if isinstance(part, int):
            out.append((BREAK, part, weight))
        else:
            out += [(c, pos, weight) for c, pos in part]
    return out


def merged(attention: list) -> list[list]:
    """The WebUI's own output format (runs of equal weight merged, BREAK as weight -1),
    without its empty parts: compare ``normalized(real)`` with it."""
    res: list[list] = []
    for c, _, weight in attention:
        res.append([c, weight])
    return normalized(res)


def normalized(res: list[list]) -> list[list]:
    """An output of ``parse_prompt_attention`` without empty parts, runs merged again."""
    res = [list(r) for r in res if r[0] != ""]
    breaks = [k for k, r in enumerate(res) if r[0] == BREAK and r[1] < 0]
    for k in reversed(breaks):  # a BREAK marker never merges with text
        res[k] = [(BREAK,), res[k][1]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


# ------------------------------------------------------------ the whole reading


@dataclass
class SubPrompt:
    chars: Chars  # after tags and the AND weight are cut
    and_weight: float
    schedule: Schedule

    def attention(self, step: int | None) -> list:
        return parse_prompt_attention(at_step(self.chars, self.schedule, step))


@functools.lru_cache(maxsize=512)
def read_prompt(prompt: str, steps: int = STEPS) -> tuple[SubPrompt, ...]:
    """The WebUI's reading of a positive prompt, before any step is chosen (cached: lark's
    Earley parser is slow; nothing changes a reading once made)."""
    return tuple(
        SubPrompt(chars, weight, parse_schedule(chars, steps))
        for chars, weight in split_and(strip_extra_networks(prompt))
    )


def weights_at(subs: Sequence[SubPrompt], step: int | None) -> dict[int, float]:
    """Position in the prompt -> weight of the character there, for what is read at step."""
    out: dict[int, float] = {}
    for sub in subs:
        for c, pos, weight in sub.attention(step):
            if c != BREAK and pos >= 0:
                out[pos] = weight
    return out


def all_steps(subs: Sequence[SubPrompt]) -> list[int]:
    return sorted({s for sub in subs for s in sub.schedule.steps})


def is_well_formed(prompt: str, steps: int = STEPS) -> bool:
    """The WebUI reads every bracket of it as syntax: lark parses every sub-prompt with no
    stray bracket, and ``parse_prompt_attention`` does not fail on any step's text."""
    subs = read_prompt(prompt, steps)
    for sub in subs:
        tree = sub.schedule.tree
        if tree is None:
            return False
        if any(isinstance(c, lark.Token) for c in tree.children):
            return False  # /[][():]/+ at the top: a bracket the grammar could not pair
    try:
        for step in [*all_steps(subs), None]:
            for sub in subs:
                if any(c == BREAK and w != -1 for c, _, w in sub.attention(step)):
                    return False  # BREAK inside brackets: the WebUI reads the word
    except ValueError:
        return False
    return True
