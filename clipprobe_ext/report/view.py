"""What a report shows, built once as plain values, its numbers formatted once.

The terminal table (``text``) and the tab's HTML (``fragments``) are two renderings of
one ``ReportView``: they pick sections and lay them out, but never compute or format a
number or a sentence themselves, so they cannot drift apart.  Everything comes from the
report as the analysis left it (phrases carry their spans, tokens and chunks): nothing
here parses the prompt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from clipprobe_ext.report import reasons
from clipprobe_ext.report.numbers import (
    TEXT_WIDTH,
    clip_text,
    fixed,
    percent,
    presence,
    signed,
    similarity,
    with_spread,
)
from clipprobe_ext.results import (
    ContributionResult,
    ImageAnalysis,
    PhraseInfo,
    PhraseVerdict,
    ProbeReport,
)

VERDICTS = ("keep", "weak", "prune", "cannot_judge")


def phrase_label(phrase: PhraseInfo, width: int = TEXT_WIDTH) -> str:
    """The phrase's text, with its attention weight when it is not 1."""
    suffix = f" ×{phrase.weight:g}" if phrase.weight != 1 else ""
    return clip_text(phrase.text, width - len(suffix)) + suffix


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
    kind: str  # keep / weak / prune / cannot_judge / unmeasurable / none
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
    lines: list[str]  # both counts, chunk sizes, straddling phrases
    saving: str  # what the pruned prompt saves, "" when nothing is cut
    breaks: list[ChunkBreak]


@dataclass(frozen=True)
class NegativeRow:
    index: int
    text: str
    status: str  # not suppressed / unsure / suppressed / not measurable
    score: str  # calibrated presence, "0.63", or "–"
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
    calibrated: bool = True  # False: no presence, the verdicts only rank the phrases


def build_view(report: ProbeReport) -> ReportView:
    """Every section of ``report``, formatted."""
    phrases = {p.index: p for p in report.phrases}
    n = len(report.images)
    threshold = report.options.threshold
    return ReportView(
        model_id=report.model_id,
        prompt=report.prompt,
        image_count=n,
        measurable_count=len(report.measurable),
        unit="words" if report.options.granularity == "word" else "phrases",
        settings=_settings(report),
        threshold=percent(threshold),
        counts=_counts(report.verdicts),
        spans=_spans(report),
        images=[_image(a, phrases, threshold) for a in report.images],
        verdicts=[_verdict(report, v, phrases) for v in report.verdicts],
        mean_contributions=_mean_contributions(report, phrases),
        mean_whole_similarity=(
            similarity(report.full_similarity) if report.full_similarity is not None else None
        ),
        pruning=_pruning(report, phrases) if report.pruning is not None else None,
        notes=[reasons.note(note) for note in report.notes],
        tokens=_tokens(report),
        negative=_negative(report),
        reference=reasons.presence_legend(report),
        calibrated=report.bounds is not None,
    )


def _settings(report: ProbeReport) -> list[str]:
    opts = report.options
    n = len(report.images)
    word = opts.granularity == "word"
    items = [
        f"{n} image{'s' if n != 1 else ''}",
        f"{len(report.measurable)} {'words' if word else 'phrases'}",
        f"{opts.rounds} rounds",
        f"threshold {percent(opts.threshold)}",
    ]
    if opts.prune:
        items.append(f"tolerance {percent(opts.tolerance)}")
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


def _spread(value: str, spread: float | None, formatted: str, images: int) -> str:
    """``value ± spread`` over several images; the value alone for one."""
    return with_spread(value, spread, formatted) if images > 1 else value


def _verdict(report: ProbeReport, v: PhraseVerdict, phrases: dict[int, PhraseInfo]) -> VerdictRow:
    n = len(report.images)
    label = _label(phrases, v.index, 32) if v.index in phrases else clip_text(v.text, 32)
    return VerdictRow(
        index=v.index,
        text=v.text,
        label=label,
        verdict=v.verdict,
        presence=_spread(presence(v.presence), v.presence_std, presence(v.presence_std), n),
        peak=_spread(
            percent(v.max_probability),
            v.max_probability_std,
            fixed(100 * v.max_probability_std, 1),
            n,
        ),
        contribution=_spread(
            signed(v.contribution), v.contribution_std, similarity(v.contribution_std), n
        ),
        reason=reasons.verdict_reason(report, v),
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
            _spread(signed(v.contribution), v.contribution_std, similarity(v.contribution_std), n),
            "",
        )
        for v in report.verdicts
        if v.contribution is not None and math.isfinite(v.contribution)
    ]
    return sorted(rows, key=lambda r: -r.value)


