"""The Close-SmbSession command: what-if, confirmation on a real terminal, pipeline input."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import smbsession
from conftest import SRC, Terminal, run_cli, smbprotocol_sessions
from smbsession.lab import Lab


def live_ids(lab: Lab) -> set[int]:
    return {s.session_id for s in smbsession.read_sessions(str(lab.conf_path)).sessions}


def close(lab: Lab, *args: str, **kwargs) -> object:
    return run_cli("close", "-SmbConf", str(lab.conf_path), *args, **kwargs)


def test_what_if_names_each_session_and_closes_none(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        out = close(lab, "-SessionId", f"{alice.session_id},{bob.session_id}", "-WhatIf")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            f"What if: Performing operation 'Close-Session' on Target '{sid}'."
            for sid in sorted((alice.session_id, bob.session_id))
        ]
        assert {alice.session_id, bob.session_id} <= live_ids(lab)


def test_without_terminal_or_force_nothing_is_closed(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        proc = subprocess.run(
            [sys.executable, "-m", "smbsession", "close", "-SmbConf", str(lab.conf_path),
             str(carol.session_id)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": SRC}, check=False,
        )
        assert proc.returncode == 1
        assert "nothing was closed" in proc.stderr and "-Force" in proc.stderr
        assert carol.session_id in live_ids(lab)


def test_force_closes_and_pass_thru_prints_it(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        out = close(lab, str(alice.session_id), "-Force", "-PassThru", "-Format", "Json")
        assert out.returncode == 0, out.stderr
        assert [r["SessionId"] for r in out.json()] == [alice.session_id]
        ids = live_ids(lab)
        assert alice.session_id not in ids and bob.session_id in ids


def test_pipeline_from_get_smbsession(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        listed = run_cli("get", "-SmbConf", str(lab.conf_path), "-ClientUserName", "labalice",
                         "-Format", "NDJson")
        out = close(lab, "-Force", stdin=listed.stdout)
        assert out.returncode == 0, out.stderr
        ids = live_ids(lab)
        assert alice.session_id not in ids and bob.session_id in ids


def test_a_value_that_matches_nothing(lab: Lab) -> None:
    out = close(lab, "-SessionId", "7", "-Force")
    assert out.returncode == 1
    assert "No MSFT_SmbSession objects found with property 'SessionId' equal to '7'" in out.stderr


def test_not_root(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        out = close(lab, str(carol.session_id), "-Force", user="nobody")
        assert out.returncode == 1
        assert out.stderr.startswith("smbsession close: "), out.stderr
        assert "root" in out.stderr and "sudo" in out.stderr and "Traceback" not in out.stderr
        assert carol.session_id in live_ids(lab)


@pytest.mark.parametrize("nothing", ["[]", "", "\n"])
def test_nothing_to_close_is_no_failure(lab: Lab, nothing: str) -> None:
    # A cron job that closes what a listing found, when it found nothing.
    with smbprotocol_sessions(lab, ["labalice"]) as (alice,):
        out = close(lab, "-Force", "-Verbose", stdin=nothing)
        assert (out.returncode, out.stdout) == (0, ""), out.stderr
        assert "Nothing to close" in out.stderr
        assert alice.session_id in live_ids(lab)


def test_text_that_is_not_json_closes_nothing(lab: Lab) -> None:
    # Without a filter, input that is not sessions must never mean "every session".
    with smbprotocol_sessions(lab, ["labalice"]) as (alice,):
        listed = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Csv")
        out = close(lab, "-Force", stdin=listed.stdout)
        assert out.returncode == 2 and "not JSON" in out.stderr, out.stderr
        assert "nothing was closed" in out.stderr
        assert alice.session_id in live_ids(lab)


def test_what_if_with_close_connection_names_the_neighbours(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        out = close(lab, "-SessionId", str(alice.session_id), "-CloseConnection", "-WhatIf")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            f"What if: Performing operation 'Close-Session' on Target '{alice.session_id}'. "
            f"(Ending its connection also ends session(s) {bob.session_id}.)"]
        assert {alice.session_id, bob.session_id} <= live_ids(lab)
        refused = close(lab, "-SessionId", str(alice.session_id), "-CloseConnection")
        assert refused.returncode == 1 and "needs -Force" in refused.stderr
        assert {alice.session_id, bob.session_id} <= live_ids(lab)


def test_confirm_yes_no_and_yes_to_all_on_a_terminal(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob", "labcarol", "labalice"]) as sessions:
        ids = sorted(s.session_id for s in sessions)
        term = Terminal([sys.executable, "-m", "smbsession", "close", "-SmbConf",
                         str(lab.conf_path), "-SessionId", ",".join(map(str, ids)), "-Confirm"])
        term.expect(f"on Target '{ids[0]}'".encode())
        term.expect(b'(default is "Y"): ')
        term.answer("y")
        term.expect(f"on Target '{ids[1]}'".encode())
        term.expect(b'(default is "Y"): ', timeout=20)
        term.answer("?")
        term.expect(b"A - Continue with all the steps")
        term.answer("n")
        term.expect(f"on Target '{ids[2]}'".encode())
        term.answer("a")
        assert term.finish() == 0, term.proc.stderr.read()
        left = live_ids(lab)
        assert ids[0] not in left and ids[1] in left
        assert ids[2] not in left and ids[3] not in left
        assert term.seen.count(b"Are you sure you want to perform this action?") == 3
