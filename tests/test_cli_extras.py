"""--version on every command, the did-you-mean for a mistyped parameter, a parameter given
twice, and the help's examples that a Unix shell would change."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import smbsession
from conftest import SRC, run_cli
from smbsession.cli import commands
from smbsession.cli.binder import Binder
from smbsession.cli.close import CLOSE_PARAMS
from smbsession.cli.close import HELP as CLOSE_HELP
from smbsession.cli.get import GET_PARAMS
from smbsession.cli.get_help import HELP as GET_HELP
from smbsession.errors import InvalidParameter

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv", [
    ["--version"], ["get", "--version"], ["close", "--version"], ["lab", "--version"],
    ["lab", "clients", "--version"], ["job", "list", "--version"],
    ["completion", "--version"], ["get", "-SessionId", "5", "--version"],
])
def test_smbsession_and_its_subcommands_print_the_version(argv: list[str]) -> None:
    result = run_cli(*argv)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"smbsession {smbsession.__version__}\n", "")


@pytest.mark.parametrize("main", [commands.get_smb_session_main, commands.close_smb_session_main])
def test_get_and_close_print_the_version(main, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"smbsession {smbsession.__version__}\n"
    assert gc.isenabled()  # printing the version changes nothing in the caller


def test_version_after_double_dash_is_a_value_not_the_option() -> None:
    result = run_cli("get", "-SmbConf", "/nonexistent/smb.conf", "--", "--version")
    assert result.returncode == 2
    assert "--version" in result.stderr and "smbsession 0" not in result.stdout


def test_the_version_has_one_source() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "smbsession.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", smbsession.__version__)
    # The installed metadata (built from pyproject) carries the same version.
    assert metadata.version("smbsession") == smbsession.__version__


def test_version_and_did_you_mean_add_nothing_to_the_listing_path_imports() -> None:
    code = (
        "import sys\n"
        "from smbsession.cli import commands\n"
        "from smbsession.cli.binder import Binder\n"
        "from smbsession.cli.get import GET_PARAMS\n"
        "Binder('Get-SmbSession', GET_PARAMS).bind(['-SessionId', '5', '-Format', 'Json'])\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": SRC}).stdout.split()
    for module in ("difflib", "smbsession.cli.completion", "smbsession.cli.manpage"):
        assert module not in loaded


def _error(params, *argv: str, command: str = "Get-SmbSession") -> str:
    with pytest.raises(InvalidParameter) as caught:
        Binder(command, params).bind(list(argv))
    return str(caught.value)


@pytest.mark.parametrize(("typed", "meant"), [
    ("-SesionId", "-SessionId"), ("-ClientUsername", None), ("-Frmat", "-Format"),
    ("-IncludeHiden", "-IncludeHidden"), ("--sesion-id", "--session-id"),
    ("--client-user", None), ("-Sesion", "-Session"), ("-SmbIntance", "-SmbInstance"),
    ("-Verbos", None), ("-Verbse", "-Verbose"), ("-ErorAction", "-ErrorAction"),
])
def test_a_mistyped_parameter_gets_a_did_you_mean(typed: str, meant: str | None) -> None:
    if meant is None:  # these are prefixes or case variants: they bind
        Binder("Get-SmbSession", GET_PARAMS).bind([typed, "x"] if "user" in typed.lower()
                                                  else [typed])
        return
    message = _error(GET_PARAMS, typed, "5")
    name = typed.lstrip("-")
    assert message == (
        f"Get-SmbSession: A parameter cannot be found that matches parameter name '{name}'. "
        f"Did you mean {meant}? Run 'Get-SmbSession -?' for the parameters.")


def test_a_name_like_no_parameter_gets_no_guess() -> None:
    assert _error(GET_PARAMS, "-Banana", "5") == (
        "Get-SmbSession: A parameter cannot be found that matches parameter name 'Banana'. "
        "Run 'Get-SmbSession -?' for the parameters.")


def test_close_suggests_its_own_parameters() -> None:
    assert "Did you mean -WhatIf?" in _error(CLOSE_PARAMS, "-WhatIff",
                                             command="Close-SmbSession")
    assert "Did you mean -Force?" in _error(CLOSE_PARAMS, "-Forse", command="Close-SmbSession")


def test_did_you_mean_on_the_real_command_line_exits_2() -> None:
    result = run_cli("get", "-SesionId", "5")
    assert result.returncode == 2
    assert "'SesionId'. Did you mean -SessionId?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_single_value_parameter_given_twice_says_so_without_an_array_hint() -> None:
    result = run_cli("get", "-Format", "Json", "-Format", "Csv")
    assert result.returncode == 2
    assert result.stderr == (
        "smbsession get: Cannot bind parameter because parameter 'Format' is specified more "
        "than once.\n")
    assert "array" not in _error(GET_PARAMS, "--json", "-json")


def test_an_array_parameter_given_twice_points_to_the_array_syntax_that_works() -> None:
    message = _error(GET_PARAMS, "-SessionId", "1", "-SessionId", "2")
    assert message.endswith("use the array syntax: -SessionId value1,value2.")
    # ... and that syntax does bind.
    assert Binder("Get-SmbSession", GET_PARAMS).bind(["-SessionId", "1,2"]) == {
        "session_id": [1, 2]}


def _shell_words(command: str) -> list[str]:
    """Split an example as bash would, with pathname expansion in an empty directory
    that holds one file: an unquoted * becomes that file's name."""
    script = 'cd "$1" && eval "set -- $2" && printf "%s\\n" "$@"'
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "EXPANDED").touch()
        out = subprocess.run(["bash", "-c", script, "bash", tmp, command.split("|")[0]],
                             capture_output=True, text=True, check=True).stdout
    return out.splitlines()


@pytest.mark.parametrize("example", [*GET_HELP.examples, *CLOSE_HELP.examples],
                         ids=lambda e: e.title)
def test_every_help_example_survives_the_shell(example) -> None:
    words = _shell_words(example.command)
    assert "EXPANDED" not in words
    if "-Property" in words:
        assert words[words.index("-Property") + 1] == "*"
