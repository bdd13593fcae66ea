"""Shared fixtures: a real smbd on loopback (the lab), real SMB clients, the real CLI."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from smbsession.lab import SHARE, Lab

SRC = str(Path(__file__).resolve().parent.parent / "src")


@functools.cache
def readable_src() -> str:
    """A copy of the package that every user can read, for commands run as another user:
    the checkout may sit in a directory only its owner can enter (root's home)."""
    base = Path(tempfile.mkdtemp(prefix="smbsession-src-"))
    shutil.copytree(Path(SRC) / "smbsession", base / "smbsession",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in (base, *base.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    atexit.register(shutil.rmtree, base, True)
    return str(base)


def as_user(user: str, *argv: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``python ARGV`` as ``user`` (through
    setpriv), with the system's interpreter (a virtualenv's may be unreadable to them)
    and :func:`readable_src` as the package."""
    ids = subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True)
    gid = subprocess.run(["id", "-g", user], capture_output=True, text=True, check=True)
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    cmd = ["setpriv", f"--reuid={ids.stdout.strip()}", f"--regid={gid.stdout.strip()}",
           "--clear-groups", python, *argv]
    return cmd, {**os.environ, "PYTHONPATH": readable_src()}


def _samba_missing() -> str | None:
    for prog in ("smbd", "smbclient", "smbstatus"):
        if not any(os.path.exists(os.path.join(d, prog)) for d in ("/usr/sbin", "/usr/bin")):
            return f"{prog} is not installed (make test installs it)"
    if os.geteuid() != 0:
        return "the lab needs root"
    return None


#: Where `make test` puts a second Samba release (Debian 13's) with debootstrap.
CHROOT = Path(os.environ.get("SMBSESSION_CHROOT", "/var/tmp/smbsession-trixie"))


@contextlib.contextmanager
def running_lab(name: str = "lab", chroot: Path | None = None,
                port: int | None = None, like: Lab | None = None) -> Iterator[Lab]:
    """Start a lab in a fresh directory the lab users can enter; stop and remove it after.

    With ``chroot``, the lab runs the Samba release installed in that root directory;
    ``port`` asks for that port (the lab takes a free one when it is busy); ``like``
    gives its users the passwords of that lab (one password for a fleet of labs).
    """
    reason = _samba_missing()
    if reason:
        pytest.fail(f"cannot start the test Samba server: {reason}")
    parent = "/tmp" if chroot is None else str(chroot / "tmp")
    base = Path(tempfile.mkdtemp(prefix=f"smbsession-{name}-", dir=parent))
    base.chmod(0o755)
    instance = Lab(base, chroot=chroot)
    if like is not None:
        instance.state_path.write_text(json.dumps(
            {"users": {u.name: u.password for u in like.users()}}))
        instance.state_path.chmod(0o600)
    try:
        instance.start(port=port)
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A private smbd on a free loopback port, stopped at the end even on failure."""
    with running_lab() as instance:
        yield instance


#: The live release matrix: Debian suite -> the Samba release it ships (what `make test`
#: builds under /var/tmp/smbsession-<suite>; sid's release is whatever sid has that day).
RELEASE_SUITES = {"bullseye": "4.13", "trixie": "4.22", "trixie-backports": "4.24",
                  "sid": "4.25"}


def suite_root(suite: str) -> Path:
    """The chroot of ``suite``; the test fails when `make test` could not build it (its
    reason is printed), and is skipped when it was never asked to (pytest run alone)."""
    base = os.environ.get("SMBSESSION_CHROOT_BASE", "/var/tmp/smbsession-")
    root = CHROOT if suite == "trixie" and "SMBSESSION_CHROOT" in os.environ else \
        Path(f"{base}{suite}")
    failed = Path(f"{root}.failed")
    if not (root / "usr/sbin/smbd").exists():
        if failed.exists():
            pytest.fail(f"Samba of Debian {suite} could not be built in {root}: "
                        f"{failed.read_text().strip()}")
        pytest.skip(f"no Samba of Debian {suite} at {root} (make test builds it with "
                    "debootstrap)")
    return root


@pytest.fixture(scope="session")
def release_labs() -> Iterator[dict[str, Lab]]:
    """Labs of the release matrix, started on first use (one per suite), stopped at the end."""
    with contextlib.ExitStack() as stack:
        labs: dict[str, Lab] = {}

        class Labs(dict):
            def __missing__(self, suite: str) -> Lab:
                root = suite_root(suite)
                labs[suite] = stack.enter_context(running_lab("lab", chroot=root))
                self[suite] = labs[suite]
                return labs[suite]

        yield Labs()


@pytest.fixture(scope="session")
def lab_chroot(release_labs: dict[str, Lab]) -> Lab:
    """A private smbd of the Samba release in CHROOT (Debian 13: Samba 4.22)."""
    return release_labs["trixie"]


@pytest.fixture(params=["host", "chroot"], scope="session")
def any_lab(request: pytest.FixtureRequest) -> Lab:
    """Each Samba release in turn: the host's (4.17 on Debian 12), then the chroot's.
    (The whole release matrix is tests/test_releases.py.)"""
    return request.getfixturevalue("lab" if request.param == "host" else "lab_chroot")


@dataclass
class CliResult:
    """What a command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> list[dict]:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None, user: str | None = None,
            stdin: str | IO[bytes] | None = None, detached: bool = False) -> CliResult:
    """Run ``python -m smbsession ARGS`` (the real command line) and capture it.

    ``user`` runs it as that Unix user (through setpriv), to test what non-root sees.
    ``stdin`` is pipeline input: a string is written into a pipe, an open file is given as
    it is. Without it stdin is /dev/null, so that the command never reads whatever stdin
    pytest itself was given. ``detached`` runs it without a controlling terminal.
    """
    cmd = [sys.executable, "-m", "smbsession", *args]
    base_env = {**os.environ, "PYTHONPATH": SRC}
    if user is not None:
        cmd, base_env = as_user(user, "-m", "smbsession", *args)
    full_env = {**base_env, **(env or {})}
    feed = {"input": stdin} if isinstance(stdin, str) else {"stdin": stdin or subprocess.DEVNULL}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120,
                          check=False, start_new_session=detached, cwd="/", **feed)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_get(lab: Lab, *args: str, stdin: str | IO[bytes] | None = None) -> CliResult:
    """Run ``smbsession get -SmbConf <the lab's smb.conf> ARGS`` (see :func:`run_cli`)."""
    return run_cli("get", "-SmbConf", str(lab.conf_path), *args, stdin=stdin)


@pytest.fixture
def get_sessions(lab: Lab):
    """Call Get-SmbSession -Format Json on the lab; return the parsed rows."""

    def call(*args: str) -> list[dict]:
        result = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Json", *args)
        assert result.returncode == 0, result.stderr
        return result.json()

    return call


@contextlib.contextmanager
def smbprotocol_sessions(lab: Lab, users: list[str], dialect: int | None = None,
                         host: str = "127.0.0.1", files: dict[str, list[str]] | None = None):
    """Open one TCP connection with a session per user (smbprotocol); yield the sessions.

    ``files`` maps a user to file names that session keeps open.
    """
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    from smbsession.lab.clients import open_file

    conn = Connection(uuid.uuid4(), host, lab.port)
    conn.connect(dialect)
    sessions, handles = [], []
    try:
        for user in users:
            session = Session(conn, user, lab.user(user).password, require_encryption=False)
            session.connect()
            sessions.append(session)
            tree = TreeConnect(session, rf"\\{host}\{SHARE}")
            tree.connect()
            for name in (files or {}).get(user, []):
                handles.append(open_file(tree, name))
        yield sessions
    finally:
        try:
            conn.disconnect(True)
        except Exception as exc:
            print(f"smbprotocol logoff failed ({exc!r}); closing the connection")
            conn.disconnect(False)


@contextlib.contextmanager
def smbclient_session(lab: Lab, user: str, protocol: str = "SMB3_11",
                      open_files: tuple[str, ...] = (),
                      netbios_name: str | None = None) -> Iterator[subprocess.Popen]:
    """Hold an ``smbclient`` session (password from an auth file, never argv).

    With ``netbios_name``, the client calls itself that in a NetBIOS session request,
    which it sends when the lab listens on port 139 (it then reads no smb.conf: the lab's
    own disables NetBIOS)."""
    for name in open_files:
        path = lab.share_path / name
        path.touch(exist_ok=True)
        path.chmod(0o666)
    proc = subprocess.Popen(
        ["smbclient", f"//127.0.0.1/{SHARE}", "-p", str(lab.port),
         *(["-s", "/dev/null", "-n", netbios_name] if netbios_name else
           ["-s", str(lab.conf_path)]),
         "-A", str(lab.user(user).auth_file(lab)), "-m", protocol],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdin is not None
    for name in open_files:
        proc.stdin.write(f"open {name}\n")
    proc.stdin.flush()
    try:
        yield proc
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.write("quit\n")
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def alice_bob(lab: Lab) -> Iterator[list]:
    """labalice (one file open) and labbob, two sessions on one smbprotocol connection,
    held for a whole test module."""
    files = {"labalice": ["alice-held.txt"]}
    with smbprotocol_sessions(lab, ["labalice", "labbob"], files=files) as sessions:
        yield sessions


@contextlib.contextmanager
def anonymous_session(lab: Lab, host: str = "127.0.0.1") -> Iterator[int]:
    """Hold an anonymous (null) session with IPC$ open (impacket); yield its SessionId."""
    from impacket.smbconnection import SMB2_DIALECT_311, SMBConnection

    conn = SMBConnection(host, host, sess_port=lab.port, preferredDialect=SMB2_DIALECT_311)
    try:
        conn.login("", "")
        conn.connectTree("IPC$")
        yield conn.getSMBServer()._Session["SessionID"]
    finally:
        conn.close()


@contextlib.contextmanager
def unauthenticated_session(lab: Lab, user: str = "labbob") -> Iterator[int]:
    """Hold a session whose authentication has not completed: only the first leg of NTLM
    is sent (smbprotocol). Yield the SessionId the server gave it."""
    import spnego
    from smbprotocol.connection import Capabilities, Connection
    from smbprotocol.exceptions import MoreProcessingRequired
    from smbprotocol.session import SMB2SessionSetupRequest

    conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
    conn.connect()
    try:
        context = spnego.client(user, "unused", service="cifs", hostname="127.0.0.1",
                                protocol="ntlm")
        setup = SMB2SessionSetupRequest()
        setup["capabilities"] = Capabilities.SMB2_GLOBAL_CAP_DFS
        setup["security_mode"] = conn.client_security_mode
        setup["buffer"] = context.step()
        request = conn.send(setup, sid=0, credit_request=64)
        try:
            header = conn.receive(request)
        except MoreProcessingRequired as exc:
            header = exc.header
        yield header["session_id"].get_value()
    finally:
        conn.disconnect(False)


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; return that value (or the last)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


class Terminal:
    """Runs the command with a pseudo-terminal as its controlling terminal."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = os.openpty()

        def take_terminal() -> None:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, preexec_fn=take_terminal,
            env={**os.environ, "PYTHONPATH": SRC, **(env or {})}, text=False,
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: bytes, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            ready, _, _ = select.select([self.master], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} on the terminal; saw {self.seen!r}")
            self.seen += os.read(self.master, 4096)

    def answer(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r")

    def finish(self) -> int:
        code = self.proc.wait(30)
        os.close(self.master)
        return code


#: The properties every session row must carry under churn, with their types.
ROW_TYPES = {
    "SessionId": int, "ClientComputerName": str, "ClientUserName": str, "Dialect": str,
    "ScopeName": str, "SmbInstance": str, "SecondsExists": int, "TransportName": str,
}


def row_problems(rows: list[dict], steady_ids: set[int]) -> list[str]:
    """What is wrong with one listing: a steadily held session missing, or a row with a
    property missing or of the wrong type (empty: nothing)."""
    problems = [f"steady session {sid} missing"
                for sid in sorted(steady_ids - {r.get("SessionId") for r in rows})]
    for row in rows:
        for prop, kind in ROW_TYPES.items():
            if not isinstance(row.get(prop), kind):
                problems.append(f"{prop} of {row.get('SessionId')} is {row.get(prop)!r}")
    return problems


def churn_client(lab: Lab, stop: threading.Event, errors: list[str], index: int) -> None:
    """Connect, open a file, disconnect, again, until ``stop``; count what fails (the
    server may refuse under load) in ``errors``."""
    users = ["labalice", "labbob", "labcarol"]
    while not stop.is_set():
        try:
            files = {users[index % 3]: [f"churn-{index}.txt"]}
            with smbprotocol_sessions(lab, [users[index % 3]], files=files):
                time.sleep(0.05)
        except Exception as exc:
            errors.append(repr(exc))


@contextlib.contextmanager
def silent_servers(count: int = 1) -> Iterator[list[int]]:
    """Loopback ports that accept connections and never say a word (a hostile or hung
    server); yield their port numbers."""
    import socket

    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)
            ports.append(sock.getsockname()[1])
        yield ports


def claim_smbd_release(cache_home: Path, pid: int, release: str) -> dict[str, str]:
    """Make smbsession believe smbd ``pid`` reports ``release``: write its version cache
    (``$XDG_CACHE_HOME/smbsession/smbd-versions``, one ``dev:ino:mtime version`` line);
    return the environment that points smbsession at it."""
    st = os.stat(f"/proc/{pid}/exe")
    (cache_home / "smbsession").mkdir(parents=True, exist_ok=True)
    (cache_home / "smbsession" / "smbd-versions").write_text(
        f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns} {release}\n")
    return {"XDG_CACHE_HOME": str(cache_home)}
