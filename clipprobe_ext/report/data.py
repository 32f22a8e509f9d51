"""A ``ProbeReport`` as data for programs: JSON (``report_data``, ``to_json``) and CSV
(``to_csv``), documented in docs/cli.md.

Every reason is written twice: its code and numbers for a program, beside the sentence the
text report shows, so a program never parses words.  Strict JSON: NaN and infinities are
``null``; several reports (the CLI's prompt groups) give an array.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from clipprobe_ext.report import reasons
from clipprobe_ext.results import Note, PhraseInfo, ProbeReport


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars and tuples -> Python types."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalars
        return clean(value.item())
    return str(value)


def dumps(data: Any, indent: int | None = 2) -> str:
    """Strict JSON of already plain data (``clean`` first)."""
    return json.dumps(clean(data), indent=indent, ensure_ascii=False, allow_nan=False)


def report_data(report: ProbeReport) -> dict[str, Any]:
    """The report as JSON-safe plain data: what the API, the JSON download and the CLI's
    ``--json`` all send (see the module doc)."""
    data = dataclasses.asdict(report)
    for row, verdict in zip(data["verdicts"], report.verdicts):
        row["reason"] = reasons.verdict_reason(report, verdict)
    if report.pruning is not None:
        data["pruning"]["removed"] = report.pruning.removed
        data["pruning"]["final_similarity"] = report.pruning.final_similarity
        data["pruning"]["kept"] = [
            {"index": held.index, "reason": held.blocker} for held in report.pruning.kept
        ]
    data["notes"] = [reasons.note(note) for note in report.notes]
    data["note_codes"] = [
        dataclasses.asdict(note) if isinstance(note, Note) else {"code": "message", "detail": note}
        for note in report.notes
    ]
    data["reference"] = reasons.reference(report) or None
    for key in ("tokens", "token_saving"):
        value = getattr(report, key)
        data[key] = value.to_dict() if value is not None else None
    if report.negative is not None:
        check = report.negative
        pictures = len(check.images)
        negative = data["negative"]
        negative["method"] = reasons.negative_method(report)
        negative["notes"] = [] if check.phrases else ["The negative prompt is empty."]
        negative["not_suppressed"] = [p.index for p in check.not_suppressed]
        for row, phrase in zip(negative["phrases"], check.phrases):
            row["reason"] = reasons.negative_reason(phrase, pictures)
    return clean(data)


def to_json(report: ProbeReport | Sequence[ProbeReport], indent: int | None = 2) -> str:
    """One JSON document: ``report_data``, or an array of them for several reports."""
    if isinstance(report, ProbeReport):
        return dumps(report_data(report), indent)
    return dumps([report_data(r) for r in report], indent)


# -- CSV ---------------------------------------------------------------------------------

FIXED_COLUMNS = [
    "group",
    "image",
    "phrase_index",
    "text",
    "weight",
    "span_start",
    "span_end",
    "verdict",
    "max_probability",
    "max_probability_std",
    "contribution",
    "contribution_std",
    "similarity_without",
]
TAIL_COLUMNS = ["top_round", "pruned", "tokens", "chunks", "straddles", "presence"]


def cell(value: Any) -> Any:
    """A CSV cell: full-precision floats, empty for missing or not-finite numbers."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def csv_columns(rounds: int) -> list[str]:
    return [*FIXED_COLUMNS, *(f"round_{k}" for k in range(1, rounds + 1)), *TAIL_COLUMNS]


def to_csv(report: ProbeReport | Sequence[ProbeReport]) -> str:
    """The reports as CSV text (header + rows); see the module docstring for the columns."""
    reports = [report] if isinstance(report, ProbeReport) else list(report)
    rounds = max((len(a.ranking.rounds) for r in reports for a in r.images), default=0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(rounds))
    for group, rep in enumerate(reports, start=1):
        for row in _csv_rows(rep, group, rounds):
            writer.writerow([cell(value) for value in row])
    return out.getvalue()


def _budget(phrase: PhraseInfo) -> list[Any]:
    """[tokens, chunks, straddles] of a phrase, as the analysis counted them."""
    if phrase.tokens is None:
        return [None, None, None]
    return [phrase.tokens, " ".join(str(c + 1) for c in phrase.chunks), phrase.straddles]


def _csv_rows(report: ProbeReport, group: int, rounds: int) -> list[list[Any]]:
    verdicts = {v.index: v for v in report.verdicts}
    pruned = set(report.pruning.removed) if report.pruning is not None else set()
    rows: list[list[Any]] = []

    def head(label: str, phrase: PhraseInfo) -> list[Any]:
        verdict = verdicts.get(phrase.index)
        return [
            group,
            label,
            phrase.index,
            phrase.text,
            phrase.weight,
            phrase.start,
            phrase.end,
            verdict.verdict if verdict is not None else "",
        ]

    for analysis in report.images:
        contrib = analysis.contribution
        for phrase in report.phrases:
            per_round: list[Any] = [None] * rounds
            top = None
            for r in analysis.ranking.rounds:
                for i, p in zip(r.candidates, r.probabilities):
                    if i == phrase.index:
                        per_round[r.round - 1] = p
                if r.top == phrase.index:
                    top = r.round
            best = analysis.ranking.max_probability(phrase.index) if phrase.measurable else None
            c = contrib.contributions[phrase.index] if contrib is not None else None
            w = contrib.similarity_without[phrase.index] if contrib is not None else None
            presence = analysis.presence[phrase.index] if analysis.presence is not None else None
            rows.append(
                [
                    *head(analysis.label, phrase),
                    best, None, c, None, w, *per_round, top,
                    phrase.index in pruned, *_budget(phrase), presence,
                ]
            )  # fmt: skip
    for phrase in report.phrases:
        # the batch's numbers are the verdict's: the same means the report shows
        v = verdicts.get(phrase.index)
        full = report.full_similarity
        mean = (
            [v.max_probability, v.max_probability_std, v.contribution, v.contribution_std]
            if v is not None
            else [None] * 4
        )
        without = (
            full - v.contribution
            if v is not None and v.contribution is not None and full is not None
            else None
        )
        rows.append(
            [
                *head("mean", phrase), *mean, without, *([None] * rounds), None,
                phrase.index in pruned, *_budget(phrase), v.presence if v is not None else None,
            ]
        )  # fmt: skip
    if report.negative is not None:
        blank = [None] * (len(FIXED_COLUMNS) - 8 + rounds + len(TAIL_COLUMNS) - 1)
        for p in report.negative.phrases:
            rows.append(
                [group, "negative", p.index, p.text, p.weight, None, None, p.status, *blank,
                 p.score]
            )  # fmt: skip
    return rows
