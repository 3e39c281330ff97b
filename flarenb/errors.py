"""User-facing errors.

Every error flarenb raises at a user carries one line that says what happened and what to do next.
A failed call raises a :class:`FlareError`, shown as its one line (no traceback); a ``%flare`` line that does
not parse raises :class:`CommandLineError`, which the magic (:mod:`flarenb.magics`) shows as IPython's
``UsageError``.
"""

from __future__ import annotations

from ._text import terminal_safe


class FlareError(Exception):
    """An error meant for the user: ``str(err)`` is one line naming the problem and the fix."""

    def __init__(self, message: str, hint: str | None = None):
        # the message may quote a server or a site: it must not drive the user's terminal
        self.message = terminal_safe(message)
        self.hint = None if hint is None else terminal_safe(hint)
        message, hint = self.message, self.hint
        super().__init__(f"{message}. {hint}" if hint else message)

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the cell fails (so "Run All" stops) with one line."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class CommandLineError(FlareError):
    """A ``%flare`` line that does not parse: an unknown command, a bad flag or a bad combination of flags.

    Raised by :mod:`flarenb.registry` (usable without IPython); the ``%flare`` magic re-raises it as IPython's
    ``UsageError`` with the same one line."""


class NotConnected(FlareError):
    """No FLARE session has been selected yet."""

    def __init__(self):
        super().__init__(
            "Not connected to FLARE",
            "Run %flare poc start for a local FLARE, or %flare connect --startup-kit DIR for a deployment",
        )


class StartupKitError(FlareError):
    """The startup kit could not be resolved or is not an admin kit."""


class ConnectError(FlareError):
    """The FLARE server did not answer."""


class PocError(FlareError):
    """The local POC deployment could not be started, found or stopped."""
