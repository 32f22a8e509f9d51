"""ClipProbe's phrase weights against the WebUI's own reading of the prompt (the oracle).

The oracle (``webui_prompt_oracle``) is a copy of AUTOMATIC1111 1.10.1's prompt rules that
keeps track of where each character came from.  A phrase's weight, by ClipProbe's
definition, is the mean weight the WebUI gives to the characters of the phrase's text
(whitespace not counted); schedules are read as their end (or start, where the end is
empty), alternations as all their options.  On well-formed prompts ClipProbe must agree
on every phrase.  With ``WEBUI_DIR`` set, the same holds against the real
``modules/prompt_parser.py``, and the oracle is checked to be a faithful copy of it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import webui_prompt_oracle as oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipprobe_ext.prompt import ParsedPrompt, parse_prompt

WORDS = ["cat", "red hair", "1girl", "BREAKfast", "ANDy", "x_y", "sky.", "é", "blue eyes", "a"]
# not -1: the WebUI's BREAK marker is text "BREAK" at weight -1, and merges with such text
WEIGHTS = ["1.2", "0.5", "2", ".8", "1.", "1.25", " 1.3 ", "-0.5"]
WHEN = ["0.5", "0.25", ".7", "5", "12", " 3 "]
TAGS = ["<lora:film:0.8>", "<hypernet:h:1>", "<lora:x:1>"]
TOP_SEPARATORS = [", ", ",", "\n", " BREAK ", " AND ", ", BREAK, ", ",\n"]


@st.composite
def webui_prompts(draw: st.DrawFn, depth: int = 0) -> str:
    """A random well-formed A1111 prompt: words, nested weights, schedules, alternations,
    escapes, extra-network tags, ``BREAK`` and (at the top) ``AND``."""
    pieces = []
    for _ in range(draw(st.integers(1, 3 if depth else 4))):
        atoms = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.integers(0, 9 if depth < 2 else 2))
            word = draw(st.sampled_from(WORDS))
            if kind <= 1:
                atoms.append(word)
            elif kind == 2:
                atoms.append(draw(st.sampled_from([rf"\({word}\)", rf"\[{word}\]", word])))
            elif kind == 3:
                atoms.append(draw(st.sampled_from(TAGS)))
            elif kind in (4, 5):
                inner = draw(webui_prompts(depth + 1))
                weight = draw(st.sampled_from(WEIGHTS))
                atoms.append(
                    draw(st.sampled_from([f"({inner}:{weight})", f"({inner})", f"[{inner}]"]))
                )
            elif kind in (6, 7):
                a = draw(st.one_of(st.just(""), webui_prompts(depth + 1)))
                b = draw(st.one_of(st.just(""), webui_prompts(depth + 1)))
                when = draw(st.sampled_from(WHEN))
                atoms.append(draw(st.sampled_from([f"[{a}:{b}:{when}]", f"[{b}:{when}]"])))
            else:
                options = draw(
                    st.lists(
                        st.one_of(st.just(""), webui_prompts(depth + 1)), min_size=2, max_size=3
                    )
                )
                atoms.append("[" + "|".join(options) + "]")
        pieces.append(draw(st.sampled_from([" ", ""])).join(atoms))
        # BREAK inside brackets is read as a word by the WebUI (its marker gets weighted)
        separators = TOP_SEPARATORS if depth == 0 else [", ", " "]
        separator = draw(st.sampled_from(separators))
        if depth == 0 and separator == " AND ":  # the sub-prompt's weight (not attention)
            separator = draw(st.sampled_from(["", ":1.2", " :0.5"])) + separator
        pieces.append(separator)
    end = draw(st.sampled_from(["", ":1.5"])) if depth == 0 else ""
    return "".join(pieces[:-1]) + end


def webui_phrases(prompt: str, parsed: ParsedPrompt, weights: dict[int, float]) -> list:
    """(text without whitespace, mean weight) the WebUI gives each measurable phrase: the
    text is what the WebUI reads of the phrase in ClipProbe's reading (all options of an
    alternation, a schedule's end); the weight is None where some of those characters are
    missing from ``weights`` (shown at no step)."""
    read = [
        (c, pos)
        for sub in oracle.read_prompt(prompt)
        for c, pos, _ in sub.attention(None)
        if c != oracle.BREAK and pos >= 0 and not c.isspace()
    ]
    out = []
    for phrase in parsed.measurable:
        inside = [(c, pos) for c, pos in read if phrase.start <= pos < phrase.end]
        text = "".join(c for c, _ in inside)
        if inside and all(pos in weights for _, pos in inside):
            out.append((text, sum(weights[pos] for _, pos in inside) / len(inside)))
        else:
            out.append((text, None))
    return out


def agreement(prompt: str, weights: dict[int, float] | None = None, text: bool = True) -> list:
    """The phrases whose weight ClipProbe and the WebUI disagree on: (text, ours, WebUI's).

    ``weights``: position -> weight of every character the WebUI reads (default: the
    oracle's weights of ClipProbe's reading); ``text``: assert the texts are equal too."""
    parsed = parse_prompt(prompt)
    if weights is None:
        weights = oracle.weights_at(oracle.read_prompt(prompt), None)
    expected = webui_phrases(prompt, parsed, weights)
    wrong = []
    for phrase, (webui_text, weight) in zip(parsed.measurable, expected):
        assert not text or phrase.text.replace(" ", "") == webui_text, (phrase, webui_text)
        if weight is None and not text:
            continue  # the real WebUI never shows it: "[[:cat:0.5]::0.5]" (ClipProbe: cat)
        if weight is None or abs(phrase.weight - weight) > 1e-5 * max(1.0, abs(weight)):
            wrong.append((phrase.text, phrase.weight, weight))
    return wrong


def check_reading_matches_every_step(prompt: str) -> None:
    """ClipProbe's reading (all options, a schedule's end) weighs every character as the
    WebUI does at each step where the WebUI reads that character."""
    subs = oracle.read_prompt(prompt)
    probe = oracle.weights_at(subs, None)
    for step in oracle.all_steps(subs):
        at_step = oracle.weights_at(subs, step)
        for pos, weight in at_step.items():
            if pos in probe:
                assert probe[pos] == pytest.approx(weight), (step, pos)


EXAMPLES = [
    "[(red hair:1.3):(blue hair:1.3):0.5]",
    "[(a):5]",
    "[|((a))]",
    "masterpiece, (1girl:1.2), [red hair|(blue hair:1.4)], [forest:(city:0.8):0.4]",
    "a (red:1.5) car, [[a:b:3]:(c):0.5] BREAK (x, [y|(z)]:1.3) AND dog <lora:x:1>",
    "cat, dog:1.2 AND (bird:1.1) :0.5 AND fish",
    r"\(cat\), ((dog)), [fish], (bird:0.5)",
]


@pytest.mark.parametrize("prompt", EXAMPLES)
def test_examples_agree_with_the_webui(prompt: str) -> None:
    assert oracle.is_well_formed(prompt)
    check_reading_matches_every_step(prompt)
    assert agreement(prompt) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(webui_prompts())
def test_every_phrase_weight_agrees_with_the_webui(prompt: str) -> None:
    assert oracle.is_well_formed(prompt), "the generator made a prompt the WebUI misreads"
    check_reading_matches_every_step(prompt)
    assert agreement(prompt) == []


# ------------------------------------------------------------ the real WebUI (opt-in)

WEBUI_DIR = os.environ.get("WEBUI_DIR")
needs_webui = pytest.mark.skipif(not WEBUI_DIR, reason="set WEBUI_DIR to an A1111 checkout")


@pytest.fixture(scope="module")
def real_parser():
    """The WebUI's ``modules/prompt_parser.py``, loaded by path (it imports lark and torch)."""
    path = Path(WEBUI_DIR or "") / "modules" / "prompt_parser.py"
    spec = importlib.util.spec_from_file_location("webui_prompt_parser", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("webui_prompt_parser", None)
    spec.loader.exec_module(module)
    return module


def real_weights(real_parser, prompt: str) -> dict:
    """Attention of the real parser at the final step, one list per AND sub-prompt."""
    text = oracle.re_extra_net.sub("", prompt)
    _, flat, _ = real_parser.get_multicond_prompt_list([text])
    schedules = real_parser.get_learned_conditioning_prompt_schedules(flat, oracle.STEPS)
    return {
        "texts": flat,
        "schedules": schedules,
        "attention": [
            [real_parser.parse_prompt_attention(t) for _, t in schedule] for schedule in schedules
        ],
    }


def check_oracle_against_real(real_parser, prompt: str) -> None:
    real = real_weights(real_parser, prompt)
    subs = oracle.read_prompt(prompt)
    assert [oracle._text(s.chars) for s in subs] == real["texts"]
    for sub, schedule, attentions in zip(subs, real["schedules"], real["attention"]):
        assert [end for end, _ in schedule] == sub.schedule.steps
        for (end, text), attention in zip(schedule, attentions):
            chars = oracle.at_step(sub.chars, sub.schedule, end)
            assert oracle._text(chars) == text
            assert oracle.merged(oracle.parse_prompt_attention(chars)) == oracle.normalized(
                attention
            )


@needs_webui
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=webui_prompts())
def test_oracle_matches_the_real_webui(real_parser, prompt: str) -> None:
    check_oracle_against_real(real_parser, prompt)


