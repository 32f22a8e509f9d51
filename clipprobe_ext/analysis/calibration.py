"""Where presence starts to mean "seen": the mapping of ``cosine_z`` to 0-1, per model.

``cosine_z`` (a cosine in units of the model's unrelated pairs, ``presence``) orders
phrases the same way on every model the benchmark tried, but *where* "seen" begins moved
by up to a fifth of a unit between two trainings of one world model: enough to prune one
present phrase in eight.  So the mapping is a per-model fit of two points, in
``cosine_z`` units: ``not_seen_z`` (presence ``NOT_SEEN`` there) and ``seen_z``
(presence ``SEEN``), joined by a logistic curve.

A local model folder may carry its own fit (``CALIBRATION_FILE``, written by
``bench/bench_advice.py --write-calibration`` from a world with known truth); any other
model uses ``DEFAULT``, fitted on the benchmark world's model and not validated on a
real CLIP.  The report says which one was used.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: The verdict bounds, on the presence scale (the same for every model): keep from SEEN,
#: prune (when the pruned prompt drops it) under NOT_SEEN.
SEEN = 0.77
NOT_SEEN = 0.11
CALIBRATION_FILE = "clipprobe_presence.json"


@dataclass(frozen=True)
class PresenceCalibration:
    """Two points of the mapping, in ``cosine_z`` units, and where they come from."""

    not_seen_z: float  # presence NOT_SEEN here: about 1 % of present phrases fall below
    seen_z: float  # presence SEEN here: about 5 % of absent phrases rise above
    source: str

    def __post_init__(self) -> None:
        values = (self.not_seen_z, self.seen_z)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ValueError("not_seen_z and seen_z must be finite numbers")
        if self.seen_z <= self.not_seen_z:
            raise ValueError(f"seen_z ({self.seen_z}) must be above not_seen_z ({self.not_seen_z})")

    @property
    def slope(self) -> float:
        return (_logit(SEEN) - _logit(NOT_SEEN)) / (self.seen_z - self.not_seen_z)

    @property
    def midpoint(self) -> float:
        """The ``cosine_z`` where presence is 0.5."""
        return self.not_seen_z - _logit(NOT_SEEN) / self.slope

    def presence(self, z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-self.slope * (np.asarray(z) - self.midpoint)))

    def to_dict(self) -> dict:
        return {"not_seen_z": self.not_seen_z, "seen_z": self.seen_z, "source": self.source}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


#: Fitted on the benchmark world's default model, tuning seed 0 (bench/README.md).
DEFAULT = PresenceCalibration(
    not_seen_z=1.4701,
    seen_z=1.8008,
    source="the default fit (a small CLIP of the benchmark world; not validated on a real CLIP)",
)


def calibration_for(model_id: str) -> PresenceCalibration:
    """The model folder's own fit when it has one (``hf:<folder>``), else ``DEFAULT``.

    A file that cannot be read is named in a warning and ignored: the default applies.
    """
    folder = model_id[3:] if model_id.startswith("hf:") else None
    if not folder:
        return DEFAULT
    path = Path(folder) / CALIBRATION_FILE
    try:
        if not path.is_file():
            return DEFAULT
        data = json.loads(path.read_text(encoding="utf-8"))
        return PresenceCalibration(
            float(data["not_seen_z"]),
            float(data["seen_z"]),
            f"this model's own fit ({data.get('fitted_on') or path.name})",
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ClipProbe: ignoring %s (%s); using the default calibration", path, exc)
        return DEFAULT


def write_calibration(folder: str | Path, not_seen_z: float, seen_z: float, fitted_on: str):
    """Save a fit next to a model's weights (checked first: a bad fit is refused)."""
    fit = PresenceCalibration(float(not_seen_z), float(seen_z), fitted_on)
    data = {"not_seen_z": fit.not_seen_z, "seen_z": fit.seen_z, "fitted_on": fitted_on}
    (Path(folder) / CALIBRATION_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")
    return fit
