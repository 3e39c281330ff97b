"""The files of a job folder: what is shipped, its content hash, and NVFlare's per-file limit for submit tokens.

* :func:`scan` lists the files that make up a job, without the volatile ones (``__pycache__``, checkpoints,
  signing files...). It never follows a symbolic link out of the job folder: a link pointing outside it (say
  ``custom/startup -> <kit>/startup``, which would ship ``client.key``), a broken link or a link loop is a one-line
  :class:`JobFolderError` naming the link. A link inside the job is shipped as the file or folder it points to
  (NVFlare's own signing refuses links, so the uploaded job never contains one).
* :func:`content_hash` is NVFlare's ``canonical_job_content_hash`` (``nvflare/apis/utils/job_submit_token.py``),
  computed in 1 MiB blocks instead of reading each file whole, so a 1 GB model does not need 1 GB of memory.
  A test checks that both give the same value.
* :class:`HashCache` remembers the hash of a job by the path, size, mtime and inode of each file (and the bytes of
  files flarenb wrote itself), so a rerun does not re-read gigabytes; any change to any file invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import _nvflare
from .errors import FlareError

#: Files and folders that never enter the uploaded job: they change NVFlare's content hash between runs.
VOLATILE = ("__pycache__", ".ipynb_checkpoints", ".DS_Store", ".git", ".__nvfl_sig.json", ".__nvfl_submitter.crt")
VOLATILE_SUFFIXES = (".pyc", ".pyo")
BLOCK = 1 << 20


class JobFolderError(FlareError):
    """The job folder cannot be shipped as it is (a link out of it, a special file...)."""


@dataclass(frozen=True)
class JobFile:
    """One file of a job: its path inside the job (``rel``, POSIX) and where its bytes are."""

    rel: str
    path: Path
    size: int
    mtime_ns: int
    ino: int
    dev: int

    @classmethod
    def at(cls, rel: str, path: Path) -> JobFile:
        st = path.stat()
        return cls(rel, path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def is_volatile(name: str) -> bool:
    return name in VOLATILE or name.endswith(VOLATILE_SUFFIXES)


def token_size_limit() -> int | None:
    """NVFlare's largest file (bytes) the server can hash for a submit token; None if this NVFlare has none."""
    return _nvflare.max_hash_zip_member_size()


def over_limit(files: Iterable[JobFile], limit: int | None = None) -> list[JobFile]:
    """The files too big for a server-side submit token, largest first."""
    limit = token_size_limit() if limit is None else limit
    if limit is None:
        return []
    return sorted((f for f in files if f.size > limit), key=lambda f: -f.size)


def human(n: float) -> str:
    """``12582912`` -> ``12.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


# -- scanning -----------------------------------------------------------------------------------------------
def scan(root: str | os.PathLike) -> list[JobFile]:
    """The files of the job folder ``root``, sorted by path (see the module docstring for links)."""
    top = Path(os.path.realpath(root))
    found: list[JobFile] = []
    _scan_dir(top, top, "", [top], found)
    return sorted(found, key=lambda f: f.rel)


def _inside(path: str, top: Path) -> bool:
    return path == str(top) or path.startswith(str(top) + os.sep)


def _scan_dir(top: Path, real_dir: Path, prefix: str, stack: list[Path], found: list[JobFile]) -> None:
    with os.scandir(real_dir) as entries:
        items = sorted(entries, key=lambda e: e.name)
    for entry in items:
        if is_volatile(entry.name):
            continue
        rel = f"{prefix}{entry.name}"
        path = Path(entry.path)
        if entry.is_symlink():
            target = os.path.realpath(path)
            if not _inside(target, top):
                raise JobFolderError(
                    f"{rel} in the job folder is a link to {target}, outside the job folder: flarenb does not ship it",
                    "Copy what the job needs into the job folder, or remove the link",
                )
            if not os.path.exists(target):
                raise JobFolderError(f"{rel} in the job folder is a broken link", "Fix or remove the link")
            path = Path(target)
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            if path in stack:
                raise JobFolderError(
                    f"{rel} in the job folder is a link to {path}, which contains it (a loop)", "Remove the link"
                )
            _scan_dir(top, path, rel + "/", [*stack, path], found)
        elif stat.S_ISREG(st.st_mode):
            found.append(JobFile(rel, path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
        else:
            raise JobFolderError(f"{rel} in the job folder is not a regular file", "Remove it from the job folder")


# -- hashing ------------------------------------------------------------------------------------------------
def content_hash(files: Iterable[tuple[str, Path]]) -> str:
    """NVFlare's ``canonical_job_content_hash`` of these ``(rel, path)`` files, read in blocks."""
    digest = hashlib.sha256()
    for rel, path in sorted(files, key=lambda item: item[0]):
        name = rel.encode("utf-8")
        digest.update(len(name).to_bytes(8, "big"))
        digest.update(name)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest.update(size.to_bytes(8, "big"))
            done = 0
            while block := f.read(BLOCK):
                digest.update(block)
                done += len(block)
        if done != size:
            raise JobFolderError(f"{rel} changed while it was read", "Submit again once it is written")
    return f"sha256:{digest.hexdigest()}"


def _file_key(f: JobFile, written_by_us: Path | None) -> list:
    if written_by_us is not None and _inside(str(f.path), written_by_us):
        return [f.rel, "bytes", hashlib.sha256(f.path.read_bytes()).hexdigest()]
    return [f.rel, str(f.path), f.size, f.mtime_ns, f.ino, f.dev]


class HashCache:
    """Content hashes by the identity of every file (see the module docstring); one small file per job state."""

    MAX_ENTRIES = 2000
    MAX_AGE = 30 * 24 * 3600.0

    def __init__(self, folder: Path):
        self.folder = folder

    def key(self, files: Iterable[JobFile], written_by_us: Path | None = None) -> str:
        listing = [_file_key(f, written_by_us) for f in sorted(files, key=lambda f: f.rel)]
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def content_hash(self, files: list[JobFile], written_by_us: Path | None = None) -> str:
        """The job's content hash; read from the cache when no file changed since it was computed."""
        key = self.key(files, written_by_us)
        entry = self.folder / f"{key[:40]}.json"
        try:
            value = json.loads(entry.read_text())["content_hash"]
            if isinstance(value, str) and value.startswith("sha256:"):
                return value
        except (OSError, ValueError, KeyError, TypeError):
            pass
        value = content_hash((f.rel, f.path) for f in files)
        try:
            after = [JobFile.at(f.rel, f.path) for f in files]
        except OSError:
            return value
        if self.key(after, written_by_us) == key:  # nothing changed while it was read
            self._store(entry, value)
        return value

    def _store(self, entry: Path, value: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"content_hash": value}))
            os.replace(tmp, entry)
            self.prune()
        except OSError:
            pass  # a cache that cannot be written only costs time

    def prune(self, max_entries: int | None = None, max_age: float | None = None) -> int:
        """Drop entries older than ``max_age`` seconds and the oldest beyond ``max_entries``; return the count."""
        max_entries = self.MAX_ENTRIES if max_entries is None else max_entries
        max_age = self.MAX_AGE if max_age is None else max_age
        try:
            entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return 0
        now = time.time()
        removed = 0
        for i, path in enumerate(entries):
            try:
                if i >= max_entries or now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
