"""Shared setup for flarenb's real-POC benchmarks (bench_submit_reattach, bench_log_latency, bench_idle_follow).

Import this module **before** flarenb or nvflare: :func:`isolate` points ``HOME`` and ``NVFLARE_POC_WORKSPACE``
at a temporary folder so a benchmark never touches the user's real ``~/.nvflare`` or POC.

    from common import isolate, BenchPoc, ...
    root = isolate("submit")            # before importing flarenb
    with BenchPoc(root, clients=2) as bp:   # starts a POC on a free port; stops it and closes sessions on exit
        f = bp.flare                    # flarenb.session.Flare with .poc (LocalTail for followed jobs)
        a = bp.admin_flare()            # same kit, no .poc (AdminPoll for followed jobs)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# -- isolation -------------------------------------------------------------------------------------------
def isolate(name: str) -> Path:
    """A temp root with ``home/`` and ``poc/``; sets HOME, NVFLARE_POC_WORKSPACE, XDG_* (before any import)."""
    if "flarenb" in sys.modules or "nvflare" in sys.modules:
        raise RuntimeError("bench.common.isolate() must run before flarenb/nvflare are imported")
    root = Path(tempfile.mkdtemp(prefix=f"flarenb-bench-{name}-"))
    (root / "home").mkdir()
    os.environ["HOME"] = str(root / "home")
    os.environ["NVFLARE_POC_WORKSPACE"] = str(root / "poc")
    os.environ["XDG_CACHE_HOME"] = str(root / "home" / ".cache")
    os.environ["XDG_DATA_HOME"] = str(root / "home" / ".local" / "share")
    os.environ.pop("NVFLARE_STARTUP_KIT_DIR", None)
    return root


def free_port() -> int:
    """A free TCP port P with P+1 free too (the POC's admin port may be the next one)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and _port_free(port + 1):
            return port
    raise RuntimeError("no free port pair found")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class BenchPoc:
    """A real local POC for one benchmark run: started on a free port, always stopped, sessions closed."""

    def __init__(self, root: Path, clients: int = 2, keep: bool = False):
        self.root, self.clients, self.keep = root, clients, keep
        self.flare = None
        self.port = None
        self.started_in = None

    def __enter__(self) -> BenchPoc:
        from flarenb import poc

        self.port = free_port()
        t = time.monotonic()
        try:
            self.flare = poc.start(clients=self.clients, progress=False, port=self.port)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        self.started_in = time.monotonic() - t
        return self

    @property
    def poc(self):
        return self.flare.poc

    @property
    def kit_path(self) -> str:
        return str(self.flare.kit.path)

    def admin_flare(self, alias: bool | str = False):
        """A second connection with the same admin kit and no ``.poc``: jobs followed through it use AdminPoll.

        ``alias=True`` (or a link name) reaches the kit through a symlink, so the follower key (kit path, study, job
        id) differs from the POC connection's and several transports can follow the same job at the same time.
        """
        from flarenb import session

        kit = self.flare.kit
        path = kit.path
        if alias:
            link = self.root / (alias if isinstance(alias, str) else "admin-kit-alias")
            if not link.exists():
                link.symlink_to(kit.path, target_is_directory=True)
            path = str(link)
        return session.Flare(session.Kit(path=path, username=kit.username, source="startup_kit"), study="default")

    def __exit__(self, *exc) -> None:
        from flarenb import poc, session

        try:
            session.close_all()
        finally:
            try:
                poc.stop(workspace=self.root / "poc", progress=False)
            finally:
                session.close_all()
                if not self.keep:
                    shutil.rmtree(self.root, ignore_errors=True)


# -- jobs ------------------------------------------------------------------------------------------------
def export_job(dest: Path, name: str, rounds: int, client_src: str | None = None, train_args: str = "") -> Path:
    """Export the tests' numpy FedAvg job to ``dest/export/<name>``; ``client_src`` replaces its client.py."""
    import contextlib

    from tests.conftest import export_job as _export

    cwd = os.getcwd()
    try:
        with contextlib.redirect_stdout(None):
            job = _export(dest, name=name, rounds=rounds, train_args=train_args)
    finally:
        os.chdir(cwd)
    if client_src is not None:
        (job / "app" / "custom" / "client.py").write_text(client_src)
    return job


def wait_status(flare, job_id: str, pred, timeout: float, interval: float = 0.5) -> str:
    """Poll the job's status until ``pred(status)`` (returns it) or the timeout (returns the last one)."""
    deadline = time.monotonic() + timeout
    status = ""
    while True:
        try:
            status = str(flare.call(lambda s: s.get_job_meta(job_id)).get("status"))
        except Exception as e:
            status = f"error: {e}"
        if pred(status) or time.monotonic() > deadline:
            return status
        time.sleep(interval)


def terminal(status: str) -> bool:
    return status.upper().startswith(("FINISHED", "FAILED", "ABANDONED"))


def abort_quietly(flare, job_id: str) -> None:
    try:
        flare.call(lambda s: s.abort_job(job_id))
    except Exception:
        pass


# -- CPU per thread ----------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu() -> dict[str, float]:
    """``{thread name: CPU seconds (user+system)}`` of this process's live Python threads (Linux /proc)."""
    out: dict[str, float] = {}
    for t in threading.enumerate():
        tid = getattr(t, "native_id", None)
        if tid is None:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)
        key = t.name
        while key in out:
            key += "'"
        out[key] = cpu
    return out


# -- statistics and output ---------------------------------------------------------------------------------
def pct(values, q: float) -> float:
    """The q-quantile (0..1) by linear interpolation (NaN if empty)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values) -> dict:
    xs = list(values)
    if not xs:
        return {"n": 0, "median": math.nan, "p95": math.nan, "min": math.nan, "max": math.nan}
    return {"n": len(xs), "median": statistics.median(xs), "p95": pct(xs, 0.95), "min": min(xs), "max": max(xs)}


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt(x, unit: str = "s", digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "ms":
        return f"{x * 1000:.{max(digits - 2, 0)}f} ms"
    if unit == "x":
        return f"{x:.2f}×"
    return f"{x:.{digits}f} {unit}".rstrip()


def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    out = [title] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths), *map(line, cells)]
    return "\n".join(out)


def machine() -> dict:
    import platform

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": load, "host": platform.node()}


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    data = {"bench": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **data}
    path.write_text(json.dumps(_clean(data), indent=2, default=_json_default) + "\n")
    return path


def _clean(o):
    """NaN -> None (strict JSON), recursively."""
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _json_default(o):
    return str(o)


def polling_tail(job):
    """A second follower of ``job``'s local log files (POC) whose LocalTail polls (``mechanism="polling"``: what
    LocalTail did before file-system notifications, and does where they are unavailable); the same end detection
    and liveness as ``follow_job`` builds."""
    from flarenb import follower, logsource
    from flarenb.sources import LocalTail

    spec = logsource.job_logs_spec(job, logsource.job_status(job))
    assert spec.paths is not None, "not a job on the local POC"

    def tail(rx):
        name = f"{job.id}-polling"
        return LocalTail(rx, spec.paths, is_finished=spec.is_finished, name=name, alive=spec.alive, mechanism="polling")

    return follower.follow(job.id, tail, key=("bench-polling", *job.key))
