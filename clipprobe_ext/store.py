"""The embedding store: image and text embeddings that survive the process, in SQLite.

An audit of thousands of pictures is only affordable once: a re-run, a moved file or a
second folder holding the same pictures must cost no encode, and a run killed at any
point (``kill -9`` included) must keep what it already computed.  A command-line
analysis must not pay the presence score's reference banks, or a phrase it has read
before, in every process.  So every embedding is keyed by the model's ``ModelRef.key``
(weights fingerprint and preprocessing, ``encoders.identity``) and, for a picture, the
file's *content* hash, and committed in small batches; WAL mode and a busy timeout let
two processes share one store; a store written by another schema is rebuilt, never
misread.

``open_store`` is for callers that can do without it (the encoders' text embeddings,
the reference banks): a location that cannot hold a store gives ``None``, not an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipprobe_ext.errors import ClipProbeError

log = logging.getLogger(__name__)

#: Bump when the tables or the meaning of a stored value change: older stores are rebuilt.
#: 5: rows keyed by ``ModelRef.key`` (weights and preprocessing; no longer the model's name).
SCHEMA_VERSION = 5
_SCHEMA_KEY = "clipprobe-audit-schema"
BUSY_TIMEOUT_S = 60.0

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL, parameters TEXT);
CREATE TABLE IF NOT EXISTS images (
    hash TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (hash, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS texts (
    model TEXT NOT NULL, chunk TEXT NOT NULL, vector BLOB NOT NULL, added REAL NOT NULL,
    PRIMARY KEY (model, chunk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS texts_added ON texts (added);
CREATE TABLE IF NOT EXISTS bank_images (
    model TEXT NOT NULL, bank TEXT NOT NULL, k INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model, bank, k)) WITHOUT ROWID;
"""
_NAMES = ("meta", "files", "images", "texts", "bank_images")


#: Errors of a store that is there but cannot be used (locked too long, disk full, read-only).
STORE_ERRORS = (sqlite3.Error, OSError, ClipProbeError)
#: SQLite's default limit on the parameters of one statement is 999.
_LOOKUP_BATCH = 500
#: Text embeddings kept at most (about 110 MB at 512 dimensions, 160 MB at 768): every
#: analysis stores its prompt's variants too, and a cache must not grow without end.
#: ``open_store`` trims the oldest to ``TRIM_TO`` of it once the store holds more.
MAX_TEXTS = 50_000
TRIM_TO = 0.8


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/clipprobe``, else ``~/.cache/clipprobe``: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clipprobe"


def default_store_path() -> Path:
    """``embeddings.sqlite3`` in ``user_cache_dir()``: shared by the audit and the analyses."""
    return user_cache_dir() / "embeddings.sqlite3"


_open_stores: dict[Path, EmbeddingStore | None] = {}
_open_lock = threading.Lock()


def open_store(path: str | os.PathLike | None = None) -> EmbeddingStore | None:
    """The store at ``path`` (default: ``default_store_path()``), opened once per process;
    ``None`` when it cannot be created or opened (a read-only folder, a broken file)."""
    target = Path(path or default_store_path()).expanduser()
    with _open_lock:
        if target in _open_stores:
            return _open_stores[target]
        try:
            store: EmbeddingStore | None = EmbeddingStore(target)
            store.trim_texts(MAX_TEXTS)
        except STORE_ERRORS as exc:
            log.debug(
                "ClipProbe: no embedding store at %s (%s); keeping embeddings in memory",
                target,
                exc,
            )
            store = None
        _open_stores[target] = store
        return store


def forget_open_stores() -> None:
    """Close the stores ``open_store`` opened (tests; a process that changes its cache folder)."""
    with _open_lock:
        for store in _open_stores.values():
            if store is not None:
                store.close()
        _open_stores.clear()


@dataclass(frozen=True)
class FileRecord:
    """What a file held when it was last read: enough to skip reading it again."""

    size: int
    mtime_ns: int
    hash: str
    parameters: str | None


