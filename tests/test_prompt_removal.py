"""Pruning never leaves the prompt worse formed, judged by the WebUI's own reading (oracle).

A removal is either refused with a reason (``removal_blocker``) or clean: the kept text is
unchanged and in order, every kept character weighs what it weighed at every step, no empty
sub-prompt (AND) or chunk (BREAK) appears, no separator dangles and no phrases are glued.
"""

from __future__ import annotations

import re

import pytest
import webui_prompt_oracle as oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_prompt import prompts as rough_prompts
from test_prompt_webui import webui_prompts

from clipprobe_ext.prompt import (
    UncleanRemovalError,
    parse_prompt,
    plan_removal,
    removal_blocker,
    remove_phrases,
)

# --------------------------------------------------------------------------- the cases to handle


@pytest.mark.parametrize(
    "prompt, remove, expected",
    [
        ("(red hair, blue eyes:1.2)", [1], "(red hair:1.2)"),
        ("[<lora:x:1>, ANDroid]", [1], "[<lora:x:1>]"),
        ("a girl (red hair, blue eyes:1.2) standing, rain", [1], "a girl (red hair:1.2), rain"),
        ("1girl AND rain", [1], "1girl"),
        ("rain AND 1girl", [0], "1girl"),
        ("a BREAK b", [1], "a"),
        ("a BREAK b", [0], "b"),
        ("a, b AND c", [1], "a AND c"),
        ("a BREAK b AND c", [1], "a AND c"),
        ("x, (a, b, c:1.3), y", [2, 3], "x, (a:1.3), y"),
        ("a, b:0.5 AND c", [2], "a, b:0.5"),
        ("a, b:0.5 AND c", [1, 0], "c"),
    ],
)
def test_issue_cases_come_out_clean(prompt: str, remove: list[int], expected: str) -> None:
    parsed = parse_prompt(prompt)
    assert removal_blocker(parsed, remove) is None
    assert remove_phrases(prompt, parsed, remove) == expected
    check_clean(prompt, parsed, set(remove))


def test_a_cut_that_would_reweigh_kept_text_is_refused_with_its_reason() -> None:
    # the unmatched "(" weighs everything after it by 1.1 in the WebUI; cutting it would
    # turn "BREAKfast" from 1.1 into 1.0
    prompt = "nigh(t:time, BREAKfast"
    parsed = parse_prompt(prompt)
    reason = removal_blocker(parsed, [0])
    assert reason is not None and "weigh" in reason
    with pytest.raises(UncleanRemovalError, match="cannot be removed cleanly") as caught:
        remove_phrases(prompt, parsed, [0])
    assert caught.value.reason == reason
    assert removal_blocker(parsed, [1]) is None  # cutting the end is fine
    assert remove_phrases(prompt, parsed, [1]) == "nigh(t:time"


def test_a_cut_that_would_drop_a_kept_sub_prompts_and_weight_is_refused() -> None:
    parsed = parse_prompt("a, b:0.5 AND c")
    assert removal_blocker(parsed, [1]) == "the weight of a kept AND sub-prompt would change"


def test_blocker_accepts_a_list_of_phrases_with_its_prompt() -> None:
    prompt = "1girl AND rain"
    phrases = parse_prompt(prompt).phrases
    assert removal_blocker(phrases, [1], prompt=prompt) is None
    with pytest.raises(ValueError):
        removal_blocker(phrases, [1])  # a list of phrases needs its prompt


# --------------------------------------------------------------------------- the property

_SEPARATOR_FAULTS = [
    r"(?<!\\),\s*[)\]:|]",  # a separator before a closing bracket, ':' or '|'
    r"(?<!\\)[(\[|]\s*,",  # a separator right after an opening bracket or '|'
    r"(?<!\\),\s*,",  # doubled
    r"^\s*,",  # leading
    r"(?<!\\),\s*$",  # trailing
]


def _faults(text: str) -> list[int]:
    return [len(re.findall(rx, text)) for rx in _SEPARATOR_FAULTS]


def _empty_parts(prompt: str) -> tuple[int, int]:
    """(empty AND sub-prompts, empty BREAK chunks) of the prompt.

    A chunk is empty when it holds no text at any step (read as ClipProbe reads schedules:
    ``[a::0.2]`` holds ``a``): before the first BREAK, between two, or after the last one
    (the WebUI drops only that last one, but a trailing BREAK is untidy too).
    """
    subs = oracle.read_prompt(prompt)
    if len(subs) == 1 and not oracle._text(subs[0].chars).strip():
        return 0, 0  # an empty prompt is one empty sub-prompt, not an added one
    empty_subs = sum(not oracle._text(s.chars).strip() for s in subs)
    empty_chunks = 0
    for sub in subs:
        chunk_has_text, markers = False, 0
        for c, _, _ in sub.attention(None):
            if c == oracle.BREAK:
                empty_chunks += not chunk_has_text
                chunk_has_text, markers = False, markers + 1
            elif not c.isspace():
                chunk_has_text = True
        empty_chunks += markers > 0 and not chunk_has_text
    return empty_subs, empty_chunks


