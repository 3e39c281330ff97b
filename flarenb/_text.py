"""Text that reaches a terminal or a ``text/plain`` output: neutralise what a remote site could smuggle in.

Log lines, job names, site names and server messages come from other machines. Printed as they are, an escape
sequence can set the user's clipboard (OSC 52), disguise a link (OSC 8), move the cursor and overwrite what is
shown (CSI), or hide text (NUL, CR, bidi overrides). The HTML side escapes markup; :func:`terminal_safe` is its
text counterpart, shared by every ``__str__`` that shows remote text (and the widget's text snapshot).

* Escape sequences (7-bit ``ESC ...`` and 8-bit C1 ``CSI``/``OSC``/``DCS``...) are removed whole, their payload
  included — colours are dropped, as the static snapshot already does. An unterminated one ends at the line's end,
  so it never hides the lines after it.
* Every other C0/C1 control except newline and tab, DEL, and the bidi override/isolate characters becomes a
  visible placeholder (``␀``, ``␛``, ``␍`` … or ``\\x9b``-style text), so nothing is silently hidden.
* ``\\r\\n`` becomes ``\\n``.
"""

from __future__ import annotations

import re

__all__ = ["terminal_safe"]

# ESC [ ... final | ESC ] ... (BEL | ST) | ESC P/X/^/_ ... ST | ESC + one char; and the 8-bit C1 forms
_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]                          # CSI
  | (?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?   # OSC (unterminated: to the line's end)
  | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)?  # DCS, SOS, PM, APC
  | \x1b[ -/]*[0-~]                                           # other ESC sequences (charset, keypad, ...)
    """,
    re.VERBOSE,
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode "control pictures": ␀ ␁ … ␛ …
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """``text`` as a string that cannot drive a terminal: see the module docstring."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and "\x1b" not in s:  # the common case: nothing to do (newlines/tabs are not printable)
        return s
    s = s.replace("\r\n", "\n")
    s = _SEQUENCE.sub("", s)
    return _CONTROL.sub(_visible, s)
