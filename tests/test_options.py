"""The one options spec: every entry point derives the same defaults and bounds from it."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from clipprobe_ext.errors import ClipProbeError, PromptError
from clipprobe_ext.options import (
    MAX_PROMPT_CHARS,
    OPTIONS,
    ProbeOptions,
    add_arguments,
    check_prompt_length,
    options_from_args,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_every_field_has_a_spec_with_its_default():
    assert list(OPTIONS) == [f.name for f in fields(ProbeOptions)]
    defaults = ProbeOptions()
    for name, spec in OPTIONS.items():
        value = getattr(defaults, name)
        assert (list(spec.default) if name == "synonyms" else spec.default) == value
        assert spec.label and spec.help


def test_probe_module_still_exports_the_options():
    from clipprobe_ext import probe

    assert probe.ProbeOptions is ProbeOptions


@pytest.mark.parametrize("name", ["rounds", "threshold", "tolerance"])
def test_validate_uses_the_spec_bounds(name):
    spec = OPTIONS[name]
    ProbeOptions(**{name: spec.minimum}).validate()
    ProbeOptions(**{name: spec.maximum}).validate()
    step = 1 if spec.kind is int else 1e-6
    for bad in (spec.minimum - step, spec.maximum + step):
        with pytest.raises(ClipProbeError, match=spec.label):
            ProbeOptions(**{name: spec.kind(bad)}).validate()


def test_rounds_limit_is_the_same_everywhere():
    """Before: validate allowed 1-100, Settings and the API 1-20."""
    with pytest.raises(ClipProbeError):
        ProbeOptions(rounds=21).validate()
    assert OPTIONS["rounds"].slider()["maximum"] == 20
    assert OPTIONS["rounds"].api_field()["le"] == 20


def test_percent_options_are_shown_in_percent_and_stored_as_fractions():
    slider = OPTIONS["threshold"].slider()
    assert slider["value"] == 1 and slider["maximum"] == 50 and slider["label"].endswith("(%)")
    assert OPTIONS["threshold"].from_display(slider["value"]) == pytest.approx(0.01)
    assert OPTIONS["threshold"].api_field()["le"] == 0.5
    assert OPTIONS["threshold"].settings_key == "clipprobe_threshold_percent"
    assert OPTIONS["rounds"].settings_key == "clipprobe_rounds"
    with pytest.raises(ClipProbeError, match="50.0 %"):
        ProbeOptions(threshold=0.7).validate()


def test_cli_accepts_percent_and_fraction_alike():
    a = options_from_args(parse("--threshold", "5%", "--tolerance", "0.02"))
    b = options_from_args(parse("--threshold", "0.05", "--tolerance", "2%"))
    assert a.threshold == pytest.approx(b.threshold) == pytest.approx(0.05)
    assert a.tolerance == pytest.approx(b.tolerance) == pytest.approx(0.02)


def test_cli_refuses_an_ambiguous_bare_percentage(capsys):
    with pytest.raises(SystemExit):
        parse("--threshold", "5")
    assert "5%" in capsys.readouterr().err


def test_cli_defaults_come_from_the_spec():
    options = options_from_args(parse())
    assert options == ProbeOptions()
    words = options_from_args(parse("--words", "--no-prune", "--synonyms", "a|b; c|d"))
    assert words.granularity == "word" and words.prune is False
    assert words.synonyms == [["a", "b"], ["c", "d"]]


def test_api_field_builds_a_pydantic_model():
    pydantic = pytest.importorskip("pydantic")

    class Request(pydantic.BaseModel):
        rounds: int = pydantic.Field(OPTIONS["rounds"].default, **OPTIONS["rounds"].api_field())
        threshold: float = pydantic.Field(
            OPTIONS["threshold"].default, **OPTIONS["threshold"].api_field()
        )

    assert Request().rounds == 5
    with pytest.raises(pydantic.ValidationError):
        Request(rounds=21)
    with pytest.raises(pydantic.ValidationError):
        Request(threshold=0.51)


def test_clamp():
    assert OPTIONS["rounds"].clamp("99") == 20
    assert OPTIONS["rounds"].clamp("x") == 5
    assert OPTIONS["threshold"].clamp(float("nan")) == 0.01


def test_format_percent():
    from clipprobe_ext.report.numbers import percent as format_percent

    assert format_percent(0.01) == "1.0 %"
    assert format_percent(0.0004) == "<0.1 %"
    assert format_percent(float("nan")) == "–"
    assert format_percent(None) == "–"


def test_prompt_length_limit():
    assert check_prompt_length("a" * MAX_PROMPT_CHARS) == "a" * MAX_PROMPT_CHARS
    with pytest.raises(PromptError, match="20,000"):
        check_prompt_length("a" * (MAX_PROMPT_CHARS + 1))


def test_synonym_limits():
    with pytest.raises(PromptError):
        ProbeOptions(synonyms=[["a"]]).validate()
    with pytest.raises(ClipProbeError):
        ProbeOptions(synonyms=[["a", "b"]] * 65).validate()
