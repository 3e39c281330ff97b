"""Whole-log replies -> only their new text (used by :class:`flarenb.sources.AdminPoll`).

``Session.get_job_logs`` returns a site's WHOLE log on every call, capped to its last 5 MiB with
the prefix ``... output truncated to last 5242880 bytes ...`` cut mid-line (see
``nvflare/private/fed/server/job_cmds.py``, ``_decode_job_log_data``). :class:`LogCursor` finds
where the previous reply's content continues in the new one, without repeating lines, and says
so with a ``[flarenb]`` marker where a gap or a restarted log cannot be avoided.
"""

import re

__all__ = ["LogCursor"]

_TRUNC_RE = re.compile(r"\.\.\. output truncated to last (\d+) bytes \.\.\.\r?\n")


class LogCursor:
    """Turns successive whole-log replies of one site into only their new text.

    It remembers how many characters were consumed (an absolute offset while no gap happened)
    and the last ``fingerprint`` characters consumed. Only complete lines are consumed (up to
    the reply's last newline), so a line or a UTF-8 character still being written is taken the
    next time. For each reply:

    * not truncated and the text at the remembered offset ends with the fingerprint: the new
      text starts at that offset;
    * otherwise the fingerprint (or, when the window start cut it, a shorter tail of it) is
      searched in the reply: new text starts right after its last occurrence. When it also occurs
      earlier (a log whose end repeats itself, e.g. the same line written again and again), the
      new text may have begun after an earlier occurrence: a marker line says that up to N
      repeated lines may be missing there, instead of dropping them silently;
    * not found and the reply is whole: the log was restarted/replaced -> a marker line, then the
      new log from its start;
    * not found and the reply is truncated: lines were lost (the log grew by more than the window
      between two polls, or was replaced) -> a gap marker line, then the reply from its first
      complete line.

    ``take(text, final=False)`` returns a list of ``("text", str)`` / ``("marker", str)`` items to
    feed in order; ``final=True`` also returns the partial last line.
    """

    def __init__(self, fingerprint: int = 65536) -> None:
        self.fp_size = fingerprint
        self.needles = [n for n in (fingerprint // 16, fingerprint // 256) if n >= 64]
        self.consumed = 0
        self.abs_known = True
        self.fp = ""
        self.partial = ""  # text after the last newline of the last reply (not consumed)

    def _locate(self, body: str) -> tuple[int, int]:
        """(where the new text starts in ``body`` or -1, lines possibly missing before it)."""
        fp = self.fp
        idx = body.rfind(fp)
        if idx >= 0:
            return idx + len(fp), self._repeats(body, fp, idx)
        longer = len(fp)
        for n in self.needles:
            if n >= longer:
                continue
            idx = body.rfind(fp[-n:])
            if 0 <= idx < longer - n:  # the longer needle would start before the window
                return idx + n, self._repeats(body, fp[-n:], idx)
            longer = n
        # the window start may have cut into the fingerprint itself: the body then begins with a tail of it
        j = body.rfind("\n", 0, min(len(fp), len(body))) + 1
        for _ in range(256):
            if j < min(32, len(fp) // 2 + 1):
                break
            head = body[:j].lstrip("\ufffd")  # a character cut by the window start decodes as U+FFFD
            if len(head) >= min(32, len(fp) // 2 + 1) and fp.endswith(head):
                return j, 0
            j = body.rfind("\n", 0, j - 1) + 1
        return -1, 0

    @staticmethod
    def _repeats(body: str, needle: str, idx: int) -> int:
        """Lines between the first and the last occurrence of ``needle`` (0 when it occurs once)."""
        first = body.find(needle)
        if first >= idx:
            return 0
        return body.count("\n", first + len(needle), idx + len(needle))

    def _skip_seen(self, body: str, start: int) -> int:
        """Past the whole lines at ``body[start:]`` that are the last lines already consumed: after a gap the reply
        restarts at its first complete line, which may be one that was shown (its start cut by the window, and the
        overlap too short to be trusted as the continuation). Skipping it never hides a loss: the gap's marker is
        shown either way."""
        if not self.fp.endswith("\n"):
            return start
        best, e = start, start
        while e - start < len(self.fp):
            nl = body.find("\n", e)
            if nl < 0:
                break
            e = nl + 1
            if self.fp.endswith(body[start:e]):
                best = e
        return best

    def take(self, text: str, final: bool = False) -> list[tuple[str, str]]:
        m = _TRUNC_RE.match(text)
        body = text[m.end() :] if m else text
        out: list[tuple[str, str]] = []
        if not m and self.abs_known:
            # a character still being written was decoded as U+FFFD at the end of the last reply
            partial = self.partial.rstrip("\ufffd")
            fp, c = self.fp + partial, self.consumed + len(partial)
            start = self.consumed if len(body) >= c and body[c - len(fp) : c] == fp else -1
        elif self.fp:
            start, repeats = self._locate(body)
            if start >= 0 and not m:
                self.abs_known, self.consumed = True, start
            if start >= 0 and repeats:
                out.append(
                    (
                        "marker",
                        f"[flarenb] … up to {repeats} lines may be missing here: the log repeats itself and"
                        " the server sent only its end (download the job for the complete log) …",
                    )
                )
        else:
            start = -1
        if start < 0 and not m:
            if self.partial:  # the old log's unfinished last line, as last seen
                out.append(("text", self.partial + "\n"))
            if self.consumed or self.fp or self.partial:
                out.append(("marker", "[flarenb] … the log was restarted or replaced; showing the new log …"))
            start, self.abs_known, self.consumed, self.fp = 0, True, 0, ""
        elif start < 0 and m is not None:  # (always true here: the branch above took start < 0 without m)
            nl = body.find("\n")
            cut = nl + 1 if nl >= 0 else len(body)
            start = self._skip_seen(body, cut)
            what = "some lines" if (self.consumed or self.fp or self.partial) else "older lines"
            out.append(
                (
                    "marker",
                    f"[flarenb] … {what} not received (log truncated by the server to its last"
                    f" {m.group(1)} bytes; at least {len(body[:cut].encode())} bytes skipped) …",
                )
            )
            self.abs_known, self.fp = False, ""
        end = len(body) if final else max(body.rfind("\n") + 1, start)
        self.partial = body[end:]
        if end > start:
            new = body[start:end]
            out.append(("text", new))
            self.consumed = (self.consumed if m else start) + len(new)
            self.fp = (self.fp + new)[-self.fp_size :]
        return out
