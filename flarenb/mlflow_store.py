"""Scalars from the MLflow store of a job's experiment tracking, read without importing mlflow.

``add_experiment_tracking(recipe, "mlflow")`` adds NVFlare's ``MLflowReceiver`` to the server. Without a
``tracking_uri`` it writes ``sqlite:///<server run folder>/mlflow.db`` (NVFlare 2.9; the file travels with the job's
result), one MLflow run per client named ``"<site>-<job id[:6]>-<job name>-<run name>"`` with the tag ``job_id``;
each ``SummaryWriter.add_scalar(tag, value, step)`` / ``flare`` tracking call of a client becomes one row of the
``metrics`` table (key = tag, step = the client's step), flushed about once a second. MLflow's older *file* store
(MLflow 3.18 refuses to write one unless ``MLFLOW_ALLOW_FILE_STORE=true``) has the same content as files,
``mlruns/<experiment>/<run>/metrics/<key>`` with lines ``"<timestamp ms> <value> <step>"`` and the run's name in
``tags/mlflow.runName`` (``meta.yaml`` ``run_name``); flarenb reads one at ``<server run folder>/mlruns`` (where a
``tracking_uri`` pointing into the run folder puts it). Stores elsewhere (a tracking server, a path of the user's
choosing, the clients' own stores with ``client_side=True``) are not read.

Both become :class:`flarenb.metrics.MetricRecord` rows: round = the step, site = the client the run is for, metric =
``"mlflow/" + key`` (:data:`PREFIX`: tracked scalars are per *step*, the round metrics per *round*, so they are
kept apart in the table, ``job.metrics()``, ``%flare metrics`` and the panel), no weight. The records of
``round_metrics.jsonl`` are left as they are.

Only the two names above inside a folder flarenb knows (:mod:`flarenb.metric_sources`) are opened; a symlink
anywhere in a store is skipped, never followed; the database is opened read-only; a store that is being written
(a torn last line, a locked database) gives what is complete so far.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from .metrics import MetricRecord, _value

DB_FILE = "mlflow.db"  # MLflowReceiver's default store, in the server's run folder
FILE_STORE = "mlruns"  # a file store in the same folder
PREFIX = "mlflow/"
MAX_ROWS = 500_000  # values read from one store
MAX_METRIC_FILE = 16 * 1024 * 1024
RUN_NAME_TAG = "mlflow.runName"


def tracked(record: MetricRecord) -> bool:
    """True for a record read from an MLflow store (not from ``round_metrics.jsonl``)."""
    return record.metric.startswith(PREFIX)


def site_of(run_name: str, job_tag: str | None) -> str:
    """The site of an NVFlare MLflow run: the part of its name before ``-<job id[:6]>-`` (else the whole name)."""
    if job_tag:
        cut = run_name.find(f"-{job_tag[:6]}-")
        if cut > 0:
            return run_name[:cut]
    return run_name


def _record(site: str, key: str, value: float, step: object) -> MetricRecord | None:
    if isinstance(step, bool) or not isinstance(step, int):
        return None
    return MetricRecord(step, site, PREFIX + key, _value(value))  # NaN and inf as text, as in the jsonl records


# ------------------------------------------------------------------------------------------ sqlite store
class DbTail:
    """The scalars of an MLflow SQLite store, read incrementally: each :meth:`poll` reads only the rows added since
    the last one (MLflow only inserts into its ``metrics`` table; a store with fewer rows than were read is a new
    one, read from its start), at most :data:`MAX_ROWS` in all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[MetricRecord] = []
        self._rowid = 0
        self._sites: dict[str, str] = {}  # run id -> site

    def poll(self) -> int | None:
        """Read the new rows: how many records were added (None: the store cannot be read right now)."""
        path = self.path
        if path.is_symlink() or not path.is_file():
            return 0
        try:
            con = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, timeout=0.5)
        except sqlite3.Error:
            return None
        with contextlib.closing(con):
            try:
                (last,) = con.execute("SELECT coalesce(max(rowid), 0) FROM metrics").fetchone()
                if last < self._rowid:  # a new store in its place: read it from its start
                    self.records, self._rowid, self._sites = [], 0, {}
                rows = con.execute(
                    "SELECT rowid, run_uuid, key, value, step, is_nan FROM metrics WHERE rowid > ? ORDER BY rowid "
                    "LIMIT ?",
                    (self._rowid, MAX_ROWS - len(self.records)),
                ).fetchall()
                if any(str(row[1]) not in self._sites for row in rows):
                    self._sites = _run_sites(con)
            except sqlite3.Error:
                return None
        before = len(self.records)
        for rowid, u, key, value, step, is_nan in rows:
            self._rowid = max(self._rowid, rowid)
            if isinstance(value, int | float):
                r = _record(self._sites.get(str(u), str(u)), str(key), float("nan") if is_nan else float(value), step)
                if r is not None:
                    self.records.append(r)
        return len(self.records) - before


