"""Bring-in variants change only what they say, as the WebUI reads the prompt (oracle)."""

from __future__ import annotations

import pytest
import webui_prompt_oracle as oracle

from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.prompt.variants import bring_in_variants


def phrase_weights(prompt: str) -> dict[str, float]:
    """Each phrase's text -> the WebUI's mean weight over its characters (the oracle)."""
    weights = oracle.weights_at(oracle.read_prompt(prompt), None)
    out = {}
    for p in parse_prompt(prompt).phrases:
        chars = [weights[k] for k in range(p.start, p.end) if k in weights and prompt[k].strip()]
        out[p.text] = sum(chars) / len(chars)
    return out


def variants(prompt: str, wanted: list[str], competitor: str | None = None):
    parsed = parse_prompt(prompt)
    index = {p.text: p.index for p in parsed.phrases}
    found, skipped = bring_in_variants(
        parsed, [index[w] for w in wanted], index[competitor] if competitor else None
    )
    return {v.label: v.prompt for v in found}, {s.label: s.reason for s in skipped}


def changed_only(before: str, after: str, expected: dict[str, float]) -> None:
    old, new = phrase_weights(before), phrase_weights(after)
    assert sorted(old) == sorted(new)
    for text, weight in old.items():
        want = expected.get(text, weight)
        assert new[text] == pytest.approx(want, rel=0.01), (text, after)


def test_weights_written_the_webui_way():
    prompt = "masterpiece, a red umbrella, (a girl:1.3)"
    found, _ = variants(prompt, ["a red umbrella"])
    assert found["weight 1.2"] == "masterpiece, (a red umbrella:1.2), (a girl:1.3)"
    assert found["weight 1.6"] == "masterpiece, (a red umbrella:1.6), (a girl:1.3)"
    for label, weight in (("weight 1.2", 1.2), ("weight 1.4", 1.4), ("weight 1.6", 1.6)):
        changed_only(prompt, found[label], {"a red umbrella": weight})


def test_an_own_weight_is_rewritten_and_a_lower_target_skipped():
    prompt = "(a girl:1.3), a hat"
    found, skipped = variants(prompt, ["a girl"])
    assert "weight 1.2" in skipped
    assert found["weight 1.4"] == "(a girl:1.4), a hat"


def test_a_phrase_inside_a_group_keeps_the_group():
    prompt = "a cat, (red hair, blue eyes:1.2), a hat"
    found, _ = variants(prompt, ["blue eyes"])
    changed_only(prompt, found["weight 1.6"], {"blue eyes": 1.6})
    changed_only(prompt, found["moved to the front"], {})
    assert found["moved to the front"].startswith("(blue eyes:1.2), ")


def test_moved_to_the_front_and_into_its_own_chunk():
    prompt = "a cat, [blurry], a red umbrella"
    found, _ = variants(prompt, ["a red umbrella"])
    assert found["moved to the front"] == "a red umbrella, a cat, [blurry]"
    assert found["in a chunk of its own (BREAK)"] == "a cat, [blurry] BREAK a red umbrella"
    for label in ("moved to the front", "in a chunk of its own (BREAK)"):
        changed_only(prompt, found[label], {})
    parsed = parse_prompt(found["in a chunk of its own (BREAK)"])
    assert parsed.breaks == [2]


def test_several_phrases_at_once():
    prompt = "a cat, a red umbrella, (a hat:0.9), sky"
    found, _ = variants(prompt, ["a red umbrella", "a hat"])
    changed_only(prompt, found["weight 1.4"], {"a red umbrella": 1.4, "a hat": 1.4})
    assert found["moved to the front"] == "a red umbrella, (a hat:0.9), a cat, sky"


def test_the_competitor_is_weakened():
    prompt = "(a huge dog:1.2), a red umbrella"
    found, _ = variants(prompt, ["a red umbrella"], competitor="a huge dog")
    (label,) = [k for k in found if "weakened" in k]
    changed_only(prompt, found[label], {"a huge dog": 0.96})


def test_sub_prompts_are_not_reordered():
    prompt = "a cat AND a red umbrella"
    found, skipped = variants(prompt, ["a red umbrella"])
    assert "moved to the front" in skipped and "AND" in skipped["moved to the front"]
    changed_only(prompt, found["weight 1.4"], {"a red umbrella": 1.4})


def test_a_phrase_already_first_is_not_moved():
    found, skipped = variants("a red umbrella, a cat", ["a red umbrella"])
    assert "moved to the front" not in found and "moved to the front" in skipped


def test_bad_indices_are_refused():
    parsed = parse_prompt("a cat, <lora:x:0.5>")
    with pytest.raises(ValueError):
        bring_in_variants(parsed, [1])
    with pytest.raises(ValueError):
        bring_in_variants(parsed, [])
