"""Where presence starts to mean "seen": the per-model fit that maps ``cosine_z`` to 0-1.

``cosine_z`` orders phrases alike on every model the benchmark tried, but *where* "seen"
begins moves between models (even between two trainings of one), so a fit is two points
per model, ``not_seen_z`` (presence ``NOT_SEEN``) and ``seen_z`` (``SEEN``), joined by a
logistic curve; optionally the same pair on ``phrase_z`` (presence is then the smaller
score, which keeps quality tags from being "seen") and ``absent_z``, a point of clear
absence under which the pruned prompt drops a phrase whatever the similarity does.

``calibration_for(ref)`` looks in the model's folder (``CALIBRATION_FILE``), then in the
user's fits saved by weights fingerprint (``clipprobe calibrate``); without either the
model is uncalibrated (``None``): no fit is ever borrowed from another model.  The fit's
``source`` names which one was used.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from clipprobe_ext.encoders.identity import ModelRef

log = logging.getLogger(__name__)

#: The verdict bounds, on the presence scale (the same for every model): keep from SEEN,
#: prune (when the pruned prompt drops it) under NOT_SEEN.
SEEN = 0.77
NOT_SEEN = 0.11
CALIBRATION_FILE = "clipprobe_presence.json"


@dataclass(frozen=True)
class PresenceCalibration:
    """Two points of the mapping, in ``cosine_z`` units, and where they come from."""

    not_seen_z: float  # presence NOT_SEEN here: few present phrases fall below
    seen_z: float  # presence SEEN here: about 5 % of absent phrases rise above
    source: str
    phrase_not_seen_z: float | None = None  # the same two points for ``phrase_z``
    phrase_seen_z: float | None = None
    absent_z: float | None = None  # clearly not seen under here: the guard yields

    def __post_init__(self) -> None:
        _check(self.not_seen_z, self.seen_z, "")
        if (self.phrase_not_seen_z is None) != (self.phrase_seen_z is None):
            raise ValueError("phrase_not_seen_z and phrase_seen_z come together")
        if self.phrase_not_seen_z is not None:
            _check(self.phrase_not_seen_z, self.phrase_seen_z, "phrase_")
        if self.absent_z is not None:
            if not (isinstance(self.absent_z, (int, float)) and math.isfinite(self.absent_z)):
                raise ValueError("absent_z must be a finite number")
            if self.absent_z > self.not_seen_z:
                raise ValueError(
                    f"absent_z ({self.absent_z}) must not be above not_seen_z "
                    f"({self.not_seen_z}): clearly not seen is a part of not seen"
                )

    @property
    def slope(self) -> float:
        return _slope(self.not_seen_z, self.seen_z)

    @property
    def midpoint(self) -> float:
        """The ``cosine_z`` where the mapped ``cosine_z`` is 0.5."""
        return self.not_seen_z - _logit(NOT_SEEN) / self.slope

    @property
    def uses_phrase_level(self) -> bool:
        return self.phrase_not_seen_z is not None

    def presence(self, z: np.ndarray, phrase_z: np.ndarray | None = None) -> np.ndarray:
        """Mapped ``cosine_z``; with a phrase-level pair, the smaller of both mapped."""
        out = _mapped(np.asarray(z, dtype=np.float64), self.not_seen_z, self.seen_z)
        if self.uses_phrase_level and phrase_z is not None:
            own = np.asarray(phrase_z, dtype=np.float64)
            out = np.minimum(out, _mapped(own, self.phrase_not_seen_z, self.phrase_seen_z))
        return out

    def clearly_absent(self, z: float) -> bool:
        """``cosine_z`` under ``absent_z``: strong enough evidence for the guard to yield."""
        return self.absent_z is not None and z < self.absent_z

    def to_dict(self) -> dict:
        out = {"not_seen_z": self.not_seen_z, "seen_z": self.seen_z}
        if self.uses_phrase_level:
            out["phrase_not_seen_z"] = self.phrase_not_seen_z
            out["phrase_seen_z"] = self.phrase_seen_z
        if self.absent_z is not None:
            out["absent_z"] = self.absent_z
        return out | {"source": self.source}


def _check(not_seen, seen, prefix: str) -> None:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (not_seen, seen)):
        raise ValueError(f"{prefix}not_seen_z and {prefix}seen_z must be finite numbers")
    if seen <= not_seen:
        raise ValueError(f"{prefix}seen_z ({seen}) must be above {prefix}not_seen_z ({not_seen})")


def _slope(not_seen: float, seen: float) -> float:
    return (_logit(SEEN) - _logit(NOT_SEEN)) / (seen - not_seen)


def _mapped(z: np.ndarray, not_seen: float, seen: float) -> np.ndarray:
    """The logistic curve through (not_seen, NOT_SEEN) and (seen, SEEN)."""
    return 1 / (1 + np.exp(-(_logit(NOT_SEEN) + _slope(not_seen, seen) * (z - not_seen))))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


#: What every report says of a model without a fit (the command that gives it one).
UNCALIBRATED = "uncalibrated: calibrate on your pictures (`clipprobe calibrate DIR`)"


def calibration_for(ref: ModelRef) -> PresenceCalibration | None:
    """The fit for the model ``ref`` names: its folder's, else the user's fit for its
    weights, else ``None``: uncalibrated (see the module docstring).

    A file that cannot be read is named in a warning and skipped.
    """
    fit = own_calibration(ref)
    if fit is not None:
        return fit
    path = user_calibration_path(ref.fingerprint)
    fit = _read_fit(
        path,
        lambda fitted_on: f"your fit for these weights ({fitted_on or 'no note'}; {path})",
        "none (uncalibrated)",
    )
    return fit


def own_calibration(ref: ModelRef) -> PresenceCalibration | None:
    """The fit in the model's own folder (``CALIBRATION_FILE``), which comes before any
    fit the user saved; None when there is none (or it cannot be read: warned)."""
    return folder_calibration(ref.source)


def folder_calibration(source: str | os.PathLike | None) -> PresenceCalibration | None:
    """The fit in the folder ``source`` (a folder model's own, ``CALIBRATION_FILE``); None
    when ``source`` is no folder or holds none.  Needs no loaded weights."""
    folder = _own_folder(os.fspath(source) if source is not None else None)
    if folder is None:
        return None
    path = folder / CALIBRATION_FILE
    return _read_fit(
        path,
        lambda fitted_on: f"this model's own fit ({fitted_on or path.name})",
        "a fit saved for these weights if there is one, else none (uncalibrated)",
    )


def user_calibration_path(fingerprint: str) -> Path:
    """``$XDG_CACHE_HOME/clipprobe/calibrations/<fingerprint>.json`` (else ``~/.cache/...``)."""
    from clipprobe_ext.store import user_cache_dir

    return user_cache_dir() / "calibrations" / f"{fingerprint}.json"


def save_user_calibration(
    ref: ModelRef, fit: PresenceCalibration, metadata: dict | None = None
) -> Path:
    """Save ``fit`` as the user's fit for ``ref``'s weights (whatever name they go by);
    ``fit.source`` is kept as the note of what it was fitted on, ``metadata`` (plain
    JSON data: what it was fitted on, in numbers) beside it.  Returns the file."""
    path = user_calibration_path(ref.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = fit.to_dict()
    data["fitted_on"] = data.pop("source")
    if metadata:
        data["metadata"] = metadata
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(temporary, path)  # a reader never sees half a file
    return path


def _own_folder(source: str | None) -> Path | None:
    """The folder that holds the model's weights (a folder model's own), if any."""
    if not source:
        return None
    path = Path(source)
    return path if path.is_dir() else None


def _read_fit(path: Path, describe, instead: str) -> PresenceCalibration | None:
    """The fit in ``path``; ``None`` when there is none or it cannot be read (warned)."""
    try:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        optional = [data.get(k) for k in ("phrase_not_seen_z", "phrase_seen_z", "absent_z")]
        return PresenceCalibration(
            float(data["not_seen_z"]),
            float(data["seen_z"]),
            describe(data.get("fitted_on")),
            *(None if v is None else float(v) for v in optional),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ClipProbe: ignoring %s (%s); using %s", path, exc, instead)
        return None


def write_calibration(
    folder: str | Path,
    not_seen_z: float,
    seen_z: float,
    fitted_on: str,
    phrase_not_seen_z: float | None = None,
    phrase_seen_z: float | None = None,
    absent_z: float | None = None,
) -> PresenceCalibration:
    """Save a fit next to a model's weights (checked first: a bad fit is refused)."""
    fit = PresenceCalibration(
        not_seen_z, seen_z, fitted_on, phrase_not_seen_z, phrase_seen_z, absent_z
    )
    data = fit.to_dict()
    del data["source"]
    data["fitted_on"] = fitted_on
    (Path(folder) / CALIBRATION_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")
    return fit
