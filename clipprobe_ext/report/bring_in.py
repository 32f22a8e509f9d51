"""A bring-in's and a multi-seed confirmation's numbers in words: JSON-safe data and HTML
tables (every number in ``report.numbers``' format, every text escaped)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from clipprobe_ext.analysis.bring_in import BringIn, VariantResult
from clipprobe_ext.analysis.seeds import SeedComparison
from clipprobe_ext.report.data import clean
from clipprobe_ext.report.numbers import count, fixed, presence, signed, similarity


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def outcome(result: VariantResult, best: bool) -> str:
    """What the variant did, in a few words."""
    if result.wanted_presence is None:
        return "no presence (uncalibrated model)"
    words = "brings it in" if result.wanted_seen else "not seen"
    if result.lost:
        words += "; pushes out " + ", ".join(result.lost)
    return ("best: " if best else "") + words


def estimate_text(generations: int, seconds: float | None) -> str:
    """``7 generations, about 42 s`` (the count alone without an estimate)."""
    text = count(generations, "generation")
    return text if seconds is None else f"{text}, about {max(1, round(seconds))} s"


def bring_in_data(result: BringIn, images: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Each variant's prompt and numbers (``images``: its picture, e.g. base64 PNG, in the
    same order), the best one and the rule that chose it."""
    best = result.best
    variants = []
    for k, r in enumerate(result.results):
        c = r.comparison
        variants.append(
            {
                "kind": r.variant.kind,
                "label": r.variant.label,
                "prompt": r.variant.prompt,
                "best": k == best,
                "qualifies": r.qualifies,
                "wanted_seen": r.wanted_seen,
                "wanted_presence": r.wanted_presence,
                "lost": r.lost,
                "similarity": c.regenerated_similarity,
                "similarity_change": c.similarity_change,
                "ssim": c.ssim,
                "phrases": [
                    {
                        "index": p.index,
                        "text": p.text,
                        "wanted": p.index in result.wanted,
                        "original": p.original,
                        "presence": p.regenerated,
                        "seen": p.regenerated_visible,
                        "seen_before": p.original_visible,
                    }
                    for p in c.phrases
                ],
                "image": images[k] if images is not None else None,
            }
        )
    return clean(
        {
            "prompt": result.prompt,
            "wanted": [{"index": i, "text": t} for i, t in zip(result.wanted, result.wanted_texts)],
            "competitor": result.competitor,
            "planned": len(result.planned),
            "generated": len(result.results),
            "interrupted": result.interrupted,
            "failed": [
                {"kind": v.kind, "label": v.label, "prompt": v.prompt, "reason": why}
                for v, why in result.failed
            ],
            "skipped": [
                {"kind": s.kind, "label": s.label, "reason": s.reason} for s in result.skipped
            ],
            "best": best,
            "best_prompt": result.best_prompt,
            "rule": result.rule,
            "variants": variants,
        }
    )


def bring_in_html(result: BringIn) -> str:
    """The variants as one table: the original's row first, then one row per variant, the
    best marked; the rule, the skipped variants and an interruption said under it."""
    body = _table(result) if result.results else "<p>No variant was generated.</p>"
    best = result.best
    if best is not None:
        chosen = result.results[best].variant
        verdict = (
            f'<p class="cp-best">Best: <b>{_e(chosen.label)}</b>: <code>{_e(chosen.prompt)}</code>'
            "</p>"
        )
    elif result.results:
        verdict = (
            '<p class="cp-warning">No variant brought '
            f"{_e(', '.join(result.wanted_texts))} in without losing a kept phrase.</p>"
        )
    else:
        verdict = ""
    parts = [verdict, body, f'<p class="cp-method">Best: {_e(result.rule)}.</p>']
    if result.interrupted:
        parts.append(
            f'<p class="cp-warning">Interrupted: {len(result.results)} of '
            f"{len(result.planned)} variants done.</p>"
        )
    if result.failed:
        items = "".join(
            f"<li>{_e(v.label)}: <code>{_e(v.prompt)}</code>: {_e(why)}</li>"
            for v, why in result.failed
        )
        parts.append(f'<p class="cp-warning">Not generated:</p><ul class="cp-notes">{items}</ul>')
    if result.skipped:
        items = "".join(f"<li>{_e(s.label)}: {_e(s.reason)}</li>" for s in result.skipped)
        parts.append(f'<ul class="cp-notes">{items}</ul>')
    return '<div class="clipprobe-bring-in">' + "".join(parts) + "</div>"


