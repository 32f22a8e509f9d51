"""The analysis' codes in words: verdict reasons, negative statuses, notes, the pruning
outcome and the token budget.  Every sentence of a report is written here, with the
numbers of ``numbers``; the JSON carries these sentences beside the codes.
"""

from __future__ import annotations

from clipprobe_ext.analysis.calibration import UNCALIBRATED
from clipprobe_ext.analysis.judgeable import KIND_WORDS
from clipprobe_ext.analysis.pruning import similarity_floor
from clipprobe_ext.analysis.tokens import TokenBudget, TokenSaving
from clipprobe_ext.analysis.uncalibrated import RULE
from clipprobe_ext.report.numbers import (
    change,
    clip_tokens,
    count,
    percent,
    presence,
    similarity,
    webui_count,
    zscore,
)
from clipprobe_ext.results import (
    HeldPhrase,
    NegativePhraseCheck,
    NegativeStatus,
    Note,
    PhraseVerdict,
    ProbeReport,
    PruneResult,
)

NOT_SUPPRESSED = (
    "CLIP still sees it in the picture: the negative prompt did not remove it "
    "(it may still have made it weaker)"
)
UNSURE = (
    "CLIP does not clearly see it, nor clearly not (its presence is between the bounds): "
    "not flagged"
)
SUPPRESSED = (
    "CLIP does not clearly see it: it is absent from the picture (one picture cannot tell "
    "whether the negative prompt is why)"
)
TAG = "an extra-network tag: not text CLIP can compare with a picture"
NO_FIT = f"no presence: {UNCALIBRATED}"
NEGATIVE: dict[NegativeStatus, str] = {
    "not suppressed": NOT_SUPPRESSED,
    "unsure": UNSURE,
    "suppressed": SUPPRESSED,
    "not measurable": TAG,
    "uncalibrated": NO_FIT,
}
#: Why CLIP cannot judge a claim, after its kind and words.
BAG_OF_WORDS = "it reads a caption as a bag of words"


def cannot_judge(kind: str | None, cue: str | None) -> str:
    """``CLIP cannot judge a position ('on the left of'): it reads a caption as a bag of
    words``."""
    what = KIND_WORDS.get(kind, "this claim")
    words = f" ({cue!r})" if cue else ""
    return f"CLIP cannot judge {what}{words}: {BAG_OF_WORDS}"


#: Under this whole-prompt similarity, or for a change larger than the similarity itself,
#: a share means little ("loses 2370 %"): the change is given as a difference instead.
RELATIVE_FROM = 0.05


def _names(report: ProbeReport, indices: tuple[int, ...] | list[int]) -> str:
    texts = {p.index: p.text for p in report.phrases}
    return ", ".join(f'"{texts.get(i, i)}"' for i in indices)


def without_it(contribution: float, full_similarity: float) -> str:
    """What the whole prompt's similarity does without the phrase (leave-one-out)."""
    direction = "loses" if contribution >= 0 else "gains"
    if abs(full_similarity) >= RELATIVE_FROM and abs(contribution) <= abs(full_similarity):
        return f"the prompt {direction} {percent(abs(contribution / full_similarity))} without it"
    return f"the prompt {direction} {similarity(abs(contribution))} of similarity without it"


def held_cost(report: ProbeReport, held: HeldPhrase) -> str:
    """The search's own numbers for a phrase it kept because its cut cost too much."""
    cut = (
        f"with {_names(report, held.removed_before)} cut, cutting it too"
        if held.removed_before
        else "cutting it"
    )
    return (
        f"{cut} would take the similarity from {similarity(held.similarity_before)} to "
        f"{similarity(held.similarity_without)}, under the allowed {similarity(held.floor)}"
    )