class EmbeddingStore:
    """One SQLite file; each thread gets its own connection (sqlite3's rule)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self.rebuilt = False  # True when this open found a foreign or older store
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClipProbeError(
                f"Could not create the folder of the embedding store {self.path}: "
                f"{exc.strerror or exc}"
            ) from exc
        self._prepare()

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        """WAL mode, tables, and a rebuild when the store is foreign, old or not SQLite."""
        try:
            self._prepare_retrying()
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc) and "malformed" not in str(exc):
                raise ClipProbeError(f"The embedding store {self.path} is unusable: {exc}") from exc
            self.close()  # not SQLite at all: nothing in it can be read, start afresh
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{self.path}{suffix}")
            self.rebuilt = True
            self._prepare_once()

    def _prepare_retrying(self) -> None:
        """``_prepare_once``, again while another process holds the lock.

        Switching a new file to WAL answers "database is locked" at once, without the busy
        handler, while a second audit is creating the same store: wait for it instead.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._prepare_once()
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.1)

    def _prepare_once(self) -> None:
        conn = self.conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses no committed batch
        if self._version() == str(SCHEMA_VERSION):
            return
        conn.execute("BEGIN IMMEDIATE")  # one process rebuilds; the others wait, then see it
        try:
            version = self._version()
            if version != str(SCHEMA_VERSION):
                existing = {
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if existing:
                    self.rebuilt = True
                for name in existing:
                    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                for statement in _TABLES.split(";"):  # executescript would commit early
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", (_SCHEMA_KEY, str(SCHEMA_VERSION))
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _version(self) -> str | None:
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = ?", (_SCHEMA_KEY,)
            ).fetchone()
        except sqlite3.OperationalError:  # no meta table: empty or foreign
            return None
        return row[0] if row else None

    # -- reads (any thread) -----------------------------------------------------------------
    def file_record(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            "SELECT size, mtime_ns, hash, parameters FROM files WHERE path = ?", (path,)
        ).fetchone()
        return FileRecord(*row) if row else None

    def image_embedding(self, content_hash: str, model: str) -> np.ndarray | None:
        row = self.conn.execute(
            "SELECT vector FROM images WHERE hash = ? AND model = ?", (content_hash, model)
        ).fetchone()
        return np.frombuffer(row[0], dtype=np.float32).copy() if row else None

    def text_embedding(self, model: str, chunk: str) -> np.ndarray | None:
        row = self.conn.execute(
            "SELECT vector FROM texts WHERE model = ? AND chunk = ?", (model, chunk)
        ).fetchone()
        return np.frombuffer(row[0], dtype=np.float32).copy() if row else None

    def text_embeddings(self, model: str, chunks: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of those ``chunks`` that are stored, a few queries in all."""
        wanted = list(dict.fromkeys(chunks))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            part = wanted[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT chunk, vector FROM texts WHERE model = ? AND chunk IN ({marks})",
                (model, *part),
            )
            for chunk, blob in rows:
                found[chunk] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def bank_images(self, model: str, bank: str, count: int) -> np.ndarray | None:
        """The ``count`` stored reference pictures' embeddings of ``bank``, or None."""
        rows = self.conn.execute(
            "SELECT vector FROM bank_images WHERE model = ? AND bank = ? ORDER BY k",
            (model, bank),
        ).fetchall()
        if len(rows) != count:
            return None
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows])

    def put_bank_images(self, model: str, bank: str, vectors: np.ndarray) -> None:
        rows = [(model, bank, k, _blob(v)) for k, v in enumerate(vectors)]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO bank_images VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, table: str, model: str | None = None) -> int:
        if table not in _NAMES:
            raise ValueError(table)
        if model is None:
            return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        return int(
            self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE model = ?", (model,)).fetchone()[
                0
            ]
        )

    # -- writes: one short transaction per batch ---------------------------------------------
    def put_batch(
        self,
        model: str,
        images: Iterable[tuple[str, np.ndarray]] = (),
        files: Iterable[tuple[str, FileRecord]] = (),
        texts: Iterable[tuple[str, np.ndarray]] = (),
    ) -> None:
        """Write embeddings and file records in one transaction (all or nothing)."""
        image_rows = [(h, model, _blob(v)) for h, v in images]
        file_rows = [(p, r.size, r.mtime_ns, r.hash, r.parameters) for p, r in files]
        now = time.time()
        text_rows = [(model, c, _blob(v), now) for c, v in texts]
        if not (image_rows or file_rows or text_rows):
            return
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO images VALUES (?, ?, ?)", image_rows)
            conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", file_rows)
            conn.executemany("INSERT OR IGNORE INTO texts VALUES (?, ?, ?, ?)", text_rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def trim_texts(self, most: int) -> int:
        """Delete the oldest text embeddings when more than ``most`` are kept, down to
        ``TRIM_TO`` of it (a dropped one is encoded again when next asked for); returns
        how many went."""
        count = self.count("texts")
        if count <= most:
            return 0
        extra = count - int(most * TRIM_TO)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "DELETE FROM texts WHERE (model, chunk) IN "
                "(SELECT model, chunk FROM texts ORDER BY added LIMIT ?)",
                (extra,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return extra

    def check(self) -> list[str]:
        """SQLite's own integrity check ("ok" when sound), for tests and support."""
        return [r[0] for r in self.conn.execute("PRAGMA integrity_check")]


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()