def _table(result: BringIn) -> str:
    first = result.results[0].comparison
    phrases = first.phrases
    head = "".join(
        f"<th>{_e(p.text)}{' (wanted)' if p.index in result.wanted else ''}</th>" for p in phrases
    )
    rows = [
        "<tr><th>original</th><td></td>"
        + "".join(f'<td class="cp-num">{_e(presence(p.original))}</td>' for p in phrases)
        + f'<td class="cp-num">{_e(similarity(first.original_similarity))}</td>'
        + '<td class="cp-num">1.000</td><td></td></tr>'
    ]
    best = result.best
    for k, r in enumerate(result.results):
        c = r.comparison
        cells = []
        for p in c.phrases:
            lost = p.text in r.lost
            mark = " cp-lost" if lost else (" cp-seen" if p.regenerated_visible else "")
            cells.append(f'<td class="cp-num{mark}">{_e(presence(p.regenerated))}</td>')
        row_class = ' class="cp-best"' if k == best else ""
        rows.append(
            f"<tr{row_class}><th>{k + 1}. {_e(r.variant.label)}</th>"
            f"<td><code>{_e(r.variant.prompt)}</code></td>{''.join(cells)}"
            f'<td class="cp-num">{_e(similarity(c.regenerated_similarity))} '
            f"({_e(signed(c.similarity_change))})</td>"
            f'<td class="cp-num">{_e(fixed(c.ssim, 3))}</td>'
            f"<td>{_e(outcome(r, k == best))}</td></tr>"
        )
    return (
        '<table class="cp-compare-table cp-bring-in-table"><thead><tr><th>variant</th>'
        f"<th>prompt</th>{head}<th>similarity to the prompt</th><th>SSIM</th><th></th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<p class="cp-method">Each phrase column: its calibrated presence (seen from '
        f"{_e(presence(first.bounds.seen_from) if first.bounds else '–')}).</p>"
    )


def seeds_data(comparisons: Sequence[SeedComparison], seeds: Sequence[int]) -> dict[str, Any]:
    return clean(
        {
            "seeds": list(seeds),
            "phrases": [
                {
                    "phrase": c.phrase,
                    "mean_difference": c.mean_difference,
                    "spread": c.spread,
                    "interval": list(c.interval) if c.interval is not None else None,
                    "seen_before": c.seen_before,
                    "kept": c.kept,
                    "lost": c.lost,
                    "gained": c.gained,
                }
                for c in comparisons
            ],
        }
    )


def seeds_html(comparisons: Sequence[SeedComparison], seeds: Sequence[int]) -> str:
    """Each phrase over the seeds: mean paired change of presence ± its spread, the 95 %
    interval, and on how many seeds the candidate kept what the original showed."""
    rows = []
    for c in comparisons:
        interval = (
            "–"
            if c.interval is None
            else f"{signed(c.interval[0], 2)} to {signed(c.interval[1], 2)}"
        )
        rows.append(
            f"<tr><td>{_e(c.phrase)}</td>"
            f'<td class="cp-num">{_e(signed(c.mean_difference, 2))} ± {_e(fixed(c.spread, 2))}</td>'
            f'<td class="cp-num">{_e(interval)}</td>'
            f'<td class="cp-num">{c.kept} of {c.seen_before}</td>'
            f'<td class="cp-num">{c.gained}</td></tr>'
        )
    listed = ", ".join(str(s) for s in seeds)
    return (
        f'<div class="clipprobe-seeds"><p>Over {_e(count(len(seeds), "seed"))} ({_e(listed)}): '
        "the candidate prompt against the original prompt, same seed, same settings.</p>"
        '<table class="cp-compare-table cp-seeds-table"><thead><tr><th>phrase</th>'
        "<th>presence change (mean ± spread)</th><th>95 % interval</th>"
        "<th>kept (seeds)</th><th>gained (seeds)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
