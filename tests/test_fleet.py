"""-CimSession over many servers: three lab smbds asked through srvsvc (smb://), dead and
silent servers beside them, -ThrottleLimit, -Credential, the password prompt, -AsJob and
Close-SmbSession on smb:// targets."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smbsession
from conftest import (
    SRC,
    Terminal,
    run_cli,
    running_lab,
    silent_servers,
    smbprotocol_sessions,
    wait_for,
)
from smbsession.lab import NETBIOS_NAME, WORKGROUP, Lab, free_port
from smbsession.remote import fleet

pytest.importorskip("impacket")


@pytest.fixture(scope="module")
def labs(lab: Lab) -> Iterator[list[Lab]]:
    """The session's lab and two more smbds on their own ports, with the same passwords."""
    with running_lab("fleet1", like=lab) as one, running_lab("fleet2", like=lab) as two:
        yield [lab, one, two]


def smb(lab: Lab, who: str = f"{WORKGROUP}\\root@") -> str:
    return f"smb://{who}127.0.0.1:{lab.port}"


def env_for(lab: Lab, **extra: str) -> dict[str, str]:
    return {"SMBSESSION_PASSWORD": lab.user("root").password, **extra}


def users_of(lab: Lab) -> set[str]:
    return {(s.client_user_name or "").rpartition("\\")[2]
            for s in smbsession.read_sessions(str(lab.conf_path)).sessions}


def test_every_server_answers_beside_a_dead_and_a_silent_one(labs: list[Lab]) -> None:
    first, second, third = labs
    dead = f"smb://root@127.0.0.1:{free_port()}"
    with silent_servers(1) as (quiet,), \
            smbprotocol_sessions(first, ["labalice"]), \
            smbprotocol_sessions(second, ["labbob"], files={"labbob": ["fleet-bob.txt"]}), \
            smbprotocol_sessions(third, ["labcarol"]):
        silent = f"smb://root@127.0.0.1:{quiet}"
        targets = [smb(first), smb(second), dead, silent, smb(third)]
        started = time.monotonic()
        out = run_cli("get", "-CimSession", ",".join(targets), "-ThrottleLimit", "2",
                      "-OperationTimeoutSec", "3", "-Format", "Json", env=env_for(first))
        took = time.monotonic() - started
    assert out.returncode == 1
    rows = out.json()
    by_target: dict[str, set[str]] = {}
    for row in rows:
        by_target.setdefault(row["PSComputerName"], set()).add(row["ClientUserName"])
    # PSComputerName is the host as the targets name it; they share one, so with the port.
    computer = {lab: f"127.0.0.1:{lab.port}" for lab in (first, second, third)}
    assert set(by_target) == set(computer.values())
    # srvsvc's names, spelled as the local reader spells them.
    alice, bob_name, carol = (f"{NETBIOS_NAME}\\{u}" for u in ("labalice", "labbob", "labcarol"))
    assert alice in by_target[computer[first]] and bob_name in by_target[computer[second]]
    assert carol in by_target[computer[third]]
    assert alice not in by_target[computer[third]]
    bob = next(r for r in rows if r["ClientUserName"] == bob_name)
    assert bob["NumOpens"] == 1 and bob["SessionId"] == 0 and bob["Dialect"] is None
    errors = out.stderr.splitlines()
    assert [line for line in errors if dead in line] == [
        f"smbsession get: {dead}: cannot connect to 127.0.0.1:{dead.rsplit(':', 1)[1]}: "
        "Connection refused"]
    assert [line for line in errors if silent in line] == [
        f"smbsession get: {silent}: no answer within 3 s"]
    assert took < 20 and "Traceback" not in out.stderr
    assert first.user("root").password not in out.stdout + out.stderr


def test_throttle_limit_is_how_many_targets_are_asked_at_once() -> None:
    with silent_servers(4) as ports:
        targets = [f"smb://root@127.0.0.1:{port}" for port in ports]
        logon = fleet.SmbLogon(password="unused-secret")
        timings = {}
        for throttle in (1, 4):
            started = time.monotonic()
            sessions, errors, _warnings = fleet.read_many(targets, throttle=throttle, timeout=1.0,
                                               logon=logon)
            timings[throttle] = time.monotonic() - started
            assert sessions == [] and len(errors) == 4
            assert all(e.endswith(": no answer within 1 s") for e in errors)
    assert timings[1] >= 4.0  # one after the other
    assert timings[4] < 3.0  # all at once


def test_credential_names_the_account_of_targets_without_one(labs: list[Lab]) -> None:
    first = labs[0]
    with smbprotocol_sessions(first, ["labalice"]):
        out = run_cli("get", "-CimSession", smb(first, who=""), "-Credential",
                      f"{WORKGROUP}\\root", "-ClientUserName", "labalice", "-Format", "Json",
                      env=env_for(first))
    assert out.returncode == 0, out.stderr
    assert {r["ClientUserName"] for r in out.json()} == {f"{NETBIOS_NAME}\\labalice"}
    bad = run_cli("get", "-CimSession", smb(first, who=""), "-Credential", "root:secret")
    assert bad.returncode == 2
    assert "-Credential: 'root:secret' is not a user name" in bad.stderr


def test_a_remote_failure_of_every_kind_names_its_target() -> None:
    out = run_cli("get", "-CimSession", "ftp://files1", "-Format", "Json")
    assert out.returncode == 2 and "ftp://files1" in out.stderr and "unknown scheme" in out.stderr


