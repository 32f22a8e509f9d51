"""``run_audit``: every picture of the folders, ranked against its own prompt.

Cost model: worker threads read, hash and decode files while the main thread runs the
image tower on batches of the pictures the store does not know yet; each embedding batch
is committed at once (a killed run loses at most one batch).  Every distinct prompt is
parsed once and each distinct phrase encoded once for the whole audit (through the
store, so a second audit encodes no text either); the presence score's reference banks
are encoded once per model and stored too.  After that a picture costs a few small
matrix products.  ``contribution=True`` adds the leave-one-out prompt variants (one text
chunk per phrase per distinct prompt: the text tower's biggest cost, so off by default).  Memory holds a bounded window of decoded pictures
and a few numbers per picture, so it does not grow with the folder beyond that.

WebUI grids are set aside while the files are read and settled at the end, when every
picture of the audit is known (``_cut_grids``): each picture counts once, from its own
file when there is one, else from its grid.

Every scored picture also goes to a ``folder.FolderCollector`` (its embedding and its
prompt's phrases): the folder matrix behind each phrase's writing effect, and behind a
calibration (``clipprobe calibrate`` hands its own collector in).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from clipprobe_ext.analysis.calibration import UNCALIBRATED
from clipprobe_ext.analysis.references import reference_banks
from clipprobe_ext.audit.aggregate import PictureScore, PromptModel, aggregate, normalise
from clipprobe_ext.audit.evidence import NOT_SEEN, SEEN, gather
from clipprobe_ext.audit.folder import FolderCollector, folder_writing_effects
from clipprobe_ext.audit.grids import FolderPictures, same_folder
from clipprobe_ext.audit.options import AuditOptions
from clipprobe_ext.audit.prepare import reader_resize
from clipprobe_ext.audit.results import AuditReport, AuditStats, Skipped
from clipprobe_ext.audit.scan import PictureRead, list_files, read_picture
from clipprobe_ext.encoders.base import ClipEncoder
from clipprobe_ext.errors import ClipProbeError, first_line
from clipprobe_ext.inputs import resolve
from clipprobe_ext.layout import PromptLayout
from clipprobe_ext.prompt import parse_prompt
from clipprobe_ext.store import EmbeddingStore, FileRecord, default_store_path

#: progress(files handled, files in all, message)
AuditProgress = Callable[[int, int, str], None]


class AuditInterrupted(KeyboardInterrupt):
    """Ctrl-C during an audit; what was encoded is in the store, ``stats`` says how much."""

    def __init__(self, stats: AuditStats) -> None:
        super().__init__("audit interrupted")
        self.stats = stats


def run_audit(
    paths: Sequence[str | os.PathLike],
    encoder: ClipEncoder,
    options: AuditOptions | None = None,
    progress: AuditProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    collector: FolderCollector | None = None,
) -> AuditReport:
    """Audit the pictures under ``paths``.

    ``collector``: where every scored picture goes (``audit.folder``; a new one when not
    given), for the caller to build the folder matrix from afterwards.

    ``should_stop`` is polled after every file: when it returns True the audit stops and
    returns the report of what was done, ``interrupted=True``.  A ``KeyboardInterrupt``
    keeps what was done in the store and propagates.  Bad input (a missing folder, bad
    options) is a ``ClipProbeError`` before any work.
    """
    options = options or AuditOptions()
    options.validate()
    started = time.perf_counter()
    listing = list_files(paths, options.recursive, options.since, options.limit)
    store = EmbeddingStore(options.cache or default_store_path())
    collector = collector if collector is not None else FolderCollector()
    run = _Run(encoder, store, options, progress, should_stop, collector)
    run.stats.files, run.stats.files_found = len(listing.files), listing.total_seen
    if store.rebuilt:
        run.notes.append("The embedding store was written by another version and was rebuilt.")
    try:
        run.process(listing.files)
    except KeyboardInterrupt as exc:
        run.close()  # commits what was done before the interrupt
        raise AuditInterrupted(run.stats) from exc
    except BaseException:
        run.close()
        raise
    run.close()
    matrix = collector.matrix()
    writing = folder_writing_effects(matrix)
    if matrix.sampled:
        run.notes.append(
            f"The writing effect rests on {len(matrix.embeddings)} of the {matrix.pictures_seen} "
            "pictures, drawn at random (the memory bound)."
        )
    run.stats.seconds = time.perf_counter() - started
    return aggregate(
        run.prompts,
        run.scores,
        options,
        model_id=encoder.model_id,
        store=str(store.path),
        folders=[os.fspath(p) for p in paths],
        stats=run.stats,
        skipped=run.skipped,
        interrupted=run.interrupted,
        notes=run.notes,
        reference=run.reference(),
        calibration=run.calibration(),
        writing=writing,
        writing_pictures=len(matrix.embeddings),
    )


class _Run:
    """The state of one audit: the prompt table, the pending batch, the counters."""

    def __init__(
        self,
        encoder: ClipEncoder,
        store: EmbeddingStore,
        options: AuditOptions,
        progress: AuditProgress | None,
        should_stop: Callable[[], bool] | None,
        collector: FolderCollector,
    ) -> None:
        self.encoder = encoder
        self.collector = collector
        self.store = store
        self.options = options
        self.progress = progress
        self.should_stop = should_stop
        self.key = encoder.ref.key
        self.logit_scale = encoder.logit_scale
        self.stats = AuditStats()
        self.prompts: dict[str, PromptModel] = {}
        self.scores: list[PictureScore] = []
        self.skipped: dict[str, list[Skipped]] = {
            k: [] for k in ("no_parameters", "unreadable", "vanished", "unmeasurable", "grids")
        }
        self.grids: list[PictureRead] = []  # cut or skipped once the folders are read
        self.picture_prompts: dict[str, str] = {}  # audited files (not grid cells): prompt
        self.notes: list[str] = []
        self.interrupted = False
        self.pending: list[PictureRead] = []  # decoded, waiting for the image tower
        self.records: list[tuple[str, FileRecord]] = []  # file records not yet committed
        self.text_forwards_before = encoder.stats.text_forwards
        # the store behind the encoder's text cache for the run: every phrase and prompt
        # variant (and the reference banks) it encodes is kept for the next audit
        self.kept = contextlib.ExitStack()
        self.kept.enter_context(encoder.embeddings_kept_in(store))
        self._banks = None
        self.prepare = reader_resize(encoder.preprocessing())  # moved into the reader threads
        self.seen = options.seen_function()

    def close(self) -> None:
        """Commit what is done (also after Ctrl-C) and give the encoder its store back."""
        try:
            self.kept.close()
            self._commit_records()
        finally:
            self.stats.text_encodes = self.encoder.stats.text_forwards - self.text_forwards_before
            self.store.close()

    def process(self, files: list[str]) -> None:
        total = len(files)
        window = 2 * self.options.batch_size + self.options.workers
        pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="clipprobe-audit")
        queue: deque[Future] = deque()
        upcoming = iter(files)
        try:
            for path in upcoming:
                queue.append(pool.submit(read_picture, path, self.store, self.key, self.prepare))
                if len(queue) >= window:
                    break
            while queue:
                waited = time.perf_counter()
                read = queue.popleft().result()
                self.stats.waited_s += time.perf_counter() - waited
                self._handle(read)
                nxt = next(upcoming, None)
                if nxt is not None:
                    queue.append(pool.submit(read_picture, nxt, self.store, self.key, self.prepare))
                self.stats.read += 1
                if self.progress is not None:
                    self.progress(self.stats.read, total, "Reading and encoding pictures")
                if self.should_stop is not None and self.should_stop():
                    self.interrupted = True
                    self.notes.append(
                        f"Stopped after {self.stats.read} of {total} files; what was done is "
                        "stored and the next run continues from there."
                    )
                    self._leave_grids(self.grids, "not cut: the audit was stopped first")
                    return
            self._encode_pending()
            self._cut_grids()
        finally:
            for future in queue:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    # -- one file -------------------------------------------------------------------------
    def _handle(self, read: PictureRead) -> None:
        if read.record is not None:
            self.records.append((read.path, read.record))
        if read.kind in ("no_parameters", "unreadable", "vanished"):
            reason = read.reason or "no WebUI generation parameters"
            self.skipped[read.kind].append(Skipped(read.path, reason))
            return
        assert read.prompt is not None
        if read.kind == "grid":
            self.grids.append(read)
            return
        self.picture_prompts[read.path] = read.prompt
        self._audit(read)

    def _audit(self, read: PictureRead) -> None:
        """Score a picture (from the store) or queue it for the image tower."""
        assert read.prompt is not None
        if self._prompt(read.prompt) is None:
            self.skipped["unmeasurable"].append(
                Skipped(read.path, "the prompt holds nothing CLIP can measure")
            )
            return
        if read.kind == "stored":
            self.stats.from_store += 1
            self._score(read.path, read.prompt, np.asarray(read.embedding, dtype=np.float64))
            return
        self.pending.append(read)
        if len(self.pending) >= self.options.batch_size:
            self._encode_pending()

    # -- grids ----------------------------------------------------------------------------
    def _cut_grids(self) -> None:
        """Each WebUI grid, once every file is read: skipped when the audit holds all its
        pictures (``audit.grids``: by their pixels; looked for in the grid's folder and
        among the pictures of its prompt, so the WebUI's separate grids folder counts too),
        else cut, and the pictures the audit lacks audited as its own (``grid.png#2``)."""
        folder = FolderPictures()
        cut = cells = 0
        for done, read in enumerate(self.grids):
            if self.should_stop is not None and self.should_stop():
                self.interrupted = True
                self._leave_grids(self.grids[done:], "not cut: the audit was stopped first")
                break
            missing = self._cells_missing(read, folder)
            if missing:
                cut += 1
                cells += len(missing)
                for cell in missing:
                    self._audit(cell)
        self.grids = []
        self._encode_pending()
        if cut:
            self.notes.append(
                f"{cut} WebUI grid{'s' if cut > 1 else ''} cut into the {cells} pictures "
                "not found as files of their own; those pictures are audited as "
                "'grid.png#N'."
            )

    def _cells_missing(self, read: PictureRead, folder: FolderPictures) -> list[PictureRead]:
        """The grid's pictures its folder does not hold, as reads to audit; a grid whose
        pictures are all there goes to the skipped list."""
        try:
            found = resolve(read.path, label=read.path, cell_label="{label}#{n}", name=read.path)
        except ClipProbeError as exc:
            kind = "vanished" if not os.path.exists(read.path) else "unreadable"
            self.skipped[kind].append(Skipped(read.path, first_line(exc)))
            return []
        if found.grid is None:  # its size said grid, its pixels did not: one picture
            return [
                PictureRead(read.path, "decoded", read.hash, found.prompt, image=found.pictures[0])
            ]
        size = (found.grid.cell_width, found.grid.cell_height)
        near = [
            path
            for path, prompt in self.picture_prompts.items()
            if prompt == found.prompt or same_folder(path, read.path)
        ]
        near.sort(
            key=lambda p: (self.picture_prompts[p] != found.prompt, not same_folder(p, read.path))
        )
        missing = []
        for n, (picture, label) in enumerate(zip(found.pictures, found.labels), start=1):
            if folder.find(picture, size, near) is not None:
                continue
            key = f"{read.hash}#{n}"
            embedding = self.store.image_embedding(key, self.key)
            if embedding is not None:
                missing.append(PictureRead(label, "stored", key, found.prompt, embedding))
            else:
                missing.append(PictureRead(label, "decoded", key, found.prompt, image=picture))
        if not missing:
            self.skipped["grids"].append(
                Skipped(
                    read.path,
                    f"a WebUI grid of {found.grid.count} pictures, all of them audited from "
                    "their own files",
                )
            )
        return missing

    def _leave_grids(self, grids: list[PictureRead], reason: str) -> None:
        self.skipped["grids"].extend(
            Skipped(read.path, f"a WebUI grid; {reason}") for read in grids
        )
        self.grids = []

    def _encode_pending(self) -> None:
        """One image-tower call, one commit (embeddings and file records together)."""
        batch, self.pending = self.pending, []
        if batch:
            embeddings = self.encoder.encode_images([r.image for r in batch]).numpy()
            self.stats.encoded += len(batch)
            self.store.put_batch(
                self.key,
                images=[(r.hash, e) for r, e in zip(batch, embeddings)],
                files=self.records,
            )
            self.records = []
            for read, embedding in zip(batch, embeddings):
                read.image = None
                self._score(read.path, read.prompt, embedding.astype(np.float64))
        elif len(self.records) >= self.options.batch_size:
            self._commit_records()

    def _commit_records(self) -> None:
        if self.records:
            self.store.put_batch(self.key, files=self.records)
            self.records = []

    def _score(self, path: str, prompt: str, embedding: np.ndarray) -> None:
        model = self.prompts[prompt]
        evidence = gather(
            embedding,
            model.phrase_embeddings,
            self.banks,
            model.full_embedding,
            model.without_embeddings,
            self.logit_scale,
            self.options.rounds,
            self.options.threshold,
        )
        seen = self.seen(evidence)
        contribution = evidence.contribution
        self.collector.add(path, model.id, model.keys, model.phrase_embeddings, embedding)
        self.scores.append(
            PictureScore(
                path,
                model.id,
                None if seen is None else np.asarray(seen, dtype=bool),
                None if evidence.presence is None else evidence.presence.astype(np.float32),
                evidence.best.astype(np.float32),
                None if contribution is None else np.asarray(contribution, dtype=np.float32),
            )
        )
        model.pictures += 1
        self.stats.pictures += 1

    def reference(self) -> str | None:
        """What the presence score compared each phrase against (None: nothing scored)."""
        if self._banks is None:
            return None
        if self._banks.calibration is None:
            return f"no presence: this model is {UNCALIBRATED}"
        return (
            f"presence compares each phrase with {self._banks.describe()}; seen from "
            f"{SEEN:.2f}, not seen under {NOT_SEEN:.2f} (the single-image thresholds)"
        )

    def calibration(self) -> str | None:
        """The source of the fit "seen" rests on; None: uncalibrated (or nothing scored)."""
        fit = None if self._banks is None else self._banks.calibration
        return None if fit is None else fit.source

    @property
    def banks(self):
        """The presence score's reference banks, built (or read from the store) once."""
        if self._banks is None:
            self._banks = reference_banks(self.encoder)
        return self._banks

    # -- one prompt ------------------------------------------------------------------------
    def _prompt(self, prompt: str) -> PromptModel | None:
        """The prompt's phrases and text embeddings, built on its first picture."""
        if prompt in self.prompts:
            return self.prompts[prompt]
        parsed = parse_prompt(prompt)
        measurable = [p.index for p in parsed.phrases if p.measurable and p.text.strip()]
        if not measurable:
            return None
        texts = [parsed.phrases[i].text for i in measurable]
        embeddings, _ = self.encoder.encode_texts(texts)
        full = without = None
        if self.options.contribution:
            layout = PromptLayout(parsed, measurable, self.encoder, np.zeros((0, 1)))
            everything = frozenset(measurable)
            variants = [everything] + [everything - {i} for i in measurable]
            embs = layout.embeddings(variants)
            full, without = embs[0], embs[1:]
        model = PromptModel(
            id=len(self.prompts),
            prompt=prompt,
            phrases=texts,
            keys=[normalise(t) for t in texts],
            tokens=[len(self.encoder.tokenize(t)) for t in texts],
            phrase_embeddings=embeddings.numpy().astype(np.float64),
            full_embedding=full,
            without_embeddings=without,
        )
        self.prompts[prompt] = model
        return model
