"""Phrases CLIP cannot judge: positions, counts, negations and text to be written.

CLIP reads a caption as a bag of words (Winoground, ARO): "a cat on the left of a dog"
scores like "a dog on the left of a cat", "three apples" like "two apples", "no hat"
like "hat".  Its similarity says nothing about whether such a claim holds, so a phrase
that makes one is reported as "cannot judge" and is never pruned on CLIP's word.  The
rules are plain word patterns, checked on the clean text CLIP reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["position", "count", "negation", "text"]

#: What each kind means to a user, for reasons and legends.
KIND_WORDS: dict[Kind, str] = {
    "position": "a position",
    "count": "a number of things",
    "negation": "a negation",
    "text": "text to be written",
}

_NUMBERS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|dozens?|a dozen|a pair of|"
    "a couple of|pairs of|several|multiple|many|a few|a group of|a crowd of|"
    "twins|triplets|both"
)
# Numerals of two or more followed by a word, except units that are no count of things
# ("8k", "35mm", "1080p", "3d", "90s", "f/1.8", "4x upscaled", "24 years old").
_UNITS = r"k|mm|cm|m|p|px|d|s|x|fps|bit|hz|am|pm|th|st|nd|rd|%|years?|yo|y\.o\.|degrees?"
_NUMERAL = rf"\b(?:[2-9]|[1-9]\d+)\s*(?!(?:{_UNITS})\b)[a-z]+"
_DANBOORU = r"\b(?:[2-9]|[1-9]\d+)\+?(?:girls|boys|others|people|persons)\b"

_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    ("text", re.compile(r"[\"“”„«»]|(?:^|\s)'[^'\s][^']*'(?:\s|$)")),
    (
        "text",
        re.compile(
            r"\b(?:that|which)\s+(?:says|reads|spells)\b|\bsaying\b|\bwith the (?:text|words?)\b"
            r"|\bthe (?:word|words|letters?|text)\b|\b(?:written|lettering|typography|caption)\b"
            r"|\btext\s*[:=]"
        ),
    ),
    (
        "negation",
        re.compile(
            r"\b(?:no|not|without|never|none|nor|neither)\b"
            r"|\b(?:don't|doesn't|isn't|aren't|won't|can't|cannot)\b|\bnon-[a-z]"
        ),
    ),
    ("count", re.compile(rf"\b(?:{_NUMBERS})\b|{_NUMERAL}|{_DANBOORU}")),
    (
        "position",
        re.compile(
            r"\b(?:to the |on the |at the )?(?:left|right)(?: side)? of\b"
            r"|\bon the (?:left|right|top|bottom)\b|\bat the (?:top|bottom)\b"
            r"|\bin the (?:top|bottom|upper|lower|left|right|centre|center|middle|corner|"
            r"background|foreground)\b"
            r"|\b(?:above|below|beneath|underneath|under|behind|beside|between|inside|"
            r"outside|atop|on top of|in front of|next to|close to|far from|"
            r"in the back of|to the left|to the right|left side|right side)\b"
        ),
    ),
)


@dataclass(frozen=True)
class Unjudgeable:
    """Why CLIP cannot judge a phrase: the kind of claim and the words that make it."""

    kind: Kind
    cue: str

    def describe(self) -> str:
        return f"{KIND_WORDS[self.kind]} ({self.cue!r})"


def unjudgeable(text: str) -> Unjudgeable | None:
    """The claim in ``text`` that CLIP cannot judge, or ``None`` when it can judge it."""
    lowered = " ".join(text.lower().split())
    for kind, pattern in _PATTERNS:
        match = pattern.search(lowered)
        if match:
            return Unjudgeable(kind, match.group(0).strip())
    return None
