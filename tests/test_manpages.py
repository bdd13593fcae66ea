"""The man pages: current with the help text, rendered by groff and man without a warning,
and installed into <venv>/share/man/man1 by a plain (non-editable) pip install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import smbsession
from smbsession.cli.close import CLOSE_PARAMS
from smbsession.cli.get import GET_PARAMS
from smbsession.cli.get_help import HELP as GET_HELP
from smbsession.cli.manpage import escape, pages

ROOT = Path(__file__).resolve().parent.parent
MAN1 = ROOT / "man" / "man1"
NAMES = ("Get-SmbSession.1", "Close-SmbSession.1", "smbsession.1")


def test_the_committed_pages_are_current_with_the_help_text() -> None:
    made = pages()
    assert sorted(made) == sorted(NAMES)
    stale = [name for name in NAMES
             if not (MAN1 / name).exists() or (MAN1 / name).read_text() != made[name]]
    assert not stale, (f"{stale} differ from the help text: run 'make man' "
                       "(python -m smbsession.cli.manpage man/man1) and commit man/man1")


def test_pyproject_installs_every_page() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["data-files"] == {
        "share/man/man1": [f"man/man1/{name}" for name in NAMES]}


def _render(page: Path, *command: str) -> str:
    proc = subprocess.run([*command, str(page)], capture_output=True, text=True, check=False,
                          env={**os.environ, "MANWIDTH": "100", "LANG": "C.UTF-8"}, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", NAMES)
def test_groff_and_man_render_without_warnings(name: str) -> None:
    if shutil.which("groff") is None or shutil.which("man") is None:
        pytest.fail("groff and man are needed (make test installs groff-base and man-db)")
    page = MAN1 / name
    # -ww: every warning; -z: no output, only the diagnostics.
    _render(page, "groff", "-man", "-Tutf8", "-ww", "-z")
    text = _render(page, "man", "--warnings=w", "-l")
    command = name.removesuffix(".1")
    assert re.match(rf"{command.upper()}\(1\) +User Commands", text)
    assert f"smbsession {smbsession.__version__}" in text
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert f"\n{section}\n" in text


def _man_text(name: str) -> str:
    return _render(MAN1 / name, "man", "-l")


def test_get_page_holds_every_parameter_example_and_section() -> None:
    text = _man_text("Get-SmbSession.1")
    for param in GET_PARAMS:
        assert f"-{param.name}, --{param.gnu}" in text
    for number, example in enumerate(GET_HELP.examples, 1):
        assert f"Example {number}: {example.title}" in text
        assert example.command in text
    assert "Get-SmbSession -SessionId 8813272891441 -Property '*'" in text
    assert "Accepted values: Table, List, Json, NDJson, Csv" in text
    assert "\nEXIT CODES\n" in text and "\nPIPELINE INPUT\n" in text


def test_close_and_umbrella_pages() -> None:
    close = _man_text("Close-SmbSession.1")
    for param in CLOSE_PARAMS:
        assert f"-{param.name}, --{param.gnu}" in close
    umbrella = _man_text("smbsession.1")
    for text in ("smbsession completion bash|zsh", "smbsession lab start", "smbsession job list",
                 "source <(smbsession completion bash)", "-Seconds, --seconds <Int32>"):
        assert text in umbrella


def test_escape_keeps_backslashes_hyphens_and_leading_dots() -> None:
    assert escape("LAB\\bob --json") == "LAB\\ebob \\-\\-json"
    assert escape(".hidden\n'quoted") == "\\&.hidden\n\\&'quoted"


def test_a_plain_pip_install_puts_the_pages_in_share_man_man1(tmp_path: Path) -> None:
    source = tmp_path / "src-tree"  # a copy, so that the build leaves nothing in the clone
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, source / part)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copytree(ROOT / "man", source / "man")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir",
                           str(source)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    installed = venv / "share" / "man" / "man1"
    assert sorted(p.name for p in installed.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert (installed / name).read_text() == (MAN1 / name).read_text()
    # man finds them from PATH, as for any prefix (bin -> ../share/man).
    found = subprocess.run(["man", "-w", "Get-SmbSession"], capture_output=True, text=True,
                           env={**os.environ, "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
                                "MANPATH": ""}, check=False)
    assert found.stdout.strip() == str(installed / "Get-SmbSession.1"), found.stderr
    # and the installed commands are the real ones.
    version = subprocess.run([str(venv / "bin" / "Get-SmbSession"), "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout == f"smbsession {smbsession.__version__}\n"
