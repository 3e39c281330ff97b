"""quiet(): NVFlare's chatter is silenced through logging and its own print funnel, never by swapping the
process-wide sys.stdout/sys.stderr (what the user prints from another thread meanwhile is not lost)."""

import logging
import sys
import threading

from flarenb._quiet import last_output, quiet


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_print_from_another_thread_during_quiet_reaches_the_cell(capsys):
    before = sys.stdout, sys.stderr
    with quiet() as buf:
        assert (sys.stdout, sys.stderr) == before  # the process-wide streams are never swapped
        t = threading.Thread(target=lambda: (print("the user's line"), print("on stderr", file=sys.stderr)))
        t.start()
        t.join(5)
    out = capsys.readouterr()
    assert "the user's line" in out.out and "on stderr" in out.err
    assert "the user's line" not in buf.getvalue()


def test_nvflare_console_messages_of_the_quiet_thread_go_to_the_buffer(capsys):
    from nvflare.fuel.hci.client import api, file_transfer

    with quiet() as buf:
        api._print_hci_message("Connecting to FLARE ...")  # what AdminAPI.connect prints
        file_transfer._print_hci_message("no cmd handler found for x")
        other = threading.Thread(target=api._print_hci_message, args=("from another thread",))
        other.start()
        other.join(5)
    out = capsys.readouterr()
    assert "Connecting to FLARE" not in out.out + out.err
    assert "no cmd handler" not in out.out + out.err
    assert "from another thread" in out.out + out.err
    assert buf.getvalue() == "Connecting to FLARE ...\nno cmd handler found for x\n" == last_output()
    api._print_hci_message("after the block")
    assert "after the block" in "".join(capsys.readouterr())


def test_nvflare_info_logging_is_suppressed_and_levels_and_filters_are_restored():
    top = logging.getLogger("nvflare")
    child = logging.getLogger("nvflare.fuel.f3.cellnet.core_cell")
    explicit = logging.getLogger("nvflare.explicit_debug")
    mine = logging.getLogger("user.code")
    handler = Collect()
    root = logging.getLogger()
    saved = top.level, explicit.level, root.level
    top.setLevel(logging.INFO)
    explicit.setLevel(logging.DEBUG)  # a child with its own lower level: only the handler filter stops it
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        with quiet():
            child.info("cell chatter")
            explicit.info("explicit chatter")
            child.warning("a real warning")
            mine.info("the user's log")
            assert top.level == logging.WARNING
        assert top.level == logging.INFO and explicit.level == logging.DEBUG
        assert handler.filters == []
        child.info("after")
        assert handler.messages == ["a real warning", "the user's log", "after"]
    finally:
        root.removeHandler(handler)
        top.setLevel(saved[0])
        explicit.setLevel(saved[1])
        root.setLevel(saved[2])


def test_nested_and_overlapping_blocks_restore_only_when_the_last_one_exits():
    top = logging.getLogger("nvflare")
    saved = top.level
    top.setLevel(logging.INFO)
    entered, leave = threading.Event(), threading.Event()

    def other_block():
        with quiet():
            entered.set()
            leave.wait(5)

    try:
        with quiet():
            with quiet():
                assert top.level == logging.WARNING
            assert top.level == logging.WARNING  # the outer block is still open
            t = threading.Thread(target=other_block)
            t.start()
            assert entered.wait(5)
        assert top.level == logging.WARNING  # the other thread's block is still open
        leave.set()
        t.join(5)
        assert top.level == logging.INFO
    finally:
        leave.set()
        top.setLevel(saved)
