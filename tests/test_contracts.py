"""Contracts across sources, as psutil's test_contracts.py does across platforms.

Every way smbsession reads one live server — the databases (tdb), smbstatus, an ssh://
target, an smb:// target (MS-SRVS) and the fleet's local target — must give records of
the same shape: the same property names, each of one type or null, the same hidden rule
(anonymous sessions only with -IncludeHidden), and, wherever two sources both know a
value, the same value in the same spelling. What a source cannot know is null, never a
made-up value; which properties each source knows is declared once, below, and checked.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import anonymous_session, run_cli, smbprotocol_sessions
from helpers.sshd import LabSshd, running_sshd, trusting_home
from smbsession.lab import WORKGROUP, Lab
from smbsession.model import MSFT_PROPERTIES

pytest.importorskip("asyncssh")
pytest.importorskip("impacket")

#: The type of each MSFT_SmbSession property when it is known.
TYPES: dict[str, type | tuple[type, ...]] = {
    "ClientComputerName": str, "ClientUserName": str, "ClusterNodeName": str,
    "Dialect": str, "NumOpens": int, "ScopeName": str, "SecondsExists": int,
    "SecondsIdle": int, "SessionId": int, "TransportName": str, "SmbInstance": str,
}

#: What each source knows of a live session (properties it may never leave null).
KNOWS: dict[str, set[str]] = {
    "tdb": set(MSFT_PROPERTIES),
    "ssh": set(MSFT_PROPERTIES),
    "localhost": set(MSFT_PROPERTIES),
    # smbstatus shows no idle time nor local address, and a creation time only from 4.20.
    "smbstatus": set(MSFT_PROPERTIES) - {"SecondsIdle", "TransportName", "SecondsExists"},
    # MS-SRVS has no session id, dialect, scope, node or transport on Samba (level 1).
    "smb": {"ClientComputerName", "ClientUserName", "NumOpens", "SecondsExists",
            "SmbInstance"},
}

#: Properties whose values may differ between two readings a moment apart.
MOVING = {"SecondsExists", "SecondsIdle"}


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    with running_sshd() as server:
        yield server


@pytest.fixture(scope="module")
def home(sshd: LabSshd) -> Iterator[dict[str, str]]:
    """A HOME whose ~/.ssh trusts the test sshd, as OpenSSH's would."""
    base = Path(tempfile.mkdtemp(prefix="smbsession-contract-home-"))
    yield trusting_home(sshd, base)
    shutil.rmtree(base, ignore_errors=True)


def listing(lab: Lab, source: str, env: dict[str, str], sshd: LabSshd,
            *extra: str) -> list[dict]:
    """Every property of every session, as one source gives them (the real CLI)."""
    where: tuple[str, ...] = ()
    if source in ("tdb", "smbstatus"):
        where = ("-Source", source)
    elif source == "ssh":
        where = ("-CimSession", f"ssh://root@127.0.0.1:{sshd.port}")
    elif source == "smb":
        where = ("-CimSession", f"smb://{WORKGROUP}\\root@127.0.0.1:{lab.port}")
    elif source == "localhost":
        where = ("-CimSession", "localhost")
    out = run_cli("get", "-SmbConf", str(lab.conf_path), *where, *extra, "-Property", "*",
                  "-Format", "Json",
                  env={**env, "SMBSESSION_PASSWORD": lab.user("root").password})
    assert out.returncode == 0, f"{source}: {out.stderr}"
    assert out.stderr == "", f"{source}: {out.stderr}"
    return out.json()


@pytest.fixture(scope="module")
def listings(lab: Lab, sshd: LabSshd, home: dict[str, str]) -> Iterator[dict[str, tuple]]:
    """Each source's listing of one set of live sessions (two users on one connection, one
    with a file open, and an anonymous session), without and with -IncludeHidden."""
    files = {"labbob": ["contract-1.txt", "contract-2.txt"]}
    with smbprotocol_sessions(lab, ["labalice", "labbob"], files=files) as held, \
            anonymous_session(lab) as anonymous:
        yield {source: (listing(lab, source, home, sshd),
                        listing(lab, source, home, sshd, "-IncludeHidden"),
                        {s.session_id for s in held}, anonymous)
               for source in KNOWS}


@pytest.mark.parametrize("source", list(KNOWS))
def test_every_source_gives_the_same_shape(listings: dict[str, tuple], source: str) -> None:
    shown, _, held, _ = listings[source]
    assert shown, f"{source} listed nothing"
    names = list(shown[0])
    assert names[:len(MSFT_PROPERTIES)] == list(MSFT_PROPERTIES)
    assert names[-1] == "PSComputerName"
    for row in shown:
        assert list(row) == names
        for prop, kind in TYPES.items():
            value = row[prop]
            if prop in KNOWS[source]:
                assert isinstance(value, kind), (source, prop, row)
            else:
                assert value is None or isinstance(value, kind), (source, prop, row)
        assert row["SmbInstance"] == "Default"
    if source != "smb":  # MS-SRVS has no session ids to look for
        assert held <= {r["SessionId"] for r in shown}


@pytest.mark.parametrize("source", list(KNOWS))
def test_every_source_hides_the_anonymous_session(listings: dict[str, tuple],
                                                  source: str) -> None:
    shown, everything, _, anonymous = listings[source]
    if source == "smb":  # no ids: an anonymous session has no user name
        assert all(r["ClientUserName"] for r in shown)
        return
    assert anonymous not in {r["SessionId"] for r in shown}
    assert anonymous in {r["SessionId"] for r in everything}


@pytest.mark.parametrize("source", [s for s in KNOWS if s not in ("tdb", "smb")])
def test_sources_with_ids_agree_with_the_databases(listings: dict[str, tuple],
                                                   source: str) -> None:
    truth = {r["SessionId"]: r for r in listings["tdb"][0]}
    theirs = {r["SessionId"]: r for r in listings[source][0]}
    held = listings[source][2]
    for sid in held:
        mine, other = truth[sid], theirs[sid]
        for prop in KNOWS[source] - MOVING:
            assert other[prop] == mine[prop], (source, sid, prop)
        for prop in KNOWS[source] & MOVING:
            assert abs(other[prop] - mine[prop]) <= 5, (source, sid, prop)


def test_smb_rows_agree_with_the_databases_where_both_know(listings: dict[str, tuple]) -> None:
    local = [r for r in listings["tdb"][0] if r["SessionId"] in listings["tdb"][2]]
    remote = listings["smb"][0]
    for mine in local:
        account = mine["ClientUserName"].rpartition("\\")[2]
        theirs = [r for r in remote
                  if (r["ClientUserName"] or "").rpartition("\\")[2].lower() == account.lower()
                  and r["ClientComputerName"] == mine["ClientComputerName"]]
        assert theirs, (mine, remote)


def test_smb_rows_spell_the_user_as_the_databases_do(listings: dict[str, tuple]) -> None:
    local = {r["ClientUserName"] for r in listings["tdb"][0]
             if r["SessionId"] in listings["tdb"][2]}
    remote = {r["ClientUserName"] for r in listings["smb"][0]}
    assert local <= remote