def verdict_reason(report: ProbeReport, verdict: PhraseVerdict) -> str:
    """Why ``verdict``: its code in words, with the numbers it rests on."""
    why = verdict.why
    bounds = report.bounds
    seen_from = presence(bounds.seen_from if bounds else None)
    under = presence(bounds.not_seen_under if bounds else None)
    not_seen = f"not seen: {presence(verdict.presence)} (under {under})"
    tail = True
    if why.code == "seen":
        text = f"seen: {presence(verdict.presence)} (seen from {seen_from})"
    elif why.code == "unsure":
        text = (
            f"unsure: {presence(verdict.presence)} (seen from {seen_from}, not seen under {under})"
        )
    elif why.code == "not_seen_dropped":
        text = f"{not_seen}; the pruned prompt drops it"
    elif why.code == "not_seen_clearly":
        text = (
            f"{not_seen}, clearly: cosine z {zscore(why.cosine_z)} (under "
            f"{zscore(bounds.absent_z if bounds else None)}); the pruned prompt drops it "
            "whatever the similarity does"
        )
    elif why.code == "not_seen_needed" and why.held is not None:
        # the search's own step, not the leave-one-out from the full prompt
        text = f"{not_seen}, but the pruned prompt keeps it: {held_cost(report, why.held)}"
        tail = False
    elif why.code == "not_seen_last":
        text = f"{not_seen}, but it is the last phrase left (a prompt keeps at least one)"
    elif why.code == "cannot_cut_cleanly":
        text = f"{not_seen}, but it cannot be cut cleanly"
    elif why.code == "uncalibrated":
        text = f"{UNCALIBRATED}; best round probability {percent(verdict.max_probability)}"
        if verdict.pruned:
            text += "; the pruned prompt drops it"
    elif why.code == "cannot_judge":
        text = cannot_judge(why.kind, why.cue)
        if verdict.presence is not None:
            text += f"; presence {presence(verdict.presence)}, not used"
    else:  # no_pruning, or not_seen_needed without the search's record
        text = f"{not_seen}; no pruning was run"
    full = report.full_similarity
    if tail and verdict.contribution is not None and full is not None:
        text += "; " + without_it(verdict.contribution, full)
    if why.code == "cannot_cut_cleanly" and why.held is not None and why.held.blocker:
        text += f"; kept: {why.held.blocker}"
    return text


def negative_reason(check: NegativePhraseCheck, pictures: int) -> str:
    """What a negative phrase's status means, in words."""
    text = NEGATIVE[check.status]
    if check.status == "not suppressed" and pictures > 1:
        text += f"; in {check.visible_in} of {pictures} pictures"
    return text


def negative_method(report: ProbeReport) -> str:
    """What the negative prompt's score is and where its statuses begin."""
    bounds = report.bounds
    if bounds is None:
        return NO_FIT if report.negative is not None and report.negative.phrases else ""
    return (
        f"calibrated presence, the score of the prompt's phrases ({report.reference}); "
        f"not suppressed from {presence(bounds.seen_from)} (where a prompt phrase is seen), "
        f"suppressed under {presence(bounds.not_seen_under)}, unsure in between"
    )


def reference(report: ProbeReport) -> str:
    """What the presence compares each phrase with, and the model's point of clear absence."""
    if not report.reference:
        return ""
    text = f"presence compares each phrase with {report.reference}"
    if report.bounds is not None and report.bounds.absent_z is not None:
        text += (
            f"; clearly not seen under cosine z {zscore(report.bounds.absent_z)} (in units of "
            "those pairs), where the pruned prompt's similarity guard yields"
        )
    return text


def presence_legend(report: ProbeReport) -> str:
    """The line under the verdicts: what presence is and where its verdicts begin."""
    compared = reference(report).removeprefix("presence ")
    if report.bounds is None:
        return (
            f"Presence: none, this model is {UNCALIBRATED}. Verdicts: {RULE}."
            if report.reference
            else ""
        )
    if not compared:
        return ""
    return (
        f"Presence (0 to 1) {compared}. Seen (keep) from {presence(report.bounds.seen_from)}; "
        f"not seen under {presence(report.bounds.not_seen_under)} (prune when the pruned "
        "prompt drops it); weak in between."
    )