@needs_webui
@pytest.mark.parametrize(
    "prompt",
    [*EXAMPLES, "nigh(t:time, BREAKfast", "(a [b) c]", "a | b", "x, (cat BREAK cat:1.2)", "a\\"],
)
def test_oracle_matches_the_real_webui_on_examples(real_parser, prompt: str) -> None:
    check_oracle_against_real(real_parser, prompt)


def real_weights_by_position(real_parser, prompt: str) -> dict[int, float]:
    """Position -> weight the real WebUI gives that character, at any step that reads it
    (the real module's output, laid over the oracle's characters, whose text equals it)."""
    real = real_weights(real_parser, prompt)
    out: dict[int, float] = {}
    for sub, schedule, attentions in zip(
        oracle.read_prompt(prompt), real["schedules"], real["attention"]
    ):
        for (end, _), attention in zip(schedule, attentions):
            chars = oracle.at_step(sub.chars, sub.schedule, end)
            per_char = [w for part, w in attention if (part, w) != ("BREAK", -1) for _ in part]
            without_breaks = [
                item for item in oracle.parse_prompt_attention(chars) if item[0] != oracle.BREAK
            ]
            assert len(per_char) == len(without_breaks)
            for (_, pos, _), weight in zip(without_breaks, per_char):
                out[pos] = weight
    return out


@needs_webui
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=webui_prompts())
def test_every_phrase_weight_agrees_with_the_real_webui(real_parser, prompt: str) -> None:
    """ClipProbe against the real module's weights, at every step the WebUI reads a
    character (final step, and the steps where an alternation's option or a schedule's
    start shows)."""
    check_oracle_against_real(real_parser, prompt)
    assert agreement(prompt, real_weights_by_position(real_parser, prompt), text=False) == []
