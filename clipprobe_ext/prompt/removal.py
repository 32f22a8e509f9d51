"""Span-exact removal of phrases from the user's own prompt text.

Removal cuts characters and adds none, except a separator where a cut would glue two
phrases together (``a <lora:x:1> b`` minus the tag is ``a, b``).  Known limit: a plain
``:`` or ``|`` inside brackets can change what the bracket means once its neighbours are
cut (``[a:0.5, b]`` minus ``b`` is the schedule ``[a:0.5]``); it is not escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .parser import ParsedPrompt, Structure, TokenKind, _is_word


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
            if t.kind in (TokenKind.SPACE, TokenKind.COMMA):
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


def _apply(rm: _Removal, regions: list[_Region], sep: str) -> str:
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
    out = []
    for k, c in enumerate(rm.p):
        out.append(inserts.get(k, ""))
        if not mask[k]:
            out.append(c)
    out.append(inserts.get(len(rm.p), ""))
    return "".join(out)


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


def remove_phrases(
    prompt: str, parsed_or_phrases: ParsedPrompt | Sequence[_HasSpan], remove: Iterable[int]
) -> str:
    """The prompt with the chosen phrases cut out; every other character stays as it was.

    Each phrase goes with one separator next to it (the one after it, or before it for
    the last phrase of a list or bracket); a bracket group whose phrases are all removed
    goes too.  Only where a cut would glue two phrases together (``a <lora:x:1> b``) is a
    separator inserted.
    """
    if isinstance(parsed_or_phrases, ParsedPrompt):
        if parsed_or_phrases.prompt != prompt:
            raise ValueError("the parsed prompt is not this prompt")
        st = Structure(prompt, parsed_or_phrases.granularity)
    else:
        st = _resolve(prompt, list(parsed_or_phrases))
    chosen = set(remove)
    unknown = chosen - set(range(len(st.pieces)))
    if unknown:
        raise ValueError(f"no phrase with index {sorted(unknown)}")
    if not chosen:
        return prompt
    rm = _Removal(st, chosen)
    regions = _regions(rm)
    sep = ", " if st.granularity == "phrase" else " "
    kept = [
        (pc.text, pc.weight, pc.measurable) for i, pc in enumerate(st.pieces) if i not in chosen
    ]
    result = _apply(rm, regions, sep)
    middles = [r for r in regions if r.where == "middle"]
    for _ in range(_OPTIONS * len(middles)):
        got = [
            (pc.text, pc.weight, pc.measurable) for pc in Structure(result, st.granularity).pieces
        ]
        bad = _first_difference(got, kept)
        if bad is None:
            break
        region = _region_near(rm, middles, kept_index=bad, chosen=chosen)
        if region is None:
            break
        region.option += 1
        result = _apply(rm, regions, sep)
    if not kept and not result.replace(",", "").strip():
        return ""
    return result


def _first_difference(got: list, want: list) -> int | None:
    for k, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return k
    return None if len(got) == len(want) else min(len(got), len(want))


def _region_near(
    rm: _Removal, middles: list[_Region], kept_index: int, chosen: set[int]
) -> _Region | None:
    """A middle region next to the kept phrase that came out wrong, with options left."""
    kept_spans = [s for i, s in enumerate(rm.spans) if i not in chosen]
    lo = kept_spans[max(kept_index - 1, 0)][0] if kept_spans else 0
    hi = kept_spans[min(kept_index + 1, len(kept_spans) - 1)][1] if kept_spans else len(rm.p)
    for r in middles:
        if r.option < _OPTIONS - 1 and r.items[0].start >= lo and r.items[-1].end <= hi:
            return r
    for r in middles:  # the damage may come from a region further away
        if r.option < _OPTIONS - 1:
            return r
    return None
