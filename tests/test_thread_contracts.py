"""Thread contracts (issue 11): receiver callbacks run outside its lock, own threads are known by identity, joins
are bounded, waiting for a finished job's streams is woken by an event. A deadlock fails within a few seconds
(daemon threads, bounded joins) instead of hanging the run."""

import threading
import time

from flarenb import follower, threads
from flarenb.receiver import Receiver


class Idle:
    """A transport that feeds nothing (the test feeds the receiver itself)."""

    def start(self):
        return self

    def stop(self, timeout=5.0):
        pass


def run(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def test_release_from_a_subscriber_while_another_thread_follows_does_not_deadlock():
    """Lock order: a subscriber (on the ingesting thread) calls release(), which takes the follower registry's lock,
    while another thread inside follow() holds that lock and asks the receiver whether its streams are done."""
    h = follower.follow("jobLockOrder", lambda rx: Idle())
    in_cb, following, released = threading.Event(), threading.Event(), threading.Event()
    later = []

    def on_update(u):
        if u.lines and not in_cb.is_set():
            in_cb.set()
            following.wait(5)
            time.sleep(0.2)  # the other thread is inside follow() now, holding the registry's lock
            h.release()
            released.set()

    h.subscribe(on_update, replay=False)

    def follow_again():
        in_cb.wait(5)
        following.set()
        later.append(follower.follow("jobLockOrder", lambda rx: Idle()))

    other = run(follow_again)
    feeder = run(h.receiver.feed, "server", b"a line\n")
    feeder.join(5)
    other.join(5)
    assert not feeder.is_alive() and not other.is_alive(), "deadlock between release() and follow()"
    assert released.is_set() and len(later) == 1
    assert later[0].receiver is h.receiver
    later[0].release()
    assert follower.active_followers() == {}
    assert h.receiver.site("server").state == "stopped"


def test_a_subscriber_may_take_a_lock_held_by_a_thread_calling_the_receiver():
    rx = Receiver(fmt="text")
    user_lock = threading.Lock()  # e.g. a widget's lock, held while it reads the receiver
    holding, in_cb = threading.Event(), threading.Event()
    got, done = [], []

    def cb(u):
        if u.lines:
            in_cb.set()
            with user_lock:
                got.extend(ln.text for ln in u.lines)

    def on_done(site, s):
        with user_lock:
            done.append(site)

    rx._on_done = on_done
    rx.subscribe(cb, replay=False)

    def reader():
        with user_lock:
            holding.set()
            in_cb.wait(5)
            rx.lines("server")  # needs the receiver's state lock
            rx.all_done  # noqa: B018

    other = run(reader)
    holding.wait(5)
    feeder = run(lambda: (rx.feed("server", b"a\n"), rx.end("server")))
    feeder.join(5)
    other.join(5)
    assert not feeder.is_alive() and not other.is_alive(), "a callback ran under the receiver's lock"
    assert got == ["a"] and done == ["server"]


def test_concurrent_ingest_delivers_every_line_once_and_in_order():
    rx = Receiver(fmt="text", max_lines=1_000_000, idle_timeout=None)
    plain, chatty = [], []
    depth = [0, 0]  # current, max nesting of chatty's callback

    def chatty_cb(u):
        depth[0] += 1
        depth[1] = max(depth[1], depth[0])
        chatty.append(u)
        if u.site == "site-0" and u.lines:  # calls back into the receiver: queued, never nested
            rx.feed("echo", f"echo {u.lines[-1].seq}\n".encode())
            rx.sites()
        depth[0] -= 1

    rx.subscribe(plain.append, replay=False)
    start = threading.Barrier(7)

    def feeder(i):
        start.wait()
        for n in range(300):
            rx.feed(f"site-{i % 3}", f"t{i} n{n}\n".encode())
            if n == 150 and i == 0:
                rx.subscribe(chatty_cb, replay=True)  # a late subscriber, while the others ingest

    feeders = [run(feeder, i) for i in range(6)]
    ticker = run(lambda: (start.wait(), [rx.tick() for _ in range(200)]))
    for t in [*feeders, ticker]:
        t.join(10)
        assert not t.is_alive()
    assert rx._out.wait(rx._out.queued, 5)
    assert depth[1] == 1
    for seen, complete in ((plain, True), (chatty, False)):
        for site in rx.sites():
            seqs = [ln.seq for u in seen if u.site == site for ln in u.lines]
            assert seqs == sorted(set(seqs)), site  # once each, in order
            want = [ln.seq for ln in rx.lines(site)]
            assert seqs == (want if complete or site == "echo" else want[want.index(seqs[0]) :]), site
            if site != "echo":
                assert not complete or len(seqs) == 600
    # the late subscriber got everything from its replay on, without a gap
    for site in ("site-0", "site-1", "site-2"):
        seqs = [ln.seq for u in chatty if u.site == site for ln in u.lines]
        assert seqs == list(range(seqs[0], 601))


def test_wait_all_done_is_woken_by_the_close_and_waits_for_its_delivery():
    rx = Receiver(fmt="text", idle_timeout=None)
    states = []
    rx.subscribe(lambda u: (time.sleep(0.05), states.append(u.state)), replay=False)
    rx.feed("server", b"x\n")
    assert not rx.wait_all_done(0.05)
    closer = threading.Timer(0.2, rx.end, args=("server",))
    closer.start()
    t0 = time.monotonic()
    assert rx.wait_all_done(5)
    assert states[-1] == "ended"
    assert time.monotonic() - t0 < 2
    closer.join(5)


def test_follower_wait_done_and_a_callback_that_waits_does_not_block_its_own_delivery():
    h = follower.follow("jobWait", lambda rx: Idle())
    inside = []
    h.subscribe(lambda u: inside.append(h.wait_done(1.0)) if u.state == "ended" else None, replay=False)
    h.receiver.feed("server", b"x\n")
    t0 = time.monotonic()
    h.receiver.end("server")
    assert inside == [False] and time.monotonic() - t0 < 0.5  # from inside a delivery: no self-wait
    assert h.wait_done(1.0)
    h.release()


def test_own_threads_are_known_by_identity_and_joins_are_bounded():
    gate = threading.Event()
    seen = []
    t = threads.start(lambda: (seen.append(threads.is_own()), gate.wait(5)), "not-a-flarenb-name")
    impostor = threading.Thread(target=lambda: seen.append(threads.is_own()), name="flarenb-impostor")
    impostor.start()
    impostor.join(5)
    assert threads.is_own(t) and not threads.is_own(impostor) and not threads.is_own()
    t0 = time.monotonic()
    assert threads.join(t, 0.1) is False  # still running: gave up after the timeout
    assert time.monotonic() - t0 < 2
    gate.set()
    assert threads.join(t, 5) is True
    assert sorted(seen) == [False, True]
    assert threads.join(threading.current_thread(), 5) is False  # never waits for itself
    assert threads.join(None) is True


def test_release_from_a_callback_on_a_thread_flarenb_did_not_name_still_stops_elsewhere():
    h = follower.follow("jobAnon", lambda rx: Idle())
    stopped_on = []
    orig = h._follower._stop_now

    def spy():
        stopped_on.append(threading.current_thread())
        orig()

    h._follower._stop_now = spy
    h.subscribe(lambda u: h.release() if u.lines else None, replay=False)
    feeder = run(h.receiver.feed, "server", b"x\n")  # an anonymous thread, not named flarenb-...
    feeder.join(5)
    deadline = time.monotonic() + 5
    while not stopped_on and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stopped_on and stopped_on[0] is not feeder and threads.is_own(stopped_on[0])
    assert threads.join(stopped_on[0], 5)
    assert h.receiver.site("server").state == "stopped"


def test_all_done_waits_for_the_closing_update_to_be_delivered():
    rx = Receiver(fmt="text", idle_timeout=None)
    in_cb, go_on = threading.Event(), threading.Event()

    def cb(u):
        if u.state == "ended":
            in_cb.set()
            go_on.wait(5)

    rx.subscribe(cb, replay=False)
    rx.feed("s", b"x\n")
    closer = run(rx.end, "s")
    assert in_cb.wait(5)
    assert rx.all_closed and not rx.all_done  # a view finishing now would miss the last update
    go_on.set()
    closer.join(5)
    assert rx.all_done


def test_releasing_a_local_tail_joins_its_file_system_notification_threads(tmp_path):
    """LocalTail's watchdog observer (its own thread, the platform reader's, one per watch) stops with the source:
    the last release of its follower leaves no thread behind, whether or not the job ended."""
    from flarenb.sources import LocalTail

    before = set(threading.enumerate())
    path = tmp_path / "run" / "log.txt"
    h = follower.follow("jobFs", lambda rx: LocalTail(rx, {"server": str(path)}, name="jobFs"))
    assert h.transport.mechanism == "inotify"
    started = [t for t in threading.enumerate() if t not in before]
    assert len(started) >= 5  # tail, receiver watchdog, observer, inotify reader and dispatcher, emitters
    path.parent.mkdir()
    path.write_bytes(b"x\n")
    deadline = time.monotonic() + 5
    while not h.receiver.lines("server") and time.monotonic() < deadline:
        time.sleep(0.01)
    h.release()
    assert [t.name for t in threading.enumerate() if t not in before] == []
