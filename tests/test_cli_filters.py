"""The filters of Get-SmbSession on the real command line, against real lab sessions.

Exact matches, "not found" errors, ClientComputerName (IPv4, IPv6, NetBIOS name),
ClientUserName (DOMAIN\\user in any case, bare user), -IncludeHidden (anonymous and
unauthenticated sessions), -ScopeName and -ClusterNodeName (issue 4).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import (
    anonymous_session,
    run_get,
    running_lab,
    smbclient_session,
    smbprotocol_sessions,
    unauthenticated_session,
    wait_for,
)
from smbsession.lab import NETBIOS_NAME, Lab

NOT_FOUND = (
    "smbsession get: No MSFT_SmbSession objects found with property '{prop}' equal to "
    "'{value}'.  Verify the value of the property and retry."
)


def selected(lab: Lab, *args: str) -> list[int]:
    """SessionIds that ``get ARGS -Format Json`` lists (it must succeed)."""
    out = run_get(lab, *args, "-Format", "Json")
    assert out.returncode == 0, out.stderr
    return [row["SessionId"] for row in out.json()]


def test_a_value_that_matches_nothing_is_an_error_and_the_others_still_print(
    lab: Lab, alice_bob: list
) -> None:
    alice = alice_bob[0].session_id
    out = run_get(lab, "-SessionId", f"{alice},7", "-Format", "Json")
    assert out.returncode == 1
    assert [r["SessionId"] for r in out.json()] == [alice]
    assert out.stderr.splitlines() == [NOT_FOUND.format(prop="SessionId", value=7)]


def test_every_filter_reports_its_own_missing_value(lab: Lab, alice_bob: list) -> None:
    out = run_get(lab, "-ClientUserName", "LAB\\nobody", "-ClientComputerName", "10.9.9.9")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [
        NOT_FOUND.format(prop="ClientComputerName", value="10.9.9.9"),
        NOT_FOUND.format(prop="ClientUserName", value="LAB\\nobody"),
    ]


def test_matches_are_exact_without_wildcards(lab: Lab, alice_bob: list) -> None:
    for pattern in (f"{NETBIOS_NAME}\\lab*", "labali", "*"):
        out = run_get(lab, "-ClientUserName", pattern)
        assert out.returncode == 1 and out.stdout == "", pattern
    out = run_get(lab, "-ClientComputerName", "127.0.0.*")
    assert out.returncode == 1 and out.stdout == ""


def test_client_computer_name_matches_the_ipv4_address(lab: Lab, alice_bob: list) -> None:
    mine = {s.session_id for s in alice_bob}
    assert mine <= set(selected(lab, "-ClientComputerName", "127.0.0.1"))


def test_client_computer_name_matches_ipv6_with_and_without_brackets(lab: Lab) -> None:
    if not lab.ipv6:
        pytest.skip("this machine cannot listen on ::1")
    with smbprotocol_sessions(lab, ["labcarol"], host="::1") as (carol,):
        rows = run_get(lab, "-SessionId", str(carol.session_id), "-Format", "Json").json()
        assert rows[0]["ClientComputerName"] == "[::1]"
        for spelling in ("[::1]", "::1", "0:0:0:0:0:0:0:1", "[0::1]"):
            assert selected(lab, "-ClientComputerName", spelling) == [carol.session_id], spelling
        assert carol.session_id not in selected(lab, "-ClientComputerName", "127.0.0.1")


@pytest.fixture(scope="module")
def netbios_lab() -> Iterator[Lab]:
    """A lab on port 139, where clients send their NetBIOS name."""
    with running_lab("netbios", port=139) as instance:
        if instance.port != 139:
            pytest.skip("port 139 is taken on this machine")
        yield instance


def test_client_computer_name_matches_the_netbios_name(netbios_lab: Lab) -> None:
    with smbclient_session(netbios_lab, "labbob", netbios_name="BOBSPC"):
        rows = wait_for(lambda: run_get(netbios_lab, "-Format", "Json").json())
        assert len(rows) == 1 and rows[0]["ClientNetBiosName"].upper() == "BOBSPC"
        for spelling in ("BOBSPC", "bobspc", "BobsPc", "127.0.0.1"):
            assert selected(netbios_lab, "-ClientComputerName", spelling) == [
                rows[0]["SessionId"]
            ], spelling
        assert run_get(netbios_lab, "-ClientComputerName", "OTHERPC").returncode == 1


@pytest.mark.parametrize(
    "spelling",
    [f"{NETBIOS_NAME}\\labbob", f"{NETBIOS_NAME.lower()}\\LABBOB", "labbob", "LabBob"],
)
def test_client_user_name_is_case_insensitive_and_a_bare_name_matches_any_domain(
    lab: Lab, alice_bob: list, spelling: str
) -> None:
    bob = alice_bob[1].session_id
    found = selected(lab, "-ClientUserName", spelling)
    assert bob in found and alice_bob[0].session_id not in found


def test_client_user_name_with_another_domain_matches_nothing(lab: Lab, alice_bob: list) -> None:
    out = run_get(lab, "-ClientUserName", "OTHERDOM\\labbob")
    assert out.returncode == 1 and out.stdout == ""


@pytest.mark.parametrize("hidden", [anonymous_session, unauthenticated_session])
def test_hidden_sessions_need_include_hidden(lab: Lab, alice_bob: list, hidden) -> None:
    alice = alice_bob[0].session_id
    with hidden(lab) as sid:
        assert wait_for(lambda: sid in selected(lab, "-IncludeHidden"))
        for switch in ("-IncludeHidden", "-IncludeHidden:$true", "-includehidden:true", "-inc"):
            found = selected(lab, switch)
            assert sid in found and alice in found, switch
        for switch in ([], ["-IncludeHidden:$false"], ["-IncludeHidden:false"],
                       ["-IncludeHidden:", "$false"], ["--include-hidden=false"]):
            found = selected(lab, *switch)
            assert sid not in found and alice in found, switch
        out = run_get(lab, "-SessionId", str(sid))
        assert out.returncode == 1 and out.stderr.splitlines() == [
            NOT_FOUND.format(prop="SessionId", value=sid)
        ]


def test_the_anonymous_session_shows_as_anonymous_logon(lab: Lab) -> None:
    with anonymous_session(lab) as sid:
        rows = run_get(lab, "-SessionId", str(sid), "-IncludeHidden", "-Format", "Json").json()
    assert rows[0]["ClientUserName"] == "NT AUTHORITY\\ANONYMOUS LOGON"


def test_a_switch_value_the_shell_ate_is_explained(lab: Lab) -> None:
    # bash turns -IncludeHidden:$false into -IncludeHidden: when $false is unset.
    out = run_get(lab, "-IncludeHidden:")
    assert out.returncode == 2
    assert "-IncludeHidden:'$false'" in out.stderr


def test_scope_name_is_star_on_samba(lab: Lab, alice_bob: list) -> None:
    mine = {s.session_id for s in alice_bob}
    assert mine <= set(selected(lab, "-ScopeName", "*"))
    out = run_get(lab, "-ScopeName", "FS-SCOPE")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [NOT_FOUND.format(prop="ScopeName", value="FS-SCOPE")]


def test_cluster_node_name_is_empty_when_not_clustered(lab: Lab, alice_bob: list) -> None:
    mine = {s.session_id for s in alice_bob}
    assert mine <= set(selected(lab, "-ClusterNodeName", ""))
    out = run_get(lab, "-ClusterNodeName", "node1")
    assert out.returncode == 1 and out.stdout == ""
    assert "property 'ClusterNodeName' equal to 'node1'" in out.stderr


def test_filters_combine_with_and_values_with_or(lab: Lab, alice_bob: list) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    both = f"{alice},{bob}"
    assert sorted(selected(lab, "-SessionId", both)) == sorted([alice, bob])
    out = run_get(lab, "-SessionId", both, "-ClientUserName", "labbob", "-Format", "Json")
    assert [r["SessionId"] for r in out.json()] == [bob]
    # Alice's id is among the values asked for, but no selected session has it.
    assert out.returncode == 1
    assert out.stderr.splitlines() == [NOT_FOUND.format(prop="SessionId", value=alice)]
