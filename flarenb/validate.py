"""Input checks shared by every command and Python call: each returns the clean value or raises a one-line
:class:`~flarenb.errors.FlareError` naming the input and an example — before anything touches the disk, a
process or the server.

* :func:`job_id` — NVFlare's own check (``nvflare.apis.job_def.is_valid_job_id``, the one the server's admin
  commands apply to the lower-cased id in ``job_cmds.py``): a job id is a UUID4, so it can never be empty, ``..``,
  absolute, or carry a path separator. Returned in the canonical lower-case form the server uses.
* :func:`seconds` — a finite number of seconds in a range (no ``nan``, ``inf``, negative or absurd values).
* :func:`site_name` — a client name for ``nvflare poc prepare``: NVFlare's pattern for clients
  (``nvflare.apis.utils.format_check``), not starting with ``-`` (never read as a flag of the ``nvflare`` CLI).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from .errors import FlareError

__all__ = ["InvalidInput", "job_id", "seconds", "site_name"]

_EXAMPLE_JOB_ID = "%flare meta 3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21"


class InvalidInput(FlareError, ValueError):
    """A value given by the user is not acceptable; ``str(e)`` is one line with the fix."""


def _shown(value: Any, limit: int = 60) -> str:
    """A value quoted for a one-line message: control characters escaped, long values cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-3:]


def job_id(value: Any) -> str:
    """``value`` as a job id the server can have issued, else :class:`InvalidInput`."""
    from nvflare.apis.job_def import is_valid_job_id

    text = value.lower() if isinstance(value, str) else None
    if text is None or not is_valid_job_id(text):
        raise InvalidInput(
            f"Invalid job id {_shown(value)}: a FLARE job id is a UUID like 3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21",
            "See the ids with %flare list",
        )
    return str(uuid.UUID(text))


def seconds(
    name: str,
    value: Any,
    *,
    minimum: float = 0.0,
    maximum: float = 7 * 86400.0,
    allow_minimum: bool = True,
    example: str = "",
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (``(minimum, maximum]`` if not ``allow_minimum``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    ok = ok and math.isfinite(number) and number <= maximum
    ok = ok and (number >= minimum if allow_minimum else number > minimum)
    if not ok:
        low = f">= {minimum:g}" if allow_minimum else f"> {minimum:g}"
        raise InvalidInput(
            f"{name} must be a number of seconds {low} and <= {maximum:g}, got {_shown(value)}",
            f"Example: {example}" if example else None,
        )
    return number


_CLIENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def site_name(value: Any, reserved: tuple[str, ...] = ()) -> str:
    """``value`` as a client name for a local FLARE, else :class:`InvalidInput`."""
    from nvflare.apis.utils.format_check import name_check

    text = value if isinstance(value, str) else ""
    invalid = not text or name_check(text, "client")[0] or not _CLIENT.fullmatch(text) or len(text) > 63
    if invalid or text in reserved:
        why = (
            f"{text!r} is reserved"
            if text and not invalid
            else "use letters, digits, '-' or '_', not starting with '-'"
        )
        raise InvalidInput(
            f"Invalid site name {_shown(value)}: {why}",
            "Example: %flare poc start --sites hospital-a,hospital-b",
        )
    return text
