"""Which fit is in force for each model the WebUI side offers, without loading any.

A folder model's own fit is read from its folder.  Otherwise the fit belongs to the
weights, and their identity is known once the model has been used (``remember``, called
by the session whenever a job opens its model; ``encoders.known_refs`` keeps it while the
model's files are unchanged).  Before that the state is unknown (``None``) and ``why``
says so: loading a model only to show a line would cost seconds and gigabytes.

Public API: ``remember(name, ref)``, ``model_fit(name) -> ModelFit``,
``fits(names) -> {name: {"fit": {...} | None, "why": str | None}}`` (the models route) and
``fit_html(name)`` (the tab's line).
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass

from clipprobe_ext.analysis.fit_state import FitState, fit_state, folder_fit_state
from clipprobe_ext.encoders import known_refs, registry
from clipprobe_ext.encoders.identity import ModelRef
from clipprobe_ext.webui import host, model_choices

log = logging.getLogger("clipprobe")

UNKNOWN = (
    "not known before the model is first used: a fit belongs to the weights (their "
    "fingerprint), read when Analyze, Audit or Calibrate loads them"
)


@dataclass(frozen=True)
class ModelFit:
    fit: FitState | None
    why: str | None = None  # why ``fit`` is None

    def to_dict(self) -> dict:
        return {"fit": self.fit.to_dict() if self.fit is not None else None, "why": self.why}


def files_stamp(name: str) -> str:
    """What changes when the files behind ``name`` do (the WebUI's CLIP: its download)."""
    if name == model_choices.WEBUI_CLIP:
        path = model_choices.webui_clip_path(host.cmd_opt("clip_models_path"))
        try:
            stat = os.stat(path)
        except OSError:
            return f"{name}@nowhere"
        return f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    return registry.files_stamp(name)


def remember(name: str, ref: ModelRef) -> None:
    """``name`` opened as ``ref``: its fit can be named from now on.  Never raises."""
    try:
        known_refs.remember(name, files_stamp(name), ref)
    except Exception:  # a line in the tab must never cost the user a run
        log.exception("ClipProbe: could not remember the identity of %s", name)


def model_fit(name: str) -> ModelFit:
    name = (name or "").strip()
    if name and name != model_choices.WEBUI_CLIP:
        own = folder_fit_state(registry.weights_source(name))
        if own is not None:
            return ModelFit(own)
    ref = known_refs.recall(name, files_stamp(name)) if name else None
    if ref is None:
        return ModelFit(None, UNKNOWN)
    return ModelFit(fit_state(ref))


def fits(names: list[str]) -> dict[str, dict]:
    return {name: model_fit(name).to_dict() for name in names}


def fit_html(name: str | None) -> str:
    """The tab's line for the model ``name``: the fit in force, or why it is not known."""
    found = model_fit(name or "")
    if found.fit is None:
        words = f"Fit: {found.why}."
        state = "unknown"
    else:
        words = f"Fit in force: {found.fit.words()}."
        state = found.fit.state
    return f'<div class="clipprobe-fit" data-fit="{state}">{html.escape(words, quote=True)}</div>'
