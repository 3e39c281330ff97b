"""One-line errors for what can go wrong when a job is submitted (what happened, and what to do)."""

from __future__ import annotations

from .errors import FlareError
from .vocab import one_line

RETRIES = 3


class SubmitError(FlareError):
    pass


def connection_errors() -> tuple:
    from nvflare.fuel.flare_api import api_spec as A

    return (A.NoConnection, A.SessionClosed, ConnectionError, TimeoutError, A.NoReply)


def server_log(f) -> str:
    poc = getattr(f, "poc", None)
    if poc is not None:
        return f"the server log ({poc.site_dir(poc.server_name) / 'log.txt'})"
    return "the FLARE server's log (ask its administrator)"


def server_failed(f, e: BaseException) -> SubmitError:
    return SubmitError(
        f"The FLARE server failed while accepting the job ({one_line(e)})",
        f"See {server_log(f)} for the cause, fix it, then run the cell again",
    )


def rejected(e: BaseException) -> SubmitError:
    return SubmitError(f"The server rejected the job: {one_line(e).rstrip('.')}", "Fix the job folder and submit again")


def not_allowed(f, e: BaseException) -> SubmitError:
    return SubmitError(
        f"Not allowed to submit jobs in study '{getattr(f, 'study', '?')}': {one_line(e)}",
        "Ask the project admin for a role that may submit jobs, or pass --study NAME",
    )


def connection_failed(last_error: BaseException | None) -> SubmitError:
    return SubmitError(
        f"Could not submit the job: the connection failed {RETRIES} times ({one_line(last_error)})",
        "Check the server (%flare info) and run the cell again: it cannot create a duplicate",
    )
