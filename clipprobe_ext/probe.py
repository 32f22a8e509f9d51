"""One call that runs every analysis of a prompt against one or more images.

Cost model: each image is encoded once; every distinct phrase, synonym and prompt
variant is encoded once, in batches, through the encoder's text cache (so a second
image or an edited prompt only pays for what is new); every analysis after that is
arithmetic on those embeddings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from clipprobe_ext.analysis.contribution import leave_one_out
from clipprobe_ext.analysis.judgeable import unjudgeable
from clipprobe_ext.analysis.negative import check_negative
from clipprobe_ext.analysis.presence import cosine_z, presence
from clipprobe_ext.analysis.pruning import lazy_greedy_prune
from clipprobe_ext.analysis.ranking import elimination_ranking, rank_group
from clipprobe_ext.analysis.references import reference_banks
from clipprobe_ext.analysis.tokens import (
    TokenBudget,
    Tokenizer,
    TokenSaving,
    model_token_budget,
    token_budget,
    token_saving,
)
from clipprobe_ext.analysis.uncalibrated import uncalibrated_rule
from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN, mean_presence, phrase_verdicts
from clipprobe_ext.encoders.base import ClipEncoder, Progress
from clipprobe_ext.errors import ImageError
from clipprobe_ext.infotext import check_text
from clipprobe_ext.layout import PromptLayout
from clipprobe_ext.options import ProbeOptions, check_prompt_length, parse_synonyms
from clipprobe_ext.prompt import (
    ParsedPrompt,
    parse_prompt,
    removal_blocker,
    remove_phrases,
    require_measurable,
)
from clipprobe_ext.results import (
    HeldPhrase,
    ImageAnalysis,
    Note,
    PhraseInfo,
    PresenceBounds,
    ProbeReport,
    PruneResult,
    PruneStep,
)

__all__ = ["ProbeOptions", "analyze", "parse_synonyms"]


def analyze(
    images: Sequence[Image.Image],
    prompt: str,
    encoder: ClipEncoder,
    options: ProbeOptions | None = None,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
    negative: str = "",
) -> ProbeReport:
    """Analyse ``prompt`` against RGB ``images``; raises ``ClipProbeError`` on bad input.

    The prompt is parsed once: each ``PhraseInfo`` carries its span, tokens and chunks.
    ``negative``: the negative prompt, checked against the same image embeddings
    (``analysis.negative``), ``report.negative`` (None when empty).
    """
    options = copy.deepcopy(options or ProbeOptions())
    options.validate()
    check_text(check_prompt_length(prompt))
    negative = negative or ""
    check_text(check_prompt_length(negative, "The negative prompt"), "The negative prompt")
    if not images:
        raise ImageError("No image to analyse.")
    labels = list(labels) if labels else [f"image {i + 1}" for i in range(len(images))]

    def report(message: str, fraction: float | None) -> None:
        if progress is not None:
            progress(message, fraction)

    parsed = parse_prompt(prompt, granularity=options.granularity)
    require_measurable(parsed)
    notes: list[Note] = []
    tokens, tokenize, misfit = model_token_budget(parsed, encoder.tokenize)
    if misfit is not None:
        notes.append(Note("tokenizer_fallback", detail=misfit))
    phrases = [
        PhraseInfo(
            p.index,
            p.text,
            p.weight,
            p.start,
            p.end,
            p.measurable,
            t.tokens,
            tuple(t.chunks),
            t.subprompt,
        )
        for p, t in zip(parsed.phrases, tokens.phrases)
    ]
    measurable = [p.index for p in parsed.phrases if p.measurable]

    report("Encoding images", 0.0)
    image_embs = encoder.encode_images(list(images)).numpy().astype(np.float64)

    report("Encoding phrases", 0.1)
    texts = [phrases[i].text for i in measurable]
    synonym_texts = [t for group in options.synonyms for t in group]
    text_embs, chunk_counts = encoder.encode_texts(texts + synonym_texts)
    text_embs = text_embs.numpy().astype(np.float64)
    long_phrases = sum(n > 1 for n in chunk_counts[: len(texts)])
    if long_phrases:
        notes.append(Note("long_phrases", count=long_phrases, limit=encoder.chunk_length))
    phrase_sims = image_embs @ text_embs[: len(texts)].T  # [images, phrases]
    synonym_sims = image_embs @ text_embs[len(texts) :].T
    # Calibrated presence against the model's reference banks (built once per model);
    # None when the model has no fit (uncalibrated).
    banks = reference_banks(encoder, image_embs.shape[1])
    fit = banks.calibration
    seen = presence(image_embs, text_embs[: len(texts)], banks)  # [images, phrases]

    report("Ranking", 0.2)
    per_image = []
    for m, label in enumerate(labels):
        ranking = elimination_ranking(
            phrase_sims[m], encoder.logit_scale, options.rounds, options.threshold, measurable
        )
        groups, start = [], 0
        for group in options.synonyms:
            sims = synonym_sims[m, start : start + len(group)]
            groups.append(rank_group(group, sims, encoder.logit_scale))
            start += len(group)
        image_presence: list[float | None] | None = None
        if seen is not None:
            image_presence = [None] * len(phrases)
            for k, i in enumerate(measurable):
                image_presence[i] = float(seen[m, k])
        per_image.append(ImageAnalysis(label, ranking, groups, None, image_presence))

    # Pruning candidates: not seen (or, uncalibrated, what its rule allows), and never a
    # claim CLIP cannot judge.
    judgeable = [i for i in measurable if unjudgeable(phrases[i].text) is None]
    clearly: dict[int, float] = {}
    if seen is not None:
        # the batch's mean, exactly as the verdict takes it: "not seen" for both or neither
        mean = {i: mean_presence(seen[:, k]) for k, i in enumerate(measurable)}
        not_seen = [i for i in judgeable if mean[i] < NOT_SEEN]
        # Clearly not seen (the model's ``absent_z``): the pruning guard yields to these.
        z = dict(zip(measurable, cosine_z(image_embs, text_embs[: len(texts)], banks).mean(0)))
        clearly = {i: float(z[i]) for i in not_seen if fit.clearly_absent(z[i])}
    else:
        notes.append(Note("uncalibrated"))
        best = {
            i: float(np.mean([a.ranking.max_probability(i) for a in per_image])) for i in measurable
        }
        not_seen = [i for i in judgeable if uncalibrated_rule(best[i], options.threshold).candidate]

    pruning: PruneResult | None = None
    if options.contribution or options.prune:
        report("Encoding the prompt and its variants", 0.3)
        layout = PromptLayout(parsed, measurable, encoder, image_embs)
        if layout.chunk_count > 1:
            notes.append(Note("long_prompt", count=layout.chunk_count, limit=encoder.chunk_length))
        everything = frozenset(measurable)
        # The whole prompt first: its chunks are the shared prefixes of every variant.
        full = layout.similarities([everything])[:, 0]
        without = layout.similarities([everything - {i} for i in measurable])
        if options.contribution:
            per_image = [
                replace(
                    analysis,
                    contribution=leave_one_out(full[m], without[m], measurable, len(phrases)),
                )
                for m, analysis in enumerate(per_image)
            ]
        if options.prune:
            report("Searching for a pruned prompt", 0.6)
            pruning = _prune(parsed, measurable, layout, full, without, options, not_seen, clearly)

    negative_check = None
    if negative.strip():
        report("Checking the negative prompt", 0.95)
        negative_check = check_negative(image_embs, negative, encoder, banks, labels)

    verdicts = phrase_verdicts(phrases, per_image, pruning, options.threshold, clearly)
    if any(not p.measurable for p in phrases):
        notes.append(Note("extra_network_tags"))
    report("Done", 1.0)
    return ProbeReport(
        model_id=encoder.model_id,
        prompt=prompt,
        phrases=phrases,
        images=per_image,
        verdicts=verdicts,
        pruning=pruning,
        options=options,
        notes=notes,
        reference=banks.describe(),
        bounds=None if fit is None else PresenceBounds(SEEN, NOT_SEEN, fit.absent_z, fit.source),
        tokens=tokens,
        token_saving=_token_saving(tokens, pruning, tokenize),
        negative=negative_check,
    )


def _token_saving(
    budget: TokenBudget, pruning: PruneResult | None, tokenize: Tokenizer
) -> TokenSaving | None:
    """What the pruned prompt saves, counted with the tokenizer of the prompt's budget."""
    if pruning is None or not pruning.steps:
        return None
    return token_saving(budget, token_budget(pruning.pruned_prompt, tokenize), pruning.removed)


