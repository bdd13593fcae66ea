"""Sample SMB clients for the lab: real sessions to look at.

Run as ``python -m smbsession.lab.clients LABDIR SECONDS READY`` (``smbsession lab
clients`` does it in the background, :meth:`.Lab.start_clients`). It holds, for SECONDS,
five sessions:

- three ``smbclient`` sessions of several users and dialects (SMB3_11, SMB2_10, NT1), two
  with a file open;
- a Python client (``smbprotocol``, the ``[lab]`` extra) with two users' sessions on one
  TCP connection (SMB 3.0.2), one of them with two files open. Without smbprotocol it
  makes no session at all and exits 3, rather than three sessions out of five.

Once connected, it writes the file READY: ``{"sessions": N, "expected": 5}``, N being how
many sessions the lab's smbd gained.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .standalone import SHARE, Lab

#: (user, smbclient max protocol, files to hold open)
SMBCLIENT_SESSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("labalice", "SMB3_11", ("alice-report.txt",)),
    ("labbob", "SMB2_10", ()),
    ("labcarol", "NT1", ("carol-notes.txt",)),
)
PYTHON_SESSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("labbob", ("bob-1.txt", "bob-2.txt")),
    ("labalice", ()),
)


def _smbclient(lab: Lab, user: str, protocol: str, files: tuple[str, ...]) -> subprocess.Popen:
    from .standalone import samba_program

    proc = subprocess.Popen(
        [
            samba_program("smbclient"), f"//127.0.0.1/{SHARE}", "-p", str(lab.port),
            "-s", str(lab.conf_path), "-A", str(lab.user(user).auth_file(lab)), "-m", protocol,
        ],
        stdin=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None
    for name in files:
        proc.stdin.write(f"open {name}\n")
    proc.stdin.flush()
    return proc


def _count_sessions(lab: Lab) -> int | None:
    """How many sessions the lab's smbd lists now (None: it could not be read)."""
    from .. import read_sessions

    try:
        return len(read_sessions(str(lab.conf_path), source="smbstatus").sessions)
    except Exception as exc:  # the lab's smbd may still be settling; report at the end
        print(f"waiting for sessions: {exc}", flush=True)
        return None


def _wait_sessions(lab: Lab, expected: int, timeout: float) -> int:
    """Wait until the lab's smbd lists ``expected`` sessions; return how many it lists."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = _count_sessions(lab) or count
        if count >= expected:
            break
        time.sleep(0.2)
    return count


def open_file(tree: object, name: str, write: bool = True, share: bool = True,
              create: bool = True) -> object:
    """Open ``name`` on an smbprotocol tree connect and return the open handle.

    ``write`` asks for write access as well as read; ``share`` lets others read and write
    it meanwhile (False: an exclusive open); ``create`` makes the file when missing. Used
    by the sample clients, the tests and the benchmark.
    """
    from smbprotocol.open import (
        CreateDisposition,
        CreateOptions,
        FilePipePrinterAccessMask,
        ImpersonationLevel,
        Open,
        ShareAccess,
    )

    access = FilePipePrinterAccessMask.GENERIC_READ
    if write:
        access |= FilePipePrinterAccessMask.GENERIC_WRITE
    handle = Open(tree, name)
    handle.create(
        ImpersonationLevel.Impersonation,
        access,
        0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE if share else 0,
        CreateDisposition.FILE_OPEN_IF if create else CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
    )
    return handle


def _python_client(lab: Lab) -> list[object]:
    """Open two sessions on one TCP connection with smbprotocol; return what to keep alive."""
    import uuid

    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
    conn.connect(Dialects.SMB_3_0_2)
    keep: list[object] = [conn]
    for user, files in PYTHON_SESSIONS:
        session = Session(conn, user, lab.user(user).password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, f"\\\\127.0.0.1\\{SHARE}")
        tree.connect()
        keep += [session, tree]
        keep += [open_file(tree, name) for name in files]
    return keep


def run(lab_dir: str, seconds: float, ready: str) -> int:
    """Start every sample client, write ``ready``, hold for ``seconds``, then log off.
    Returns 3, having connected nothing, when smbprotocol is not installed."""
    import importlib.util

    if importlib.util.find_spec("smbprotocol") is None:
        print("the sample clients need smbprotocol, which makes 2 of their 5 sessions: "
              "pip install 'smbsession[lab]'", flush=True)
        return 3
    lab = Lab(lab_dir)
    for _, _, files in SMBCLIENT_SESSIONS:
        for name in files:
            path = lab.share_path / name
            path.touch(exist_ok=True)
            path.chmod(0o666)
    before = _count_sessions(lab) or 0
    procs = [_smbclient(lab, u, p, f) for u, p, f in SMBCLIENT_SESSIONS]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        keep = _python_client(lab)
        expected = len(SMBCLIENT_SESSIONS) + len(PYTHON_SESSIONS)
        count = _wait_sessions(lab, before + expected, 20) - before
        if count < expected:
            print(f"only {count} of {expected} sample sessions connected", flush=True)
        partial = Path(f"{ready}.part")
        partial.write_text(json.dumps({"sessions": max(count, 0), "expected": expected}))
        partial.rename(ready)
        print(f"clients connected; holding for {seconds:g} s", flush=True)
        stop.wait(seconds)
        del keep
    finally:
        for proc in procs:
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                    proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
        (lab.clients_dir / f"{os.getpid()}.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
