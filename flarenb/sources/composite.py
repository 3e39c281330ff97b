"""Several sources feeding one receiver; and the registry entry of a job that ended on the local POC: its
clients' log files on this machine, the server's log from the admin API (the server's run folder has moved into
the job store)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..receiver import Receiver
from .adminpoll import AdminPoll
from .base import STOP_JOIN_TIMEOUT, AliveCheck, JobLogs, LogSource, describe_source
from .localtail import LocalTail

__all__ = ["KIND", "Composite"]


class Composite:
    """Several transports feeding one receiver (e.g. local files for some sites, the admin API for others)."""

    kind = "composite"

    def __init__(self, transports: Iterable[LogSource]) -> None:
        self.transports = list(transports)

    @property
    def alive(self) -> AliveCheck | None:
        return self.transports[0].alive if self.transports else None

    @property
    def bytes_read(self) -> int:
        return sum(t.bytes_read for t in self.transports)

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.transports)

    def describe(self) -> str:
        """Its parts' lines, joined by " + " (e.g. the clients' local files + the server's log from the admin API)."""
        return " + ".join(describe_source(t) for t in self.transports) or "no source"

    def start(self) -> Composite:
        for t in self.transports:
            t.start()
        return self

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        for t in self.transports:
            t.stop(timeout)

    def finish(self) -> None:
        for t in self.transports:
            t.finish()


class _Kind:
    """Registry entry: a local job that had ended before following began."""

    name = "local-ended"

    def fits(self, spec: JobLogs) -> bool:
        return spec.paths is not None and spec.ended and spec.fetch is not None

    def open(self, receiver: Receiver, spec: JobLogs) -> LogSource:
        assert spec.paths is not None and spec.fetch is not None
        clients = {site: path for site, path in spec.paths.items() if site != "server" and os.path.exists(path)}
        return Composite(
            [
                LocalTail(receiver, clients, is_finished=lambda: True, name=spec.name, alive=spec.alive),
                AdminPoll(receiver, spec.fetch, status=spec.status, target="server", name=spec.name, alive=spec.alive),
            ]
        )


KIND = _Kind()
