"""Real SMB sessions held open for the benchmarks, by smbprotocol clients in worker
processes.

Each worker opens its share of the sessions, many on one TCP connection (so that smbd
processes stay few), each with a tree connect and every tenth with a file open, reports
how far it got and holds everything until the benchmark ends. :class:`Holders` starts the
workers, waits for them and stops them, whatever happens in between.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from types import TracebackType

#: Sessions on one TCP connection unless a benchmark says otherwise.
SESSIONS_PER_CONNECTION = 500
CLONE_NEWNET = 0x40000000


def _enter_netns(name: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def _hold(host: str, port: int, share: str, users: list[tuple[str, str]], count: int,
          start: int, per_connection: int, netns: str | None, ready: mp.Queue,
          stop: mp.Event) -> None:
    """Worker: open ``count`` sessions to ``host``, report, hold them until ``stop``."""
    keep: list[object] = []
    conn = None
    opened = 0
    try:
        if netns:
            _enter_netns(netns)
        from smbprotocol.connection import Connection
        from smbprotocol.session import Session
        from smbprotocol.tree import TreeConnect

        from smbsession.lab.clients import open_file

        for i in range(count):
            if i % per_connection == 0:
                conn = Connection(uuid.uuid4(), host, port)
                conn.connect()
                keep.append(conn)
            user, password = users[(start + i) % len(users)]
            session = Session(conn, user, password, require_encryption=False)
            session.connect()
            tree = TreeConnect(session, rf"\\{host}\{share}")
            tree.connect()
            keep += [session, tree]
            if (start + i) % 10 == 0:
                keep.append(open_file(tree, f"bench-{start + i}.txt", write=False))
            opened += 1
    except Exception as exc:  # report how far we got; the benchmark prints it
        ready.put(("error", opened, repr(exc)))
        stop.wait()
        return
    ready.put(("ok", opened, ""))
    stop.wait()


class Holders:
    """Worker processes holding sessions to one share; a context manager that stops them.

    ``users`` are (name, password) pairs, taken in turn; ``netns`` the network namespace
    (``ip netns`` name) the clients run in, if not ours."""

    def __init__(self, share: str, users: list[tuple[str, str]],
                 per_connection: int = SESSIONS_PER_CONNECTION,
                 netns: str | None = None) -> None:
        self.share = share
        self.users = users
        self.per_connection = per_connection
        self.netns = netns
        self.held = 0
        self._stop = mp.Event()
        self._ready: mp.Queue = mp.Queue()
        self._workers: list[mp.Process] = []

    def add(self, targets: list[tuple[str, int, int]]) -> float:
        """Open more sessions, one worker per ``(host, port, count)`` of ``targets``, all
        at once, and wait until they are all open; return the seconds it took. A worker
        that stops early is reported on stdout (the benchmark then measures the sessions
        there are)."""
        started = time.perf_counter()
        waiting = 0
        for host, port, count in targets:
            if count <= 0:
                continue
            worker = mp.Process(target=_hold, args=(
                host, port, self.share, self.users, count, self.held, self.per_connection,
                self.netns, self._ready, self._stop))
            worker.start()
            self._workers.append(worker)
            self.held += count
            waiting += 1
        for _ in range(waiting):
            state, opened, error = self._ready.get(timeout=3600)
            if state != "ok":
                print(f"a worker stopped after {opened} sessions: {error}", flush=True)
        return time.perf_counter() - started

    def grow(self, host: str, port: int, total: int, workers: int = 2) -> float:
        """Open sessions to ``host`` until ``total`` are held, over ``workers`` workers."""
        need = total - self.held
        return self.add([(host, port, need // workers + (1 if i < need % workers else 0))
                         for i in range(workers)])

    def close(self) -> None:
        """End every worker (their sessions with them)."""
        self._stop.set()
        for worker in self._workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()

    def __enter__(self) -> Holders:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
