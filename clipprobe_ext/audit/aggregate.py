"""From per-picture answers to the folder's story: phrase by phrase, prompt by prompt.

A phrase is counted under its normalised text (``parse_prompt`` already drops weights,
brackets and escapes; case and whitespace are ignored here), so ``(Masterpiece:1.2)``
and ``masterpiece`` are one habit.  A claim CLIP cannot judge (``analysis.judgeable``) is
``cannot_judge`` and never a habit word; an uncalibrated model has no "seen" at all: its
verdicts follow ``analysis.uncalibrated``, and nothing is a habit word or a worst prompt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipprobe_ext.analysis.judgeable import unjudgeable
from clipprobe_ext.analysis.uncalibrated import uncalibrated_rule
from clipprobe_ext.audit.evidence import NOT_SEEN
from clipprobe_ext.audit.options import AuditOptions
from clipprobe_ext.audit.results import (
    AuditReport,
    AuditStats,
    AuditVerdict,
    PhraseSummary,
    PromptSummary,
    Skipped,
    WritingNote,
)
from clipprobe_ext.audit.writing_effect import WritingEffect

#: The verdict from the per-picture presence (``evidence``: seen at ``SEEN``, not
#: seen under ``NOT_SEEN``): keep when seen in at least KEEP_AT of its pictures; prune
#: when seen in fewer than WEAK_AT of them *and* not seen in at least PRUNE_AT
#: (rarely seen is not enough when the presence is merely unsure); weak otherwise.
KEEP_AT = 0.5
WEAK_AT = 0.2
PRUNE_AT = 0.5


def normalise(text: str) -> str:
    """Case and whitespace ignored (weights and brackets are already gone from the text)."""
    return " ".join(text.lower().split())


@dataclass
class PromptModel:
    """A distinct prompt: its measurable phrases and their text embeddings."""

    id: int
    prompt: str
    phrases: list[str]  # clean text of each measurable phrase
    keys: list[str]  # normalised
    tokens: list[int]  # CLIP tokens of each phrase
    phrase_embeddings: np.ndarray  # [phrases, dim], unit
    full_embedding: np.ndarray | None  # the whole prompt, as the WebUI conditions it
    without_embeddings: np.ndarray | None  # the prompt without each phrase, [phrases, dim]
    pictures: int = 0


@dataclass
class PictureScore:
    """One picture against its prompt's phrases (arrays follow ``PromptModel.phrases``)."""

    path: str
    prompt_id: int
    seen: np.ndarray | None  # bool; None: uncalibrated
    presence: np.ndarray | None  # calibrated presence in [0, 1]; None: uncalibrated
    best: np.ndarray  # best probability in the elimination ranking
    contribution: np.ndarray | None


def verdict_of(seen_rate: float, not_seen_rate: float) -> AuditVerdict:
    if seen_rate >= KEEP_AT:
        return "keep"
    return "prune" if seen_rate < WEAK_AT and not_seen_rate >= PRUNE_AT else "weak"


def writing_note(effect: WritingEffect | None) -> WritingNote | None:
    """What a phrase's writing effect can say (``results.WritingNote``)."""
    if effect is None:
        return None
    if effect.without_count == 0:
        return "everywhere"
    if effect.auroc is None:
        return "too_few"
    return "confounded" if effect.confounded_with else None