def _prune(
    parsed: ParsedPrompt,
    measurable: list[int],
    layout: PromptLayout,
    full: np.ndarray,
    without: np.ndarray,
    options: ProbeOptions,
    candidates: list[int],
    clearly: dict[int, float] | None = None,
) -> PruneResult:
    """Pruning on the batch's mean similarity, so one prompt serves every image.

    Only ``candidates`` (phrases the presence says are not seen) may go; the similarity
    tolerance is a guard on top of that, not a proof that a phrase is not needed.  The
    guard yields to ``clearly`` (candidates clearly not seen, with their ``cosine_z``):
    they go first, clearest first, whatever the similarity does; the guard then counts
    from the prompt without them.
    """
    fixed = frozenset(measurable) - set(candidates)

    def oracle(variants: Sequence[frozenset[int]]) -> np.ndarray:
        return layout.similarities([v | fixed for v in variants]).mean(0)

    original = float(full.mean())
    loo = dict(zip(measurable, without.mean(0)))
    gone: list[int] = []  # clearly not seen, removed
    held: list[HeldPhrase] = []  # clearly not seen, but the cut would not be clean
    for i in sorted(clearly or {}, key=lambda i: (clearly[i], i)):
        if len(gone) + 1 >= len(measurable):
            break  # at least one phrase stays: the guarded search decides the rest
        reason = removal_blocker(parsed, frozenset(gone + [i]))
        if reason is None:
            gone.append(i)
        else:
            held.append(HeldPhrase(i, "cannot_cut_cleanly", tuple(gone), blocker=reason))
    refused = {h.index for h in held}
    rest = [i for i in candidates if i not in gone and i not in refused]
    steps: list[tuple[int, float]] = []
    guard_from = original
    encodes = len(measurable) + 1
    if gone:
        left = frozenset(candidates) - set(gone)
        # each clear removal's similarity, then every guarded removal from the prompt
        # without them (the search's fresh starting costs), in one batch
        variants = [left | set(gone[j + 1 :]) for j in range(len(gone))]
        variants += [left - {i} for i in rest]
        sims = oracle(variants)
        encodes += len(variants)
        steps = [(i, float(s)) for i, s in zip(gone, sims[: len(gone)])]
        guard_from = steps[-1][1]
        loo.update(zip(rest, sims[len(gone) :]))

    def blocker(removed: frozenset[int]) -> str | None:
        # asked only when a step is about to be taken (~15 ms on a 47-phrase prompt)
        return removal_blocker(parsed, removed | set(gone))

    search = lazy_greedy_prune(
        rest,
        guard_from,
        [loo[i] for i in rest],
        oracle,
        options.tolerance,
        min_keep=0 if fixed or held else 1,  # at least one phrase stays
        blocker=blocker,
    )
    steps += search.steps
    removed = [i for i, _ in steps]
    held += [replace(h, removed_before=(*gone, *h.removed_before)) for h in search.held]
    return PruneResult(
        original_similarity=original,
        tolerance=options.tolerance,
        steps=[PruneStep(i, s) for i, s in steps],
        # every step was checked with removal_blocker, so this cut is clean
        pruned_prompt=remove_phrases(parsed.prompt, parsed, removed),
        full_encodes=encodes + search.evaluations,
        held=sorted(held, key=lambda h: h.index),
        clearly_absent=gone,
        guard_similarity=guard_from if gone else None,
    )
