"""Calibrate a model on the user's own pictures: audit the folders, fit, save.

The folders are read by the audit (``run_audit``: its scan rules, grids counted once,
pictures without parameters skipped and counted, every embedding through the store, so
a folder audited before costs no image encode), every picture is set against every
phrase of the folder (``folder.folder_evidence``) and ``self_calibration.fit_from_folder``
fits the cut points.  A refusal (``CalibrationRefused``) is raised before anything is
saved, so the previous fit stays as it was.  A fit is saved for the model's weights
(``calibration.save_user_calibration``), with what it rests on as metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from clipprobe_ext.analysis.calibration import (
    NOT_SEEN,
    SEEN,
    PresenceCalibration,
    calibration_for,
    own_calibration,
    save_user_calibration,
)
from clipprobe_ext.analysis.references import forget_banks, reference_banks
from clipprobe_ext.analysis.self_calibration import (
    VERSION,
    CalibrationRefused,
    FolderEvidence,
    FolderFit,
    fit_from_folder,
)
from clipprobe_ext.audit.folder import FolderCollector, evidence_rows, folder_evidence
from clipprobe_ext.audit.options import AuditOptions
from clipprobe_ext.audit.pipeline import AuditProgress, run_audit
from clipprobe_ext.audit.results import AuditReport
from clipprobe_ext.encoders.base import ClipEncoder


@dataclass(frozen=True)
class Shares:
    """What a fit calls the asked pairs (a phrase on a picture whose prompt holds it)."""

    seen: float
    unsure: float
    not_seen: float


@dataclass
class CalibrationRun:
    audit: AuditReport  # the files read, skipped and audited
    folder: FolderFit  # the fit and the counts it rests on
    previous: PresenceCalibration | None  # the fit in use before (None: uncalibrated)
    shares: Shares  # of the asked pairs, by the new fit
    previous_shares: Shares | None  # ... by the previous fit
    evidence: FolderEvidence  # for the plot (not serialised)
    pictures: tuple[str, ...]  # the files of the evidence's rows, in order
    pictures_audited: int  # the evidence may rest on a sample of them (``folder``)
    saved: Path | None  # None: a dry run
    overridden_by: PresenceCalibration | None  # the model folder's own fit: it comes first
    metadata: dict

    @property
    def fit(self) -> PresenceCalibration:
        return self.folder.fit


def asked_shares(fit: PresenceCalibration, evidence: FolderEvidence) -> Shares:
    """The share of asked pairs ``fit`` calls seen, unsure and not seen."""
    asked = np.asarray(evidence.asked, dtype=bool)
    scores = fit.presence(evidence.cosine_z[asked], evidence.phrase_z[asked])
    seen = float(np.mean(scores >= SEEN)) if scores.size else 0.0
    not_seen = float(np.mean(scores < NOT_SEEN)) if scores.size else 0.0
    return Shares(seen, max(0.0, 1.0 - seen - not_seen), not_seen)


def calibrate_on_folders(
    paths: Sequence[str | os.PathLike],
    encoder: ClipEncoder,
    options: AuditOptions | None = None,
    progress: AuditProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    save: bool = True,
    when: date | None = None,
) -> CalibrationRun:
    """Fit ``encoder``'s model on the pictures under ``paths`` and (``save``) keep the fit
    for its weights.  ``CalibrationRefused`` (nothing saved) when the folders cannot
    calibrate it; ``AuditInterrupted`` on Ctrl-C, as the audit."""
    previous = calibration_for(encoder.ref)
    collector = FolderCollector()
    audit = run_audit(paths, encoder, options, progress, should_stop, collector)
    if audit.interrupted:
        raise CalibrationRefused("The calibration was stopped before every picture was read.")
    matrix = collector.matrix()
    rows = evidence_rows(matrix)
    evidence = folder_evidence(matrix, reference_banks(encoder), rows)
    folder = fit_from_folder(evidence, when, progress)
    day = (when or date.today()).isoformat()
    metadata = {
        "pictures": folder.pictures,
        "pictures_audited": audit.stats.pictures,
        "phrases": folder.phrases,
        "asked_pairs": folder.asked_pairs,
        "date": day,
        "folders": [os.path.abspath(os.fspath(p)) for p in paths],
        "estimated_share_seen": 1.0 - folder.absent_share,
        "estimator_version": VERSION,
        "model": encoder.model_id,
    }
    saved = None
    if save:
        saved = save_user_calibration(encoder.ref, folder.fit, metadata)
        forget_banks()  # the banks carry their fit: the next analysis reads the new one
    own = own_calibration(encoder.ref)
    return CalibrationRun(
        audit=audit,
        folder=folder,
        previous=previous,
        shares=asked_shares(folder.fit, evidence),
        previous_shares=asked_shares(previous, evidence) if previous is not None else None,
        evidence=evidence,
        pictures=tuple(matrix.paths[r] for r in rows),
        pictures_audited=audit.stats.pictures,
        saved=saved,
        overridden_by=own,
        metadata=metadata,
    )
