"""Prompt -> phrases, in AUTOMATIC1111 syntax.

ClipProbe asks CLIP about each phrase of the user's prompt, so it needs the text CLIP
really reads for a phrase (no brackets, weights or escapes) and the weight the WebUI gives
it; the pruner hands back the user's own prompt with phrases cut out, so every phrase also
keeps its exact span.  The WebUI never splits a prompt into phrases: the rules chosen here
are in docs/method.md ("How a prompt is read"), and tests/test_prompt_webui.py holds the
weights to the WebUI's.  The parser is iterative (no recursion): it never raises on any
text, at any nesting depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from ..errors import PromptError

Granularity = Literal["phrase", "word"]

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

TAG_RE = re.compile(r"<(\w+):([^>]+)>")  # the WebUI's extra-network syntax
_WEIGHT_RE = re.compile(r"\s*[+-]?[.\d]+\s*")  # what the WebUI accepts in (x:1.2)
_STEPS_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")  # [a:b:N]
_KEYWORD_RE = re.compile("BREAK|AND")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_NO_TEXT = "\\,"  # characters that end a run of plain text


@dataclass(frozen=True)
class Phrase:
    """One phrase: the text CLIP reads, its weight, and where it stands in the prompt."""

    index: int  # position among all phrases (extra-network tags included)
    text: str  # clean text: brackets, weights and escapes removed, whitespace collapsed
    weight: float  # mean attention weight of the characters of ``text``
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


# --------------------------------------------------------------------------- lexing


class TokenKind(Enum):
    """What a run of prompt characters is to the phrase splitter."""

    TEXT = "text"  # plain text (an escape is one TEXT token)
    SPACE = "space"
    COMMA = "comma"
    KEYWORD = "keyword"  # BREAK or AND as a whole word
    OPEN = "open"  # the opening bracket of an emphasis group
    CLOSE = "close"  # its closing bracket, with the ``:1.2`` in front of it
    ATOM = "atom"  # a whole schedule or alternation, read as one piece of text
    TAG = "tag"  # an extra-network tag
    AND_WEIGHT = "and_weight"  # the ``:1.2`` ending a sub-prompt (``a:1.2 AND b``)


@dataclass
class Token:
    kind: TokenKind
    start: int
    end: int
    clean: str = ""
    weight: float = 1.0  # product of the emphasis around the token
    group: int = -1  # OPEN/CLOSE: the group's id
    chars: int = 0  # TEXT/ATOM: non-space characters CLIP reads
    weighted: float = 0.0  # their summed weights

    def __post_init__(self) -> None:
        if self.kind is TokenKind.TEXT:
            self.chars = _count(self.clean)
            self.weighted = self.chars * self.weight


@dataclass
class Group:
    open_tok: int
    close_tok: int = -1


@dataclass(frozen=True)
class _Atom:
    """A schedule or alternation read at weight 1: its text and character weights."""

    text: str
    chars: int
    weighted: float


def _count(text: str) -> int:
    return sum(not c.isspace() for c in text)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


class _Lexer:
    """Turns the prompt into a flat token list; brackets become OPEN/CLOSE pairs."""

    def __init__(self, prompt: str) -> None:
        self.p = prompt
        self.tags = {m.start(): m.end() for m in TAG_RE.finditer(prompt)}
        self.match = self._match_brackets()
        self.atoms: dict[int, _Atom] = {}
        self._read_atoms()

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

    def _square_parts(self, i: int, j: int) -> tuple[bool, list[tuple[int, int]]] | None:
        """(is a schedule, parts) of ``[...]`` at i..j: alternation options, or a schedule's
        [from, to] (``[a:N]`` has an empty ``from``); None for a plain ``[x]`` (emphasis)."""
        seps = self._top_level(i + 1, j, ":|")
        colons = [s for s in seps if self.p[s] == ":"]
        pipes = [s for s in seps if self.p[s] == "|"]
        if pipes and not colons:  # alternation [a|b|c]
            bounds = [i, *pipes, j]
            return False, [(a + 1, b) for a, b in zip(bounds, bounds[1:])]
        if not pipes and len(colons) in (1, 2) and _STEPS_RE.fullmatch(self.p, colons[-1] + 1, j):
            if len(colons) == 2:
                return True, [(i + 1, colons[0]), (colons[0] + 1, colons[1])]
            return True, [(i + 1, i + 1), (i + 1, colons[0])]
        return None

    def _read_atoms(self) -> None:
        """Reads every schedule and alternation once, innermost first."""
        squares = []
        for i, j in self.match.items():
            if self.p[i] == "[":
                kind = self._square_parts(i, j)
                if kind is not None:
                    squares.append((j, i, *kind))
        for _, i, schedule, parts in sorted(squares):
            read = [self._read(a, b) for a, b in parts]
            if schedule:
                chosen = [read[1] if read[1].text else read[0]]  # schedule: the end, or the start
            else:
                chosen = [r for r in read if r.text]  # alternation: every option
            self.atoms[i] = _Atom(
                " ".join(r.text for r in chosen),
                sum(r.chars for r in chosen),
                sum(r.weighted for r in chosen),
            )

    def _read(self, lo: int, hi: int) -> _Atom:
        """prompt[lo:hi] as CLIP reads it at weight 1 (tags dropped, as the WebUI does;
        BREAK and AND are no text to CLIP)."""
        tokens = self.lex(lo, hi, [], [])
        spaces = (TokenKind.SPACE, TokenKind.KEYWORD)
        text = "".join(
            " " if t.kind in spaces else t.clean for t in tokens if t.kind is not TokenKind.TAG
        )
        counted = [t for t in tokens if t.kind in (TokenKind.TEXT, TokenKind.ATOM)]
        commas = sum(t.kind is TokenKind.COMMA for t in tokens)
        return _Atom(
            " ".join(text.split()),
            sum(t.chars for t in counted) + commas,
            sum(t.weighted for t in counted)
            + sum(t.weight for t in tokens if t.kind is TokenKind.COMMA),
        )

    def lex(self, lo: int, hi: int, tokens: list[Token], groups: list[Group]) -> list[Token]:
        """Tokens of prompt[lo:hi] at weight 1, appended to ``tokens``; no recursion."""
        p, i, weight = self.p, lo, 1.0
        stack: list[tuple[int, float, int, int, int]] = []  # outer hi, outer weight, group, close
        while True:
            if i >= hi:
                if not stack:
                    return tokens
                outer_hi, outer_weight, gid, close_start, close_end = stack.pop()
                groups[gid].close_tok = len(tokens)
                tokens.append(Token(TokenKind.CLOSE, close_start, close_end, "", outer_weight, gid))
                i, hi, weight = close_end, outer_hi, outer_weight
                continue
            c = p[i]
            if i in self.tags:
                end = self.tags[i]
                tokens.append(Token(TokenKind.TAG, i, end, p[i:end], weight))
                i = end
            elif c == "\\":
                end = min(i + 2, hi)
                tokens.append(Token(TokenKind.TEXT, i, end, p[i + 1 : end], weight))
                i = end
            elif c == ",":
                tokens.append(Token(TokenKind.COMMA, i, i + 1, ",", weight))
                i += 1
            elif c.isspace():
                end = i
                while end < hi and p[end].isspace():
                    end += 1
                tokens.append(Token(TokenKind.SPACE, i, end, " ", weight))
                i = end
            elif c in "([" and i in self.match:
                j = self.match[i]
                if i in self.atoms:
                    atom = self.atoms[i]
                    tok = Token(TokenKind.ATOM, i, j + 1, atom.text, weight)
                    tok.chars, tok.weighted = atom.chars, atom.weighted * weight
                    tokens.append(tok)
                    i = j + 1
                    continue
                inner_hi, multiplier = self._emphasis(i, j)
                gid = len(groups)
                groups.append(Group(len(tokens)))
                tokens.append(Token(TokenKind.OPEN, i, i + 1, "", weight, gid))
                stack.append((hi, weight, gid, inner_hi, j + 1))
                i, hi, weight = i + 1, inner_hi, weight * multiplier
            else:
                i = self._plain(i, hi, weight, tokens)

    def _emphasis(self, i: int, j: int) -> tuple[int, float]:
        """Where the group's text ends and its multiplier: ``(x:1.3)`` is (colon, 1.3)."""
        if self.p[i] == "[":
            return j, SQUARE_MULTIPLIER
        colons = self._top_level(i + 1, j, ":")
        if colons and _WEIGHT_RE.fullmatch(self.p, colons[-1] + 1, j):
            try:
                return colons[-1], float(self.p[colons[-1] + 1 : j])
            except ValueError:  # "(x:1.2.3)" is text, as "(x:..)" is
                pass
        return j, ROUND_MULTIPLIER

    def _plain(self, i: int, hi: int, weight: float, tokens: list[Token]) -> int:
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
        for kw in _KEYWORD_RE.finditer(p, i, end):
            s, e = kw.start(), kw.end()
            if (s > 0 and _is_word(p[s - 1])) or (e < len(p) and _is_word(p[e])):
                continue
            if s > start:
                tokens.append(Token(TokenKind.TEXT, start, s, p[start:s], weight))
            tokens.append(Token(TokenKind.KEYWORD, s, e, kw.group(), weight))
            start = e
        if end > start:
            tokens.append(Token(TokenKind.TEXT, start, end, p[start:end], weight))
        return end


