"""PowerShell's parameter grammar on the real command line, against the real lab server.

Names in any case and shortened, positions, arrays, switches, aliases, type conversion,
-SmbInstance, common parameters, GNU spellings and help (issue 4).
"""

from __future__ import annotations

import re

import pytest

from conftest import run_cli, run_get
from smbsession.cli.get import GET_PARAMS
from smbsession.lab import NETBIOS_NAME, Lab

#: The first line of the seed's SYNTAX block (the spec), as `Get-Help` prints it.
SEED_SYNTAX_FIRST = (
    "Get-SmbSession [[-SessionId] <UInt64[]>] [[-ClientComputerName] <String[]>] "
    "[[-ClientUserName] <String[]>]"
)


def ids(result) -> list[int]:
    assert result.returncode == 0, result.stderr
    return [row["SessionId"] for row in result.json()]


@pytest.mark.parametrize(
    "spelling",
    [
        ["-SessionId", "{id}"],
        ["-sessionid", "{id}"],
        ["-SESSIONID", "{id}"],
        ["-sess", "{id}"],
        ["-SessionId:{id}"],
        ["-SessionId:", "{id}"],
        ["--session-id", "{id}"],
        ["--session-id={id}"],
        ["--sess", "{id}"],
        ["{id}"],
    ],
)
def test_session_id_in_every_spelling_selects_that_session(
    lab: Lab, alice_bob: list, spelling: list[str]
) -> None:
    alice = alice_bob[0].session_id
    argv = [a.format(id=alice) for a in spelling]
    assert ids(run_get(lab, *argv, "-Format", "Json")) == [alice]


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("-Cl", ["-ClientComputerName", "-ClientUserName", "-ClusterNodeName"]),
        ("-S", ["-SessionId", "-ScopeName", "-SmbInstance", "-SmbConf", "-Source"]),
        ("--cl", ["--client-computer-name", "--client-user-name", "--cluster-node-name"]),
    ],
)
def test_an_ambiguous_prefix_lists_the_candidates(
    lab: Lab, name: str, candidates: list[str]
) -> None:
    out = run_get(lab, name, "x")
    assert out.returncode == 2 and out.stdout == ""
    assert f"'{name.lstrip('-')}' is ambiguous" in out.stderr
    listed = out.stderr.split("Possible matches include: ")[1].rstrip(".\n").split()
    assert listed == candidates


def test_an_unknown_name_is_named(lab: Lab) -> None:
    out = run_get(lab, "-SessionIdentifier", "5")
    assert out.returncode == 2 and out.stdout == ""
    assert "matches parameter name 'SessionIdentifier'" in out.stderr
    assert "Traceback" not in out.stderr


def test_positional_values_bind_in_the_seed_order(lab: Lab, alice_bob: list) -> None:
    alice = alice_bob[0].session_id
    user = f"{NETBIOS_NAME}\\labalice"
    assert ids(run_get(lab, str(alice), "127.0.0.1", user, "*", "", "-Format", "Json")) == [alice]
    # A value given by name leaves its position to the next value (PowerShell binds named
    # parameters first): 127.0.0.1 is the ClientComputerName here.
    assert ids(run_get(lab, "127.0.0.1", "-SessionId", str(alice), "-Format", "Json")) == [alice]
    out = run_get(lab, "1", "2", "3", "4", "5", "6")
    assert out.returncode == 2
    assert "positional parameter cannot be found that accepts argument '6'" in out.stderr


@pytest.mark.parametrize("layout", ["{a},{b}", "{a}, {b}", "{a} ,{b}", "'{a}','{b}'"])
def test_arrays_with_and_without_spaces(lab: Lab, alice_bob: list, layout: str) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    argv = layout.format(a=alice, b=bob).split(" ")
    assert sorted(ids(run_get(lab, "-SessionId", *argv, "-Format", "Json"))) == sorted(
        [alice, bob]
    )


@pytest.mark.parametrize("alias", ["-CimSession", "-Session", "-cim"])
def test_cim_session_and_its_alias_name_a_failing_target(lab: Lab, alias: str) -> None:
    out = run_get(lab, alias, "no-such-host.invalid", "-OperationTimeoutSec", "5")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1].startswith(
        "smbsession get: no-such-host.invalid: ")


def test_localhost_target_carries_ps_computer_name(lab: Lab) -> None:
    from conftest import smbprotocol_sessions

    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        out = run_get(lab, "-CimSession", "localhost,.", "-SessionId", str(carol.session_id),
                      "-Format", "Json")
    assert out.returncode == 0, out.stderr
    assert sorted(r["PSComputerName"] for r in out.json()) == [".", "localhost"]


@pytest.mark.parametrize("value", ["abc", "-5", "+5", "1.5", "18446744073709551616", "0x"])
def test_a_session_id_that_is_no_uint64_names_parameter_value_and_type(
    lab: Lab, value: str
) -> None:
    out = run_get(lab, "-SessionId", value)
    assert out.returncode == 2 and out.stdout == ""
    assert "parameter 'SessionId'" in out.stderr
    assert f'value "{value}" to type "System.UInt64"' in out.stderr
    assert "18446744073709551615" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_largest_uint64_is_a_valid_session_id(lab: Lab) -> None:
    out = run_get(lab, "-SessionId", "18446744073709551615")
    assert out.returncode == 1 and out.stdout == ""
    assert "equal to '18446744073709551615'" in out.stderr


@pytest.mark.parametrize("instance", ["Default", "default", "DEFAULT"])
def test_smb_instance_default_selects_sambas_sessions(
    lab: Lab, alice_bob: list, instance: str
) -> None:
    alice = alice_bob[0].session_id
    assert alice in ids(run_get(lab, "-SmbInstance", instance, "-Format", "Json"))


