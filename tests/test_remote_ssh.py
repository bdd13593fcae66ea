"""SSH targets against a real sshd on loopback, started here with its own keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smbsession
from conftest import silent_servers, smbprotocol_sessions
from helpers.sshd import LabSshd as Sshd
from helpers.sshd import running_sshd, trusting_home
from smbsession.lab import Lab, free_port

pytest.importorskip("asyncssh")
from smbsession.remote.ssh import RemoteError, list_sessions, parse_ssh_target


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    with running_sshd() as server:
        yield server


def test_lists_the_lab_over_ssh(lab: Lab, sshd: Sshd) -> None:
    target = parse_ssh_target(f"ssh://root@127.0.0.1:{sshd.port}")
    with smbprotocol_sessions(lab, ["labalice", "labbob"], files={"labbob": ["ssh.txt"]}) as (
            alice, bob):
        remote = list_sessions(target, str(lab.conf_path), **sshd.options())
        local = smbsession.read_sessions(str(lab.conf_path)).sessions
    by_id = {s.session_id: s for s in remote}
    assert {alice.session_id, bob.session_id} <= set(by_id)
    assert {s.session_id for s in local} == set(by_id)
    assert by_id[bob.session_id].num_opens == 1
    assert by_id[bob.session_id].client_user_name == "LABSRV\\labbob"
    assert all(s.ps_computer_name == target.raw for s in remote)


def test_hidden_sessions_stay_hidden_over_ssh(lab: Lab, sshd: Sshd,
                                              ssh_home: dict[str, str]) -> None:
    from conftest import anonymous_session, run_cli

    target = f"ssh://root@127.0.0.1:{sshd.port}"
    with anonymous_session(lab) as anonymous:
        def ids(*extra: str, remote: bool) -> set[int]:
            where = ("-CimSession", target) if remote else ()
            out = run_cli("get", "-SmbConf", str(lab.conf_path), *where, *extra,
                          "-Format", "Json", env=ssh_home)
            assert out.returncode == 0, out.stderr
            return {r["SessionId"] for r in out.json()}

        assert anonymous not in ids(remote=True) and anonymous not in ids(remote=False)
        assert anonymous in ids("-IncludeHidden", remote=True)
        assert ids(remote=True) == ids(remote=False)


def test_an_unknown_host_key_is_refused_with_its_fingerprint(sshd: Sshd) -> None:
    target = parse_ssh_target(f"ssh://root@127.0.0.1:{sshd.port}")
    with pytest.raises(RemoteError) as err:
        list_sessions(target, **sshd.options("empty_known_hosts"))
    message = str(err.value)
    assert message.startswith(target.raw) and "SHA256:" in message
    assert "ssh-keyscan" in message


def test_an_unreachable_target_fails_alone_and_fast(sshd: Sshd) -> None:
    port = free_port()
    target = parse_ssh_target(f"ssh://root@127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(RemoteError) as err:
        list_sessions(target, timeout=5, **sshd.options())
    assert str(err.value) == f"{target.raw}: cannot connect to 127.0.0.1:{port}: Connection refused"
    assert time.monotonic() - started < 6


def test_a_server_without_samba_says_so(sshd: Sshd, tmp_path: Path) -> None:
    target = parse_ssh_target(f"ssh://root@127.0.0.1:{sshd.port}")
    with pytest.raises(RemoteError, match="does not exist"):
        list_sessions(target, str(tmp_path / "missing.conf"), **sshd.options())


@pytest.mark.parametrize("bad", ["ssh://", "ssh://host:99999", "http://host", "ssh://a b"])
def test_bad_targets_are_named(bad: str) -> None:
    with pytest.raises(smbsession.InvalidParameter, match="-CimSession"):
        parse_ssh_target(bad)


def test_targets() -> None:
    t = parse_ssh_target("ssh://admin@[::1]:2222")
    assert (t.user, t.host, t.port) == ("admin", "::1", 2222)
    t = parse_ssh_target("ssh://files1")
    assert (t.user, t.host, t.port) == (None, "files1", None)


@pytest.fixture
def ssh_home(sshd: Sshd, tmp_path: Path) -> dict[str, str]:
    """A HOME whose ~/.ssh trusts the test sshd and holds the test key, as OpenSSH's."""
    return trusting_home(sshd, tmp_path)


def test_fleet_with_a_failing_target(lab: Lab, sshd: Sshd, ssh_home: dict[str, str]) -> None:
    from conftest import run_cli

    good = f"ssh://root@127.0.0.1:{sshd.port}"
    bad = f"ssh://root@127.0.0.1:{free_port()}"
    targets = ",".join([good, "localhost", bad, f"127.0.0.1:{sshd.port}"])
    with smbprotocol_sessions(lab, ["labalice"]) as (alice,):
        out = run_cli("get", "-SmbConf", str(lab.conf_path), "-CimSession", targets,
                      "-ThrottleLimit", "2", "-SessionId", str(alice.session_id),
                      "-Format", "Json", "-OperationTimeoutSec", "20", env=ssh_home)
    assert out.returncode == 1
    rows = out.json()
    assert sorted(r["PSComputerName"] for r in rows) == sorted(
        [good, "localhost", f"127.0.0.1:{sshd.port}"])
    assert all(r["SessionId"] == alice.session_id for r in rows)
    errors = [line for line in out.stderr.splitlines() if bad in line]
    assert len(errors) == 1 and "Traceback" not in out.stderr


def test_close_over_ssh_closes_just_that_session(lab: Lab, sshd: Sshd,
                                                 ssh_home: dict[str, str]) -> None:
    import smbsession
    from conftest import run_cli

    good = f"ssh://root@127.0.0.1:{sshd.port}"
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        out = run_cli("close", "-SmbConf", str(lab.conf_path), "-CimSession", good,
                      "-SessionId", str(alice.session_id), "-Force", "-PassThru",
                      "-Format", "Json", env=ssh_home)
        assert out.returncode == 0, out.stderr
        # One target: PSComputerName is its host, as Windows shows the computer's name.
        assert [(r["SessionId"], r["PSComputerName"]) for r in out.json()] == [
            (alice.session_id, "127.0.0.1")]
        left = {s.session_id for s in smbsession.read_sessions(str(lab.conf_path)).sessions}
        assert alice.session_id not in left and bob.session_id in left
        missing = run_cli("close", "-SmbConf", str(lab.conf_path), "-CimSession", good,
                          "-SessionId", str(alice.session_id), "-Force", env=ssh_home)
    assert missing.returncode == 1
    assert f"property 'SessionId' equal to '{alice.session_id}'" in missing.stderr


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    with silent_servers() as (port,):
        target = parse_ssh_target(f"ssh://root@127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(RemoteError) as err:
            list_sessions(target, timeout=2)
    assert time.monotonic() - started < 4
    assert str(err.value) == f"{target.raw}: no answer within 2 s"