def _run_sites(con: sqlite3.Connection) -> dict[str, str]:
    """Run id -> the site it is for (from its name, see :func:`site_of`)."""
    names = {str(u): str(n or u) for u, n in con.execute("SELECT run_uuid, name FROM runs")}
    tags: dict[tuple[str, str], str] = {}
    for u, k, v in con.execute("SELECT run_uuid, key, value FROM tags WHERE key IN (?, 'job_id')", (RUN_NAME_TAG,)):
        tags[(str(u), str(k))] = str(v)
    return {u: site_of(tags.get((u, RUN_NAME_TAG), name), tags.get((u, "job_id"))) for u, name in names.items()}


def read_db(path: Path) -> list[MetricRecord] | None:
    """The scalars in an MLflow SQLite store (``[]`` when there is none; None when it cannot be read right now)."""
    tail = DbTail(path)
    return None if tail.poll() is None else tail.records


# ------------------------------------------------------------------------------------------ file store
def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` that are not symlinks (none if it is one or cannot be listed)."""
    if folder.is_symlink():
        return []
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.is_symlink()), key=lambda e: e.name)
    except OSError:
        return []


def _small_text(path: Path, most: int = 64 * 1024) -> str | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > most:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _run_name(run: Path) -> tuple[str, str | None]:
    name = _small_text(run / "tags" / RUN_NAME_TAG)
    if name is None:
        meta = _small_text(run / "meta.yaml") or ""
        found = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("run_name:")]
        name = found[0].strip("'\"") if found else run.name
    job = _small_text(run / "tags" / "job_id")
    return name.strip(), job.strip() if job else None


def _metric_files(folder: Path, prefix: str = "") -> list[tuple[str, Path]]:
    """``(key, file)`` of every metric under ``folder`` (a key with ``/`` is a nested folder), no symlinks."""
    out: list[tuple[str, Path]] = []
    for e in _entries(folder):
        if e.is_dir(follow_symlinks=False):
            out.extend(_metric_files(Path(e.path), f"{prefix}{e.name}/"))
        elif e.is_file(follow_symlinks=False):
            out.append((prefix + e.name, Path(e.path)))
    return out


def _lines(path: Path) -> list[str]:
    """The complete lines of a metric file (a last line without its newline is still being written)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_METRIC_FILE)
    except OSError:
        return []
    return data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace").splitlines()


def read_file_store(root: Path) -> list[MetricRecord]:
    """The scalars in an MLflow file store (``mlruns/``): every experiment, every run."""
    out: list[MetricRecord] = []
    for exp in _entries(root):
        if not exp.is_dir(follow_symlinks=False):
            continue
        for run in _entries(Path(exp.path)):
            metrics = Path(run.path) / "metrics"
            if not run.is_dir(follow_symlinks=False) or metrics.is_symlink() or not metrics.is_dir():
                continue
            name, job = _run_name(Path(run.path))
            site = site_of(name, job)
            for key, path in _metric_files(metrics):
                for line in _lines(path):
                    parts = line.split()
                    try:
                        value, step = float(parts[1]), int(parts[2]) if len(parts) > 2 else 0
                    except (IndexError, ValueError):
                        continue
                    r = _record(site, key, value, step)
                    if r is not None and len(out) < MAX_ROWS:
                        out.append(r)
    return sorted(out, key=lambda r: r.round)


def read_folder(folder: Path) -> list[MetricRecord] | None:
    """The tracked scalars of a job whose server run folder (or its download's ``workspace/``) is ``folder``."""
    found = read_db(folder / DB_FILE)
    if found is None:
        return None
    return found + read_file_store(folder / FILE_STORE)


class FolderTail:
    """:func:`read_folder`, again and again: the database incrementally (:class:`DbTail`; read anew when it was
    replaced), a file store (rare, small) whole each time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._db = DbTail(folder / DB_FILE)
        self._inode: int | None = None

    def read(self) -> list[MetricRecord] | None:
        """Everything so far (None: the database cannot be read right now)."""
        try:
            inode = (self.folder / DB_FILE).stat(follow_symlinks=False).st_ino
        except OSError:
            inode = None
        if inode != self._inode:
            self._db, self._inode = DbTail(self.folder / DB_FILE), inode
        if self._db.poll() is None:
            return None
        files = self.folder / FILE_STORE
        return self._db.records + (read_file_store(files) if files.is_dir() else [])