@pytest.mark.parametrize("instance", ["CSV", "sbl", "Sr"])
def test_windows_only_smb_instances_select_nothing_without_error(
    lab: Lab, alice_bob: list, instance: str
) -> None:
    out = run_get(lab, "-SmbInstance", instance, "-Format", "Json")
    assert (out.returncode, out.stderr, out.json()) == (0, "", [])


def test_an_unknown_smb_instance_lists_the_accepted_ones(lab: Lab) -> None:
    out = run_get(lab, "-SmbInstance", "Cluster")
    assert out.returncode == 2
    assert "'SmbInstance'" in out.stderr and '"Cluster"' in out.stderr
    assert "Default, CSV, SBL, SR" in out.stderr


@pytest.mark.parametrize("flag", ["-Verbose", "-vb", "--verbose", "-Verbose:$true"])
def test_verbose_says_what_happens_on_stderr_only(lab: Lab, alice_bob: list, flag: str) -> None:
    alice = alice_bob[0].session_id
    quiet = run_get(lab, "-SessionId", str(alice))
    loud = run_get(lab, "-SessionId", str(alice), flag)
    assert loud.returncode == quiet.returncode == 0
    assert loud.stdout == quiet.stdout and quiet.stderr == ""
    lines = loud.stderr.splitlines()
    assert lines and all(line.startswith("VERBOSE: ") for line in lines)
    assert any(f"SessionId = {alice}: 1 session(s)" in line for line in lines)


def test_debug_shows_the_bound_parameters(lab: Lab, alice_bob: list) -> None:
    alice = alice_bob[0].session_id
    out = run_get(lab, "-sess", str(alice), "-Debug")
    assert out.returncode == 0
    debug = [line for line in out.stderr.splitlines() if line.startswith("DEBUG: ")]
    # As a command line would give them, not as a Python dict.
    assert any(f"Bound parameters: -SessionId {alice} " in line for line in debug), debug
    assert not any("{" in line or "'session_id'" in line for line in debug), debug
    assert any("Stdin is a device: not pipeline input." in line for line in debug), debug


@pytest.mark.parametrize(
    ("action", "shown"),
    [("Continue", 2), ("SilentlyContinue", 0), ("Ignore", 0), ("Stop", 1)],
)
def test_error_action_decides_what_a_value_that_matches_nothing_does(
    lab: Lab, alice_bob: list, action: str, shown: int
) -> None:
    alice = alice_bob[0].session_id
    out = run_get(lab, "-SessionId", f"{alice},1,2", "-ErrorAction", action, "-Format", "Json")
    assert out.returncode == 1
    assert [r["SessionId"] for r in out.json()] == [alice]
    assert out.stderr.count("No MSFT_SmbSession objects found") == shown


def test_error_action_alias_and_bad_value(lab: Lab) -> None:
    assert run_get(lab, "-ea", "SilentlyContinue", "-SessionId", "1").stderr == ""
    out = run_get(lab, "-ErrorAction", "Inquire")
    assert out.returncode == 2
    assert "Continue, SilentlyContinue, Stop, Ignore" in out.stderr


def test_gnu_spellings_give_the_same_result(lab: Lab, alice_bob: list) -> None:
    bob = alice_bob[1].session_id
    user = f"{NETBIOS_NAME}\\labbob"
    steady = ["-Property", "SessionId,Client*,NumOpens"]  # no clocks: they tick between runs
    outputs = {
        tuple(argv): run_get(lab, *argv, "-SessionId", str(bob), *steady).stdout
        for argv in (
            ["--json"], ["--format", "json"], ["--format=JSON"], ["-Json"], ["-Format", "Json"],
            ["-f", "json"], ["--client-user-name", user, "--json"],
        )
    }
    assert len(set(outputs.values())) == 1
    assert [r["SessionId"] for r in run_get(lab, "--json", "--session-id", str(bob)).json()] == [
        bob
    ]


def test_json_and_another_format_contradict_each_other(lab: Lab) -> None:
    out = run_get(lab, "-Json", "-Format", "Table")
    assert out.returncode == 2 and "-Json and -Format Table" in out.stderr


@pytest.mark.parametrize("ask", ["-?", "--help", "-Help", "-h", "-HELP"])
def test_help_shows_syntax_parameters_and_examples(ask: str) -> None:
    out = run_cli("get", ask)
    assert out.returncode == 0 and out.stderr == ""
    assert SEED_SYNTAX_FIRST in out.stdout
    sections = ["NAME", "SYNOPSIS", "SYNTAX", "DESCRIPTION", "PARAMETERS", "EXAMPLES",
                "PIPELINE INPUT", "EXIT CODES"]
    starts = [out.stdout.index(f"\n{s}\n") if s != "NAME" else 0 for s in sections]
    assert starts == sorted(starts)
    parameters = out.stdout.split("\nPARAMETERS\n")[1].split("\nEXAMPLES\n")[0]
    entries = re.split(r"\n\n(?=    -)", parameters)
    assert [re.match(r" {4}-(\w+)", e).group(1) for e in entries] == [p.name for p in GET_PARAMS]
    for param, entry in zip(GET_PARAMS, entries, strict=True):
        assert " ".join(param.help.split()) in " ".join(entry.split()), param.name
    assert out.stdout.count("    Example ") >= 5
    assert "Get-SmbSession -SessionId 8813272891441 -Property '*'" in out.stdout


def test_help_needs_no_server_and_wins_over_bad_parameters() -> None:
    out = run_cli("get", "-Bogus", "-SmbConf", "/nonexistent/smb.conf", "-?")
    assert out.returncode == 0 and "SYNTAX" in out.stdout
