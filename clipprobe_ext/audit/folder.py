"""Every picture of a folder against every distinct phrase of its prompts: the folder matrix.

The audit scores each picture against its own prompt.  Calibration (``analysis.
self_calibration``) and the writing effect (``writing_effect``) need more: every picture
against every phrase of the folder, and whether the picture's own prompt asked for it
("asked": the phrase, normalised as the audit normalises it, is in that prompt).
``FolderCollector`` keeps, while the audit runs, each picture's embedding (from the store
or the image tower: nothing is encoded twice) and its prompt's phrases with their text
embeddings (encoded once by the audit); the rest is matrix products.

Memory stays bounded however big the folder:
- at most ``MAX_PICTURES`` embeddings are kept (float32: 20,000 x 768 is 60 MB); beyond
  that a uniform sample of the pictures (a seeded reservoir), and the results say so;
- the writing effect walks the matrix a block of phrases at a time (``BLOCK`` columns);
- the calibration's evidence, three float32 matrices of [pictures, phrases] plus the
  estimator's working copies (some 130 bytes a pair at its peak), is limited to
  ``MAX_CELLS`` pairs: a bigger folder is calibrated on pictures drawn at random (seeded)
  until the pairs of the drawn pictures and their phrases reach the bound, both sides of
  every phrase (its asked and its not-asked pictures) thinned alike.
Measured on a synthetic folder of 10,000 pictures (768 dimensions) and 5,000 phrases:
the evidence rests on 828 pictures, 3,622 phrases and 16,000 asked pairs, far more than
the fit needs (``self_calibration.MIN_PICTURES``); the process peaked at 525 MB; the
writing effect of every phrase took 11 s of one core.  A fit on evidence of that size (a
synthetic 828 x 3,622 mixture) takes about 25 s: 1.4 s a pass, and 20 resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipprobe_ext.analysis.presence import cosine_z, phrase_z
from clipprobe_ext.analysis.references import ReferenceBanks
from clipprobe_ext.analysis.self_calibration import FolderEvidence
from clipprobe_ext.audit.writing_effect import WritingEffect, confounded_with, writing_effect

MAX_PICTURES = 20_000
MAX_CELLS = 3_000_000
BLOCK = 512
SEED = 20261204


@dataclass(frozen=True)
class FolderMatrix:
    """The kept pictures and the folder's phrases: everything the matrix is made of."""

    embeddings: np.ndarray  # [pictures, dim] float32, unit
    prompt_of: np.ndarray  # [pictures] the row's prompt (index into ``prompt_columns``)
    prompt_columns: tuple[np.ndarray, ...]  # per prompt: the phrase columns it asks for
    phrases: tuple[str, ...]  # normalised, in order of first appearance
    phrase_embeddings: np.ndarray  # [phrases, dim] float32, unit
    pictures_seen: int  # pictures the audit scored (more than kept when sampled)
    paths: tuple[str, ...] = ()  # the kept pictures' files (a grid's cell: ``grid.png#2``)

    @property
    def sampled(self) -> bool:
        return len(self.embeddings) < self.pictures_seen

    def asked(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[rows, phrases] bool: the row's prompt asks for the phrase."""
        prompts = self.prompt_of if rows is None else self.prompt_of[rows]
        out = np.zeros((len(prompts), len(self.phrases)), dtype=bool)
        for n, prompt in enumerate(prompts):
            out[n, self.prompt_columns[prompt]] = True
        return out

    def phrase_prompts(self) -> list[np.ndarray]:
        """Per phrase, the prompts that ask for it."""
        found: list[list[int]] = [[] for _ in self.phrases]
        for prompt, columns in enumerate(self.prompt_columns):
            for k in columns:
                found[k].append(prompt)
        return [np.array(p, dtype=np.int64) for p in found]


class FolderCollector:
    """Collects the audited pictures (``add``, once per picture) into a ``FolderMatrix``."""

    def __init__(self, capacity: int = MAX_PICTURES, seed: int = SEED) -> None:
        self.capacity = capacity
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.rows: list[np.ndarray] = []  # float32 embeddings, at most ``capacity``
        self.paths: list[str] = []
        self.prompt_of: list[int] = []
        self.prompts: dict[int, int] = {}  # the audit's prompt id -> our prompt index
        self.prompt_columns: list[np.ndarray] = []
        self.columns: dict[str, int] = {}  # normalised phrase -> column
        self.phrase_rows: list[np.ndarray] = []

    def add(
        self,
        path: str,
        prompt_id: int,
        keys: Sequence[str],
        phrase_embeddings: np.ndarray,
        embedding: np.ndarray,
    ) -> None:
        """One picture: its file, its prompt (the audit's id, its normalised phrases and
        their embeddings, row for row) and its unit image embedding."""
        prompt = self.prompts.get(prompt_id)
        if prompt is None:
            columns = []
            for key, vector in zip(keys, phrase_embeddings):
                if key not in self.columns:
                    self.columns[key] = len(self.phrase_rows)
                    self.phrase_rows.append(np.asarray(vector, dtype=np.float32))
                columns.append(self.columns[key])
            prompt = self.prompts[prompt_id] = len(self.prompt_columns)
            self.prompt_columns.append(np.unique(np.array(columns, dtype=np.int64)))
        row = np.asarray(embedding, dtype=np.float32)
        self.seen += 1
        if len(self.rows) < self.capacity:
            self.rows.append(row)
            self.paths.append(path)
            self.prompt_of.append(prompt)
            return
        slot = int(self.rng.integers(0, self.seen))  # reservoir: every picture equally likely
        if slot < self.capacity:
            self.rows[slot], self.paths[slot], self.prompt_of[slot] = row, path, prompt

    def matrix(self) -> FolderMatrix:
        dim = len(self.rows[0]) if self.rows else 0
        return FolderMatrix(
            np.stack(self.rows) if self.rows else np.zeros((0, dim), dtype=np.float32),
            np.array(self.prompt_of, dtype=np.int64),
            tuple(self.prompt_columns),
            tuple(self.columns),
            np.stack(self.phrase_rows) if self.phrase_rows else np.zeros((0, dim), np.float32),
            self.seen,
            tuple(self.paths),
        )


# -- writing effect ----------------------------------------------------------------------


def folder_writing_effects(matrix: FolderMatrix) -> list[WritingEffect]:
    """``writing_effect`` of every phrase over the kept pictures, a block of phrases at a
    time; confounded partners from the prompts' phrase sets (pictures in common)."""
    pictures_per_prompt = np.bincount(matrix.prompt_of, minlength=len(matrix.prompt_columns))
    phrase_prompts = matrix.phrase_prompts()
    counts = np.array([pictures_per_prompt[p].sum() for p in phrase_prompts], dtype=np.float64)
    out: list[WritingEffect] = []
    for start in range(0, len(matrix.phrases), BLOCK):
        block = matrix.embeddings @ matrix.phrase_embeddings[start : start + BLOCK].T
        for j in range(block.shape[1]):
            k = start + j
            prompts = phrase_prompts[k]
            asks = np.zeros(len(matrix.prompt_columns), dtype=bool)
            asks[prompts] = True
            columns = [matrix.prompt_columns[p] for p in prompts]
            weights = [np.full(len(c), pictures_per_prompt[p]) for c, p in zip(columns, prompts)]
            overlap = np.bincount(
                np.concatenate(columns),
                np.concatenate(weights).astype(np.float64),
                minlength=len(matrix.phrases),
            )
            partners = confounded_with(matrix.phrases, counts, overlap, k)
            out.append(
                writing_effect(
                    matrix.phrases[k],
                    block[:, j].astype(np.float64),
                    asks[matrix.prompt_of],
                    partners,
                )
            )
    return out


# -- calibration evidence ----------------------------------------------------------------


def evidence_rows(matrix: FolderMatrix, max_cells: int = MAX_CELLS, seed: int = SEED) -> np.ndarray:
    """The pictures the evidence is built on: all of them when pictures x phrases fits in
    ``max_cells``, else pictures drawn at random while the drawn pictures times the phrases
    they ask for still fit."""
    count = len(matrix.embeddings)
    if count * len(matrix.phrases) <= max_cells:
        return np.arange(count)
    order = np.random.default_rng(seed).permutation(count)
    used = np.zeros(len(matrix.phrases), dtype=bool)
    phrases = 0
    chosen = []
    for row in order:
        columns = matrix.prompt_columns[matrix.prompt_of[row]]
        more = phrases + int((~used[columns]).sum())
        if (len(chosen) + 1) * more > max_cells:
            continue
        used[columns] = True
        phrases = more
        chosen.append(row)
    return np.sort(np.array(chosen, dtype=np.int64))


def folder_evidence(
    matrix: FolderMatrix, banks: ReferenceBanks, rows: np.ndarray | None = None
) -> FolderEvidence:
    """The calibration's evidence (``self_calibration.FolderEvidence``): the pictures
    ``rows`` (default: ``evidence_rows``) against every phrase they ask for, float32."""
    rows = evidence_rows(matrix) if rows is None else rows
    asked = matrix.asked(rows)
    columns = np.flatnonzero(asked.any(0))
    asked = asked[:, columns]
    images = matrix.embeddings[rows]
    phrases = matrix.phrase_embeddings[columns]
    shape = (len(rows), len(columns))
    cosine = np.empty(shape, dtype=np.float32)
    z = np.empty(shape, dtype=np.float32)
    own = np.empty(shape, dtype=np.float32)
    for start in range(0, len(columns), BLOCK):
        part = slice(start, start + BLOCK)
        block = phrases[part].astype(np.float64)
        cosine[:, part] = images @ phrases[part].T
        z[:, part] = cosine_z(images, block, banks)
        own[:, part] = phrase_z(images, block, banks)
    return FolderEvidence(cosine, z, own, asked, tuple(matrix.phrases[k] for k in columns))
