"""Text from remote sites made safe to keep, send and write (pure: no UI, no nvflare import).

Everything a site writes reaches the kernel as text it does not control: a ``log.json`` record may hold a lone
surrogate (``"\\ud800"``), which no UTF-8 encoder accepts (Jupyter's message packer raises, a download fails);
a site name may be ``.server`` or ``Server`` beside ``server``; a timestamp field may be megabytes long.

* :func:`clean_text` — valid UTF-8 text: lone surrogates become U+FFFD (done once, at intake);
* :func:`cap` — a field cut to a size, saying so;
* :func:`wire_size` — the bytes a value takes in a Jupyter message (JSON, UTF-8, as ``jupyter_client`` packs it);
* :func:`site_order` — the server first, then natural order (``site-2`` before ``site-10``), any names
  (defined in :mod:`flarenb.vocab`);
* :func:`safe_filenames` — one file name per site, distinct even on case-insensitive file systems.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from .vocab import site_order

__all__ = ["cap", "clean_text", "safe_filename", "safe_filenames", "site_order", "wire_size"]

_SURROGATES = re.compile("[\ud800-\udfff]")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
_MAX_FILENAME = 120


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it always encodes as UTF-8."""
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text)


def cap(text: str, limit: int, what: str = "characters") -> str:
    """``text`` cut to about ``limit`` characters, ending with how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [{len(text) - limit} more {what}]"


def wire_size(obj: Any) -> int:
    """Bytes of ``obj`` in a Jupyter message (``jupyter_client.session.json_packer``: default separators,
    ``ensure_ascii=False``, UTF-8). Control characters count as their ``\\uXXXX`` escapes."""
    return len(json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def safe_filename(name: str) -> str:
    """A file name that cannot leave its directory (names come from remote sites). Not injective: see
    :func:`safe_filenames` for several names that must not share a file."""
    cleaned = _UNSAFE_FILENAME.sub("_", name).lstrip(".") or "_"
    return cleaned[:_MAX_FILENAME]


def safe_filenames(names: Iterable[str]) -> dict[str, str]:
    """``{name: file name stem}``: safe (see :func:`safe_filename`) and pairwise distinct, also when compared
    case-insensitively. A name that is already safe and first of its case-insensitive kind keeps itself
    (``server`` stays ``server``); any other gets a short hash of the original name (``.server`` ->
    ``server-1f2e3d4c``), so the same sites always give the same files."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    ordered = site_order(names)
    # plain names first, so a renamed one never takes the file of a name that needed no change
    for name in sorted(ordered, key=lambda n: safe_filename(n) != n):
        stem = safe_filename(name)
        if stem != name or stem.casefold() in taken:
            digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()
            stem = f"{stem[: _MAX_FILENAME - 9]}-{digest[:8]}"
            n = 1
            while stem.casefold() in taken:
                n += 1
                stem = f"{stem[: _MAX_FILENAME - 12]}-{digest[:8]}{n}"
        taken.add(stem.casefold())
        out[name] = stem
    return {name: out[name] for name in ordered}
