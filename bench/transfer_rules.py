"""How a model's presence calibration is obtained (a *rule*), and how a rule is put into
the real engine, for ``bench_transfer.py``.

A fit from the truth, from the other domain, from the other models, or from the model's
own pictures without labels, is computed here from the zoo's cached tuning-seed
embeddings (numpy only).  ``applied(rule)`` then patches the one lookup the engine reads
a fit through (``references.calibration_for``, called when the reference banks are
built) and, for the rules without a usable presence, the presence the analysis computes;
it drops the cached banks on the way in and out, so every rule builds them with its fit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from clipprobe_ext.analysis import presence as presence_scores
from clipprobe_ext.analysis import references
from clipprobe_ext.analysis.calibration import PresenceCalibration
from clipprobe_ext.analysis.references import ReferenceBanks, forget_banks
from clipprobe_ext.analysis.self_calibration import FolderEvidence, fit_from_folder

#: Every rule, in the order the tables show them.
RULES = (
    "default",
    "own",
    "own-other-domain",
    "fixed-lomo",
    "self",
    "self-other-domain",
    "uncalibrated",
    "guard-1%",
    "guard-0%",
)
DOMAINS = ("plain", "busy")

#: How the engine gets its presence under a rule.
FIT = "fit"  # the rule's fit, through the engine's calibration lookup
NO_PRESENCE = "no-presence"  # presence unavailable: verdicts by the ranking, nothing pruned
ALL_CANDIDATES = "all-candidates"  # every phrase a pruning candidate: the guard alone decides

#: What every model without a fit of its own got before: the benchmark model's fit.  Kept
#: here as the "before" of the transfer table; the engine now calls such a model
#: uncalibrated.
OLD_DEFAULT = PresenceCalibration(
    not_seen_z=1.4701,
    seen_z=1.8008,
    source="the former default fit (made on a small CLIP of the benchmark world)",
)


@dataclass(frozen=True)
class Rule:
    name: str
    mode: str = FIT
    fit: PresenceCalibration | None = None  # the fit the engine reads (mode FIT)
    tolerance: float = 0.01  # the pruning guard
    note: str = ""  # what stood in, when the rule could not give a fit

    def describe(self) -> dict:
        out = {"rule": self.name, "mode": self.mode, "tolerance": self.tolerance}
        if self.fit is not None:
            out["fit"] = self.fit.to_dict()
        if self.note:
            out["note"] = self.note
        return out


def other_domain(domain: str) -> str:
    return DOMAINS[1 - DOMAINS.index(domain)]


# -- fits from the cached tuning-seed embeddings -----------------------------------------


def zoo_banks(embeddings, calibration: PresenceCalibration = OLD_DEFAULT) -> ReferenceBanks:
    """The model's reference banks from the zoo cache (the same phrases and pictures of
    nothing the engine encodes, through the same encoder)."""
    return ReferenceBanks(
        embeddings.member,
        np.asarray(embeddings.neutral, dtype=np.float64),
        np.asarray(embeddings.reference, dtype=np.float64),
        tuple(embeddings.neutral_texts),
        calibration,
    )


def score_matrices(embeddings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine, ``cosine_z`` and ``phrase_z`` of every picture against every distinct
    phrase of the seed's prompts, [pictures, phrases], computed as the engine does."""
    images = np.asarray(embeddings.images, dtype=np.float64)
    texts = np.asarray(embeddings.text_embeddings, dtype=np.float64)
    banks = zoo_banks(embeddings)
    return (
        images @ texts.T,
        presence_scores.cosine_z(images, texts, banks),
        presence_scores.phrase_z(images, texts, banks),
    )


def truth_rows(embeddings) -> list[dict]:
    """One row per phrase of a picture's prompt, in ``bench_advice.phrase_rows``' keys
    that ``bench_advice.suggest`` reads (label, ``cosine_z``, ``phrase_z``)."""
    _, cz, pz = score_matrices(embeddings)
    rows = embeddings.rows
    return [
        {"label": str(label), "cosine_z": float(cz[p, t]), "phrase_z": float(pz[p, t])}
        for p, t, label in zip(rows.picture, rows.text, rows.label)
    ]