def note(n: Note | str) -> str:
    """One note of the report in words (a caller's own note is a sentence already)."""
    if isinstance(n, str):
        return n
    if n.code == "long_phrases":
        were = "was" if n.count == 1 else "were"
        return (
            f"{count(n.count or 0, 'phrase')} longer than {n.limit} CLIP tokens {were} read in "
            f"{n.limit}-token chunks whose embeddings were averaged."
        )
    if n.code == "long_prompt":
        return (
            f"The prompt is longer than {n.limit} CLIP tokens: it was read the way the WebUI "
            f"conditions it, in {n.count} chunks whose embeddings were averaged."
        )
    if n.code == "extra_network_tags":
        return "Extra-network tags (<lora:...>, <hypernet:...>) are not measurable by CLIP."
    if n.code == "uncalibrated":
        return (
            f"This model is {UNCALIBRATED}. Without a fit of its own there is no presence "
            f"score; verdicts: {RULE}."
        )
    return f"Tokens counted with CLIP's own BPE tokenizer: the model's does not fit ({n.detail})."


def pruning_outcome(pruning: PruneResult, uncalibrated: bool = False) -> str:
    """What pruning did to the similarity, in absolute terms and against the search's rule
    (``similarity_floor``: at most ``tolerance`` × |start| lower, the start being the prompt
    without the phrases clearly not seen, which went first without the rule).  Never a
    ratio: it means nothing when the similarity is negative or changes sign."""
    original = pruning.original_similarity
    if uncalibrated and not pruning.steps:
        return (
            f"Nothing goes: the model is {UNCALIBRATED}, so no phrase is shown not seen "
            f"(similarity {similarity(original)})."
        )
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
    head = "Similarity " + change(similarity(original), similarity(pruning.final_similarity))
    if pruning.clearly_absent:
        n = len(pruning.clearly_absent)
        head += (
            f". {count(n, 'phrase')} clearly not seen went first, without the similarity rule "
            f"({change(similarity(original), similarity(start))}); after them"
        )
        if len(pruning.steps) == n:
            return f"{head} nothing else went within the allowed loss of {rule}."
    difference = pruning.final_similarity - start
    if similarity(difference) == "–" or similarity(allowed) == "–":
        return f"{head}."
    if difference >= 0:
        return f"{head}: up by {similarity(difference)}."
    within = "within" if -difference <= allowed + 1e-12 else "beyond"
    return f"{head}: down by {similarity(-difference)}, {within} the allowed loss of {rule}."


def kept_line(report: ProbeReport, held: HeldPhrase) -> str:
    """A phrase the pruned prompt keeps because its cut would not be clean."""
    texts = {p.index: p.text for p in report.phrases}
    return f"'{texts.get(held.index, held.index)}' kept: {held.blocker}"


def token_lines(budget: TokenBudget) -> list[str]:
    """The budget: both counts, chunk sizes, straddling phrases."""
    lines = [
        f"WebUI count {budget.webui_count}/{budget.limit}; {clip_tokens(budget.tokens)} in "
        f"{count(budget.chunk_count, 'chunk')} ({', '.join(map(str, budget.chunk_sizes))})"
    ]
    if budget.subprompts > 1:
        lines.append(f"{budget.subprompts} AND parts, each chunked on its own; the largest shown")
    for p in budget.phrases:
        if p.straddles:
            chunks = " and ".join(str(c + 1) for c in p.chunks)
            lines.append(f"'{p.text}' ({clip_tokens(p.tokens)}) is cut between chunks {chunks}")
    return lines


def saving_text(saving: TokenSaving | None) -> str:
    """``"The pruned prompt saves 42 CLIP tokens (60 → 18) and 1 chunk (2 → 1); WebUI count
    102 → 18."``; "" when nothing was cut."""
    if saving is None:
        return ""
    verb = "saves" if saving.tokens_saved >= 0 else "costs"
    text = (
        f"The pruned prompt {verb} {clip_tokens(abs(saving.tokens_saved))} "
        f"({change(str(saving.original_tokens), str(saving.pruned_tokens))})"
    )
    if saving.chunks_saved:
        verb = "saves" if saving.chunks_saved >= 0 else "costs"
        text += (
            f" and {verb} {count(abs(saving.chunks_saved), 'chunk')} "
            f"({change(str(saving.original_chunks), str(saving.pruned_chunks))})"
        )
    if saving.original_webui_count is not None and saving.pruned_webui_count is not None:
        counts = change(str(saving.original_webui_count), str(saving.pruned_webui_count))
        text += "; " + webui_count(counts)
    return text + "."
