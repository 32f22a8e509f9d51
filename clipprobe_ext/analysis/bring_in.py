"""Try to bring missing phrases into the picture: generate the prompt's variants, measure
each picture the way a regeneration is measured, and pick the best by a stated rule.

No WebUI here: the pictures come from ``generate(prompt) -> PIL image`` (the WebUI's
processing with the picture's own seed and settings, or a test's stand-in), and every
number comes from ``compare.compare`` against the analysis the phrases were picked in, so a
variant's presence, similarity and SSIM mean exactly what a regeneration's do.

The rule (``best_variant``): a variant qualifies when every wanted phrase is seen and no
kept phrase that the original picture showed is lost; among those, the highest presence
of the wanted phrases (the lowest of them when several are wanted) wins, and a tie goes
to the variant tried first (the milder change).  Without a qualifying variant there is
no best: the table still shows what each variant did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clipprobe_ext.compare import Comparison, compare
from clipprobe_ext.errors import ClipProbeError, PromptError
from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.prompt.variants import Skipped, Variant, bring_in_variants
from clipprobe_ext.results import ProbeReport

#: The most pictures one bring-in may generate (the variants are fewer today; the bound
#: is what the tab promises before the click).
MAX_GENERATIONS = 12

BEST_RULE = (
    "every wanted phrase seen and no kept phrase lost; then the highest presence of the "
    "wanted phrase (the lowest of them when several); a tie goes to the variant tried first"
)


@dataclass
class VariantResult:
    """One variant's picture and its numbers against the analysed picture."""

    variant: Variant
    image: Any  # PIL image
    comparison: Comparison
    wanted: tuple[int, ...]  # phrase indices of the report

    def _wanted(self) -> list[Any]:
        return [p for p in self.comparison.phrases if p.index in self.wanted]

    @property
    def wanted_presence(self) -> float | None:
        """The lowest presence among the wanted phrases (None: uncalibrated)."""
        values = [p.regenerated for p in self._wanted()]
        return None if not values or None in values else min(values)

    @property
    def wanted_seen(self) -> bool:
        found = self._wanted()
        return bool(found) and all(p.regenerated_visible for p in found)

    @property
    def lost(self) -> list[str]:
        """Other phrases the original picture showed and this one does not."""
        return [p.text for p in self.comparison.kept_lost if p.index not in self.wanted]

    @property
    def qualifies(self) -> bool:
        return self.wanted_seen and not self.lost


@dataclass
class BringIn:
    """A bring-in's outcome; ``interrupted``: stopped early, ``results`` is what was done."""

    prompt: str
    wanted: tuple[int, ...]
    wanted_texts: tuple[str, ...]
    competitor: int | None
    planned: list[Variant]
    skipped: list[Skipped]
    results: list[VariantResult] = field(default_factory=list)
    failed: list[tuple[Variant, str]] = field(default_factory=list)  # (variant, why)
    interrupted: bool = False
    rule: str = BEST_RULE

    @property
    def best(self) -> int | None:
        """Index into ``results`` of the best variant (``best_variant``)."""
        return best_variant(self.results)

    @property
    def best_prompt(self) -> str | None:
        best = self.best
        return None if best is None else self.results[best].variant.prompt


def best_variant(results: Sequence[VariantResult]) -> int | None:
    """The rule of the module doc; None when no variant qualifies."""
    best, best_presence = None, None
    for k, result in enumerate(results):
        if not result.qualifies or result.wanted_presence is None:
            continue
        if best_presence is None or result.wanted_presence > best_presence:
            best, best_presence = k, result.wanted_presence
    return best


def wanted_indices(report: ProbeReport, phrases: Sequence[int | str]) -> tuple[int, ...]:
    """Phrase indices of ``report`` for ``phrases`` (indices, or the phrases' texts as the
    report lists them); a clear error for one it does not have."""
    measurable = {p.index: p for p in report.measurable}
    by_text = {p.text: p.index for p in report.measurable}
    out = []
    for phrase in phrases:
        if isinstance(phrase, int) and phrase in measurable:
            out.append(phrase)
        elif isinstance(phrase, str) and phrase.strip() in by_text:
            out.append(by_text[phrase.strip()])
        else:
            known = ", ".join(repr(t) for t in by_text) or "none"
            raise PromptError(f"{phrase!r} is not a measurable phrase of the prompt ({known}).")
    if not out:
        raise PromptError("Pick at least one phrase to bring in.")
    return tuple(sorted(set(out)))


def competitor(report: ProbeReport, wanted: Sequence[int]) -> int | None:
    """The phrase that dominates the wanted ones: of the others, the one with the highest
    best-round probability in the analysis (None when there is no other)."""
    others = [v for v in report.verdicts if v.index not in wanted]
    if not others:
        return None
    return max(others, key=lambda v: v.max_probability).index


def plan_bring_in(
    report: ProbeReport, phrases: Sequence[int | str]
) -> tuple[tuple[int, ...], int | None, list[Variant], list[Skipped]]:
    """(wanted, competitor, variants, skipped) without generating anything: the tab shows
    the count before the click; more than ``MAX_GENERATIONS`` is refused."""
    wanted = wanted_indices(report, phrases)
    rival = competitor(report, wanted)
    parsed = parse_prompt(report.prompt, report.options.granularity)
    try:
        variants, skipped = bring_in_variants(parsed, wanted, rival)
    except ValueError as exc:
        raise PromptError(str(exc)) from exc
    if len(variants) > MAX_GENERATIONS:
        raise PromptError(
            f"{len(variants)} variants is more than the {MAX_GENERATIONS} generations a "
            "bring-in may run; pick fewer phrases."
        )
    return wanted, rival, variants, skipped


def bring_in(
    report: ProbeReport,
    original: Any,
    phrases: Sequence[int | str],
    generate: Callable[[str], Any],
    encoder: Any,
    *,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> BringIn:
    """Generate and measure every variant of ``report``'s prompt for ``phrases``.

    ``original``: the analysed picture; ``encoder``: the report's model.  ``stop()`` is
    asked before and after each generation: once it says so, the picture in hand is
    dropped (it may be unfinished) and the result keeps what was done, ``interrupted``.
    A ``generate`` that fails while ``stop()`` is true counts as stopped too; one that
    raises a ``ClipProbeError`` otherwise (the WebUI could not make that picture) is
    listed in ``failed`` and the other variants still run.
    """
    wanted, rival, variants, skipped = plan_bring_in(report, phrases)
    texts = {p.index: p.text for p in report.phrases}
    result = BringIn(
        prompt=report.prompt,
        wanted=wanted,
        wanted_texts=tuple(texts[i] for i in wanted),
        competitor=rival,
        planned=variants,
        skipped=skipped,
    )
    stopped = stop or (lambda: False)
    for k, variant in enumerate(variants):
        if stopped():
            result.interrupted = True
            break
        if progress is not None:
            progress(f"Variant {k + 1}/{len(variants)}: {variant.label}", k / len(variants))
        try:
            image = generate(variant.prompt)
        except Exception as exc:
            if stopped():
                result.interrupted = True
                break
            if not isinstance(exc, ClipProbeError):
                raise
            result.failed.append((variant, str(exc)))
            continue
        if stopped():
            result.interrupted = True
            break
        comparison = compare(report, original, image, variant.prompt, encoder)
        result.results.append(VariantResult(variant, image, comparison, wanted))
    return result
