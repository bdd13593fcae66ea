"""Sample SMB clients for the lab: real sessions to look at.

Run as ``python -m smbsession.lab.clients LABDIR SECONDS`` (``smbsession lab clients`` does
it in the background). It holds, for SECONDS:

- ``smbclient`` sessions of several users and dialects (SMB3_11, SMB2_10, NT1), some with
  files open;
- when ``smbprotocol`` is installed, a Python client with two users' sessions on one TCP
  connection (SMB 3.0.2), one of them with two files open.

It writes ``pid/clients.ready`` in the lab directory once every client is connected.
"""

from __future__ import annotations

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


def _wait_sessions(lab: Lab, expected: int, timeout: float) -> int:
    """Wait until the lab's smbd lists ``expected`` sessions; return how many it lists."""
    from .. import read_sessions

    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        try:
            count = len(read_sessions(str(lab.conf_path), source="smbstatus").sessions)
        except Exception as exc:  # the lab's smbd may still be settling; report at the end
            print(f"waiting for sessions: {exc}", flush=True)
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
    try:
        from smbprotocol.connection import Connection, Dialects
        from smbprotocol.session import Session
        from smbprotocol.tree import TreeConnect
    except ImportError:
        print("smbprotocol is not installed: no Python client", flush=True)
        return []
    import uuid

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


def run(lab_dir: str, seconds: float) -> int:
    """Start every sample client, signal readiness, hold for ``seconds``, then log off."""
    lab = Lab(lab_dir)
    for _, _, files in SMBCLIENT_SESSIONS:
        for name in files:
            path = lab.share_path / name
            path.touch(exist_ok=True)
            path.chmod(0o666)
    procs = [_smbclient(lab, u, p, f) for u, p, f in SMBCLIENT_SESSIONS]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        keep = _python_client(lab)
        expected = len(SMBCLIENT_SESSIONS) + (len(PYTHON_SESSIONS) if keep else 0)
        count = _wait_sessions(lab, expected, 20)
        if count < expected:
            print(f"only {count} of {expected} sample sessions connected", flush=True)
        Path(lab.directory / "pid" / "clients.ready").write_text(str(time.time()))
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
        (lab.directory / "pid" / "clients.ready").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], float(sys.argv[2])))
