"""What a report shows, built once as plain values, its numbers formatted once.

The terminal table (``report.format_table``) and the WebUI's HTML (``render``) are two
renderings of the same ``ReportView``: they pick sections and lay them out, but never
compute or format a number themselves, so they cannot drift apart (``nan%`` in one,
``–`` in the other).  Pure: no torch, no gradio.

Formats (every human-facing number): probabilities and tolerances in percent with one
decimal (``12.5 %``, ``<0.1 %`` below 0.05 %), similarities with four decimals, signed
contributions and changes with four decimals (``+0.0123``), missing or not-finite
values as ``–``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from clipprobe_ext.analysis.tokens import TokenBudget, TokenSaving
from clipprobe_ext.options import format_percent
from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.results import (
    ContributionResult,
    ImageAnalysis,
    PhraseInfo,
    PhraseVerdict,
    ProbeReport,
    PruneResult,
)

VERDICTS = ("keep", "weak", "prune")
TEXT_WIDTH = 40


# -- formats -----------------------------------------------------------------------------


def percent(p: float | None) -> str:
    return format_percent(p)


def signed(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}"


def similarity(x: float | None) -> str:
    return f"{x:.4f}" if x is not None and math.isfinite(x) else "–"


def clip_text(text: str, width: int = TEXT_WIDTH) -> str:
    """One line of at most ``width`` characters (an ellipsis when cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def phrase_label(phrase: PhraseInfo, width: int = TEXT_WIDTH) -> str:
    """The phrase's text, with its attention weight when it is not 1."""
    suffix = f" ×{phrase.weight:g}" if phrase.weight != 1 else ""
    return clip_text(phrase.text, width - len(suffix)) + suffix


def fraction(p: float | None) -> float:
    """``p`` clamped to [0, 1] for a bar's length; 0 when missing or not finite."""
    if p is None or not math.isfinite(p):
        return 0.0
    return min(max(p, 0.0), 1.0)


# -- sections ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundRow:
    """One phrase above the threshold in one round; ``index is None``: none was."""

    round: int
    first: bool  # the round's first row (shows the round number)
    index: int | None
    text: str
    label: str
    probability: float
    percent: str
    top: bool  # the round's most probable phrase, removed after it


@dataclass(frozen=True)
class SynonymItem:
    text: str
    percent: str
    similarity: str
    best: bool


@dataclass(frozen=True)
class ContributionRow:
    index: int
    text: str
    label: str
    value: float
    value_text: str  # "+0.0123", with " ± 0.0010" over several images
    without: str  # similarity without the phrase, or "" when not known


@dataclass(frozen=True)
class ImageSection:
    label: str
    rounds: list[RoundRow]
    synonyms: list[list[SynonymItem]]  # per group, most probable first
    whole_similarity: str | None  # None without contribution
    contributions: list[ContributionRow]  # largest first


@dataclass(frozen=True)
class VerdictRow:
    index: int
    text: str
    label: str
    verdict: str
    presence: str  # calibrated presence, "0.81" or "0.81 ± 0.02" over several images; "–"
    peak: str  # best round probability, "12.5 %" or "12.5 % ± 1.0" over several images
    contribution: str
    reason: str


@dataclass(frozen=True)
class PhraseSpan:
    """A phrase's place in the prompt and what hovering it says."""

    index: int
    start: int
    end: int
    kind: str  # keep / weak / prune / unmeasurable / none
    title: str
    straddles: bool = False  # a 75-token chunk boundary cuts it: CLIP reads its halves apart


@dataclass(frozen=True)
class ChunkBreak:
    """Where a new 75-token chunk begins in the prompt text (before ``position``)."""

    position: int  # character offset in the prompt
    chunk: int  # 1-based number of the chunk that starts here (within its AND part)
    title: str


@dataclass(frozen=True)
class TokenSection:
    lines: list[str]  # totals, chunk sizes, straddling phrases (``TokenBudget.text_lines``)
    saving: str  # what the pruned prompt saves, "" when nothing is cut
    breaks: list[ChunkBreak]


@dataclass(frozen=True)
class NegativeRow:
    index: int
    text: str
    status: str  # not suppressed / suppressed / not measurable
    score: str  # "63.4 %", or "–"
    reason: str


@dataclass(frozen=True)
class NegativeSection:
    prompt: str
    rows: list[NegativeRow]
    method: str  # what the score is and what it is compared with
    notes: list[str]


@dataclass(frozen=True)
class PruningSection:
    pruned_prompt: str  # "" when nothing can go
    removed: list[str]
    outcome: str  # one sentence: what happened to the similarity, against the rule
    kept: list[str]  # "'text' kept: reason" per phrase whose removal would not be clean
    saving: str  # tokens and chunks the pruned prompt saves, "" when nothing is cut


@dataclass(frozen=True)
class ReportView:
    model_id: str
    prompt: str
    image_count: int
    measurable_count: int
    unit: str  # "phrases" or "words" (the granularity)
    settings: list[str]  # "2 images", "4 phrases", "5 rounds", "threshold 1.0 %", ...
    threshold: str
    counts: dict[str, int]  # verdict -> number of phrases
    spans: list[PhraseSpan]
    images: list[ImageSection]
    verdicts: list[VerdictRow]
    mean_contributions: list[ContributionRow]  # over images, largest first
    mean_whole_similarity: str | None
    pruning: PruningSection | None
    notes: list[str]
    tokens: TokenSection | None = None
    negative: NegativeSection | None = None
    reference: str = ""  # what the presence score is compared with, and its bounds


def build_view(report: ProbeReport) -> ReportView:
    """Every section of ``report``, formatted."""
    phrases = {p.index: p for p in report.phrases}
    threshold = _threshold(report)
    kept = {k.index: k.reason for k in report.pruning.kept} if report.pruning else {}
    full = [a.contribution.full_similarity for a in report.images if a.contribution is not None]
    return ReportView(
        model_id=report.model_id,
        prompt=report.prompt,
        image_count=len(report.images),
        measurable_count=len(report.measurable),
        unit="words" if report.options.get("granularity") == "word" else "phrases",
        settings=_settings(report, threshold),
        threshold=percent(threshold),
        counts=_counts(report.verdicts),
        spans=_spans(report),
        images=[_image(a, phrases, threshold) for a in report.images],
        verdicts=[_verdict(v, phrases, len(report.images), kept) for v in report.verdicts],
        mean_contributions=_mean_contributions(report, phrases),
        mean_whole_similarity=similarity(sum(full) / len(full)) if full else None,
        pruning=_pruning(report, phrases) if report.pruning is not None else None,
        notes=list(report.notes),
        tokens=_tokens(report),
        negative=_negative(report),
        reference=_reference(report),
    )


def presence_text(x: float | None) -> str:
    """A presence score (0 to 1) with two decimals, as the verdicts' reasons write it."""
    return f"{x:.2f}" if x is not None and math.isfinite(x) else "–"


def _reference(report: ProbeReport) -> str:
    if not report.reference:
        return ""
    from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN

    compared = report.reference.removeprefix("presence ")
    return (
        f"Presence (0 to 1) {compared}. Seen (keep) from {SEEN:.2f}; not seen "
        f"under {NOT_SEEN:.2f} (prune when the pruned prompt drops it); weak in between."
    )


def _threshold(report: ProbeReport) -> float:
    try:
        return float(report.options.get("threshold", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _settings(report: ProbeReport, threshold: float) -> list[str]:
    opts = report.options
    n = len(report.images)
    word = opts.get("granularity") == "word"
    items = [
        f"{n} image{'s' if n != 1 else ''}",
        f"{len(report.measurable)} {'words' if word else 'phrases'}",
        f"{opts.get('rounds', '?')} rounds",
        f"threshold {percent(threshold)}",
    ]
    if opts.get("prune", True):
        items.append(f"tolerance {percent(float(opts.get('tolerance', 0.0) or 0.0))}")
    if word:
        items.append("word by word")
    return items


def _counts(verdicts: Sequence[PhraseVerdict]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return counts


def _text(phrases: dict[int, PhraseInfo], index: int) -> str:
    return phrases[index].text if index in phrases else str(index)


def _label(phrases: dict[int, PhraseInfo], index: int, width: int = TEXT_WIDTH) -> str:
    return phrase_label(phrases[index], width) if index in phrases else str(index)


def _rounds(
    analysis: ImageAnalysis, phrases: dict[int, PhraseInfo], threshold: float
) -> list[RoundRow]:
    rows = []
    for r in analysis.ranking.rounds:
        above = sorted(r.above(threshold), key=lambda ip: -ip[1])
        if not above:
            rows.append(RoundRow(r.round, True, None, "", "", 0.0, "", False))
        for k, (i, p) in enumerate(above):
            rows.append(
                RoundRow(
                    r.round, k == 0, i, _text(phrases, i), _label(phrases, i), p, percent(p),
                    i == r.top,
                )
            )  # fmt: skip
    return rows


def _synonyms(analysis: ImageAnalysis) -> list[list[SynonymItem]]:
    groups = []
    for group in analysis.synonyms:
        order = sorted(range(len(group.texts)), key=lambda j: -group.probabilities[j])
        groups.append(
            [
                SynonymItem(
                    group.texts[j],
                    percent(group.probabilities[j]),
                    similarity(group.similarities[j]),
                    rank == 0,
                )
                for rank, j in enumerate(order)
            ]
        )
    return groups


def _contributions(
    contrib: ContributionResult, phrases: dict[int, PhraseInfo]
) -> list[ContributionRow]:
    items = [
        (i, c, contrib.similarity_without[i])
        for i, c in enumerate(contrib.contributions)
        if c is not None and i in phrases
    ]
    items.sort(key=lambda t: -t[1])
    return [
        ContributionRow(i, _text(phrases, i), _label(phrases, i), c, signed(c), similarity(w))
        for i, c, w in items
    ]


def _image(
    analysis: ImageAnalysis, phrases: dict[int, PhraseInfo], threshold: float
) -> ImageSection:
    contrib = analysis.contribution
    return ImageSection(
        label=analysis.label,
        rounds=_rounds(analysis, phrases, threshold),
        synonyms=_synonyms(analysis),
        whole_similarity=similarity(contrib.full_similarity) if contrib is not None else None,
        contributions=_contributions(contrib, phrases) if contrib is not None else [],
    )


def _with_spread(value: str, spread: float | None, scale: float, digits: int, n: int) -> str:
    if n <= 1 or spread is None or not math.isfinite(spread) or value == "–":
        return value
    return f"{value} ± {scale * spread:.{digits}f}"


def _verdict(
    v: PhraseVerdict, phrases: dict[int, PhraseInfo], n_images: int, kept: dict[int, str]
) -> VerdictRow:
    label = _label(phrases, v.index, 32) if v.index in phrases else clip_text(v.text, 32)
    reason = v.reason + (f"; kept: {kept[v.index]}" if v.index in kept else "")
    return VerdictRow(
        index=v.index,
        text=v.text,
        label=label,
        verdict=v.verdict,
        presence=_with_spread(presence_text(v.presence), v.presence_std, 1, 2, n_images),
        peak=_with_spread(percent(v.max_probability), v.max_probability_std, 100, 1, n_images),
        contribution=_with_spread(signed(v.contribution), v.contribution_std, 1, 4, n_images),
        reason=reason,
    )


def _mean_contributions(
    report: ProbeReport, phrases: dict[int, PhraseInfo]
) -> list[ContributionRow]:
    n = len(report.images)
    rows = [
        ContributionRow(
            v.index,
            _text(phrases, v.index),
            _label(phrases, v.index),
            v.contribution,
            _with_spread(signed(v.contribution), v.contribution_std, 1, 4, n),
            "",
        )
        for v in report.verdicts
        if v.contribution is not None and math.isfinite(v.contribution)
    ]
    return sorted(rows, key=lambda r: -r.value)


def phrase_title(phrase: PhraseInfo, verdict: PhraseVerdict | None, n_images: int) -> str:
    """What hovering a phrase of the prompt says."""
    if not phrase.measurable:
        return "extra-network tag: not measurable by CLIP"
    if verdict is None:
        return "no verdict"
    parts = [
        f"{verdict.verdict}: {verdict.reason}",
        f"presence {presence_text(verdict.presence)}",
        f"best round probability {percent(verdict.max_probability)}",
        f"contribution {signed(verdict.contribution)}",
    ]
    if n_images > 1:
        parts.append(f"mean over {n_images} images")
    if phrase.weight != 1.0:
        parts.append(f"weight {phrase.weight:g}")
    if verdict.pruned:
        parts.append("removed by the suggested prompt")
    return " · ".join(parts)


def _spans(report: ProbeReport) -> list[PhraseSpan]:
    """Phrases by start, dropping any whose span is invalid or overlaps the previous one."""
    verdicts = {v.index: v for v in report.verdicts}
    n_images = len(report.images)
    cut = _straddling(report)
    spans: list[PhraseSpan] = []
    end = 0
    for phrase in sorted(report.phrases, key=lambda p: (p.start, p.end)):
        if phrase.start < end or not 0 <= phrase.start <= phrase.end <= len(report.prompt):
            continue
        verdict = verdicts.get(phrase.index)
        if not phrase.measurable:
            kind = "unmeasurable"
        else:
            kind = verdict.verdict if verdict is not None else "none"
        title = phrase_title(phrase, verdict, n_images)
        chunks = cut.get((phrase.start, phrase.end))
        if chunks:
            title += f" · cut between 75-token chunks {chunks}: CLIP reads its halves apart"
        spans.append(
            PhraseSpan(phrase.index, phrase.start, phrase.end, kind, title, chunks is not None)
        )
        end = phrase.end
    return spans


def pruning_outcome(pruning: PruneResult) -> str:
    """What pruning did to the similarity, in absolute terms and against the search's rule
    (``analysis.pruning.similarity_floor``: at most ``tolerance`` × |original| lower).
    Phrases clearly not seen went first, without the rule: it then counts from the prompt
    without them (``PruneResult.guard_similarity``).

    A ratio ("keeps 97 %") means nothing when the similarity is negative or changes sign
    (it read "keeps −453.5 %" for −0.0213 → 0.0965)."""
    from clipprobe_ext.analysis.pruning import similarity_floor

    original = pruning.original_similarity
    start = pruning.guard_similarity if pruning.clearly_absent else original
    if start is None:
        start = original
    allowed = start - similarity_floor(start, pruning.tolerance)
    rule = f"{similarity(allowed)} ({percent(pruning.tolerance)} of its size)"
    if not pruning.steps:
        return (
            f"Nothing can go: every removal lowers the similarity ({similarity(original)}) by "
            f"more than the allowed {rule}."
        )
    final = pruning.final_similarity
    head = f"Similarity {similarity(original)} → {similarity(final)}"
    if pruning.clearly_absent:
        n = len(pruning.clearly_absent)
        head += (
            f". {n} phrase{'s' if n != 1 else ''} clearly not seen went first, without the "
            f"similarity rule ({similarity(original)} → {similarity(start)}); after them"
        )
        if len(pruning.steps) == n:
            return f"{head} nothing else went within the allowed loss of {rule}."
    change = final - start
    if not (math.isfinite(change) and math.isfinite(allowed)):
        return f"{head}."
    if change >= 0:
        return f"{head}: up by {change:.4f}."
    within = "within" if -change <= allowed + 1e-12 else "beyond"
    return f"{head}: down by {-change:.4f}, {within} the allowed loss of {rule}."


def _pruning(report: ProbeReport, phrases: dict[int, PhraseInfo]) -> PruningSection:
    pruning = report.pruning
    assert pruning is not None
    removed = [_text(phrases, i) for i in pruning.removed] if pruning.steps else []
    prompt = pruning.pruned_prompt if pruning.steps else ""
    kept = [f"'{_text(phrases, k.index)}' kept: {k.reason}" for k in pruning.kept]
    return PruningSection(
        prompt, removed, pruning_outcome(pruning), kept, saving_text(report.token_saving)
    )


def saving_text(saving: TokenSaving | None) -> str:
    """``"saves 12 tokens (82 → 70) and 1 chunk (2 → 1)"``; "" when nothing was cut."""
    if saving is None:
        return ""

    def amount(n: int, unit: str) -> str:
        verb = "saves" if n >= 0 else "costs"
        return f"{verb} {abs(n)} {unit}{'s' if abs(n) != 1 else ''}"

    text = (
        f"The pruned prompt {amount(saving.tokens_saved, 'token')} "
        f"({saving.original_tokens} → {saving.pruned_tokens})"
    )
    if saving.chunks_saved:
        text += (
            f" and {amount(saving.chunks_saved, 'chunk')[6:]} "
            f"({saving.original_chunks} → {saving.pruned_chunks})"
        )
    return text + "."


def _straddling(report: ProbeReport) -> dict[tuple[int, int], str]:
    """(start, end) of each phrase a chunk boundary cuts -> "1 and 2"."""
    budget = report.tokens
    if budget is None:
        return {}
    parsed = parse_prompt(report.prompt)
    out = {}
    for p in budget.phrases:
        if p.straddles and p.index < len(parsed.phrases):
            span = parsed.phrases[p.index]
            out[(span.start, span.end)] = " and ".join(str(c + 1) for c in p.chunks)
    return out


def _chunk_breaks(report: ProbeReport, budget: TokenBudget) -> list[ChunkBreak]:
    """Before each phrase that opens a new chunk of its AND part (a straddling phrase is
    marked on its span instead)."""
    parsed = parse_prompt(report.prompt)
    breaks: list[ChunkBreak] = []
    last: dict[int, int] = {}  # AND part -> the last chunk seen
    for p in budget.phrases:
        if not p.chunks or p.index >= len(parsed.phrases):
            continue
        previous = last.get(p.subprompt)
        if previous is not None and p.chunks[0] > previous:
            number = p.chunks[0] + 1
            part = f" of AND part {p.subprompt + 1}" if budget.subprompts > 1 else ""
            breaks.append(
                ChunkBreak(
                    parsed.phrases[p.index].start,
                    number,
                    f"chunk {number}{part} starts here: CLIP reads each 75-token chunk apart",
                )
            )
        last[p.subprompt] = p.chunks[-1]
    return breaks


def _tokens(report: ProbeReport) -> TokenSection | None:
    budget = report.tokens
    if budget is None:
        return None
    return TokenSection(
        budget.text_lines(), saving_text(report.token_saving), _chunk_breaks(report, budget)
    )


def _negative(report: ProbeReport) -> NegativeSection | None:
    check = report.negative
    if check is None:
        return None
    # the analysis scores it with the calibrated presence (0 to 1, as the verdicts show it)
    number = presence_text if check.method.startswith("calibrated presence") else percent
    rows = [
        NegativeRow(p.index, p.text, p.status, number(p.score), p.reason) for p in check.phrases
    ]
    return NegativeSection(check.negative_prompt, rows, check.method, list(check.notes))
