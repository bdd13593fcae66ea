"""``smbsession completion bash|zsh``: the scripts run in a real bash and a real zsh.

bash: the script is sourced, then its completion function is called the way bash calls it
(COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD, and readline's word as ``$2``: the text
after the last character of $COMP_WORDBREAKS), and the line each reply would make is
checked. zsh: an interactive ``zsh -f -i`` in a pseudo-terminal (zpty) runs compinit,
sources the script, has TAB pressed after each line, and reports the buffer that results
and the candidates the script offered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from smbsession.cli.close import CLOSE_PARAMS
from smbsession.cli.get import GET_PARAMS
from smbsession.cli.view import PROPERTIES

SSH_CONFIG = """\
# a comment
Host alpha beta *.lan
    User root
Host=gamma
host !bastion delta
Include conf.d/*
Match host epsilon
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home directory whose ~/.ssh/config names alpha, beta, gamma, delta and (in an
    included file) zeta, besides wildcard patterns."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    (home / ".ssh" / "conf.d" / "more").write_text("Host zeta web-?\n")
    (home / "smb.conf").write_text("[global]\n")
    (home / "smb-other.conf").write_text("[global]\n")
    return home


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_cli("completion", "bash")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("bash") / "smbsession.bash"
    path.write_text(result.stdout)
    return path


_DRIVER = r'''
source "$1"; shift
line=$1
COMP_LINE=$line; COMP_POINT=${#line}
read -ra COMP_WORDS <<< "$line"
[[ $line == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
word=$line
while [[ -n $word ]]; do
    c=${word: -1}
    [[ $COMP_WORDBREAKS == *"$c"* ]] && break
    word=${word:0:${#word}-1}
done
readline_word=${line:${#word}}
_smbsession_complete "${COMP_WORDS[0]}" "$readline_word" "${COMP_WORDS[COMP_CWORD-1]}"
for reply in "${COMPREPLY[@]}"; do printf '%s\n' "$word$reply"; done
'''


def bash_complete(script_path: Path, home: Path, line: str) -> list[str]:
    """The command lines that bash would make of ``line`` with each completion reply."""
    proc = subprocess.run(["bash", "-c", _DRIVER, "bash", str(script_path), line],
                          capture_output=True, text=True, cwd=home, env={"HOME": str(home),
                          "PATH": "/usr/bin:/bin"}, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_the_script_registers_for_the_three_commands(bash_script: Path) -> None:
    proc = subprocess.run(
        ["bash", "-c", 'source "$1" && complete -p Get-SmbSession Close-SmbSession smbsession',
         "bash", str(bash_script)], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == [
        f"complete -F _smbsession_complete {c}"
        for c in ("Get-SmbSession", "Close-SmbSession", "smbsession")]


@pytest.mark.parametrize(("line", "expected"), [
    ("Get-SmbSession -form", ["Get-SmbSession -Format"]),
    ("Get-SmbSession --form", ["Get-SmbSession --format"]),
    ("Get-SmbSession -SESSIONI", ["Get-SmbSession -SessionId"]),
    ("Get-SmbSession --session-", ["Get-SmbSession --session-id"]),
    ("Get-SmbSession -Cim", ["Get-SmbSession -CimSession"]),
    ("Close-SmbSession -Wh", ["Close-SmbSession -WhatIf"]),
    ("Close-SmbSession -Pass", ["Close-SmbSession -PassThru"]),
    ("smbsession close -Clos", ["smbsession close -CloseConnection"]),
    ("smbsession get -Clos", []),  # -CloseConnection is Close-SmbSession's only
    ("Get-SmbSession -IncludeHidden --jso", ["Get-SmbSession -IncludeHidden --json"]),
    ("Get-SmbSession --vers", ["Get-SmbSession --version"]),
])
def test_parameter_names_in_both_spellings(bash_script: Path, home: Path, line: str,
                                           expected: list[str]) -> None:
    assert bash_complete(bash_script, home, line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    ("Get-SmbSession -Format ", ["Table", "List", "Json", "NDJson", "Csv"]),
    ("Get-SmbSession -Format j", ["Json"]),
    ("Get-SmbSession -fo nd", ["NDJson"]),
    ("Get-SmbSession -Format:j", ["-Format:Json"]),
    ("Get-SmbSession --format=c", ["--format=Csv"]),
    ("Get-SmbSession -SmbInstance ", ["Default", "CSV", "SBL", "SR"]),
    ("Get-SmbSession -Source t", ["tdb"]),
    ("Get-SmbSession -ErrorAction s", ["SilentlyContinue", "Stop"]),
    ("Get-SmbSession -ea I", ["Ignore"]),
    ("Close-SmbSession -SmbInstance d", ["Default"]),
    ("smbsession job receive 3 --format l", ["List"]),
    ("Get-SmbSession -Property Dialect,ClientU", ["Dialect,ClientUserName"]),
    ("Get-SmbSession -IncludeHidden ", []),  # a switch takes no value
    ("Get-SmbSession -SessionId ", []),  # a number: nothing to offer
])
def test_enum_and_property_values(bash_script: Path, home: Path, line: str,
                                  expected: list[str]) -> None:
    head = line.rsplit(" ", 1)[0] + " "
    assert bash_complete(bash_script, home, line) == [head + e for e in expected]


def test_cim_session_targets_come_from_ssh_config(bash_script: Path, home: Path) -> None:
    hosts = ["alpha", "beta", "gamma", "delta", "zeta"]
    assert bash_complete(bash_script, home, "Get-SmbSession -CimSession ") == [
        f"Get-SmbSession -CimSession {h}" for h in [*hosts, "localhost"]]
    assert bash_complete(bash_script, home, "Get-SmbSession -CimSession ssh://root@g") == [
        "Get-SmbSession -CimSession ssh://root@gamma"]
    assert bash_complete(bash_script, home, "Close-SmbSession -Session alpha,ssh://") == [
        f"Close-SmbSession -Session alpha,ssh://{h}" for h in hosts]
    assert bash_complete(bash_script, home, "Get-SmbSession -CimSession:be") == [
        "Get-SmbSession -CimSession:beta"]


def test_cim_session_without_an_ssh_config(bash_script: Path, tmp_path: Path) -> None:
    assert bash_complete(bash_script, tmp_path, "Get-SmbSession -CimSession ") == [
        "Get-SmbSession -CimSession localhost"]


def test_files_for_smb_conf_and_directories_for_the_lab(bash_script: Path, home: Path) -> None:
    assert sorted(bash_complete(bash_script, home, "Get-SmbSession -SmbConf smb")) == [
        "Get-SmbSession -SmbConf smb-other.conf", "Get-SmbSession -SmbConf smb.conf"]
    assert bash_complete(bash_script, home, "smbsession lab start --dir .s") == [
        "smbsession lab start --dir .ssh"]


@pytest.mark.parametrize(("line", "expected"), [
    ("smbsession ", ["get", "close", "lab", "job", "completion", "help"]),
    ("smbsession l", ["lab"]),
    ("smbsession lab ", ["start", "stop", "status", "clients"]),
    ("smbsession job ", ["list", "wait", "receive", "remove"]),
    ("smbsession completion ", ["bash", "zsh"]),
    ("smbsession lab clients --", ["--dir", "--port", "--seconds", "--domain", "--cluster",
                                   "--help", "--version"]),
    ("smbsession lab clients ", []),
])
def test_subcommands(bash_script: Path, home: Path, line: str, expected: list[str]) -> None:
    head = line.rsplit(" ", 1)[0] + " "
    assert bash_complete(bash_script, home, line) == [head + e for e in expected]


@pytest.mark.parametrize(("command", "params"), [
    ("Get-SmbSession", GET_PARAMS), ("Close-SmbSession", CLOSE_PARAMS),
    ("smbsession get", GET_PARAMS), ("smbsession close", CLOSE_PARAMS)])
def test_every_declared_parameter_and_value_completes(bash_script: Path, home: Path,
                                                      command: str, params) -> None:
    offered = bash_complete(bash_script, home, f"{command} -")
    names = [w.rsplit(" ", 1)[1] for w in offered]
    for param in params:
        assert f"-{param.name}" in names
        assert f"--{param.gnu}" in names
        if param.choices:
            values = bash_complete(bash_script, home, f"{command} -{param.name} ")
            assert [v.rsplit(" ", 1)[1] for v in values] == list(param.choices)
    assert "--version" in names and "--help" in names


def test_property_names_are_the_views(bash_script: Path, home: Path) -> None:
    values = bash_complete(bash_script, home, "Get-SmbSession -Property ")
    assert [v.rsplit(" ", 1)[1] for v in values] == list(PROPERTIES)


def test_completion_usage_errors() -> None:
    result = run_cli("completion")
    assert result.returncode == 2 and "give the shell, bash or zsh" in result.stderr
    result = run_cli("completion", "fish")
    assert result.returncode == 2 and "(got fish)" in result.stderr
    result = run_cli("completion", "--help")
    assert result.returncode == 0 and "source <(smbsession completion bash)" in result.stdout


# -- zsh ----------------------------------------------------------------------------------

ZSH = shutil.which("zsh")
needs_zsh = pytest.mark.skipif(ZSH is None, reason="zsh is not installed (make test installs it)")

_ZSH_DRIVER = r'''
zmodload zsh/zpty || exit 3
mode=$1 script=$2 out=$3; shift 3
zpty -b z zsh -f -i
if [[ $mode == source ]]; then
  zpty -w z "PS1='> '; autoload -Uz compinit; compinit -u -D; source ${(q)script}"
else  # installed as _smbsession in a directory of $fpath
  zpty -w z "PS1='> '; fpath=(${(q)script:h} \$fpath); autoload -Uz compinit; compinit -u -D"
fi
zpty -w z 'compadd() { [[ $1 == -U ]] &&
  print -rl -- "${@[${@[(i)--]}+1,-1]}" >> '${(q)out}'.cands; builtin compadd "$@"; }'
zpty -w z 'dump() { print -r -- "$BUFFER" > '${(q)out}'.buf; BUFFER=; }
  zle -N dump; bindkey "^X" dump'
zpty -w z 'zstyle ":completion:*" menu no; zstyle ":completion:*" list-prompt ""'
integer n=0
for line in "$@"; do
  (( n++ ))
  : >| $out.cands; rm -f $out.buf
  zpty -w -n z "$line"$'\t\C-x'
  integer tries=0
  while [[ ! -e $out.buf ]] && (( tries++ < 100 )); do sleep 0.05; done
  print -r -- "$(<$out.buf)" >> $out.results
  print -r -- "${(pj:\t:)${(f)$(<$out.cands)}}" >> $out.results
done
zpty -d z
'''


def zsh_complete(script_path: Path, home: Path, lines: list[str],
                 mode: str = "source") -> list[tuple[str, list[str]]]:
    """For each line: the buffer after TAB, and the candidates the script offered.
    ``mode`` is how the script is loaded: ``source`` or ``fpath`` (autoloaded)."""
    out = home / "zsh-out"
    (home / "zsh-out.results").unlink(missing_ok=True)
    assert ZSH is not None
    subprocess.run([ZSH, "-f", "-c", _ZSH_DRIVER, "zsh", mode, str(script_path), str(out),
                    *lines],
                   cwd=home, env={"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
                   timeout=60, check=True)
    rows = (home / "zsh-out.results").read_text().split("\n")
    return [(rows[2 * i], [c for c in rows[2 * i + 1].split("\t") if c])
            for i in range(len(lines))]


@pytest.fixture(scope="module")
def zsh_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_cli("completion", "zsh")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("zsh") / "_smbsession"
    path.write_text(result.stdout)
    return path


@needs_zsh
def test_the_zsh_script_compiles(zsh_script: Path) -> None:
    assert ZSH is not None
    proc = subprocess.run([ZSH, "-n", str(zsh_script)], capture_output=True, text=True,
                          check=False)
    assert (proc.returncode, proc.stderr) == (0, "")


@needs_zsh
@pytest.mark.parametrize("mode", ["source", "fpath"])
def test_zsh_completes_names_values_hosts_and_subcommands(zsh_script: Path, home: Path,
                                                          mode: str) -> None:
    cases = {
        "Get-SmbSession -form": ("Get-SmbSession -Format ", ["-Format"]),
        "Get-SmbSession --session-": ("Get-SmbSession --session-id ", ["--session-id"]),
        "Get-SmbSession -Format nd": ("Get-SmbSession -Format NDJson ", ["NDJson"]),
        "Get-SmbSession -Format:j": ("Get-SmbSession -Format:Json ", ["-Format:Json"]),
        # several candidates: zsh inserts what they have in common
        "Get-SmbSession -ErrorAction s": ("Get-SmbSession -ErrorAction S",
                                          ["SilentlyContinue", "Stop"]),
        "Close-SmbSession -Wh": ("Close-SmbSession -WhatIf ", ["-WhatIf"]),
        "Get-SmbSession -CimSession ssh://root@g": (
            "Get-SmbSession -CimSession ssh://root@gamma ", ["ssh://root@gamma"]),
        "Get-SmbSession -CimSession ": (
            None, ["alpha", "beta", "gamma", "delta", "zeta", "localhost"]),
        "Get-SmbSession -Property Dialect,ClientU": (
            "Get-SmbSession -Property Dialect,ClientUserName ", ["Dialect,ClientUserName"]),
        "smbsession lab ": (None, ["start", "stop", "status", "clients"]),
        "smbsession completion z": ("smbsession completion zsh ", ["zsh"]),
    }
    results = zsh_complete(zsh_script, home, list(cases), mode)
    report = json.dumps(dict(zip(cases, results, strict=True)), indent=1)
    for (line, (buffer, candidates)), (got_buffer, got) in zip(cases.items(), results,
                                                               strict=True):
        assert got == candidates, report
        assert got_buffer == (line if buffer is None else buffer), report
