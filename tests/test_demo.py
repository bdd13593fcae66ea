"""``make demo`` and ``smbsession lab clients``: the demo installs only the package and the
[lab] extra and takes its lab directory from LAB_DIR; the sample clients add to running
ones and say so; without smbprotocol they refuse rather than make 3 sessions of 5; the
"not running" hints name --dir when the lab is not the default one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli, running_lab, wait_for
from smbsession import read_sessions
from smbsession.lab import Lab

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\d+ +127\.0\.0\.1 +LABSRV\\lab\w+ +\d+$", re.M)


def _lab_dir(name: str) -> Path:
    """A directory the lab users can enter (pytest's tmp_path is closed to them)."""
    path = Path(tempfile.mkdtemp(prefix=f"smbsession-{name}-", dir="/tmp"))
    path.chmod(0o755)
    return path


def _make_demo(venv: Path, lab_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "demo", f"VENV={venv}", f"LAB_DIR={lab_dir}",
         "DEMO_SECONDS=60"], capture_output=True, text=True, timeout=600, check=False)


def test_make_demo_installs_the_lab_extra_only_and_uses_lab_dir(tmp_path: Path) -> None:
    venv, lab_dir = tmp_path / "venv", _lab_dir("demo")
    try:
        first = _make_demo(venv, lab_dir)
        assert first.returncode == 0, first.stderr
        assert f"+ Get-SmbSession -SmbConf {lab_dir}/smb.conf" in first.stdout
        assert len(ROW.findall(first.stdout)) == 5, first.stdout
        assert "sample clients connected" in first.stdout
        installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                                    "--format", "json"], capture_output=True, text=True,
                                   check=True).stdout
        names = {p["name"].lower() for p in json.loads(installed)}
        assert {"smbsession", "smbprotocol"} <= names
        assert not names & {"impacket", "pytest", "hypothesis", "asyncssh", "ruff"}, names
        assert (venv / ".installed-demo").exists() and not (venv / ".installed").exists()
        # A second demo adds five sessions to the five still connected, and says so.
        second = _make_demo(venv, lab_dir)
        assert second.returncode == 0, second.stderr
        assert "added to the sample clients already running (10 sessions in all)" in (
            second.stdout)
        assert len(ROW.findall(second.stdout)) == 10, second.stdout
    finally:
        Lab(lab_dir).stop()
        shutil.rmtree(lab_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def clients_lab() -> Iterator[Lab]:
    """A private lab of this module's own, so that its sample clients disturb no other
    test's sessions."""
    with running_lab("clients") as lab:
        yield lab


def _sessions(lab: Lab) -> int:
    return len(read_sessions(str(lab.conf_path), source="smbstatus").sessions)


def test_lab_clients_add_to_running_clients_and_stop_ends_them_all(clients_lab: Lab) -> None:
    assert _sessions(clients_lab) == 0
    first = clients_lab.start_clients(seconds=120)
    assert (first.sessions, first.expected) == (5, 5)
    assert _sessions(clients_lab) == 5
    result = run_cli("lab", "clients", "--dir", str(clients_lab.directory), "--seconds", "120")
    assert result.returncode == 0, result.stderr
    assert re.search(r"sample clients connected \(pid \d+\): 5 sessions, held for 120 s",
                     result.stdout)
    assert "added to the sample clients already running (10 sessions in all):" in result.stdout
    assert f"  pid {first.pid}: 5 sessions, until " in result.stdout
    assert _sessions(clients_lab) == 10
    running = clients_lab.running_clients()
    assert len(running) == 2 and running[0].pid == first.pid
    status = run_cli("lab", "status", "--dir", str(clients_lab.directory))
    assert status.stdout.count("sample clients: pid ") == 2
    ended = clients_lab.stop_clients()
    assert sorted(s.pid for s in ended) == sorted(s.pid for s in running)
    assert clients_lab.running_clients() == []
    wait_for(lambda: _sessions(clients_lab) == 0)


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the package and no extra: no smbprotocol."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    source = tmp_path_factory.mktemp("source")
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, source / part)
    for part in ("src", "man"):
        shutil.copytree(ROOT / part, source / part,
                        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], check=True,
                   capture_output=True, timeout=600)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import smbprotocol"],
                           capture_output=True, check=False)
    assert probe.returncode != 0
    return venv


def test_without_smbprotocol_the_clients_say_so_and_make_no_session(clients_lab: Lab,
                                                                     plain_venv: Path) -> None:
    proc = subprocess.run([str(plain_venv / "bin" / "smbsession"), "lab", "clients", "--dir",
                           str(clients_lab.directory), "--seconds", "30"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 1
    assert proc.stderr == (
        "smbsession lab: the sample clients need smbprotocol, which makes 2 of their 5 "
        "sessions: pip install 'smbsession[lab]' (make demo installs it).\n")
    assert _sessions(clients_lab) == 0
    # The clients process itself, started by hand, connects nothing either.
    ready = clients_lab.directory / "pid" / "ready-by-hand"
    direct = subprocess.run([str(plain_venv / "bin" / "python"), "-m", "smbsession.lab.clients",
                             str(clients_lab.directory), "30", str(ready)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert direct.returncode == 3
    assert "need smbprotocol" in direct.stdout
    assert not ready.exists() and _sessions(clients_lab) == 0


def test_not_running_hints_name_the_lab_directory(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    clients = run_cli("lab", "clients", "--dir", str(other))
    assert clients.returncode == 1
    assert clients.stderr == (
        f"smbsession lab: the lab is not running: start it with 'smbsession lab start "
        f"--dir {other}'.\n")
    status = run_cli("lab", "status", "--dir", str(other))
    assert status.returncode == 1
    assert f"start it with 'smbsession lab start --dir {other}'" in status.stdout
    # The default lab directory needs no --dir.
    state = tmp_path / "state"
    default = run_cli("lab", "status", env={"XDG_STATE_HOME": str(state)})
    assert default.returncode == 1
    assert default.stdout.endswith("start it with 'smbsession lab start'\n")
    assert run_cli("lab", "clients", env={"XDG_STATE_HOME": str(state)}).stderr == (
        "smbsession lab: the lab is not running: start it with 'smbsession lab start'.\n")
