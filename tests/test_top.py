"""smbsession top: the pure renderer from records, and the real thing in tmux against a lab.

The end-to-end tests run ``smbsession top`` in a private tmux server (its own socket,
killed after) and read the screen with ``capture-pane``: the lab's sessions, a client's
traffic rising, the keys, a resize, a server that goes away, and ``q``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from conftest import SRC, running_lab, smbprotocol_sessions, wait_for
from smbsession.lab import Lab
from smbsession.model import SmbSession
from smbsession.top.render import (
    MIN_HEIGHT,
    MIN_WIDTH,
    View,
    connection_key,
    human_bytes,
    human_seconds,
    render,
    sample,
    sort_sessions,
    traffic,
)

TMUX = shutil.which("tmux")


def _session(sid: int, user: str, pid: int, received: int, sent: int, **more: object) -> SmbSession:
    fields: dict = {"client_computer_name": "192.0.2.10", "client_user_name": user,
                    "dialect": "3.1.1", "num_opens": 1, "seconds_exists": 4000,
                    "seconds_idle": 5, "transport_name": "tcp:192.0.2.1:445",
                    "smbd_pid": pid, "bytes_received": received, "bytes_sent": sent}
    fields.update(more)
    return SmbSession(sid, **fields)


def test_rates_are_per_connection_deltas_and_shared_sessions_are_marked() -> None:
    before = [_session(1, "LAB\\alice", 100, 1000, 500), _session(2, "LAB\\bob", 100, 1000, 500),
              _session(3, "LAB\\carol", 200, 10, 10, num_opens=None, seconds_idle=7200)]
    after = [_session(1, "LAB\\alice", 100, 1000 + (4 << 20), 2500),
             _session(2, "LAB\\bob", 100, 1000 + (4 << 20), 2500),
             _session(3, "LAB\\carol", 200, 10, 10, num_opens=None, seconds_idle=7202)]
    rates = traffic(sample(before), sample(after), 2.0)
    assert rates[connection_key(after[0])] == ((4 << 20) / 2, 1000.0)
    assert rates[connection_key(after[2])] == (0.0, 0.0)
    lines = render(after, rates, View(selected=3, interval=2), 100, 12)
    assert all(len(line) <= 100 for line in lines) and len(lines) == 12
    rows = [line for line in lines if re.match(r"^[ >]\d", line)]
    # busiest first; alice and bob share a connection (*) and its rate
    assert [row.split()[0] for row in rows] == ["1*", "2*", ">3"]
    assert "LAB\\carol" in rows[2] and "2h00m" in rows[2] and " ? " in rows[2]
    assert human_bytes(rates[connection_key(after[0])][0]) in rows[0]
    assert "shares its TCP connection" in lines[1] and "q quit" in lines[-1]
    assert "3 sessions 3 users 2 conns" in lines[0]


def test_sorting_and_the_small_terminal() -> None:
    sessions = [_session(1, "a", 1, 0, 0, seconds_idle=1, num_opens=9, seconds_exists=10),
                _session(2, "b", 2, 0, 0, seconds_idle=50, num_opens=0, seconds_exists=99),
                _session(3, "c", 3, 0, 0, seconds_idle=None, num_opens=None,
                         seconds_exists=None)]
    order = {name: [s.session_id for s in sort_sessions(sessions, {}, name)]
             for name in ("idle", "opens", "age", "traffic")}
    assert order == {"idle": [2, 1, 3], "opens": [1, 2, 3], "age": [2, 1, 3],
                     "traffic": [1, 2, 3]}
    small = render(sessions, {}, View(), MIN_WIDTH - 1, 30)
    assert len(small) == 1 and "too small" in small[0] and len(small[0]) < MIN_WIDTH
    assert render(sessions, {}, View(), 100, MIN_HEIGHT - 1)[0].startswith("terminal too")
    assert render([], {}, View(), 100, 3) == [render([], {}, View(), 100, 3)[0]]
    empty = render([], {}, View(), 100, 10)
    assert "(no sessions match)" in empty and len(empty) == 10
    assert [human_seconds(v) for v in (None, 59, 61, 7260, 90000)] == [
        "-", "59s", "1m01s", "2h01m", "1d01h"]
    assert [human_bytes(v) for v in (None, 5, 2048, 3 << 20, 200 << 30)] == [
        "-", "5", "2.0K", "3.0M", "200G"]


def test_without_a_terminal_it_says_so_in_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "smbsession", "top"], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=30,
                         env={**os.environ, "PYTHONPATH": SRC}, check=False)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "needs a terminal" in out.stderr
    assert out.stdout == ""


class Tmux:
    """A private tmux server running one command in a pane of a given size."""

    def __init__(self, command: list[str], width: int = 130, height: int = 24,
                 env: dict[str, str] | None = None) -> None:
        self.socket = f"smbsession-top-{uuid.uuid4().hex[:8]}"
        # $COLUMNS/$LINES of the test's own terminal would override the pane's size.
        argv = ["env", "-u", "COLUMNS", "-u", "LINES", f"PYTHONPATH={SRC}",
                *(f"{k}={v}" for k, v in (env or {}).items()), *command]
        line = " ".join(shlex.quote(a) for a in argv)
        self.tmux("new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
                  f"{line}; echo EXIT=$?; sleep 60")
        self.tmux("resize-window", "-t", "top", "-x", str(width), "-y", str(height))

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "top", *keys)

    def wait(self, predicate, timeout: float = 20) -> str:
        found = wait_for(lambda: predicate(self.screen()), timeout, 0.2)
        screen = self.screen()
        assert found, f"not on the screen:\n{screen}"
        return screen

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.tmux("kill-server")


@contextlib.contextmanager
def top(*args: str, width: int = 130, height: int = 24,
        env: dict[str, str] | None = None) -> Iterator[Tmux]:
    pane = Tmux([sys.executable, "-m", "smbsession", "top", *args], width, height, env)
    try:
        yield pane
    finally:
        pane.close()


def _row(screen: str, user: str) -> list[str] | None:
    for line in screen.splitlines():
        if user in line and re.match(r"^[ >]\d", line):
            return line.split()
    return None


def _writer(lab: Lab, seconds: float, stop: threading.Event) -> None:
    """labcarol writes 256 KiB every 50 ms on her own connection until ``stop``."""
    from smbsession.lab.clients import open_file

    with smbprotocol_sessions(lab, ["labcarol"]) as (session,):
        from smbprotocol.tree import TreeConnect

        tree = TreeConnect(session, r"\\127.0.0.1\share")
        tree.connect()
        handle = open_file(tree, "top-traffic.bin")
        data = os.urandom(256 << 10)
        deadline = time.monotonic() + seconds
        offset = 0
        while not stop.is_set() and time.monotonic() < deadline:
            handle.write(data, offset)
            offset += len(data)
            time.sleep(0.05)
        handle.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make monitor-deps)")
def test_top_shows_the_sessions_and_a_client_traffic_rising_then_quits(lab: Lab,
                                                                        alice_bob) -> None:
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(lab, 60, stop))
    with top("-SmbConf", str(lab.conf_path), "--interval", "0.5") as pane:
        screen = pane.wait(lambda s: "LABSRV\\labalice" in s and "LABSRV\\labbob" in s)
        alice = _row(screen, "LABSRV\\labalice")
        assert alice and alice[0].endswith("*")  # alice and bob share one connection
        writer.start()
        try:
            def carol_busy(s: str) -> bool:
                row = _row(s, "LABSRV\\labcarol")
                return bool(row) and row[-2][-1] in "KMG"  # IN/s of at least a KiB/s
            screen = pane.wait(carol_busy)
            assert screen.splitlines()[3].split()[1] == "LABSRV\\labcarol"  # busiest first
            pane.keys("i")
            pane.wait(lambda s: "sort:idle" in s)
            pane.keys("Down")
            pane.wait(lambda s: re.search(r"^>\d", s, re.M) is not None)
            pane.keys("+")
            pane.wait(lambda s: "every 1s" in s)
            pane.tmux("resize-window", "-t", "top", "-x", "40", "-y", "8")
            pane.wait(lambda s: "too small" in s)
            pane.tmux("resize-window", "-t", "top", "-x", "130", "-y", "24")
            pane.wait(lambda s: "LABSRV\\labcarol" in s)
        finally:
            stop.set()
            writer.join()
        pane.keys("q")
        screen = pane.wait(lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen and "Traceback" not in screen


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make monitor-deps)")
def test_top_lives_through_a_server_that_goes_away_and_ctrl_c() -> None:
    with running_lab("top-away") as own, smbprotocol_sessions(own, ["labalice"]), \
            top("-SmbConf", str(own.conf_path), "--interval", "0.5") as pane:
        pane.wait(lambda s: "LABSRV\\labalice" in s)
        own.stop()
        screen = pane.wait(lambda s: "cannot read the sessions" in s)
        assert "Traceback" not in screen
        pane.keys("C-c")
        screen = pane.wait(lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen and "Traceback" not in screen


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make monitor-deps)")
def test_top_closes_the_selected_session_after_confirmation(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labdave"] if any(u.name == "labdave" for u in lab.users())
                              else ["labbob"]) as (session,), \
            top("-SmbConf", str(lab.conf_path), "-SessionId",
                str(session.session_id), "--interval", "0.5") as pane:
        sid = str(session.session_id)
        pane.wait(lambda s: sid in s)
        pane.keys("c")
        pane.wait(lambda s: "select a session first" in s)
        pane.keys("Down")
        pane.wait(lambda s: f">{sid}" in s)
        pane.keys("c")
        pane.wait(lambda s: "y/N" in s)
        pane.keys("n")
        pane.wait(lambda s: "not closed" in s)
        pane.keys("c")
        pane.wait(lambda s: "y/N" in s)
        pane.keys("y")
        screen = pane.wait(lambda s: "(no sessions match)" in s)
        assert f"{sid}: closed" in screen
        pane.keys("q")
        assert "EXIT=0" in pane.wait(lambda s: "EXIT=" in s)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make monitor-deps)")
def test_top_over_ssh(lab: Lab, alice_bob, tmp_path) -> None:
    pytest.importorskip("asyncssh")
    from helpers.sshd import running_sshd, trusting_home

    with running_sshd() as sshd:
        target = f"ssh://root@127.0.0.1:{sshd.port}"
        with top("-SmbConf", str(lab.conf_path), "-CimSession", target,
                 "-ClientUserName", "labalice", env=trusting_home(sshd, tmp_path)) as pane:
            screen = pane.wait(lambda s: "LABSRV\\labalice" in s)
            assert target in screen.splitlines()[0] and "LABSRV\\labbob" not in screen
            pane.keys("q")
            assert "EXIT=0" in pane.wait(lambda s: "EXIT=" in s)


