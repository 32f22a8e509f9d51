"""Span-exact removal of phrases from the user's own prompt text, clean or not at all.

Removal cuts characters and adds none, except a separator where a cut would glue two
phrases together (``a <lora:x:1> b`` minus the tag is ``a, b``).  Each cut is checked
before it is offered (``plan_removal``): the kept phrases must read and weigh as before
(this parser), every kept character must keep the weight the WebUI gives it
(``webui_weights``: an unmatched ``(`` weighs all after it), no separator may be left
before a closing bracket, ``:`` or ``|``, doubled or at an end, no two phrases glued, and an
``AND``/``BREAK`` between kept phrases stays (the strongest one where several met) while
one left at an end goes.  Among the ways to cut (the separator before or after a phrase,
with or without an inserted one) the planner takes one without problems; where there is
none, the removal is not clean: ``removal_blocker`` says why and ``remove_phrases``
refuses it (``UncleanRemovalError``), so pruning can skip that phrase and say so.

Interface for pruning: ``removal_blocker(parsed, indices) -> str | None`` (None: clean);
``remove_phrases(prompt, parsed, indices) -> str``; ``plan_removal(...) -> RemovalPlan``
(text, origin of each character, problems).

Known limits: a plain ``:`` or ``|`` inside brackets can change what the bracket means once
its neighbours are cut (``[a:0.5, b]`` minus ``b``); the check sees it and refuses.  The
WebUI's check does not resolve schedules (this parser does); a prompt that lark cannot
parse as a whole (a ``|`` outside brackets) is read here with its schedules all the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .parser import ParsedPrompt, Structure, TokenKind, _is_word
from .webui_weights import same_weight, webui_char_weights


class _HasSpan(Protocol):
    start: int
    end: int


@dataclass
class _Item:
    start: int
    end: int
    removed: bool
    phrase: int = -1  # index of the phrase, or -1 for a bracket group holding phrases
    group: int = -1


class _Removal:
    """Plans which characters to delete so that exactly the chosen phrases disappear."""

    def __init__(self, st: Structure, remove: set[int]) -> None:
        self.st, self.remove, self.p = st, remove, st.prompt
        self.spans = [st.span(piece) for piece in st.pieces]
        self.deleted = [False] * len(self.p)
        self._classify_groups()

    def _classify_groups(self) -> None:
        st, n = self.st, len(self.st.groups)
        self.g_open = [st.tokens[g.open_tok] for g in st.groups]
        self.g_close = [st.tokens[g.close_tok] for g in st.groups]
        self.g_removed = [False] * n
        self.g_container = [False] * n
        for g in range(n):
            os_, ce = self.g_open[g].start, self.g_close[g].end
            touching = [i for i, (s, e) in enumerate(self.spans) if s < ce and e > os_]
            inside = [i for i in touching if os_ < self.spans[i][0] and self.spans[i][1] < ce]
            crossing = len(inside) != len(touching)
            holds_keyword = any(
                t.kind is TokenKind.KEYWORD
                for t in st.tokens[st.groups[g].open_tok : st.groups[g].close_tok]
            )  # BREAK and AND always stay, so their brackets do too
            self.g_removed[g] = (
                bool(touching) and all(i in self.remove for i in touching) and not holds_keyword
            )
            self.g_container[g] = bool(inside) and not crossing
        # characters that a separator cut may take with it
        self.runnable = [False] * len(self.p)
        for t in st.tokens:
            if t.kind in (TokenKind.SPACE, TokenKind.COMMA, TokenKind.KEYWORD):
                for k in range(t.start, t.end):
                    self.runnable[k] = True
        self.kept_struct = [False] * len(self.p)
        for g in range(n):
            if self.g_removed[g]:
                # Nothing in it is kept (every phrase touching it goes), so the whole
                # construct goes: separators inside it too (``(cat,:1.2)``).
                for k in range(self.g_open[g].start, self.g_close[g].end):
                    self.deleted[k] = True
            for t in (self.g_open[g], self.g_close[g]):
                for k in range(t.start, t.end):
                    if self.g_removed[g]:
                        self.runnable[k] = True
                        self.deleted[k] = True
                    else:
                        self.kept_struct[k] = True

    def _container_of(self, start: int, end: int) -> int:
        """Innermost container group strictly around [start, end), or -1."""
        best, best_open = -1, -1
        for g, is_container in enumerate(self.g_container):
            if not is_container:
                continue
            o, c = self.g_open[g], self.g_close[g]
            if o.start < start and end < c.end and o.start > best_open:
                best, best_open = g, o.start
        return best

    def levels(self) -> dict[int, list[_Item]]:
        items: dict[int, list[_Item]] = {}
        for i, (s, e) in enumerate(self.spans):
            items.setdefault(self._container_of(s, e), []).append(
                _Item(s, e, i in self.remove, phrase=i)
            )
        for g, is_container in enumerate(self.g_container):
            if is_container:
                s, e = self.g_open[g].start, self.g_close[g].end
                items.setdefault(self._container_of(s, e), []).append(
                    _Item(s, e, self.g_removed[g], group=g)
                )
        for level in items.values():
            level.sort(key=lambda it: it.start)
        return items

    def bounds(self, level: int) -> tuple[int, int]:
        if level < 0:
            return 0, len(self.p)
        return self.g_open[level].end, self.g_close[level].start

    # -- deletions
    def cut_item(self, it: _Item, mask: list[bool]) -> None:
        for k in range(it.start, it.end):
            if it.group >= 0 or not self.kept_struct[k]:
                mask[k] = True

    def head(self, a: int, b: int) -> tuple[int, int]:
        """The separator run at the start of the gap [a, b)."""
        e = a
        while e < b and self.runnable[e]:
            e += 1
        return a, e

    def tail(self, a: int, b: int) -> tuple[int, int]:
        s = b
        while s > a and self.runnable[s - 1]:
            s -= 1
        return s, b


def _mark(mask: list[bool], span: tuple[int, int]) -> None:
    for k in range(*span):
        mask[k] = True


@dataclass
class _Region:
    items: list[_Item]
    gaps: list[tuple[int, int]]  # gaps[0] before items[0] ... gaps[-1] after items[-1]
    where: str  # start, middle, end, all
    option: int = 0


def _regions(rm: _Removal) -> list[_Region]:
    regions = []
    for level, items in rm.levels().items():
        if level >= 0 and rm.g_removed[level]:
            continue  # the whole group goes as an item of its parent
        lo, hi = rm.bounds(level)
        edges = [lo] + [x for it in items for x in (it.start, it.end)] + [hi]
        gaps = [(edges[2 * k], edges[2 * k + 1]) for k in range(len(items) + 1)]
        k = 0
        while k < len(items):
            if not items[k].removed:
                k += 1
                continue
            j = k
            while j < len(items) and items[j].removed:
                j += 1
            before, after = k > 0, j < len(items)
            where = {(True, True): "middle", (False, True): "start", (True, False): "end"}.get(
                (before, after), "all"
            )
            regions.append(_Region(items[k:j], gaps[k : j + 1], where))
            k = j
    return regions


_OPTIONS = 4  # middle regions: keep the gap before / after, each with an inserted separator


def _apply(rm: _Removal, regions: list[_Region], sep: str) -> tuple[str, list[int]]:
    """The text after the cuts, and for each of its characters the position it had in the
    prompt (-1: an inserted separator)."""
    mask = list(rm.deleted)
    inserts: dict[int, str] = {}
    for r in regions:
        for it in r.items:
            rm.cut_item(it, mask)
        cut_after = r.where in ("start", "all") or (r.where == "middle" and r.option % 2 == 0)
        if cut_after:
            for gap in r.gaps[1:]:
                _mark(mask, rm.head(*gap))
        else:
            for gap in r.gaps[:-1]:
                _mark(mask, rm.tail(*gap))
        if r.where == "middle" and r.option >= 2:
            edge = rm.tail(*r.gaps[0]) if cut_after else rm.head(*r.gaps[-1])
            _mark(mask, edge)
            inserts[edge[0]] = sep
    _keep_words_apart(rm.p, mask, inserts)
    out: list[str] = []
    origin: list[int] = []
    for k, c in enumerate(rm.p):
        added = inserts.get(k, "")
        out.append(added)
        origin += [-1] * len(added)
        if not mask[k]:
            out.append(c)
            origin.append(k)
    added = inserts.get(len(rm.p), "")
    out.append(added)
    origin += [-1] * len(added)
    return "".join(out), origin


def _keep_words_apart(p: str, mask: list[bool], inserts: dict[int, str]) -> None:
    """A cut between two word characters (``BREAK:AND``) leaves a space, not ``BREAKAND``."""
    k = 0
    while k < len(p):
        if not mask[k]:
            k += 1
            continue
        start = k
        while k < len(p) and mask[k]:
            k += 1
        if start > 0 and k < len(p) and _is_word(p[start - 1]) and _is_word(p[k]):
            inserts.setdefault(start, " ")


def _resolve(prompt: str, phrases: Sequence[_HasSpan]) -> Structure:
    """The structure whose phrases are the given ones (phrase or word granularity)."""
    spans = [(p.start, p.end) for p in phrases]
    for granularity in ("phrase", "word"):
        st = Structure(prompt, granularity)  # type: ignore[arg-type]
        if [st.span(piece) for piece in st.pieces] == spans:
            return st
    raise ValueError("the phrases do not belong to this prompt")


# --------------------------------------------------------------------------- checks

_UNESCAPED = r"(?<!\\)"
_SEPARATOR_FAULTS = [
    re.compile(_UNESCAPED + r",\s*(?=[)\]:|])"),  # "(red hair, :1.2)", "[x, ]"
    re.compile(_UNESCAPED + r"[(\[|]\s*,"),  # "(, x)"
    re.compile(_UNESCAPED + r",\s*,"),  # "a, , b"
    re.compile(r"^\s*,"),
    re.compile(_UNESCAPED + r",\s*$"),
]


def _separator_faults(text: str) -> list[int]:
    return [len(rx.findall(text)) for rx in _SEPARATOR_FAULTS]


def _glued(prompt: str, text: str, origin: list[int]) -> int:
    """Places where a cut that took a separator left two things touching (``:1.2)rain``)."""
    count = 0
    for k in range(len(text) - 1):
        a, b = origin[k], origin[k + 1]
        if a < 0 or b < 0 or b == a + 1:
            continue
        cut = prompt[a + 1 : b]
        if not any(c.isspace() or c == "," for c in cut):
            continue
        left, right = text[k], text[k + 1]
        if left.isspace() or right.isspace() or "," in (left, right):
            continue
        if left in "([|:" or right in ")]|:":
            continue
        count += 1
    return count


def _keyword_gaps(st: Structure) -> list[list[str]]:
    """The keywords (AND, BREAK) before each text phrase and after the last one (tags do
    not count: the WebUI cuts them before it reads the keywords)."""
    pieces = [pc for pc in st.pieces if pc.measurable]
    gaps: list[list[str]] = [[] for _ in range(len(pieces) + 1)]
    piece = 0
    for k, t in enumerate(st.tokens):
        while piece < len(pieces) and pieces[piece].last < k:
            piece += 1
        if t.kind is TokenKind.KEYWORD:
            gaps[piece].append(t.clean)
    return gaps


def _expected_keywords(st: Structure, chosen: set[int]) -> list[list[str]]:
    """Keywords between the kept text phrases after a clean cut: unchanged where nothing
    was cut between two kept phrases; else the strongest one (AND over BREAK), and none
    at the ends of the prompt."""
    gaps = _keyword_gaps(st)
    texts = [i for i, pc in enumerate(st.pieces) if pc.measurable]
    kept = [n for n, i in enumerate(texts) if i not in chosen]
    bounds = [-1, *kept, len(texts)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        between = [kw for g in range(a + 1, b + 1) for kw in gaps[g]]
        if b == a + 1:
            out.append(between)
        elif a == -1 or b == len(texts):
            out.append([])
        elif "AND" in between:
            out.append(["AND"])
        else:
            out.append(["BREAK"] if "BREAK" in between else [])
    return out


def _and_weights(st: Structure) -> list[str]:
    """Per text phrase: the ``:1.2`` weight of its AND sub-prompt ("" for none)."""
    subs: list[str] = [""]
    sub_of_token = []
    for t in st.tokens:
        if t.kind is TokenKind.KEYWORD and t.clean == "AND":
            subs.append("")
        elif t.kind is TokenKind.AND_WEIGHT:
            subs[-1] += st.prompt[t.start : t.end]
        sub_of_token.append(len(subs) - 1)
    return [subs[sub_of_token[pc.first]].strip() for pc in st.pieces if pc.measurable]


def _problems(st: Structure, chosen: set[int], text: str, origin: list[int]) -> list[str]:
    """What would be wrong with ``text`` as the prompt minus the chosen phrases."""
    problems = []
    kept = [
        (pc.text, pc.weight, pc.measurable) for i, pc in enumerate(st.pieces) if i not in chosen
    ]
    after = Structure(text, st.granularity)
    got = [(pc.text, pc.weight, pc.measurable) for pc in after.pieces]
    if got != kept:
        problems.append("the phrases kept would read differently")
    before_w, after_w = webui_char_weights(st.prompt), webui_char_weights(text)
    changed = sum(not same_weight(before_w[o], after_w[k]) for k, o in enumerate(origin) if o >= 0)
    if changed:
        problems.append("the WebUI would weigh the text kept differently (an unmatched bracket)")
    faults = sum(
        a > b for a, b in zip(_separator_faults(text), _separator_faults(st.prompt))
    ) + _glued(st.prompt, text, origin)
    if faults:
        problems.append("a separator would be left dangling or two phrases glued together")
    if got == kept and _keyword_gaps(after) != _expected_keywords(st, chosen):
        problems.append("an AND or BREAK would be left dangling or lost")
    texts = [i for i, pc in enumerate(st.pieces) if pc.measurable]
    kept_and = [w for i, w in zip(texts, _and_weights(st)) if i not in chosen]
    if got == kept and _and_weights(after) != kept_and:
        problems.append("the weight of a kept AND sub-prompt would change")
    return problems


# --------------------------------------------------------------------------- interface


class UncleanRemovalError(ValueError):
    """These phrases cannot be cut without leaving the prompt worse formed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"These phrases cannot be removed cleanly: {reason}.")
        self.reason = reason


