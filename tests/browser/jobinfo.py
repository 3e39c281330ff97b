"""What the widget should show for a job, computed from what the server says (for the browser tests)."""

from __future__ import annotations

import math


def format_duration(seconds: float) -> str:
    """The widget's elapsed text (js/src/format.ts formatDuration)."""
    s = max(0, math.floor(seconds))
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    if h:
        return f"{h}h {m:02d}m {sec:02d}s"
    return f"{m}m {sec:02d}s" if m else f"{sec}s"


def duration_text(flare, job_id: str) -> str:
    from flarenb import jobs
    from flarenb.widget import _duration_seconds

    meta = jobs.get_job(job_id, flare=flare).meta()
    seconds = _duration_seconds(meta.get("duration"))
    assert seconds is not None, f"NVFlare reported no duration for {job_id}: {meta.get('duration')!r}"
    return format_duration(seconds)