_AND_WEIGHT_RE = re.compile(r":\s*[-+]?(?:\d+\.?|\d*\.\d+)(?=\s*$)")  # the WebUI's re_weight


def _mark_and_weights(prompt: str, tokens: list[Token], groups: list[Group]) -> list[Token]:
    """Cuts the ``:1.2`` that ends each sub-prompt out of the text, as the WebUI does before
    it reads the sub-prompt (``get_multicond_prompt_list``): it weighs the sub-prompt, and
    CLIP never reads it.  Only where it stands in plain text at the top level."""
    out: list[Token] = []
    sub: list[Token] = []
    for t in [*tokens, None]:
        if t is not None and not (t.kind is TokenKind.KEYWORD and t.clean == "AND"):
            sub.append(t)
            continue
        out += _cut_and_weight(prompt, sub)
        sub = []
        if t is not None:
            out.append(t)
    if len(out) != len(tokens):
        for k, t in enumerate(out):  # a token was split: groups point at the new indices
            if t.kind is TokenKind.OPEN:
                groups[t.group].open_tok = k
            elif t.kind is TokenKind.CLOSE:
                groups[t.group].close_tok = k
    return out


def _cut_and_weight(prompt: str, sub: list[Token]) -> list[Token]:
    k = len(sub)
    while k and sub[k - 1].kind in (TokenKind.TEXT, TokenKind.SPACE, TokenKind.TAG):
        k -= 1
    run = [t for t in sub[k:] if t.kind is not TokenKind.TAG]
    text = "".join(prompt[t.start : t.end] for t in run)
    matches = list(_AND_WEIGHT_RE.finditer(text))
    if not matches:
        return sub
    lo, hi = matches[-1].span()
    spans, pos = [], 0  # the cut, in prompt positions (tags may stand between tokens)
    for t in run:
        a, b = max(lo, pos), min(hi, pos + t.end - t.start)
        if a < b:
            spans.append((t.start + a - pos, t.start + b - pos))
        pos += t.end - t.start
    out = []
    for t in sub:
        cut = [(a, b) for a, b in spans if t.start <= a and b <= t.end]
        if t.kind is TokenKind.TAG or not cut:
            out.append(t)
            continue
        a, b = cut[0]
        if a > t.start:
            out.append(Token(t.kind, t.start, a, prompt[t.start : a], t.weight))
        out.append(Token(TokenKind.AND_WEIGHT, a, b, "", t.weight))
        if b < t.end:
            out.append(Token(t.kind, b, t.end, prompt[b : t.end], t.weight))
    return out