def _paired(subs) -> bool:
    """lark parsed every sub-prompt and paired every bracket in it."""
    return all(
        s.schedule.tree is not None
        and not any(isinstance(c, oracle.lark.Token) for c in s.schedule.tree.children)
        for s in subs
    )


def _unscheduled(subs) -> list:
    return [
        oracle.SubPrompt(s.chars, s.and_weight, oracle.Schedule(None, [oracle.STEPS])) for s in subs
    ]


def check_clean(prompt: str, parsed, remove: set[int]) -> None:
    plan = plan_removal(prompt, parsed, remove)
    text, origin = plan.text, plan.origin
    # the kept characters are the prompt's, in order; added ones are separators
    assert len(origin) == len(text)
    kept = [o for o in origin if o >= 0]
    assert kept == sorted(set(kept))
    for k, o in enumerate(origin):
        assert text[k] in ", " if o < 0 else text[k] == prompt[o]
    for p in parsed.phrases:  # kept phrases stay whole, removed ones go entirely
        inside = [o for o in kept if p.start <= o < p.end]
        if p.index not in remove:
            assert inside == list(range(p.start, p.end)), p.raw
    # every kept character weighs what it weighed, at every step, as the WebUI reads it
    before, after = oracle.read_prompt(prompt), oracle.read_prompt(text)
    if not (_paired(before) and _paired(after)):
        # lark pairs stray brackets of a malformed prompt anew after any cut: compare what
        # parse_prompt_attention makes of the text unscheduled (the WebUI's reading where
        # lark fails), which is where unmatched brackets stretch their weight
        before, after = _unscheduled(before), _unscheduled(after)
    for step in sorted({*oracle.all_steps(before), *oracle.all_steps(after)}):
        try:
            w_before, w_after = oracle.weights_at(before, step), oracle.weights_at(after, step)
        except ValueError:
            return  # the WebUI itself fails on this prompt ("(a:1.2.3)")
        for k, o in enumerate(origin):
            if o < 0 or prompt[o].isspace():
                continue  # whitespace is no token to CLIP
            assert (o in w_before) == (k in w_after), (step, o, prompt[o])
            if o in w_before:
                assert w_after[k] == pytest.approx(w_before[o]), (step, o, prompt[o])
        added = [k for k in w_after if origin[k] < 0 and not text[k].isspace()]
        assert all(text[k] == "," for k in added)
    # no empty sub-prompt or chunk appears, no separator dangles, nothing is glued
    if text.strip():
        e_before, e_after = _empty_parts(prompt), _empty_parts(text)
        assert e_after[0] <= e_before[0], "an empty AND sub-prompt appeared"
        assert e_after[1] <= e_before[1], "an empty BREAK chunk appeared"
    for n_before, n_after, rx in zip(_faults(prompt), _faults(text), _SEPARATOR_FAULTS):
        assert n_after <= n_before, rx
    for k in range(len(text) - 1):
        a, b = origin[k], origin[k + 1]
        if a >= 0 and b > a + 1 and re.search(r"[\s,]", prompt[a + 1 : b]):
            glued = (text[k].isalnum() or text[k] in ")]") and (
                text[k + 1].isalnum() or text[k + 1] in "(["
            )
            assert not glued, f"glued at {text[k : k + 2]!r}"


def _removal(prompt: str, granularity: str, data: st.DataObject):
    parsed = parse_prompt(prompt, granularity)  # type: ignore[arg-type]
    indices = list(range(len(parsed.phrases)))
    remove = set(data.draw(st.sets(st.sampled_from(indices)) if indices else st.just(set())))
    return parsed, remove


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(webui_prompts(), st.data())
def test_removal_from_well_formed_prompts_is_clean(prompt: str, data: st.DataObject) -> None:
    parsed, remove = _removal(prompt, "phrase", data)
    if removal_blocker(parsed, remove) is None:
        check_clean(prompt, parsed, remove)


@FAST
@given(rough_prompts(), st.data(), st.sampled_from(["phrase", "word"]))
def test_removal_from_rough_prompts_is_clean_or_refused(
    prompt: str, data: st.DataObject, granularity: str
) -> None:
    parsed, remove = _removal(prompt, granularity, data)
    reason = removal_blocker(parsed, remove)
    if reason is None:
        check_clean(prompt, parsed, remove)
    else:
        with pytest.raises(UncleanRemovalError):
            remove_phrases(prompt, parsed, remove)
