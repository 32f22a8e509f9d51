"""A calibration on the user's pictures in words (``calibration_text``), as data
(``calibration_data``) and as a picture (``calibration_plot``: the two populations and the
cut points, for people who would rather look than read).

The plot uses ``matplotlib.figure.Figure`` directly, never pyplot (as ``audit_page``).
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

import numpy as np

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN, PresenceCalibration
from clipprobe_ext.analysis.self_calibration import MIN_SEPARATION, SEPARATION_CONFIDENCE
from clipprobe_ext.audit.calibrate import CalibrationRun, Shares
from clipprobe_ext.report.audit import skipped_groups
from clipprobe_ext.report.data import clean
from clipprobe_ext.report.numbers import clip_text, count, percent, presence, zscore


def _separation(diagnostics: dict) -> str:
    """The separation as the refusal reads it: the share of the absent part under the seen
    part's median, the folder's and the cautious end of its resamples'."""
    point = diagnostics.get("separation")
    if point is None:
        return "not measured"
    cautious = diagnostics.get("separation_cautious", point)
    return (
        f"separation: {percent(point, 0)} of the unseen pairs score under the seen ones' "
        f"median ({percent(cautious, 0)} in the least favourable "
        f"{percent(1 - SEPARATION_CONFIDENCE, 0)} of resamples; {percent(MIN_SEPARATION, 0)} "
        "needed)"
    )


def _points(fit: PresenceCalibration) -> str:
    text = (
        f'"seen" from cosine z {zscore(fit.seen_z)} (presence {presence(SEEN)}), "not seen" '
        f"under {zscore(fit.not_seen_z)} (presence {presence(NOT_SEEN)})"
    )
    if fit.uses_phrase_level:
        text += (
            f"; against the phrase's own level on pictures of nothing: seen from "
            f"{zscore(fit.phrase_seen_z)}, not seen under {zscore(fit.phrase_not_seen_z)}"
        )
    return text


def _shares(shares: Shares) -> str:
    return (
        f"{percent(shares.seen, 0)} seen, {percent(shares.not_seen, 0)} not seen, "
        f"{percent(shares.unsure, 0)} unsure"
    )


def _change(before: PresenceCalibration, after: PresenceCalibration) -> str:
    def moved(what: str, a: float, b: float) -> str:
        difference = b - a
        if abs(difference) < 0.005:
            return f"{what} where it was"
        return f"{what} {zscore(abs(difference))} {'higher' if difference > 0 else 'lower'}"

    return (
        moved('"seen" begins', before.seen_z, after.seen_z)
        + ", "
        + moved('"not seen" ends', before.not_seen_z, after.not_seen_z)
    )


def calibration_text(run: CalibrationRun) -> str:
    """What the calibration found, in plain words (the command's report)."""
    fit, audit, folder = run.fit, run.audit, run.folder
    folders = count(len(audit.folders), "folder")
    skipped = [f"{len(items)} {what}" for what, items in skipped_groups(audit)]
    sample = (
        f" (the fit rests on {folder.pictures} of them, drawn at random)"
        if folder.pictures < run.pictures_audited
        else ""
    )
    lines = [
        f"Calibration of {audit.model_id} on your pictures",
        f"  {count(run.pictures_audited, 'picture')} with prompts from {folders}{sample}; "
        f"{count(folder.phrases, 'distinct phrase')}; {folder.asked_pairs} asked pairs (a "
        "phrase on a picture whose own prompt holds it).",
    ]
    if skipped:
        lines.append("  Skipped: " + ", ".join(skipped) + ".")
    lines += [
        f"  About {percent(1 - folder.absent_share, 0)} of what your prompts ask for is seen in "
        f"their pictures (estimated without labels, from how the asked pairs stand against "
        f"pictures that did not ask; {_separation(folder.diagnostics)}).",
        f"  Where seen begins now: {_points(fit)}.",
    ]
    if run.previous is None:
        lines.append(
            "  Before: uncalibrated (no fit of its own: no presence score, nothing pruned)."
        )
    else:
        lines.append(
            f"  Before: {run.previous.source}: {_points(run.previous)}; now "
            f"{_change(run.previous, fit)}."
        )
    asked = (
        f"  Of the {folder.asked_pairs} asked-for phrases, the new fit calls {_shares(run.shares)}"
    )
    if run.previous_shares is not None:
        asked += f" (the previous fit: {_shares(run.previous_shares)})"
    lines.append(asked + ".")
    if run.saved is not None:
        lines.append(
            f"  Saved for these weights, whatever name they go by: {run.saved}. Every analysis "
            f'and audit with them now names it: "{fit.source}".'
        )
    else:
        lines.append("  Dry run: nothing saved; the fit in use is unchanged.")
    if run.overridden_by is not None:
        lines.append(
            f"  Note: the model's folder carries its own fit ({run.overridden_by.source}), which "
            "comes first: the fit saved here applies only once that file is gone."
        )
    return "\n".join(_wrapped(line) for line in lines) + "\n"