def aggregate(
    prompts: dict[str, PromptModel],
    scores: Sequence[PictureScore],
    options: AuditOptions,
    *,
    model_id: str,
    store: str,
    folders: list[str],
    stats: AuditStats,
    skipped: dict[str, list[Skipped]],
    interrupted: bool = False,
    notes: list[str] | None = None,
    reference: str | None = None,
    calibration: str | None = None,
    writing: Sequence[WritingEffect] = (),
    writing_pictures: int = 0,
) -> AuditReport:
    """``calibration``: the fit's source (None: uncalibrated, and the scores hold no seen
    or presence); ``writing``: the phrases' writing effects (``audit.folder``)."""
    by_id = {m.id: m for m in prompts.values()}
    per_prompt: dict[int, list[PictureScore]] = defaultdict(list)
    for score in scores:
        per_prompt[score.prompt_id].append(score)
    audited = [by_id[i] for i in sorted(per_prompt)]
    calibrated = bool(scores) and scores[0].seen is not None

    # phrase key -> per prompt: (seen flags per picture, best probs, contributions, tokens)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in audited:
        pictures = per_prompt[model.id]
        seen = np.stack([s.seen for s in pictures]) if calibrated else None  # [pictures, phrases]
        presence = (
            np.stack([s.presence for s in pictures]).astype(np.float64) if calibrated else None
        )
        best = np.stack([s.best for s in pictures]).astype(np.float64)
        contrib = (
            np.stack([s.contribution for s in pictures]).astype(np.float64)
            if pictures[0].contribution is not None
            else None
        )
        for key in dict.fromkeys(model.keys):
            cols = [k for k, other in enumerate(model.keys) if other == key]
            rows[key].append(
                {
                    "seen": None if seen is None else seen[:, cols].any(axis=1),
                    "presence": None if presence is None else presence[:, cols].max(axis=1),
                    "best": best[:, cols].max(axis=1),
                    "contribution": None if contrib is None else contrib[:, cols].sum(axis=1),
                    "tokens": sum(model.tokens[k] for k in cols),
                    "pictures": len(pictures),
                }
            )

    effects = {e.phrase: e for e in writing}
    prompt_count = len(audited)
    phrases = [
        _phrase(key, found, options, prompt_count, effects.get(key)) for key, found in rows.items()
    ]
    phrases.sort(key=lambda p: (-p.prompts, -p.pictures, p.seen_rate or 0.0, p.phrase))
    habits = [p.phrase for p in phrases if p.habit]

    summaries = []
    for model in audited if calibrated else []:
        pictures = per_prompt[model.id]
        seen = np.stack([s.seen for s in pictures])
        missed = [
            key
            for key in dict.fromkeys(model.keys)
            if seen[:, [k for k, o in enumerate(model.keys) if o == key]].any(axis=1).mean()
            < KEEP_AT
        ]
        summaries.append(
            PromptSummary(
                prompt=model.prompt,
                pictures=len(pictures),
                phrases=len(model.phrases),
                seen_share=float(seen.mean(axis=1).mean()),
                missed=missed,
                example=pictures[0].path,
            )
        )
    summaries.sort(key=lambda s: (s.seen_share, -s.pictures, s.prompt))

    return AuditReport(
        model_id=model_id,
        store=store,
        folders=folders,
        stats=stats,
        phrases=phrases,
        habit_words=habits,
        worst_prompts=summaries[: options.worst_prompts],
        no_parameters=skipped.get("no_parameters", []),
        unreadable=skipped.get("unreadable", []),
        vanished=skipped.get("vanished", []),
        unmeasurable=skipped.get("unmeasurable", []),
        grids=skipped.get("grids", []),
        prompts=prompt_count,
        interrupted=interrupted,
        options=options.public(),
        notes=list(notes or []),
        reference=reference,
        calibration=calibration,
        writing_pictures=writing_pictures,
    )


def _phrase(
    key: str,
    found: list[dict[str, Any]],
    options: AuditOptions,
    prompt_count: int,
    effect: WritingEffect | None,
) -> PhraseSummary:
    """One normalised phrase from its rows, one per prompt that holds it."""
    best = np.concatenate([f["best"] for f in found])
    contributions = [f["contribution"] for f in found if f["contribution"] is not None]
    frequent = len(found) >= max(options.habit_min_prompts, options.habit_share * prompt_count)
    claim = unjudgeable(key)
    numbers: dict[str, Any] = dict.fromkeys(
        ("seen", "seen_rate", "seen_rate_std", "seen_rate_min", "seen_rate_max", "not_seen",
         "not_seen_rate", "mean_presence", "presence_std")
    )  # fmt: skip
    habit = False
    if found[0]["seen"] is not None:
        seen = np.concatenate([f["seen"] for f in found])
        presence = np.concatenate([f["presence"] for f in found])
        not_seen = (presence < NOT_SEEN) & ~seen
        rates = np.array([f["seen"].mean() for f in found])
        numbers = {
            "seen": int(seen.sum()),
            "seen_rate": float(seen.mean()),
            "seen_rate_std": float(rates.std()),
            "seen_rate_min": float(rates.min()),
            "seen_rate_max": float(rates.max()),
            "not_seen": int(not_seen.sum()),
            "not_seen_rate": float(not_seen.mean()),
            "mean_presence": float(presence.mean()),
            "presence_std": float(presence.std()),
        }
        verdict = verdict_of(numbers["seen_rate"], numbers["not_seen_rate"])
        habit = bool(frequent and numbers["seen_rate"] < options.habit_seen_rate)
    else:
        verdict = uncalibrated_rule(float(best.mean()), options.threshold).verdict
    if claim is not None:
        verdict, habit = "cannot_judge", False
    return PhraseSummary(
        phrase=key,
        prompts=len(found),
        pictures=int(sum(f["pictures"] for f in found)),
        **numbers,
        mean_probability=float(best.mean()),
        probability_std=float(best.std()),
        mean_contribution=(float(np.concatenate(contributions).mean()) if contributions else None),
        tokens_per_prompt=float(np.mean([f["tokens"] for f in found])),
        verdict=verdict,
        habit=habit,
        writing_auroc=effect.auroc if effect is not None else None,
        written_in=effect.with_count if effect is not None else 0,
        not_written_in=effect.without_count if effect is not None else 0,
        written_with=list(effect.confounded_with) if effect is not None else [],
        writing_note=writing_note(effect),
        cannot_judge=claim.kind if claim is not None else None,
        cannot_judge_cue=claim.cue if claim is not None else None,
    )
