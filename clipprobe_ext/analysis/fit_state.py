"""Which fit is in force for a model, in the few words a user reads beside its name.

Three states, in ``calibration_for``'s order: ``own`` (a fit in the model's folder,
which comes first), ``calibrated`` (the user's fit for these weights: on how many of
their pictures, and when) and ``uncalibrated`` (verdicts from the ranking only, nothing
pruned on presence).  ``fit_state(ref)`` needs the weights' identity; a folder's own fit
is found from the folder alone (``folder_fit_state``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from clipprobe_ext.analysis.calibration import (
    PresenceCalibration,
    calibration_for,
    folder_calibration,
    own_calibration,
    user_calibration_path,
)

if TYPE_CHECKING:
    import os

    from clipprobe_ext.encoders.identity import ModelRef

State = Literal["own", "calibrated", "uncalibrated"]

UNCALIBRATED_WORDS = (
    "uncalibrated: verdicts from the ranking only, nothing pruned on presence — "
    "calibrate on a folder of your pictures"
)


@dataclass(frozen=True)
class FitState:
    state: State
    source: str | None  # ``PresenceCalibration.source``; None when uncalibrated
    pictures: int | None = None  # a user's fit: the pictures it rests on
    date: str | None = None  # ... and the day it was fitted

    def to_dict(self) -> dict:
        return asdict(self)

    def words(self) -> str:
        """The state as the tab says it."""
        if self.state == "uncalibrated":
            return UNCALIBRATED_WORDS
        if self.state == "own":
            return f"{self.source}, from a file in its folder"
        if self.pictures is not None and self.date:
            return f"calibrated on {self.pictures} of your pictures, {self.date}"
        return f"calibrated: {self.source}"


def fit_state(ref: ModelRef) -> FitState:
    """The fit ``calibration_for(ref)`` uses, named."""
    own = own_calibration(ref)
    if own is not None:
        return _own(own)
    fit = calibration_for(ref)
    if fit is None:
        return FitState("uncalibrated", None)
    pictures, day = _user_fit_counts(ref.fingerprint)
    return FitState("calibrated", fit.source, pictures, day)


def folder_fit_state(folder: str | os.PathLike | None) -> FitState | None:
    """The state of a model in ``folder`` when the folder holds its own fit (which comes
    before any other, whatever the weights); None otherwise (the weights decide)."""
    own = folder_calibration(folder)
    return _own(own) if own is not None else None


def _own(fit: PresenceCalibration) -> FitState:
    return FitState("own", fit.source)


def _user_fit_counts(fingerprint: str) -> tuple[int | None, str | None]:
    """Pictures and date from the saved fit's metadata (a fit saved without: None)."""
    try:
        data = json.loads(user_calibration_path(fingerprint).read_text(encoding="utf-8"))
        metadata = data.get("metadata") or {}
        pictures = metadata.get("pictures")
        day = metadata.get("date")
    except (OSError, ValueError, AttributeError):
        return None, None
    return (
        int(pictures) if isinstance(pictures, (int, float)) else None,
        str(day) if day else None,
    )
