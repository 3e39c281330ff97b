"""Connecting to FLARE: startup-kit resolution and the kept, self-healing admin session.

Kit selection follows the ``nvflare job`` CLI exactly (:mod:`flarenb.kits`, which calls NVFlare's own resolver):
``kit_id``, then ``startup_kit``, then ``$NVFLARE_STARTUP_KIT_DIR``, then ``startup_kits.active`` in
``~/.nvflare/config.conf``. ``Kit`` and ``resolve_kit`` are importable from here as well.

A :class:`Flare` keeps one NVFlare ``Session`` for the life of the kernel (logging in costs ~1.6 s; a command
costs milliseconds), re-establishes it when the server went away, and closes it before the interpreter exits
(an unclosed NVFlare session keeps a non-daemon thread alive and hangs the process at exit).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import _nvflare
from ._quiet import quiet
from .errors import ConnectError, FlareError, NotConnected, StartupKitError
from .kits import Kit, resolve_kit
from .vocab import one_line

T = TypeVar("T")

DEFAULT_STUDY = "default"
DEFAULT_TIMEOUT = 10.0


class Flare:
    """A connection to one FLARE deployment as one admin user in one study.

    The NVFlare session is created lazily, kept, and re-created when the server went away. Use
    :meth:`call` to run an NVFlare ``Session`` method with that policy, or :attr:`session` for the raw object.
    """

    def __init__(self, kit: Kit, study: str = DEFAULT_STUDY, timeout: float = DEFAULT_TIMEOUT, poc=None):
        validate_study_name = _nvflare.study_name_rule()
        try:  # NVFlare's own study-name rule
            validate_study_name(study)
        except Exception:
            raise FlareError(
                f"Invalid study name {study!r}",
                "Use lowercase letters, numbers, '_' and '-', e.g. --study default",
            ) from None
        self.kit = kit
        self.study = study
        self.timeout = timeout
        self.poc = poc  # the flarenb.poc.Poc this connects to, if it is the local one
        self._session = None
        self._lock = threading.RLock()
        self.connect_count = 0
        _live.add(self)

    def __repr__(self) -> str:
        state = "connected" if self._session is not None else "not connected"
        return f"<Flare {self.kit.username} study={self.study!r} kit={self.kit.path!r} ({state})>"

    # -- session lifecycle -------------------------------------------------------------------------
    @property
    def session(self):
        """The NVFlare ``Session``, logging in on first use."""
        with self._lock:
            if self._session is None:
                self._session = self._login()
            return self._session

    def _login(self):
        from nvflare.fuel.flare_api.api_spec import AuthenticationError, NoConnection
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        try:
            with quiet():
                sess = new_secure_session(
                    username=self.kit.username,
                    startup_kit_location=self.kit.path,
                    timeout=self.timeout,
                    study=self.study,
                )
        except AuthenticationError as e:
            raise ConnectError(
                f"The FLARE server refused {self.kit.username}'s login ({e})",
                "Check that the startup kit belongs to this deployment",
            ) from None
        except (NoConnection, ConnectionError, TimeoutError) as e:
            raise ConnectError(
                f"The FLARE server did not answer within {self.timeout:g} s ({one_line(e)})",
                "Start it (%flare poc start for the local FLARE) or check the startup kit's host and port",
            ) from None
        except Exception as e:
            if "timeout" in str(e).lower() or "connect" in str(e).lower():
                raise ConnectError(
                    f"The FLARE server did not answer within {self.timeout:g} s ({one_line(e)})",
                    "Start it (%flare poc start for the local FLARE) or check the startup kit's host and port",
                ) from None
            raise
        self.connect_count += 1
        _open_sessions.append(sess)
        return sess

    def close(self) -> None:
        """Log out and stop NVFlare's connection thread. Safe to call twice."""
        with self._lock:
            sess, self._session = self._session, None
        if sess is not None:
            _close_session(sess)

    @property
    def connected(self) -> bool:
        return self._session is not None

    def call(self, fn: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run ``fn(session)``; if the connection was lost, log in again once and retry.

        Pass ``retry=False`` for calls that are not safe to repeat blindly (the submit logic handles those).
        """
        from nvflare.fuel.flare_api.api_spec import NoConnection, SessionClosed

        # NVFlare's admin API is not safe for concurrent commands: the kernel's cell and the log followers'
        # threads take turns on the one session.
        with self._lock:
            try:
                return fn(self.session)
            except (NoConnection, SessionClosed, ConnectionError) as e:
                error = e
                self.close()
                if not retry:
                    raise
            try:
                return fn(self.session)
            except (NoConnection, SessionClosed, ConnectionError):
                self.close()
                raise ConnectError(
                    f"Lost the connection to the FLARE server ({one_line(error)})",
                    "Check that it is running (%flare poc status) and run the cell again",
                ) from None

    # -- information -------------------------------------------------------------------------------
    def system_info(self) -> SystemInfo:
        """Server status and the connected clients (``check_status server``)."""
        info = self.call(lambda s: s.get_system_info())
        return SystemInfo(
            server_status=str(info.server_info.status),
            server_start_time=info.server_info.start_time,
            clients=[(c.name, c.last_connect_time) for c in info.client_info],
            jobs=[(j.job_id, j.app_name) for j in info.job_info],
        )

    def wait_for_clients(self, expected: list[str], timeout: float, progress: Callable[[str], None] | None = None):
        """Poll the server until every expected client is connected (or raise :class:`ConnectError`)."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                seen = [name for name, _ in self.system_info().clients]
            except ConnectError:
                seen = []
            missing = [c for c in expected if c not in seen]
            if progress:
                progress(_progress_line(expected, seen))
            if not missing:
                return seen
            if time.monotonic() > deadline:
                raise ConnectError(
                    f"Clients {', '.join(missing)} did not connect within {timeout:g} s",
                    "Look at their log in the POC workspace, or run %flare poc stop and start again",
                )
            time.sleep(0.5)


def _progress_line(expected: list[str], seen: list[str]) -> str:
    marks = [f"{c} {'✓' if c in seen else '…'}" for c in expected]
    return "server ✓, " + ", ".join(marks)


@dataclass
class SystemInfo:
    server_status: str
    server_start_time: Any
    clients: list[tuple[str, Any]]
    jobs: list[tuple[str, str]]

    @property
    def client_names(self) -> list[str]:
        return sorted(name for name, _ in self.clients)

    def __str__(self) -> str:
        lines = [
            f"FLARE server: up (engine {self.server_status})",
            f"clients ({len(self.clients)}): " + ", ".join(self.client_names),
        ]
        lines.append(f"running jobs: {len(self.jobs)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(str(n))}</td><td>connected</td></tr>" for n in self.client_names)
        return (
            f"<div class='flarenb-sysinfo'><b>FLARE server</b>: up (engine {html.escape(self.server_status)})"
            f"<table><tr><th>client</th><th>state</th></tr>{rows}</table>"
            f"running jobs: {len(self.jobs)}</div>"
        )


# -- the current connection and closing everything at exit -----------------------------------------
_live: weakref.WeakSet[Flare] = weakref.WeakSet()
_current: Flare | None = None


def current() -> Flare:
    """The connection cells use by default (set by :func:`connect` and ``poc.start``).

    In a new kernel (or process) nothing was set yet: the first command that needs a server connects as the
    ``nvflare job`` CLI would (:func:`auto_connect`).
    """
    if _current is None:
        set_current(auto_connect())
    assert _current is not None
    return _current


def auto_connect(study: str = DEFAULT_STUDY) -> Flare:
    """Connect as the ``nvflare job`` CLI would, with no flags: ``$NVFLARE_STARTUP_KIT_DIR``, else the active kit.

    A kit that is the admin kit of a local POC (the one flarenb manages, or any ``nvflare poc`` workspace) is
    recognised as such, so its fast local paths (log files read directly) are used. Where the CLI would find no
    kit at all, the local FLARE flarenb manages is used if it is running; otherwise :class:`NotConnected`.
    """
    from . import poc as _poc

    try:
        kit = resolve_kit()
    except StartupKitError as e:
        if not str(e).startswith("No startup kit selected"):
            raise  # a kit was named (env, config) but is unusable: say so, as the CLI would
        managed = _poc.Poc(_poc.default_workspace())
        if not managed.running:
            raise NotConnected() from None
        kit = Kit(path=str(managed.admin_kit), username=_poc.ADMIN, source="poc")
    flare = Flare(kit, study=study, poc=_poc.poc_of_kit(kit.path))
    try:
        flare.session  # noqa: B018 - fail here, with a clear error, rather than half-way through a command
    except BaseException:
        flare.close()
        raise
    return flare


def set_current(flare: Flare | None) -> None:
    global _current
    if _current is not None and _current is not flare:
        _current.close()
    _current = flare


def connect(
    startup_kit: str | None = None,
    kit_id: str | None = None,
    study: str = DEFAULT_STUDY,
    timeout: float = DEFAULT_TIMEOUT,
) -> Flare:
    """Connect to a FLARE deployment with an admin startup kit and make it the current connection.

    The kit is chosen as the ``nvflare job`` CLI does: ``kit_id``, ``startup_kit``, ``$NVFLARE_STARTUP_KIT_DIR``,
    then the active kit in ``~/.nvflare/config.conf``. Connecting again with the same kit and study reuses the
    live session.
    """
    from . import validate

    timeout = validate.seconds("--timeout", timeout, minimum=0.5, maximum=3600.0, example="--timeout 10")
    kit = resolve_kit(startup_kit=startup_kit, kit_id=kit_id)
    if _current is not None and _current.kit.path == kit.path and _current.study == study:
        _current.session  # noqa: B018 - make sure it is (still) logged in
        return _current
    flare = Flare(kit, study=study, timeout=timeout)
    flare.session  # noqa: B018 - fail here, with a clear error, rather than at the first command
    set_current(flare)
    return flare


_others: dict[tuple[str, str], Flare] = {}


def for_command(study: str | None = None, startup_kit: str | None = None, kit_id: str | None = None) -> Flare:
    """The connection for one command: the current one, or a kept one for another study or kit (as the CLI's
    per-command ``--study`` / ``--kit-id`` / ``--startup-kit``), without changing the current connection."""
    if startup_kit or kit_id:
        kit = resolve_kit(startup_kit=startup_kit, kit_id=kit_id)
        base_poc, timeout = None, DEFAULT_TIMEOUT
    else:
        cur = current()
        if not study or study == cur.study:
            return cur
        kit, base_poc, timeout = cur.kit, cur.poc, cur.timeout
    study = study or DEFAULT_STUDY
    kept = _current
    if kept is not None and kept.kit.path == kit.path and kept.study == study:
        return kept
    key = (kit.path, study)
    if key not in _others:
        _others[key] = Flare(kit, study=study, timeout=timeout, poc=base_poc)
    return _others[key]


#: Every NVFlare session flarenb opened and has not closed — held strongly, so that even one whose Flare was
#: garbage-collected is closed at exit (its connector threads would otherwise keep the process alive).
_open_sessions: list = []


def _close_session(sess) -> None:
    try:
        _open_sessions.remove(sess)
    except ValueError:
        pass
    try:
        with quiet():
            sess.close()
    except Exception:
        pass


def close_all() -> None:
    """Stop every log follower and close every FLARE session this process opened."""
    try:
        from .follower import stop_all

        stop_all()
    except Exception:
        pass
    for flare in list(_live):
        flare.close()
    for sess in list(_open_sessions):
        _close_session(sess)


def _install_exit_hook() -> None:
    """Close every session before the interpreter waits for its threads.

    ``threading._register_atexit`` callbacks run, last registered first, *before* the interpreter joins
    non-daemon threads — among them ``concurrent.futures``' own hook, which waits for the worker threads an open
    NVFlare session keeps busy forever. Importing ``concurrent.futures.thread`` first makes sure its hook is
    registered before this one, so this one runs first.
    """
    import concurrent.futures.thread  # noqa: F401 - see the docstring

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(close_all)
            return
        except RuntimeError:  # already shutting down
            pass
    import atexit

    atexit.register(close_all)


_install_exit_hook()
