"""Prompt -> phrases, in AUTOMATIC1111 syntax, and span-exact removal of phrases.

ClipProbe asks CLIP about each phrase of the user's prompt, so it needs the text CLIP
really reads for a phrase (no brackets, weights or escapes) and the weight the WebUI
gives it.  The pruner then hands back the user's own prompt with phrases cut out, so
every phrase also keeps its exact span in the original string.

Decisions (the WebUI itself never splits a prompt into phrases):

* Phrases are separated by commas, ``BREAK`` and ``AND`` (whole uppercase words) and by
  line breaks.  The WebUI reads a line break as plain whitespace, but people write one
  phrase per line, so a line break separates phrases here; inside a phrase it is a space.
* Brackets do not hide commas: ``(red hair, blue eyes:1.2)`` is two phrases that both
  weigh 1.2.  A phrase whose parts weigh differently (``a (red:1.2) car``) gets the
  mean weight of its characters.
* ``(x)`` x1.1, ``(x:1.3)`` x1.3, ``[x]`` /1.1, nested brackets multiply.  An unmatched
  or mismatched bracket is literal text (the WebUI would stretch it to the end).
* ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\:`` ... : a backslash makes the next character literal.
* Schedules ``[a:b:0.5]`` read as ``b`` (what the picture ends with); ``[a:0.5]`` reads
  ``a``; ``[a::0.5]`` removes ``a`` late, so it is read as ``a`` too.  An alternation
  ``[a|b]`` reads all its options, ``a b``.  Schedules and alternations are never split,
  even when they hold commas.  Unlike the WebUI, a malformed schedule elsewhere in the
  prompt does not switch off the others.
* Extra-network tags ``<lora:name:0.8>`` are phrases of their own that CLIP cannot
  measure (``measurable=False``); their text is the tag.
* An ``AND`` weight (``a:1.2 AND b``) is not understood; it stays part of the text.

Removal cuts characters and adds none, except a separator where a cut would glue two
phrases together (``a <lora:x:1> b`` minus the tag is ``a, b``).  Known limit: a plain
``:`` or ``|`` inside brackets can change what the bracket means once its neighbours are
cut (``[a:0.5, b]`` minus ``b`` is the schedule ``[a:0.5]``); it is not escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .errors import PromptError

Granularity = Literal["phrase", "word"]

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

_TAG_RE = re.compile(r"<(\w+):([^>]+)>")  # the WebUI's extra-network syntax
_WEIGHT_RE = re.compile(r"\s*[+-]?[.\d]+\s*")  # what the WebUI accepts in (x:1.2)
_STEPS_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")  # [a:b:N]
_KEYWORDS = ("BREAK", "AND")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_NO_TEXT = "\\,"  # characters that end a run of plain text


@dataclass(frozen=True)
class Phrase:
    """One phrase: the text CLIP reads, its weight, and where it stands in the prompt."""

    index: int  # position among all phrases (extra-network tags included)
    text: str  # clean text: brackets, weights and escapes removed, whitespace collapsed
    weight: float  # attention weight, the product of the brackets around it
    start: int  # prompt[start:end] == raw
    end: int
    measurable: bool  # False for extra-network tags
    raw: str


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    phrases: list[Phrase]
    breaks: list[int]  # i: a BREAK stands before phrase i (the WebUI starts a new chunk)
    granularity: Granularity = "phrase"

    @property
    def measurable(self) -> list[Phrase]:
        return [p for p in self.phrases if p.measurable]


class _HasSpan(Protocol):
    start: int
    end: int


# --------------------------------------------------------------------------- lexing


@dataclass
class _Tok:
    kind: str  # text ws comma kw open close atom tag
    start: int
    end: int
    clean: str = ""
    weight: float = 1.0  # product of the emphasis around the token
    group: int = -1  # open/close: the group's id


@dataclass
class _Group:
    open_tok: int
    close_tok: int = -1


class _Lexer:
    """Turns the prompt into a flat token list; brackets become open/close pairs."""

    def __init__(self, prompt: str) -> None:
        self.p = prompt
        self.tags = {m.start(): m.end() for m in _TAG_RE.finditer(prompt)}
        self.match = self._match_brackets()
        self.tokens: list[_Tok] = []
        self.groups: list[_Group] = []

    def _match_brackets(self) -> dict[int, int]:
        """Pairs of matching brackets; a closer pairs with the nearest opener of its kind."""
        p, match, stack, i = self.p, {}, [], 0
        while i < len(p):
            if i in self.tags:
                i = self.tags[i]
                continue
            c = p[i]
            if c == "\\":
                i += 2
                continue
            if c in "([":
                stack.append(i)
            elif c in ")]":
                want = "(" if c == ")" else "["
                for k in range(len(stack) - 1, -1, -1):
                    if p[stack[k]] == want:
                        match[stack[k]] = i
                        del stack[k:]
                        break
            i += 1
        return match

    def _top_level(self, lo: int, hi: int, chars: str) -> list[int]:
        """Positions in [lo, hi) of the given characters outside nested brackets."""
        found, i = [], lo
        while i < hi:
            if i in self.tags:
                i = self.tags[i]
            elif self.p[i] == "\\":
                i += 2
            elif i in self.match:
                i = self.match[i] + 1
            else:
                if self.p[i] in chars:
                    found.append(i)
                i += 1
        return found

    def clean(self, lo: int, hi: int) -> str:
        """The text CLIP reads for prompt[lo:hi] (tags dropped, as the WebUI does)."""
        sub = _Lexer.__new__(_Lexer)
        sub.p, sub.tags, sub.match, sub.tokens, sub.groups = self.p, self.tags, self.match, [], []
        sub.run(lo, hi, 1.0)
        parts = [" " if t.kind == "ws" else t.clean for t in sub.tokens if t.kind != "tag"]
        return " ".join("".join(parts).split())

    def run(self, lo: int, hi: int, weight: float) -> None:
        p, i = self.p, lo
        while i < hi:
            c = p[i]
            if i in self.tags:
                end = self.tags[i]
                self.tokens.append(_Tok("tag", i, end, p[i:end], weight))
                i = end
            elif c == "\\":
                end = min(i + 2, hi)
                self.tokens.append(_Tok("text", i, end, p[i + 1 : end], weight))
                i = end
            elif c == ",":
                self.tokens.append(_Tok("comma", i, i + 1, ",", weight))
                i += 1
            elif c.isspace():
                end = i
                while end < hi and p[end].isspace():
                    end += 1
                self.tokens.append(_Tok("ws", i, end, " ", weight))
                i = end
            elif c == "(" and i in self.match:
                i = self._round(i, self.match[i], weight)
            elif c == "[" and i in self.match:
                i = self._square(i, self.match[i], weight)
            else:
                i = self._plain(i, hi, weight)

    def _plain(self, i: int, hi: int, weight: float) -> int:
        p, end = self.p, i + 1
        while end < hi:
            c = p[end]
            if (
                c in _NO_TEXT
                or c.isspace()
                or end in self.tags
                or (c in "([" and end in self.match)
            ):
                break
            end += 1
        start = i
        for kw in re.finditer("BREAK|AND", p[i:end]):
            s, e = i + kw.start(), i + kw.end()
            if (s > 0 and _is_word(p[s - 1])) or (e < len(p) and _is_word(p[e])):
                continue
            if s > start:
                self.tokens.append(_Tok("text", start, s, p[start:s], weight))
            self.tokens.append(_Tok("kw", s, e, kw.group(), weight))
            start = e
        if end > start:
            self.tokens.append(_Tok("text", start, end, p[start:end], weight))
        return end

    def _group(self, i: int, inner_hi: int, j: int, weight: float, multiplier: float) -> int:
        gid = len(self.groups)
        self.groups.append(_Group(len(self.tokens)))
        self.tokens.append(_Tok("open", i, i + 1, "", weight, gid))
        self.run(i + 1, inner_hi, weight * multiplier)
        self.groups[gid].close_tok = len(self.tokens)
        self.tokens.append(_Tok("close", inner_hi, j + 1, "", weight, gid))
        return j + 1

    def _round(self, i: int, j: int, weight: float) -> int:
        colons = self._top_level(i + 1, j, ":")
        if colons and _WEIGHT_RE.fullmatch(self.p, colons[-1] + 1, j):
            try:
                return self._group(i, colons[-1], j, weight, float(self.p[colons[-1] + 1 : j]))
            except ValueError:  # "(x:1.2.3)" is text, as "(x:..)" is
                pass
        return self._group(i, j, j, weight, ROUND_MULTIPLIER)

    def _square(self, i: int, j: int, weight: float) -> int:
        seps = self._top_level(i + 1, j, ":|")
        colons = [s for s in seps if self.p[s] == ":"]
        pipes = [s for s in seps if self.p[s] == "|"]
        if pipes and not colons:  # alternation [a|b|c]
            bounds = [i, *pipes, j]
            options = (self.clean(a + 1, b) for a, b in zip(bounds, bounds[1:]))
            text = " ".join(o for o in options if o)
        elif not pipes and len(colons) in (1, 2) and _STEPS_RE.fullmatch(self.p, colons[-1] + 1, j):
            to = self.clean(colons[-2] + 1 if len(colons) == 2 else i + 1, colons[-1])
            text = to or (self.clean(i + 1, colons[0]) if len(colons) == 2 else "")
        else:
            return self._group(i, j, j, weight, SQUARE_MULTIPLIER)
        self.tokens.append(_Tok("atom", i, j + 1, text, weight))
        return j + 1


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


# --------------------------------------------------------------------------- phrases


@dataclass
class _Piece:
    first: int  # token range, inclusive
    last: int
    text: str
    weight: float
    measurable: bool


class _Structure:
    """Tokens, groups and the phrases cut from them; shared by parsing and removal."""

    def __init__(self, prompt: str, granularity: Granularity) -> None:
        if granularity not in ("phrase", "word"):
            raise ValueError(f"granularity must be 'phrase' or 'word', not {granularity!r}")
        lexer = _Lexer(prompt)
        lexer.run(0, len(prompt), 1.0)
        self.prompt = prompt
        self.granularity = granularity
        self.tokens = lexer.tokens
        self.groups = lexer.groups
        self.pieces: list[_Piece] = []
        self.breaks: list[int] = []
        self._split()

    def is_separator(self, t: _Tok) -> bool:
        if t.kind in ("comma", "kw"):
            return True
        if t.kind != "ws":
            return False
        raw = self.prompt[t.start : t.end]
        return self.granularity == "word" or any(c in _LINE_BREAKS for c in raw)

    def _split(self) -> None:
        pending_break, first = False, 0
        for k, t in enumerate([*self.tokens, None]):
            if t is not None and not self.is_separator(t) and t.kind != "tag":
                continue
            if self._add(first, k - 1) and pending_break:
                self.breaks.append(len(self.pieces) - 1)
                pending_break = False
            first = k + 1
            if t is not None and t.kind == "tag":
                if pending_break:
                    self.breaks.append(len(self.pieces))
                    pending_break = False
                self.pieces.append(_Piece(k, k, t.clean, round(t.weight, 6), False))
            elif t is not None and t.kind == "kw" and t.clean == "BREAK":
                pending_break = True

    def _add(self, a: int, b: int) -> bool:
        """Trim a run of tokens to its phrase; False when nothing readable is left."""
        toks, groups = self.tokens, self.groups
        while True:
            a0, b0 = a, b
            while a <= b and (
                toks[a].kind == "ws"
                or (toks[a].kind == "open" and groups[toks[a].group].close_tok > b)
            ):
                a += 1
            while b >= a and (
                toks[b].kind == "ws"
                or (toks[b].kind == "close" and groups[toks[b].group].open_tok < a)
            ):
                b -= 1
            if (a, b) == (a0, b0):
                break
        if a > b:
            return False
        parts = [toks[k] for k in range(a, b + 1)]
        text = " ".join("".join(" " if t.kind == "ws" else t.clean for t in parts).split())
        if not text:
            return False
        chars = total = 0.0
        for t in parts:
            if t.kind in ("text", "atom"):
                n = sum(not c.isspace() for c in t.clean)
                chars += n
                total += n * t.weight
        self.pieces.append(_Piece(a, b, text, round(total / chars, 6), True))
        return True

    def span(self, piece: _Piece) -> tuple[int, int]:
        return self.tokens[piece.first].start, self.tokens[piece.last].end

    def parsed(self) -> ParsedPrompt:
        phrases = []
        for i, piece in enumerate(self.pieces):
            s, e = self.span(piece)
            phrases.append(
                Phrase(i, piece.text, piece.weight, s, e, piece.measurable, self.prompt[s:e])
            )
        return ParsedPrompt(self.prompt, phrases, list(self.breaks), self.granularity)


def parse_prompt(prompt: str, granularity: Granularity = "phrase") -> ParsedPrompt:
    """Split a WebUI prompt into phrases ('word': also at whitespace); never raises on text."""
    return _Structure(prompt, granularity).parsed()


def require_measurable(parsed: ParsedPrompt) -> list[Phrase]:
    """The measurable phrases, or a PromptError the user can act on."""
    if not parsed.phrases:
        raise PromptError("The prompt is empty.")
    measurable = parsed.measurable
    if not measurable:
        raise PromptError("The prompt holds only extra-network tags, which CLIP cannot measure.")
    return measurable


# --------------------------------------------------------------------------- removal


@dataclass
class _Item:
    start: int
    end: int
    removed: bool
    phrase: int = -1  # index of the phrase, or -1 for a bracket group holding phrases
    group: int = -1


class _Removal:
    """Plans which characters to delete so that exactly the chosen phrases disappear."""

    def __init__(self, st: _Structure, remove: set[int]) -> None:
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
                t.kind == "kw" for t in st.tokens[st.groups[g].open_tok : st.groups[g].close_tok]
            )  # BREAK and AND always stay, so their brackets do too
            self.g_removed[g] = (
                bool(touching) and all(i in self.remove for i in touching) and not holds_keyword
            )
            self.g_container[g] = bool(inside) and not crossing
        # characters that a separator cut may take with it
        self.runnable = [False] * len(self.p)
        for t in st.tokens:
            if t.kind in ("ws", "comma"):
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


def _resolve(prompt: str, phrases: Sequence[_HasSpan]) -> _Structure:
    """The structure whose phrases are the given ones (phrase or word granularity)."""
    spans = [(p.start, p.end) for p in phrases]
    for granularity in ("phrase", "word"):
        st = _Structure(prompt, granularity)  # type: ignore[arg-type]
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
        st = _Structure(prompt, parsed_or_phrases.granularity)
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
            (pc.text, pc.weight, pc.measurable) for pc in _Structure(result, st.granularity).pieces
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
