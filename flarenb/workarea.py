"""flarenb's own folder on this machine (``$XDG_CACHE_HOME/flarenb``, by default ``~/.cache/flarenb``), kept small.

* ``work/<id>/`` — one folder per submit in progress (exports, the staged job), removed when the submit ends. Each
  holds a lock (``fcntl``) for its lifetime: a kernel killed mid-submit leaves one behind, removed by the next
  submit because its lock is free.
* the staged job is not a copy: flarenb copies only ``meta.json`` and the small configuration files (which the
  live-log edit may rewrite), and hard-links every other file (copying only where a hard link is impossible, e.g.
  across file systems). Those are linked in only when the job is uploaded: a rerun that reattaches touches no
  big file.
* ``jobs/<name>-<hash>/`` — what was uploaded, for inspection: the files flarenb wrote or edited and a
  ``manifest.json`` listing every file (path, size, where it came from), not a copy of the big ones. Bounded in
  size and age (:data:`JOBS_MAX_BYTES`, :data:`JOBS_MAX_AGE`).
* ``hashes/`` — the content-hash cache (:class:`flarenb.jobfiles.HashCache`); ``locks/`` — 256 lock files that
  serialise check-then-submit per submit token on this machine (:func:`token_lock`).

:func:`clean` (``%flare cache clean``) empties it all except submits in progress.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .jobfiles import HashCache, JobFile, human

#: configuration files (≤ 1 MiB) that are copied into the stage, so editing them never touches the user's files
EDITABLE_SUFFIXES = (".json", ".conf", ".yml", ".yaml", ".cfg", ".toml", ".ini")
EDITABLE_MAX = 1 << 20
JOBS_MAX_BYTES = 200 << 20
JOBS_MAX_AGE = 30 * 24 * 3600.0
MANIFEST = "manifest.json"


def root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "flarenb")


def jobs_dir() -> Path:
    return root() / "jobs"


def hash_cache() -> HashCache:
    return HashCache(root() / "hashes")


def _remove_tree(path: Path, parent: Path) -> None:
    """Remove ``path`` only if it is a strict child of ``parent`` (never anything else)."""
    path, parent = Path(os.path.abspath(path)), Path(os.path.abspath(parent))
    if path.parent != parent or path.is_symlink():
        raise ValueError(f"refusing to remove {path}: not a folder directly inside {parent}")
    shutil.rmtree(path, ignore_errors=True)


# -- one submit's work folder -----------------------------------------------------------------------------
@contextmanager
def work_dir() -> Iterator[Path]:
    """A private folder for one submit, locked while in use and removed at the end (see the module docstring)."""
    parent = root() / "work"
    parent.mkdir(parents=True, exist_ok=True)
    sweep_work()
    path = parent / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)
        _remove_tree(path, parent)


def sweep_work() -> int:
    """Remove the work folders of submits that are no longer running (their lock is free); return the count."""
    parent = root() / "work"
    removed = 0
    for path in parent.glob("*") if parent.is_dir() else []:
        try:
            fd = os.open(path / ".lock", os.O_RDWR)
        except FileNotFoundError:
            if time.time() - path.stat().st_mtime < 60:  # being created right now
                continue
            fd = None
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # in use
            _remove_tree(path, parent)
            removed += 1
        finally:
            if fd is not None:
                os.close(fd)
    return removed


@contextmanager
def token_lock(token: str) -> Iterator[None]:
    """Serialise check-then-submit for ``token`` among the processes of this machine (256 striped lock files)."""
    folder = root() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    stripe = hashlib.sha256(token.encode()).hexdigest()[:2]
    fd = os.open(folder / f"{stripe}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the staged job ---------------------------------------------------------------------------------------
def _editable(f: JobFile) -> bool:
    return f.rel == "meta.json" or (f.rel.lower().endswith(EDITABLE_SUFFIXES) and f.size <= EDITABLE_MAX)


@dataclass
class StagedJob:
    """A job folder ready to upload: edited files are in ``root``; the others are linked in by :meth:`folder`."""

    root: Path
    linked: list[JobFile]
    written: list[JobFile] = field(default_factory=list)
    copied: int = 0

    @property
    def files(self) -> list[JobFile]:
        return sorted([*self.written, *self.linked], key=lambda f: f.rel)

    def rescan(self) -> None:
        """Re-read the files written into ``root`` (after an edit)."""
        linked = {f.rel for f in self.linked}
        written = []
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(dirpath, name)
                rel = path.relative_to(self.root).as_posix()
                if rel not in linked and not path.is_symlink():
                    written.append(JobFile.at(rel, path))
        self.written = written

    def content_hash(self) -> str:
        return hash_cache().content_hash(self.files, written_by_us=self.root)

    def folder(self) -> Path:
        """The complete job folder (links in the remaining files: hard links, else copies); idempotent."""
        for f in self.linked:
            dest = self.root / f.rel
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f.path, dest)
            except OSError:
                shutil.copy2(f.path, dest)
                self.copied += 1
        return self.root


def stage(files: list[JobFile], dest: Path, edit: Callable[[Path], None] | None = None) -> StagedJob:
    """Stage ``files`` in ``dest`` (a new folder): copy the editable ones, run ``edit(dest)``, link the rest later."""
    dest.mkdir(parents=True)
    linked = []
    for f in files:
        (dest / f.rel).parent.mkdir(parents=True, exist_ok=True)
        if _editable(f):
            shutil.copyfile(f.path, dest / f.rel)
        else:
            linked.append(f)
    job = StagedJob(dest, linked)
    if edit is not None:
        edit(dest)
    job.rescan()
    return job


# -- what was uploaded, for inspection --------------------------------------------------------------------
def remember(job: StagedJob, name: str, content_hash: str, **record) -> Path:
    """Keep the files flarenb wrote and a manifest of all files in ``jobs/``; then bound the folder."""
    parent = jobs_dir()
    kept = parent / f"{name}-{content_hash.rsplit(':', maxsplit=1)[-1][:12]}"
    try:
        if not (kept / MANIFEST).is_file():
            tmp = parent / f".{kept.name}.{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            for f in job.written:
                (tmp / f.rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f.path, tmp / f.rel)
            manifest = {
                "job_name": name,
                "content_hash": content_hash,
                **record,
                "files": [
                    {"path": f.rel, "size": f.size, "source": None if f in job.written else str(f.path)}
                    for f in job.files
                ],
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            try:
                os.rename(tmp, kept)
            except OSError:  # another kernel kept it first
                _remove_tree(tmp, parent)
        os.utime(kept)
        bound_jobs()
    except OSError:
        pass  # the record is for inspection only: never fail a submit for it
    return kept


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def bound_jobs(max_bytes: int = JOBS_MAX_BYTES, max_age: float = JOBS_MAX_AGE) -> int:
    """Remove kept jobs older than ``max_age`` seconds, then the oldest while over ``max_bytes``; return the count."""
    parent = jobs_dir()
    if not parent.is_dir():
        return 0
    kept = sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    now, total, removed = time.time(), 0, 0
    for path in kept:
        total += _size(path)
        if now - path.stat().st_mtime > max_age or total > max_bytes:
            _remove_tree(path, parent)
            removed += 1
    return removed


@dataclass
class Cleaned:
    removed: int
    freed: int
    folder: Path

    def __str__(self) -> str:
        return f"removed {self.removed} cached items ({human(self.freed)}) from {self.folder}"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def clean() -> Cleaned:
    """Empty flarenb's cache: kept jobs, content hashes, finished work folders (``%flare cache clean``)."""
    base = root()
    freed = sum(_size(base / sub) for sub in ("jobs", "hashes", "work") if (base / sub).is_dir())
    removed = sweep_work()
    for sub in ("jobs", "hashes"):
        folder = base / sub
        if folder.is_dir():
            for path in list(folder.iterdir()):
                if path.is_dir() and not path.is_symlink():
                    _remove_tree(path, folder)
                else:
                    path.unlink()
                removed += 1
    still = _size(base / "work") if (base / "work").is_dir() else 0
    return Cleaned(removed, freed - still, base)