def truth_fit(embeddings, source: str) -> PresenceCalibration:
    """The fit from the truth (``bench_advice.suggest``), as ``bench_advice.py`` writes
    it into a model's folder."""
    from bench_advice import suggest

    fit = suggest({"single": {"rows": truth_rows(embeddings)}})
    return PresenceCalibration(
        fit["not_seen_z"],
        fit["seen_z"],
        source,
        fit["phrase_not_seen_z"],
        fit["phrase_seen_z"],
        fit["absent_z"],
    )


def folder_evidence(embeddings) -> FolderEvidence:
    """What a folder of the model's pictures tells without labels: every picture against
    every phrase of the folder, and which phrases each picture's own prompt asked for."""
    cosine, cz, pz = score_matrices(embeddings)
    asked = np.zeros(cosine.shape, dtype=bool)
    asked[embeddings.rows.picture, embeddings.rows.text] = True
    return FolderEvidence(cosine, cz, pz, asked, tuple(embeddings.texts))


def self_fit(embeddings) -> PresenceCalibration:
    """The label-free fit from the model's own pictures (``CalibrationRefused`` when the
    engine refuses them)."""
    return fit_from_folder(folder_evidence(embeddings)).fit


def conservative_fit(fits: Sequence[PresenceCalibration], source: str) -> PresenceCalibration:
    """One set of points that is the most cautious of ``fits`` at each point: the lowest
    "not seen" points (the fewest present phrases under them) and the highest "seen"
    points (keep only where every fit says seen); no ``absent_z`` (the guard always holds).
    The phrase-level pair only when every fit has one."""
    if not fits:
        raise ValueError("a fixed rule needs the fits of other models")
    phrase = all(f.uses_phrase_level for f in fits)
    return PresenceCalibration(
        min(f.not_seen_z for f in fits),
        max(f.seen_z for f in fits),
        source,
        min(f.phrase_not_seen_z for f in fits) if phrase else None,
        max(f.phrase_seen_z for f in fits) if phrase else None,
    )


# -- putting a rule into the engine --------------------------------------------------------


@contextlib.contextmanager
def patched(module, name: str, value) -> Iterator[None]:
    """``module.name = value`` for the block; an engine without ``name`` is an error (a
    renamed lookup must not let the benchmark measure the wrong thing silently)."""
    if not hasattr(module, name):
        raise RuntimeError(f"{module.__name__}.{name} is gone: bench/transfer_rules.py patches it")
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


def _constant_presence(value: float):
    def presence(images: np.ndarray, phrases: np.ndarray, banks) -> np.ndarray:
        return np.full((len(images), len(phrases)), value)

    return presence


@contextlib.contextmanager
def applied(rule: Rule) -> Iterator[None]:
    """The engine reads ``rule``'s fit (or no presence) inside the block.

    - ``FIT``: ``references.calibration_for`` returns the rule's fit.
    - ``NO_PRESENCE``: ``calibration_for`` returns None, the engine's own path for a model
      without a fit: no presence, verdicts from the ranking, nothing pruned by presence.
    - ``ALL_CANDIDATES``: the presence is 0 for every phrase and the fit has no
      ``absent_z``: every phrase is a candidate and the similarity guard alone decides.
    """
    from clipprobe_ext import probe

    fit = {FIT: rule.fit, NO_PRESENCE: None, ALL_CANDIDATES: OLD_DEFAULT}[rule.mode]
    if fit is None and rule.mode == FIT:
        raise ValueError(f"rule {rule.name} has no fit")
    with contextlib.ExitStack() as stack:
        stack.callback(forget_banks)
        forget_banks()
        stack.enter_context(patched(references, "calibration_for", lambda ref: fit))
        if rule.mode == ALL_CANDIDATES:
            stack.enter_context(patched(probe, "presence", _constant_presence(0.0)))
        yield
