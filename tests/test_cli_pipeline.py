"""Pipeline input by property name on the real command line, against real lab sessions.

What -Format Json / NDJson writes, piped into Get-SmbSession, binds SessionId,
ClientComputerName, ClientUserName, ScopeName, ClusterNodeName and SmbInstance from each
object; stdin that is no pipe or file is no pipeline input (issue 4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, run_get, smbprotocol_sessions
from smbsession.lab import NETBIOS_NAME, Lab

BOB = f"{NETBIOS_NAME}\\labbob"


def session_ids(stdout: str) -> list[int]:
    return [row["SessionId"] for row in json.loads(stdout)]


@pytest.mark.parametrize("fmt", ["Json", "NDJson"])
def test_piped_sessions_list_the_same_sessions(lab: Lab, alice_bob: list, fmt: str) -> None:
    first = run_get(lab, "-ClientUserName", BOB, "-Format", fmt)
    assert first.returncode == 0 and first.stdout
    second = run_get(lab, "-Format", "Json", stdin=first.stdout)
    assert second.returncode == 0, second.stderr
    expected = run_get(lab, "-ClientUserName", BOB, "-Format", "Json")
    assert session_ids(second.stdout) == session_ids(expected.stdout)
    assert alice_bob[1].session_id in session_ids(second.stdout)


def test_the_issues_example_prints_the_same_table(lab: Lab, alice_bob: list) -> None:
    piped = run_get(lab, "-ClientUserName", BOB, "-Format", "Json")
    table = run_get(lab, stdin=piped.stdout)
    assert table.returncode == 0
    assert table.stdout == run_get(lab, "-ClientUserName", BOB).stdout


def test_a_shell_pipe_between_two_commands(lab: Lab, alice_bob: list) -> None:
    command = [sys.executable, "-m", "smbsession", "get", "-SmbConf", str(lab.conf_path)]
    line = (f"{' '.join(command)} -ClientUserName '{BOB}' -Format NDJson | "
            f"{' '.join(command)} -Property SessionId -Format Json")
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert alice_bob[1].session_id in session_ids(done.stdout)


def test_a_file_on_stdin_is_pipeline_input(lab: Lab, alice_bob: list, tmp_path) -> None:
    alice = alice_bob[0].session_id
    saved = tmp_path / "alice.json"
    saved.write_text(run_get(lab, "-SessionId", str(alice), "-Format", "Json").stdout)
    with saved.open("rb") as stdin:
        out = run_get(lab, "-Format", "Json", stdin=stdin)
    assert session_ids(out.stdout) == [alice]


def test_property_names_bind_in_any_case_and_alone(lab: Lab, alice_bob: list) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    piped = f'{{"sessionid": {alice}}}\n{{"SESSIONID": "{bob}"}}\n'
    out = run_get(lab, "-Format", "Json", stdin=piped)
    assert session_ids(out.stdout) == [alice, bob]


def test_command_line_parameters_stay_bound_for_every_object(lab: Lab, alice_bob: list) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    piped = run_get(lab, "-SessionId", f"{alice},{bob}", "-Property", "SessionId", "-Json")
    out = run_get(lab, "-ClientUserName", "labbob", "-Json", stdin=piped.stdout)
    assert session_ids(out.stdout) == [bob]
    # Alice's object asks for her SessionId and (from the command line) user labbob.
    assert out.returncode == 1
    assert f"property 'SessionId' equal to '{alice}'" in out.stderr


def test_an_object_of_a_session_that_ended_is_reported(lab: Lab, alice_bob: list) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        gone = run_get(lab, "-SessionId", str(carol.session_id), "-Format", "NDJson").stdout
    alice = alice_bob[0].session_id
    still = run_get(lab, "-SessionId", str(alice), "-Format", "NDJson").stdout
    out = run_get(lab, "-Json", "-Property", "SessionId", stdin=gone + still)
    assert out.returncode == 1
    assert session_ids(out.stdout) == [alice]
    assert f"property 'SessionId' equal to '{carol.session_id}'" in out.stderr
    stopped = run_get(lab, "-Json", "-ErrorAction", "Stop", stdin=gone + still)
    assert stopped.returncode == 1 and session_ids(stopped.stdout) == []
    assert stopped.stderr.count("No MSFT_SmbSession objects found") == 1


@pytest.mark.parametrize("empty", ["[]", "[ ]\n", "\ufeff[]"])
def test_input_without_objects_runs_the_command_zero_times(lab: Lab, alice_bob: list,
                                                           empty: str) -> None:
    table = run_get(lab, stdin=empty)
    assert (table.returncode, table.stdout, table.stderr) == (0, "", "")
    assert run_get(lab, "-Json", stdin=empty).json() == []


@pytest.mark.parametrize("nothing", ["", "\n", " \n\t"])
def test_an_empty_pipe_is_no_pipeline_input(lab: Lab, alice_bob: list, nothing: str) -> None:
    # cron hands its jobs an empty pipe: the command runs once, with its command line.
    out = run_get(lab, "-Json", stdin=nothing)
    assert out.returncode == 0, out.stderr
    assert {s.session_id for s in alice_bob} <= set(session_ids(out.stdout))


def test_text_on_stdin_is_no_pipeline_input_and_stays_unread(lab: Lab, alice_bob: list,
                                                              tmp_path: Path) -> None:
    # A while-read loop over a file of user names: each run of Get-SmbSession leaves the
    # rest of the file to the loop (the file's offset does not move), over a pipe too.
    names = tmp_path / "users.txt"
    names.write_text("labalice\nlabbob\nnobody-here\n")
    loop = ('while read -r u; do "$0" -m smbsession get -SmbConf "$1" -ClientUserName "$u" '
            '-Property ClientUserName -Format Csv; echo "rc=$?"; done')
    for feed in (f'< "{names}"', f'cat "{names}" |'):
        script = f"{loop} {feed}" if feed.startswith("<") else f"{feed} {{ {loop}; }}"
        done = subprocess.run(["sh", "-c", script, sys.executable, str(lab.conf_path)],
                              capture_output=True, text=True, check=False, timeout=120,
                              stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": SRC})
        assert done.stdout.count("rc=") == 3, (feed, done.stdout, done.stderr)
        assert "LABSRV\\labalice" in done.stdout and "LABSRV\\labbob" in done.stdout
        assert done.stdout.count("rc=0") == 2 and "rc=1" in done.stdout
        assert "'nobody-here'" in done.stderr and "not valid JSON" not in done.stderr


def test_a_pipe_held_by_the_session_does_not_hang_the_command(lab: Lab,
                                                              alice_bob: list) -> None:
    # As under `ssh host Get-SmbSession` without -n: stdin is a pipe whose writing end
    # the parent (sshd, here this test) holds open, and nothing ever comes; a shell
    # stands between them, as the user's login shell does.
    read_end, write_end = os.pipe()
    try:
        started = time.monotonic()
        child = subprocess.Popen(
            ["sh", "-c", '"$0" -m smbsession get -SmbConf "$1" -Json; echo "rc=$?"',
             sys.executable, str(lab.conf_path)],
            stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": SRC})
        os.close(read_end)
        out, err = child.communicate(timeout=60)
    finally:
        os.close(write_end)
    assert "rc=0" in out, err
    assert time.monotonic() - started < 20
    assert {s.session_id for s in alice_bob} <= set(session_ids(out.split("rc=")[0]))


@pytest.mark.parametrize(
    ("piped", "line", "says"),
    [
        ('{"SessionId": 1}\n{"SessionId": 2,}\n', 2, "not valid JSON"),
        ('[\n  {"SessionId": 1},\n  {"SessionId": 2}\n  {"SessionId": 3}\n]\n', 4,
         "expected ',' or ']'"),
        ('{"SessionId": 1}\n[5]\n', 2, "expected an object with properties, found the value 5"),
        ('\n\n{"SessionId": "abc"}\n', 3, 'Cannot convert value "abc" to type "System.UInt64"'),
        ('{"SessionId": true}\n', 1, "Cannot convert the value true of property 'SessionId'"),
        ('{"Owner": "bob"}\n', 1, "cannot be bound to any parameters"),
        ('{"SmbInstance": "Cluster"}\n', 1, "does not belong to the set"),
        ('{"SessionId": 1', 1, "not valid JSON"),
    ],
)
def test_malformed_input_is_an_error_naming_the_line(lab: Lab, piped: str, line: int,
                                                     says: str) -> None:
    out = run_get(lab, stdin=piped)
    assert out.returncode == 2 and out.stdout == ""
    assert f"pipeline input, line {line}" in out.stderr
    assert says in out.stderr
    assert "Traceback" not in out.stderr


def test_input_that_is_not_utf8_names_the_line(lab: Lab, tmp_path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"ClientUserName": "LAB\\\\bob"}\n{"ClientUserName": "Jos\xe9"}\n'
                    .encode("latin-1"))
    with bad.open("rb") as stdin:
        out = run_get(lab, stdin=stdin)
    assert out.returncode == 2
    assert "pipeline input, line 2: the input is not UTF-8 text" in out.stderr


def test_help_does_not_read_stdin(lab: Lab) -> None:
    out = run_get(lab, "-?", stdin="this is not JSON")
    assert out.returncode == 0 and "SYNTAX" in out.stdout
