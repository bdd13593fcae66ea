"""The live release matrix: each Samba release's own smbd (the host's 4.17 and Debian
chroots: bullseye 4.13, trixie 4.22, trixie-backports 4.24, sid 4.25 or whatever sid has),
real clients, every property checked against client-side truth, against that release's own
Python bindings' decoding of the same records (the oracle, where the release ships
``samba.dcerpc.smbXsrv``: 4.17 and later) and against its smbstatus; Close-SmbSession of
one session while its neighbour on the same connection keeps working.

A chroot that `make test` could not build makes its tests fail with the build's reason
(see ``suite_root`` in conftest.py); every test prints the release it tested.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import (
    RELEASE_SUITES,
    claim_smbd_release,
    run_cli,
    smbclient_session,
    smbprotocol_sessions,
    wait_for,
)
from smbsession.lab import NETBIOS_NAME, SHARE, SHARE2, SHARE_ALIAS, Lab
from smbsession.samba import layouts

SUITES = ["host", *RELEASE_SUITES]
sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
from capture import _BINDINGS  # noqa: E402


@pytest.fixture(scope="module", params=SUITES)
def rlab(request: pytest.FixtureRequest) -> Lab:
    """The lab of one release of the matrix; prints which Samba it runs."""
    lab = (request.getfixturevalue("lab") if request.param == "host"
           else request.getfixturevalue("release_labs")[request.param])
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[release matrix] {request.param}: Samba {release_of(lab)}")
    return lab


def release_of(lab: Lab) -> str:
    wrap = ["chroot", str(lab.chroot)] if lab.chroot else []
    out = subprocess.run([*wrap, "/usr/sbin/smbd", "--version"], capture_output=True,
                         text=True, check=True)
    return out.stdout.split()[-1]


def series(lab: Lab) -> tuple[int, int]:
    s = layouts.series(release_of(lab))
    assert s is not None
    major, minor = s.split(".")
    return int(major), int(minor)


def listing(lab: Lab, *args: str) -> dict[int, dict]:
    """Get-SmbSession -Format Json: exit 0 and nothing on stderr, on every release."""
    out = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Json", *args)
    assert out.returncode == 0 and out.stderr == "", (out.returncode, out.stderr)
    return {row["SessionId"]: row for row in out.json()}


def test_read_directly(rlab: Lab) -> None:
    out = run_cli("get", "-SmbConf", str(rlab.conf_path), "-Source", "tdb", "-Format", "Json")
    assert out.returncode == 0 and out.stderr == "", out.stderr


@pytest.mark.parametrize(("protocol", "dialect"), [
    ("NT1", "1.50"), ("SMB2_02", "2.02"), ("SMB2_10", "2.10"), ("SMB3_00", "3.00"),
    ("SMB3_02", "3.02"), ("SMB3_11", "3.1.1"),
])
def test_every_dialect(rlab: Lab, protocol: str, dialect: str) -> None:
    before = set(listing(rlab))
    started = time.time()
    with smbclient_session(rlab, "labcarol", protocol=protocol):
        # (smbclient's session appears before its tree connect to the share)
        rows = wait_for(lambda: [r for k, r in listing(rlab).items()
                                 if k not in before and r["Shares"] == [SHARE]])
        assert rows, "the smbclient session did not appear"
        (row,) = rows
    assert row["Dialect"] == dialect
    assert row["ClientUserName"] == f"{NETBIOS_NAME}\\labcarol"
    assert row["ClientComputerName"] == "127.0.0.1"
    assert row["TransportName"] == f"tcp:127.0.0.1:{rlab.port}"
    assert 0 <= row["SecondsExists"] <= time.time() - started + 2
    assert isinstance(row["SecondsIdle"], int) and row["SecondsIdle"] >= 0
    assert row["Shares"] == [SHARE] and row["NumOpens"] == 0
    assert row["ScopeName"] == "*" and row["ClusterNodeName"] == ""


def test_smb1_with_a_batch_oplock(rlab: Lab) -> None:
    from impacket.smb import SMB_DIALECT
    from impacket.smbconnection import SMBConnection

    path = rlab.share_path / "smb1-oplock.txt"
    path.write_text("held by an SMB1 client\n")
    path.chmod(0o666)
    user = rlab.user("labcarol")
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=rlab.port,
                         preferredDialect=SMB_DIALECT)
    try:
        conn.login(user.name, user.password, "LAB")
        tid = conn.connectTree(SHARE)
        conn.openFile(tid, "smb1-oplock.txt")  # impacket asks for a batch oplock
        rows = [r for r in listing(rlab).values()
                if r["ClientUserName"] == f"{NETBIOS_NAME}\\labcarol" and r["Dialect"] == "1.50"]
        assert len(rows) == 1
        assert rows[0]["NumOpens"] == 1 and rows[0]["Shares"] == [SHARE]
    finally:
        with contextlib.suppress(Exception):
            conn.logoff()


def test_two_users_on_one_connection_over_ipv6(rlab: Lab) -> None:
    host = "::1" if rlab.ipv6 else "127.0.0.1"
    files = {"labalice": ["two-a.txt", "two-b.txt"]}
    with smbprotocol_sessions(rlab, ["labalice", "labbob"], host=host, files=files) as (a, b):
        rows = listing(rlab)
        alice, bob = rows[a.session_id], rows[b.session_id]
    want_host = "[::1]" if rlab.ipv6 else "127.0.0.1"
    for row in (alice, bob):
        assert row["ClientComputerName"] == want_host
        assert row["TransportName"] == f"tcp:{want_host}:{rlab.port}"
        assert row["Dialect"] == "3.1.1"
    assert alice["ClientUserName"] == f"{NETBIOS_NAME}\\labalice"
    assert bob["ClientUserName"] == f"{NETBIOS_NAME}\\labbob"
    assert (alice["NumOpens"], bob["NumOpens"]) == (2, 0)
    assert alice["SecondsIdle"] == bob["SecondsIdle"]  # one TCP connection


def test_encryption(rlab: Lab) -> None:
    before = set(listing(rlab))
    proc = subprocess.Popen(
        ["smbclient", f"//127.0.0.1/{SHARE}", "-p", str(rlab.port), "-s", str(rlab.conf_path),
         "-A", str(rlab.user("labcarol").auth_file(rlab)), "-m", "SMB3_11",
         "--client-protection=encrypt"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        # (smbd stores a session when its setup starts, its encryption when the setup ends,
        # before the tree connect)
        rows = wait_for(lambda: [r for k, r in listing(rlab).items()
                                 if k not in before and r["Shares"] == [SHARE]])
        assert rows, "the encrypted smbclient session did not appear"
        (row,) = rows
    finally:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.write("quit\n")
            proc.stdin.close()
        proc.wait(10)
    assert row["EncryptionCipher"] in ("AES-128-CCM", "AES-128-GCM", "AES-256-CCM",
                                       "AES-256-GCM")
    assert row["Dialect"] == "3.1.1"


def _bindings(lab: Lab) -> dict | None:
    """The release's own python3-samba decoding of its records (None before 4.17: 4.13's
    bindings have no smbXsrv module)."""
    assert lab.chroot is not None
    lock = "/" + str((lab.directory / "lock").relative_to(lab.chroot))
    proc = subprocess.run(["chroot", str(lab.chroot), "python3", "-c", _BINDINGS, lock],
                          capture_output=True, text=True, timeout=60, check=False)
    if "smbXsrv" in proc.stderr and "Error" in proc.stderr and series(lab) < (4, 17):
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_oracle_and_smbstatus(rlab: Lab) -> None:
    files = {"labalice": ["oracle.txt"]}
    with smbprotocol_sessions(rlab, ["labalice", "labbob"], files=files) as (a, b):
        mine = listing(rlab)
        fallback = run_cli("get", "-SmbConf", str(rlab.conf_path), "-Format", "Json",
                           "-Source", "smbstatus")
        oracle = _bindings(rlab) if rlab.chroot else None
    ids = {a.session_id, b.session_id}
    assert ids <= set(mine)
    theirs = fallback.json()
    if series(rlab) >= (4, 17):  # smbstatus --json: session ids
        assert fallback.returncode == 0, fallback.stderr
        by_id = {r["SessionId"]: r for r in theirs}
        for sid in ids:
            for prop in ("ClientUserName", "ClientComputerName", "Dialect", "NumOpens"):
                assert by_id[sid][prop] == mine[sid][prop], prop
    else:  # text smbstatus: no session ids; the same users, addresses and dialects
        assert fallback.returncode == 1  # what it cannot say, it says, once
        (warning,) = fallback.stderr.strip().splitlines()
        assert "prints no session ids" in warning and "SessionId" in warning
        def key(r: dict) -> tuple:
            return r["ClientUserName"], r["ClientComputerName"], r["Dialect"], r["NumOpens"]
        assert sorted(map(key, theirs)) == sorted(key(r) for r in mine.values())
    if oracle is not None:
        sessions = {v["global_id"]: v for v in oracle["session"].values()}
        for sid in ids:
            want, got = sessions[sid], mine[sid]
            assert got["ClientUserName"] == f"{want['domain']}\\{want['account']}"
            assert got["SmbdPid"] == want["pid"]
            assert f"{got['ClientComputerName']}" in want["remote"]
        opens = [o for o in oracle["open"].values()]
        assert len(opens) == sum(mine[s]["NumOpens"] for s in ids)


def test_close_one_of_two_on_one_connection(rlab: Lab) -> None:
    from smbprotocol.open import CreateDisposition, FilePipePrinterAccessMask, Open
    from smbprotocol.tree import TreeConnect

    with smbprotocol_sessions(rlab, ["labalice", "labbob"]) as (alice, bob):
        out = run_cli("close", "-SmbConf", str(rlab.conf_path), "-SessionId",
                      str(alice.session_id), "-Force")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        ids = set(listing(rlab))
        assert alice.session_id not in ids and bob.session_id in ids
        tree = TreeConnect(bob, rf"\\127.0.0.1\{SHARE}")
        tree.connect()
        handle = Open(tree, "after-close.txt")
        handle.create(0, FilePipePrinterAccessMask.GENERIC_WRITE, 0, 0,
                      CreateDisposition.FILE_OVERWRITE_IF, 0)
        handle.write(b"still here\n")
        handle.close()
        with contextlib.suppress(Exception):  # alice's logoff fails: she is gone
            alice.disconnect()
    assert (rlab.share_path / "after-close.txt").read_text() == "still here\n"


@contextlib.contextmanager
def _same_user_sessions(lab: Lab, user: str, trees: list[bool], files: list[int],
                        shares: list[str] | None = None):
    """Sessions of one user on one connection; session i tree-connects (to the shares
    named in shares[i], joined by "+", default the lab's first share) when trees[i] and
    keeps files[i] files open on the first of them."""
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    from smbsession.lab.clients import open_file

    conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
    conn.connect()
    sessions, handles = [], []
    try:
        for i, (tree_wanted, count) in enumerate(zip(trees, files, strict=True)):
            session = Session(conn, user, lab.user(user).password, require_encryption=False)
            session.connect()
            sessions.append(session)
            if tree_wanted:
                for share in reversed((shares[i] if shares else SHARE).split("+")):
                    tree = TreeConnect(session, rf"\\127.0.0.1\{share}")
                    tree.connect()
                handles += [open_file(tree, f"group-{i}-{n}.txt") for n in range(count)]
        yield sessions
    finally:
        conn.disconnect(False)


@pytest.mark.parametrize(("trees", "files", "before_4_23"), [
    ([True, True, True], [0, 0, 0], [0, 0, 0]),  # no opens in the group: 0 each
    ([True, False, False], [2, 0, 0], [2, 0, 0]),  # one session with tree connects
    ([True, True], [1, 0], [None, None]),  # cannot be split: unknown, never guessed
])
def test_num_opens_of_one_user_with_several_sessions(rlab: Lab, trees: list[bool],
                                                     files: list[int],
                                                     before_4_23: list) -> None:
    with _same_user_sessions(rlab, "labalice", trees, files) as sessions:
        rows = listing(rlab)
        counts = [rows[s.session_id]["NumOpens"] for s in sessions]
    assert counts == (files if series(rlab) >= (4, 23) else before_4_23)


@pytest.mark.parametrize(("shares", "files", "before_4_23"), [
    ([SHARE, SHARE2], [2, 1], [2, 1]),  # shares on distinct paths: split by locking.tdb
    ([SHARE, SHARE2, SHARE2], [1, 0, 2], [1, None, None]),  # alone on its share: exact
    ([SHARE, SHARE], [2, 1], [None, None]),  # one share: cannot be split, never guessed
    ([SHARE, SHARE_ALIAS], [2, 1], [None, None]),  # two names of one directory: neither
    ([f"{SHARE}+IPC$", f"{SHARE2}+IPC$"], [1, 2], [1, 2]),  # IPC$ holds no files
])
def test_num_opens_split_by_share(rlab: Lab, shares: list[str], files: list[int],
                                  before_4_23: list) -> None:
    """One user, several sessions on one connection, each with its tree connect and its
    own number of open files: before 4.23 the open records cannot tell the sessions
    apart, locking.tdb's share mode entries can when their shares differ."""
    with _same_user_sessions(rlab, "labalice", [True] * len(shares), files,
                             shares) as sessions:
        rows = listing(rlab)
        counts = [rows[s.session_id]["NumOpens"] for s in sessions]
        assert [set(rows[s.session_id]["Shares"]) for s in sessions] == \
            [set(x.split("+")) for x in shares]
    assert counts == (files if series(rlab) >= (4, 23) else before_4_23)


def test_num_opens_of_root_split_by_share(rlab: Lab) -> None:
    """The same split for root, whose uid is 0 (once mistaken for "no uid")."""
    with _same_user_sessions(rlab, "root", [True, True], [2, 1], [SHARE, SHARE2]) as sessions:
        rows = listing(rlab)
        counts = [rows[s.session_id]["NumOpens"] for s in sessions]
    assert counts == [2, 1]


def test_locking_tdb_agrees_with_smbstatus(rlab: Lab) -> None:
    """The share mode entries as samba/locking.py reads them from locking.tdb (before 4.23)
    against that release's own ``smbstatus -L``: the same (smbd, uid, share path) of
    every open, on two shares. From 4.23 opens name their session: no format is declared
    and locking.tdb is never read."""
    from collections import Counter

    from smbsession.samba import locking
    from smbsession.samba.server import resolve, samba_command

    server = resolve(str(rlab.conf_path))
    if series(rlab) >= (4, 23):
        assert locking._decoder(server.release) is None
        return
    with _same_user_sessions(rlab, "labalice", [True, True], [2, 1],
                             [SHARE, SHARE2]) as sessions:
        pid = listing(rlab)[sessions[0].session_id]["SmbdPid"]
        entries = locking.read_entries(server)
        status = subprocess.run([*samba_command(server.config, "smbstatus"), "-L"],
                                capture_output=True, text=True, check=True).stdout
    assert entries is not None
    mine = Counter({(p, uid, path): n for (p, _unique, uid), paths in entries.items()
                    for path, n in paths.items() if p == pid})
    theirs: Counter[tuple[int, int, str]] = Counter()
    for line in status.splitlines():
        cols = line.split()
        if len(cols) > 6 and cols[0] == str(pid):
            theirs[(pid, int(cols[1]), cols[6])] += 1
    uid = int(subprocess.run([*(["chroot", str(rlab.chroot)] if rlab.chroot else []),
                              "id", "-u", "labalice"], capture_output=True, text=True,
                             check=True).stdout)
    share = str(Path("/") / rlab.share_path.relative_to(rlab.chroot)) if rlab.chroot \
        else str(rlab.share_path)
    assert mine == theirs == Counter({(pid, uid, share): 2, (pid, uid, share + "2"): 1})


def _claim_release(lab: Lab, release: str, cache: Path) -> dict[str, str]:
    """An XDG cache in which the lab's smbd binary answers ``release`` to --version (the
    per-binary cache smbsession keeps, see samba/version.py): how a release newer than every
    known one looks to the reader, without changing Samba."""
    from smbsession.samba.config import load_config
    from smbsession.samba.server import smbd_pid

    pid = smbd_pid(load_config(str(lab.conf_path)))
    assert pid is not None
    return claim_smbd_release(cache, pid, release)


@pytest.mark.parametrize("suite", ["sid", "trixie-backports"])
def test_a_newer_release_is_read_only_when_every_record_decodes(
        release_labs: dict[str, Lab], suite: str, tmp_path: Path) -> None:
    """A "4.99.0" smbd: tried with the newest layout (4.25's). sid's records decode exactly
    with it: read directly, exit 0. trixie-backports' (format 0) do not: smbstatus, with one
    warning naming the release, exit 1; never a value decoded with the wrong layout."""
    lab = release_labs[suite]
    env = _claim_release(lab, "4.99.0-Future", tmp_path)
    with smbprotocol_sessions(lab, ["labalice"], files={"labalice": ["future.txt"]}) as (a,):
        out = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Json", env=env)
    rows = {r["SessionId"]: r for r in json.loads(out.stdout)}
    assert rows[a.session_id]["NumOpens"] == 1
    if suite == "sid":
        assert out.returncode == 0 and out.stderr == ""
        assert rows[a.session_id]["SecondsIdle"] is not None  # read directly
    else:
        assert out.returncode == 1
        (warning,) = out.stderr.strip().splitlines()
        assert "4.99.0-Future is newer than" in warning and "smbstatus" in warning
        assert rows[a.session_id]["SecondsIdle"] is None  # through smbstatus
