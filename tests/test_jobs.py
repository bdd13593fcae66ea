"""-AsJob: the job runs on after the shell that started it; its results wait in the store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import SRC, run_cli, smbprotocol_sessions
from smbsession.lab import Lab


def test_a_job_outlives_its_shell_and_keeps_its_results(lab: Lab, tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        shell = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m smbsession get -SmbConf {lab.conf_path} "
                           "-CimSession localhost -AsJob </dev/null; exit 0"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC, **env},
            check=True,
        )
        header, _, line = shell.stdout.splitlines()
        assert header.split() == ["Id", "Name", "State", "HasMoreData", "Command"]
        job_id = line.split()[0]
        waited = run_cli("job", "wait", job_id, "--timeout", "60", env=env)
        assert waited.returncode == 0 and "Completed" in waited.stdout
        received = run_cli("job", "receive", job_id, "--format", "Json", env=env)
    assert received.returncode == 0, received.stderr
    rows = received.json()
    assert {alice.session_id, bob.session_id} <= {r["SessionId"] for r in rows}
    assert {r["PSComputerName"] for r in rows} == {"localhost"}
    listed = run_cli("job", "list", env=env)
    assert f"Job{job_id}" in listed.stdout and "False" in listed.stdout
    store = tmp_path / "smbsession" / "jobs.sqlite"
    assert store.stat().st_mode & 0o077 == 0
    with sqlite3.connect(store) as db:
        (argv,) = db.execute("SELECT argv FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    assert "-AsJob" in json.loads(argv)
    assert run_cli("job", "remove", job_id, env=env).returncode == 0
    assert f"Job{job_id}" not in run_cli("job", "list", env=env).stdout


def test_a_failing_job_keeps_its_errors(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    started = run_cli("get", "-SmbConf", str(tmp_path / "missing.conf"), "-AsJob", env=env)
    job_id = started.stdout.splitlines()[2].split()[0]
    waited = run_cli("job", "wait", job_id, env=env)
    assert "Failed" in waited.stdout
    received = run_cli("job", "receive", job_id, env=env)
    assert received.returncode == 1 and "does not exist" in received.stderr
    assert run_cli("job", "receive", "999", env=env).returncode == 2
