"""Get-SmbSession end to end: real smbd (the lab), real clients, the real command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import SRC, run_cli, running_lab, smbclient_session, smbprotocol_sessions, wait_for
from smbsession.lab import NETBIOS_NAME, Lab

MSFT = [
    "SessionId", "ClientComputerName", "ClientUserName", "ClusterNodeName", "Dialect",
    "NumOpens", "ScopeName", "SecondsExists", "SecondsIdle", "TransportName", "SmbInstance",
]

# The header and rule of the seed's Example 1, as printed by Windows.
SEED_HEADER = (
    "SessionId                     ClientComputerName            ClientUserName"
    "                NumOpens"
)
SEED_RULE = (
    "---------                     ------------------            --------------"
    "                --------"
)


def _by_user(rows: list[dict], user: str) -> list[dict]:
    return [r for r in rows if r["ClientUserName"] == f"{NETBIOS_NAME}\\{user}"]


def test_listing_holds_the_sessions_the_test_opened(lab: Lab, get_sessions) -> None:
    with smbprotocol_sessions(lab, ["labalice"]) as (alice,), smbclient_session(lab, "labbob"):
        rows = wait_for(lambda: _by_user(r := get_sessions(), "labbob") and r)
        mine = _by_user(rows, "labalice")
        assert [r["SessionId"] for r in mine] == [alice.session_id]
        assert mine[0]["ClientComputerName"] == "127.0.0.1"
        bob = _by_user(rows, "labbob")
        assert len(bob) == 1
        assert bob[0]["ClientComputerName"] == "127.0.0.1"
        assert bob[0]["Dialect"] == "3.1.1"
    after = wait_for(lambda: not _by_user(get_sessions(), "labalice"))
    assert after, f"the session was still listed after the client disconnected: {get_sessions()}"


def test_two_users_on_one_connection_with_their_own_open_counts(lab: Lab, get_sessions) -> None:
    files = {"labalice": ["a1.txt", "a2.txt"], "labbob": []}
    with smbprotocol_sessions(lab, ["labalice", "labbob"], files=files) as (alice, bob):
        rows = {r["SessionId"]: r for r in get_sessions()}
        assert rows[alice.session_id]["NumOpens"] == 2
        assert rows[bob.session_id]["NumOpens"] == 0
        assert rows[alice.session_id]["SmbdPid"] == rows[bob.session_id]["SmbdPid"]


def test_json_has_every_msft_property_with_its_type(lab: Lab, get_sessions) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        row = next(r for r in get_sessions() if r["SessionId"] == carol.session_id)
    assert set(MSFT) <= set(row)
    assert isinstance(row["SessionId"], int) and not isinstance(row["SessionId"], bool)
    assert isinstance(row["NumOpens"], int)
    assert row["ClientUserName"] == f"{NETBIOS_NAME}\\labcarol"
    assert row["ScopeName"] == "*"
    assert row["ClusterNodeName"] == ""
    assert row["SmbInstance"] == "Default"
    for key in ("SecondsExists", "SecondsIdle", "TransportName"):
        assert row[key] is None or isinstance(row[key], (int, str))


def test_table_matches_the_seed_layout(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice"]) as (alice,):
        out = run_cli("get", "-SmbConf", str(lab.conf_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == SEED_HEADER
    assert lines[1] == SEED_RULE
    row = next(line for line in lines[2:] if line.startswith(str(alice.session_id)))
    assert row[30:].startswith("127.0.0.1 ")
    assert row[60:].startswith(f"{NETBIOS_NAME}\\labalice ")
    assert re.fullmatch(r"\d+", row[90:])


def test_smbconf_selects_the_server(lab: Lab) -> None:
    with running_lab("other") as other:
        with smbprotocol_sessions(lab, ["labalice"]) as (alice,):
            mine = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Json")
            theirs = run_cli("get", "-SmbConf", str(other.conf_path), "-Format", "Json")
            by_env = run_cli("get", "-Format", "Json", env={"SMB_CONF_PATH": str(lab.conf_path)})
        assert alice.session_id in {r["SessionId"] for r in mine.json()}
        assert alice.session_id not in {r["SessionId"] for r in theirs.json()}
        assert alice.session_id in {r["SessionId"] for r in by_env.json()}


def test_missing_smbconf_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "nope.conf"
    out = run_cli("get", "-SmbConf", str(missing))
    assert out.returncode == 2
    assert str(missing) in out.stderr and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_running_samba_says_how_to_start_one(tmp_path) -> None:
    stopped = Lab(tmp_path / "stopped")
    stopped.directory.mkdir(parents=True)
    stopped._write_config(port=1, ipv6=False)
    (stopped.directory / "pid").mkdir()
    out = run_cli("get", "-SmbConf", str(stopped.conf_path))
    assert out.returncode == 1
    assert "no smbd is running" in out.stderr and "smbsession lab start" in out.stderr
    assert "Traceback" not in out.stderr
    stopped.state_path.write_text("{}")  # a lab that ran once: the hint names its --dir
    out = run_cli("get", "-SmbConf", str(stopped.conf_path))
    assert f"smbsession lab start --dir {stopped.directory}" in out.stderr, out.stderr


def test_not_root_is_told_to_use_sudo(lab: Lab) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    out = run_cli("get", "-SmbConf", str(lab.conf_path), user="nobody")
    assert out.returncode == 1, out.stdout
    assert "sudo" in out.stderr and "root" in out.stderr
    assert "Traceback" not in out.stderr


def test_get_smb_session_is_the_same_as_smbsession_get(lab: Lab) -> None:
    import subprocess
    import sys

    from conftest import SRC

    with smbprotocol_sessions(lab, ["labbob"]) as (bob,):
        via_module = run_cli(
            "get", "-SmbConf", str(lab.conf_path), "-SessionId", str(bob.session_id)
        )
        script = (
            "import sys; from smbsession.cli.commands import get_smb_session_main; "
            "sys.exit(get_smb_session_main())"
        )
        direct = subprocess.run(
            [sys.executable, "-c", script, "-SmbConf", str(lab.conf_path), str(bob.session_id)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, check=False,
            stdin=subprocess.DEVNULL,
        )
    assert via_module.returncode == direct.returncode == 0
    assert via_module.stdout == direct.stdout
    assert str(bob.session_id) in direct.stdout


def test_each_samba_release_lists_its_sessions(any_lab: Lab) -> None:
    files = {"labbob": ["release-check.txt"]}
    with smbprotocol_sessions(any_lab, ["labbob", "labcarol"], files=files) as (bob, carol):
        out = run_cli("get", "-SmbConf", str(any_lab.conf_path), "-Format", "Json")
    assert out.returncode == 0, out.stderr
    rows = {r["SessionId"]: r for r in out.json()}
    assert rows[bob.session_id]["ClientUserName"] == f"{NETBIOS_NAME}\\labbob"
    assert rows[bob.session_id]["NumOpens"] == 1
    assert rows[carol.session_id]["ClientUserName"] == f"{NETBIOS_NAME}\\labcarol"
    assert rows[carol.session_id]["NumOpens"] == 0


@pytest.mark.parametrize(("args", "code"), [
    ((), 2),  # the usage, printed on stdout, and exit 2
    (("get", "-Format", "Json"), 0),
    (("get", "-SessionId", "7"), 1),
])
def test_the_exit_code_survives_a_reader_that_went_away(lab: Lab, alice_bob: list,
                                                        args: tuple[str, ...], code: int) -> None:
    # `... | head -1`, at its worst: the reader is gone before anything is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        argv = [*args[:1], "-SmbConf", str(lab.conf_path), *args[1:]] if args else []
        done = subprocess.run([sys.executable, "-m", "smbsession", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              env={**os.environ, "PYTHONPATH": SRC}, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