def test_the_password_is_asked_on_the_terminal_and_reaches_a_job(labs: list[Lab],
                                                                  tmp_path: Path) -> None:
    first = labs[0]
    password = first.user("root").password
    env = {"XDG_STATE_HOME": str(tmp_path), "SMBSESSION_PASSWORD": "", "KRB5CCNAME": ""}
    with smbprotocol_sessions(first, ["labcarol"]):
        term = Terminal([sys.executable, "-m", "smbsession", "get", "-CimSession", smb(first),
                         "-AsJob"], env=env)
        term.expect(f"Password for {WORKGROUP}\\root".encode())
        term.answer(password)
        term.expect(b"HasMoreData")
        assert term.finish() == 0
        job_id = term.seen.decode().splitlines()[-1].split()[0]
        waited = run_cli("job", "wait", job_id, "--timeout", "60", env=env)
        assert "Completed" in waited.stdout, waited.stdout
        received = run_cli("job", "receive", job_id, "--format", "Json", env=env)
    assert f"{NETBIOS_NAME}\\labcarol" in {r["ClientUserName"] for r in received.json()}
    assert password.encode() not in term.seen  # not echoed
    store = tmp_path / "smbsession"
    for path in store.iterdir():  # the database, its WAL and shared memory
        assert password.encode() not in path.read_bytes()
    with sqlite3.connect(store / "jobs.sqlite") as db:
        (argv,) = db.execute("SELECT argv FROM jobs").fetchone()
    assert "-AsJob" in argv


def test_close_over_smb_ends_that_users_sessions_and_says_how(labs: list[Lab]) -> None:
    second = labs[1]
    with smbprotocol_sessions(second, ["labbob"]), smbprotocol_sessions(second, ["labcarol"]):
        assert {"labbob", "labcarol"} <= users_of(second)
        what_if = run_cli("close", "-CimSession", smb(second), "-ClientUserName", "labbob",
                          "-WhatIf", env=env_for(second))
        assert what_if.returncode == 0, what_if.stderr
        assert what_if.stdout.splitlines() == [
            "What if: Performing operation 'Close-Session' on Target 'every session of "
            f"{NETBIOS_NAME}\\labbob from 127.0.0.1 on 127.0.0.1'."]
        assert "labbob" in users_of(second)
        out = run_cli("close", "-CimSession", smb(second), "-ClientUserName", "labbob",
                      "-Force", "-Verbose", env=env_for(second))
        assert out.returncode == 0, out.stderr
        assert "WARNING: " in out.stderr and "NetrSessionDel" in out.stderr
        assert "ended by NetrSessionDel" in out.stderr
        assert wait_for(lambda: "labbob" not in users_of(second))
        assert "labcarol" in users_of(second)  # another connection: untouched


def test_close_over_smb_needs_force_or_a_terminal(labs: list[Lab]) -> None:
    second = labs[1]
    with smbprotocol_sessions(second, ["labbob"]):
        out = run_cli("close", "-CimSession", smb(second), "-ClientUserName", "labbob",
                      env=env_for(second), detached=True)
        assert out.returncode == 1 and "nothing was closed" in out.stderr
        assert "labbob" in users_of(second)


def test_close_over_cim_session_asks_for_each_session_on_the_terminal(labs: list[Lab]) -> None:
    first = labs[0]
    with smbprotocol_sessions(first, ["labalice", "labbob", "labcarol"]) as sessions:
        ids = sorted(s.session_id for s in sessions)
        term = Terminal([sys.executable, "-m", "smbsession", "close", "-CimSession",
                         "localhost", "-SmbConf", str(first.conf_path), "-SessionId",
                         ",".join(map(str, ids)), "-Confirm"])
        term.expect(f"on Target '{ids[0]} on localhost'".encode())
        term.expect(b'(default is "Y"): ')
        term.answer("n")
        term.expect(f"on Target '{ids[1]} on localhost'".encode())
        term.expect(b'(default is "Y"): ')
        term.answer("a")
        assert term.finish() == 0, term.proc.stderr.read()
        left = {s.session_id for s in smbsession.read_sessions(str(first.conf_path)).sessions}
    assert ids[0] in left and ids[1] not in left and ids[2] not in left
    assert term.seen.count(b"Are you sure you want to perform this action?") == 2


def test_a_fleet_streams_each_target_as_it_answers(labs: list[Lab]) -> None:
    # The local target answers at once; the silent one only fails at its timeout. The
    # table (with its header once) must be out long before that.
    first = labs[0]
    with smbprotocol_sessions(first, ["labalice"]) as (alice,), silent_servers(1) as (quiet,):
        targets = f"localhost,ssh://root@127.0.0.1:{quiet}"
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "smbsession", "get", "-SmbConf", str(first.conf_path),
             "-CimSession", targets, "-OperationTimeoutSec", "6",
             "-Property", "SessionId,PSComputerName"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONPATH": SRC})
        assert proc.stdout is not None and proc.stderr is not None
        arrived = []
        for line in proc.stdout:
            arrived.append((time.monotonic() - started, line))
        err = proc.stderr.read()
        proc.wait(30)
    ended = time.monotonic() - started
    assert proc.returncode == 1 and f"127.0.0.1:{quiet}: " in err, err
    assert ended >= 6
    rows = [line for _, line in arrived if str(alice.session_id) in line]
    assert rows and "localhost" in rows[0]
    first_row_at = next(at for at, line in arrived if str(alice.session_id) in line)
    assert first_row_at < ended - 3, arrived
    assert [line.split()[0] for _, line in arrived].count("SessionId") == 1
