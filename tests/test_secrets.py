"""Secrets: the lab's passwords never show in any process's argv, in logs or in output."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, smbclient_session, smbprotocol_sessions
from smbsession.lab import Lab


def _all_argv() -> str:
    seen = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                seen.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"))
            except OSError:
                continue
    return "\n".join(seen)


def test_passwords_stay_out_of_argv_logs_and_output(lab: Lab) -> None:
    passwords = [u.password for u in lab.users()]
    assert len(passwords) >= 4 and all(len(p) >= 12 for p in passwords)
    with smbprotocol_sessions(lab, ["labalice"]), smbclient_session(lab, "labbob"), \
            smbclient_session(lab, "labcarol", protocol="NT1"):
        argv = _all_argv()
        listing = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "List",
                          "-Verbose", "-Debug", "-IncludeHidden")
        failing = run_cli("get", "-SmbConf", str(lab.conf_path), "-CimSession",
                          "ssh://labalice@127.0.0.1:1", "-OperationTimeoutSec", "3")
        root = lab.user("root").password
        smb = f"smb://LAB\\root@127.0.0.1:{lab.port}"
        remote = run_cli("get", "-CimSession", smb, "-Format", "List", "-Verbose", "-Debug",
                         env={"SMBSESSION_PASSWORD": root})
        wrong = run_cli("get", "-CimSession", smb, "-Verbose", "-Debug",
                        env={"SMBSESSION_PASSWORD": root[::-1]})
        denied = run_cli("get", "-CimSession", f"smb://LAB\\labbob@127.0.0.1:{lab.port}",
                         env={"SMBSESSION_PASSWORD": lab.user("labbob").password})
    logs = "\n".join(p.read_text(errors="replace")
                     for p in (lab.directory / "log").glob("*") if p.is_file())
    for secret in [*passwords, root[::-1]]:
        assert secret not in argv
        assert secret not in logs
        for out in (listing, failing, remote, wrong, denied):
            assert secret not in out.stdout and secret not in out.stderr
    assert "labalice" in listing.stdout  # the searches looked at real output
    assert "labbob" in remote.stdout and remote.returncode == 0, remote.stderr
    assert "STATUS_LOGON_FAILURE" in wrong.stderr and "access denied" in denied.stderr
    assert (lab.directory / "lab.json").stat().st_mode & 0o077 == 0
