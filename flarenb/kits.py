"""Startup-kit resolution, as the ``nvflare job`` CLI does it (it calls NVFlare's own resolver).

The order is ``kit_id``, then ``startup_kit``, then ``$NVFLARE_STARTUP_KIT_DIR``, then ``startup_kits.active`` in
``~/.nvflare/config.conf``; an unusable choice is one :class:`~flarenb.errors.StartupKitError` that says which
source was used and how to pick another. :mod:`flarenb.session` connects with the resolved :class:`Kit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from .errors import StartupKitError
from .vocab import one_line

__all__ = ["Kit", "resolve_kit"]

_SELECT_HINT = (
    "Pass --startup-kit DIR or --kit-id ID, set NVFLARE_STARTUP_KIT_DIR, "
    "or activate a kit with 'nvflare config use ID' (or run %flare poc start for a local FLARE)"
)


@dataclass(frozen=True)
class Kit:
    """A resolved admin startup kit: the folder that contains ``startup/``, and the admin user's name."""

    path: str
    username: str
    source: str  # "kit_id" | "startup_kit" | "env" | "active" | "poc"
    kit_id: str | None = None


def resolve_kit(startup_kit: str | None = None, kit_id: str | None = None) -> Kit:
    """Resolve the admin startup kit in the ``nvflare job`` CLI's order, or raise :class:`StartupKitError`."""
    import os

    from nvflare.tool.cli_session import resolve_admin_user_and_dir_for_args
    from nvflare.tool.kit.kit_config import NVFLARE_STARTUP_KIT_DIR, StartupKitConfigError

    if kit_id and startup_kit:
        raise StartupKitError("--kit-id and --startup-kit are mutually exclusive", "Use only one of them")
    if kit_id:
        source = "kit_id"
    elif startup_kit:
        source = "startup_kit"
    elif (os.environ.get(NVFLARE_STARTUP_KIT_DIR) or "").strip():
        source = "env"
    else:
        source = "active"
    args = SimpleNamespace(kit_id=kit_id, startup_kit=startup_kit)
    try:
        username, admin_dir = resolve_admin_user_and_dir_for_args(args)
    except StartupKitConfigError as e:
        raise StartupKitError(_kit_error_message(e, source, startup_kit, kit_id)) from None
    except Exception as e:  # malformed config.conf, unreadable files
        raise StartupKitError(f"Cannot read the startup kit ({e})", _SELECT_HINT) from None
    return Kit(path=admin_dir, username=username, source=source, kit_id=kit_id)


def _kit_error_message(e: Exception, source: str, startup_kit: str | None, kit_id: str | None) -> str:
    text = one_line(getattr(e, "message", None) or e).rstrip(".")
    if source == "startup_kit":
        return (
            f"{text}. --startup-kit must be an admin startup kit: the folder that contains startup/fed_admin.json "
            "(for a local POC: <poc>/example_project/prod_00/admin@nvidia.com)"
        )
    if source == "kit_id":
        return f"{text}. Run 'nvflare config list' to see registered kit ids, or pass --startup-kit DIR"
    if source == "env":
        return f"{text}. Unset NVFLARE_STARTUP_KIT_DIR or point it at an admin startup kit"
    if "no active startup kit" in text:
        return f"No startup kit selected. {_SELECT_HINT}"
    return f"{text}. {_SELECT_HINT}"