def phrase_title(report: ProbeReport, phrase: PhraseInfo, verdict: PhraseVerdict | None) -> str:
    """What hovering a phrase of the prompt says."""
    if not phrase.measurable:
        return "extra-network tag: not measurable by CLIP"
    if verdict is None:
        return "no verdict"
    parts = [
        f"{verdict.verdict}: {reasons.verdict_reason(report, verdict)}",
        f"presence {presence(verdict.presence)}",
        f"best round probability {percent(verdict.max_probability)}",
        f"contribution {signed(verdict.contribution)}",
    ]
    if len(report.images) > 1:
        parts.append(f"mean over {len(report.images)} images")
    if phrase.weight != 1.0:
        parts.append(f"weight {phrase.weight:g}")
    if verdict.pruned:
        parts.append("removed by the suggested prompt")
    if phrase.straddles:
        chunks = " and ".join(str(c + 1) for c in phrase.chunks)
        parts.append(f"cut between 75-token chunks {chunks}: CLIP reads its halves apart")
    return " · ".join(parts)


def _spans(report: ProbeReport) -> list[PhraseSpan]:
    """Phrases by start, dropping any whose span is invalid or overlaps the previous one."""
    verdicts = {v.index: v for v in report.verdicts}
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
        title = phrase_title(report, phrase, verdict)
        spans.append(
            PhraseSpan(phrase.index, phrase.start, phrase.end, kind, title, phrase.straddles)
        )
        end = phrase.end
    return spans


def _pruning(report: ProbeReport, phrases: dict[int, PhraseInfo]) -> PruningSection:
    pruning = report.pruning
    assert pruning is not None
    removed = [_text(phrases, i) for i in pruning.removed] if pruning.steps else []
    prompt = pruning.pruned_prompt if pruning.steps else ""
    kept = [reasons.kept_line(report, held) for held in pruning.kept]
    return PruningSection(
        prompt,
        removed,
        reasons.pruning_outcome(pruning, uncalibrated=report.bounds is None),
        kept,
        reasons.saving_text(report.token_saving),
    )


def _chunk_breaks(report: ProbeReport) -> list[ChunkBreak]:
    """Before each phrase that opens a new chunk of its AND part (a straddling phrase is
    marked on its span instead)."""
    subprompts = report.tokens.subprompts if report.tokens is not None else 1
    breaks: list[ChunkBreak] = []
    last: dict[int, int] = {}  # AND part -> the last chunk seen
    for p in report.phrases:
        if not p.chunks:
            continue
        previous = last.get(p.subprompt)
        if previous is not None and p.chunks[0] > previous:
            number = p.chunks[0] + 1
            part = f" of AND part {p.subprompt + 1}" if subprompts > 1 else ""
            breaks.append(
                ChunkBreak(
                    p.start,
                    number,
                    f"chunk {number}{part} starts here: CLIP reads each 75-token chunk apart",
                )
            )
        last[p.subprompt] = p.chunks[-1]
    return breaks


def _tokens(report: ProbeReport) -> TokenSection | None:
    if report.tokens is None:
        return None
    return TokenSection(
        reasons.token_lines(report.tokens),
        reasons.saving_text(report.token_saving),
        _chunk_breaks(report),
    )


def _negative(report: ProbeReport) -> NegativeSection | None:
    check = report.negative
    if check is None:
        return None
    pictures = len(check.images)
    rows = [
        NegativeRow(
            p.index, p.text, p.status, presence(p.score), reasons.negative_reason(p, pictures)
        )
        for p in check.phrases
    ]
    notes = [] if check.phrases else ["The negative prompt is empty."]
    return NegativeSection(check.negative_prompt, rows, reasons.negative_method(report), notes)