@dataclass(frozen=True)
class RemovalPlan:
    """The prompt minus the chosen phrases, and what (if anything) makes it unclean."""

    text: str
    origin: tuple[int, ...]  # per character of text: its position in the prompt; -1 added
    problems: tuple[str, ...]  # empty: a clean removal

    @property
    def blocker(self) -> str | None:
        return self.problems[0] if self.problems else None


def _structure(
    prompt: str | None, parsed_or_phrases: ParsedPrompt | Sequence[_HasSpan]
) -> Structure:
    if isinstance(parsed_or_phrases, ParsedPrompt):
        if prompt is not None and parsed_or_phrases.prompt != prompt:
            raise ValueError("the parsed prompt is not this prompt")
        return Structure(parsed_or_phrases.prompt, parsed_or_phrases.granularity)
    if prompt is None:
        raise ValueError("a list of phrases needs the prompt it came from")
    return _resolve(prompt, list(parsed_or_phrases))


def plan_removal(
    prompt: str | None,
    parsed_or_phrases: ParsedPrompt | Sequence[_HasSpan],
    remove: Iterable[int],
) -> RemovalPlan:
    """The cleanest cut of the chosen phrases that the planner finds, with its problems.

    Each phrase goes with one separator next to it (the one after it, or before it for
    the last phrase of a list or bracket); a bracket group whose phrases are all removed
    goes too; ``AND``/``BREAK`` that would be left at an end go.  Only where a cut would
    glue two phrases together (``a <lora:x:1> b``) is a separator inserted.
    """
    st = _structure(prompt, parsed_or_phrases)
    chosen = set(remove)
    unknown = chosen - set(range(len(st.pieces)))
    if unknown:
        raise ValueError(f"no phrase with index {sorted(unknown)}")
    if not chosen:
        return RemovalPlan(st.prompt, tuple(range(len(st.prompt))), ())
    rm = _Removal(st, chosen)
    regions = _regions(rm)
    sep = ", " if st.granularity == "phrase" else " "

    def evaluate() -> tuple[str, list[int], list[str]]:
        text, origin = _apply(rm, regions, sep)
        if len(chosen) == len(st.pieces) and not text.replace(",", "").strip():
            return "", [], []
        return text, origin, _problems(st, chosen, text, origin)

    best = evaluate()
    middles = [r for r in regions if r.where == "middle"]
    for _ in range(2):  # coordinate descent over the options of each middle region
        if not best[2]:
            break
        improved = False
        for r in middles:
            keep = r.option
            for option in range(_OPTIONS):
                if option == keep or not best[2]:
                    continue
                r.option = option
                trial = evaluate()
                if len(trial[2]) < len(best[2]):
                    best, keep, improved = trial, option, True
            r.option = keep
        if not improved:
            break
    text, origin, problems = best
    return RemovalPlan(text, tuple(origin), tuple(problems))


def removal_blocker(
    parsed_or_phrases: ParsedPrompt | Sequence[_HasSpan],
    remove: Iterable[int],
    prompt: str | None = None,
) -> str | None:
    """Why the chosen phrases cannot be cut cleanly, or None when they can.

    Pruning offers only removals without a blocker; the reason is one short clause for the
    report ("an AND or BREAK would be left dangling or lost").
    """
    return plan_removal(prompt, parsed_or_phrases, remove).blocker


def remove_phrases(
    prompt: str, parsed_or_phrases: ParsedPrompt | Sequence[_HasSpan], remove: Iterable[int]
) -> str:
    """The prompt with the chosen phrases cut out; every other character stays as it was.

    Raises UncleanRemovalError (a ValueError) where the cut would leave the prompt worse
    formed: kept phrases reading or weighing differently, a dangling separator, ``AND`` or
    ``BREAK``, two phrases glued together.  Ask ``removal_blocker`` first to avoid it.
    """
    plan = plan_removal(prompt, parsed_or_phrases, remove)
    if plan.blocker is not None:
        raise UncleanRemovalError(plan.blocker)
    return plan.text