def _wrapped(line: str, width: int = 100) -> str:
    """A line of the report wrapped to ``width``, continued four spaces in."""
    return textwrap.fill(
        line, width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
    )


def calibration_data(run: CalibrationRun) -> dict[str, Any]:
    """The calibration as JSON-safe data: the fit, the previous one, the shares, the counts."""
    previous = run.previous
    return clean(
        {
            "model_id": run.audit.model_id,
            "fit": run.fit.to_dict(),
            "previous": previous.to_dict() if previous is not None else None,
            "pictures": run.folder.pictures,
            "pictures_audited": run.pictures_audited,
            "phrases": run.folder.phrases,
            "asked_pairs": run.folder.asked_pairs,
            "estimated_share_seen": 1 - run.folder.absent_share,
            "diagnostics": run.folder.diagnostics,
            "asked_shares": vars(run.shares),
            "previous_asked_shares": (
                vars(run.previous_shares) if run.previous_shares is not None else None
            ),
            "saved": str(run.saved) if run.saved is not None else None,
            "dry_run": run.saved is None,
            "overridden_by": run.overridden_by.source if run.overridden_by is not None else None,
            "metadata": run.metadata,
            "files": run.audit.stats.files,
            "skipped": {what: len(items) for what, items in skipped_groups(run.audit)},
            "text": calibration_text(run),
        }
    )


# -- plot --------------------------------------------------------------------------------


def calibration_plot(run: CalibrationRun) -> bytes:
    """A PNG: per score (cosine z, and the phrase's own level when the fit has it), the
    not-asked pairs, the asked pairs and the part of them estimated seen, with the new cut
    points (solid) and the previous ones (dashed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from clipprobe_ext.analysis.self_calibration import absent_shares, present_cdf

    evidence, fit, previous = run.evidence, run.fit, run.previous
    asked = np.asarray(evidence.asked, dtype=bool)
    shares, _ = absent_shares(evidence)
    panels = [("cosine z: the similarity in units of unrelated pairs", evidence.cosine_z, "")]
    if fit.uses_phrase_level:
        panels.append(
            ("phrase z: against the phrase's own level on pictures of nothing", evidence.phrase_z,
             "phrase_")
        )  # fmt: skip
    figure = Figure(figsize=(10, 3.6 * len(panels) + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    for n, (title, scores, prefix) in enumerate(panels, start=1):
        ax = figure.add_subplot(len(panels), 1, n)
        yes, no = scores[asked], scores[~asked]
        low, high = np.percentile(np.concatenate([yes, no]), [0.5, 99.5])
        bins = np.linspace(low - 0.5, high + 0.5, 60)
        ax.hist(
            no,
            bins,
            density=True,
            color="#bbbbbb",
            label="not asked (their prompt does not hold it)",
        )
        ax.hist(yes, bins, density=True, histtype="step", linewidth=1.6, color="#1f5fa8",
                label="asked (their own prompt holds it)")  # fmt: skip
        # the present part: the asked pairs less each phrase's absent ones (spread like
        # its not-asked pairs), in the asked pairs' density units
        cdf, present = present_cdf(np.asarray(scores, dtype=np.float64), asked, shares, bins)
        heights = np.diff(cdf) * present / max(len(yes), 1) / np.diff(bins)
        ax.stairs(heights, bins, fill=True, color="#2e7d32", alpha=0.45,
                  label="asked, estimated seen")  # fmt: skip
        for which, source, style in ((fit, "now", "-"), (previous, "before", "--")):
            if which is None or (prefix and not which.uses_phrase_level):
                continue
            not_seen = getattr(which, f"{prefix}not_seen_z")
            seen = getattr(which, f"{prefix}seen_z")
            ax.axvline(not_seen, color="#c62828", linestyle=style, linewidth=1.4,
                       label=f'"not seen" under ({source}: {zscore(not_seen)})')  # fmt: skip
            ax.axvline(seen, color="#2e7d32", linestyle=style, linewidth=1.4,
                       label=f'"seen" from ({source}: {zscore(seen)})')  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.text(0.99, 0.97, "left of red: not seen · between: unsure · right of green: seen",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#555555")  # fmt: skip
        ax.set_ylabel("share of pairs (density)")
        ax.legend(fontsize=7, loc="upper left")
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlabel("score (higher: CLIP finds the phrase more in the picture)")
    before = "dashed: the previous fit" if previous is not None else "before: uncalibrated"
    figure.suptitle(
        f"{clip_text(run.audit.model_id, 60)}: {run.folder.pictures} pictures, "
        f"{run.folder.asked_pairs} asked pairs, about {percent(1 - run.folder.absent_share, 0)} "
        f"seen ({before})",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