# --------------------------------------------------------------------------- phrases


@dataclass
class Piece:
    first: int  # token range, inclusive
    last: int
    text: str
    weight: float
    measurable: bool


class Structure:
    """Tokens, groups and the phrases cut from them; shared by parsing and removal."""

    def __init__(self, prompt: str, granularity: Granularity) -> None:
        if granularity not in ("phrase", "word"):
            raise ValueError(f"granularity must be 'phrase' or 'word', not {granularity!r}")
        self.prompt = prompt
        self.granularity = granularity
        self.groups: list[Group] = []
        tokens = _Lexer(prompt).lex(0, len(prompt), [], self.groups)
        self.tokens = _mark_and_weights(prompt, tokens, self.groups)
        self.pieces: list[Piece] = []
        self.breaks: list[int] = []
        self._split()

    def is_separator(self, t: Token) -> bool:
        if t.kind in (TokenKind.COMMA, TokenKind.KEYWORD):
            return True
        if t.kind is not TokenKind.SPACE:
            return False
        raw = self.prompt[t.start : t.end]
        return self.granularity == "word" or any(c in _LINE_BREAKS for c in raw)

    def _split(self) -> None:
        pending_break, first = False, 0
        for k, t in enumerate([*self.tokens, None]):
            if t is not None and not self.is_separator(t) and t.kind is not TokenKind.TAG:
                continue
            if self._add(first, k - 1) and pending_break:
                self.breaks.append(len(self.pieces) - 1)
                pending_break = False
            first = k + 1
            if t is not None and t.kind is TokenKind.TAG:
                if pending_break:
                    self.breaks.append(len(self.pieces))
                    pending_break = False
                self.pieces.append(Piece(k, k, t.clean, round(t.weight, 6), False))
            elif t is not None and t.kind is TokenKind.KEYWORD and t.clean == "BREAK":
                pending_break = True

    def _add(self, a: int, b: int) -> bool:
        """Trim a run of tokens to its phrase; False when nothing readable is left."""
        toks, groups = self.tokens, self.groups
        while True:
            a0, b0 = a, b
            while a <= b and (
                toks[a].kind is TokenKind.SPACE
                or (toks[a].kind is TokenKind.OPEN and groups[toks[a].group].close_tok > b)
            ):
                a += 1
            while b >= a and (
                toks[b].kind is TokenKind.SPACE
                or (toks[b].kind is TokenKind.CLOSE and groups[toks[b].group].open_tok < a)
            ):
                b -= 1
            if (a, b) == (a0, b0):
                break
        if a > b:
            return False
        parts = toks[a : b + 1]
        text = " ".join(
            "".join(" " if t.kind is TokenKind.SPACE else t.clean for t in parts).split()
        )
        if not text:
            return False
        chars = sum(t.chars for t in parts)
        weighted = sum(t.weighted for t in parts)
        weight = round(weighted / chars, 6) if chars else round(parts[0].weight, 6)
        self.pieces.append(Piece(a, b, text, weight, True))
        return True

    def span(self, piece: Piece) -> tuple[int, int]:
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
    return Structure(prompt, granularity).parsed()


def require_measurable(parsed: ParsedPrompt) -> list[Phrase]:
    """The measurable phrases, or a PromptError the user can act on."""
    if not parsed.phrases:
        raise PromptError("The prompt is empty.")
    measurable = parsed.measurable
    if not measurable:
        raise PromptError("The prompt holds only extra-network tags, which CLIP cannot measure.")
    return measurable
