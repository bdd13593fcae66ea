"""The binding engine's finer rules, as pure functions (the command line tests run them
against the lab; these pin the corners)."""

from __future__ import annotations

import pytest

from smbsession.cli.binder import Binder, split_list, wants_help
from smbsession.cli.errors import exit_code
from smbsession.cli.get import GET_PARAMS
from smbsession.cli.params import convert
from smbsession.cli.pipeline import parse_objects
from smbsession.errors import InvalidParameter


def bind(*argv: str) -> dict:
    return Binder("Get-SmbSession", GET_PARAMS).bind(list(argv))


def test_an_alias_in_full_wins_but_a_prefix_prefers_names() -> None:
    assert bind("-Session", "srv") == {"cim_session": ["srv"]}
    assert bind("-Sess", "5") == {"session_id": [5]}
    assert bind("-Sessi", "5") == {"session_id": [5]}
    assert bind("--session", "srv") == {"cim_session": ["srv"]}


def test_the_commands_own_parameter_wins_over_a_common_one() -> None:
    # -De fits only -Debug; -E only -ErrorAction; -Ver only -Verbose.
    assert bind("-De") == {"debug": True}
    assert bind("-E", "stop") == {"error_action": "Stop"}
    assert bind("-vb", "-db", "-ea", "ignore") == {
        "verbose": True, "debug": True, "error_action": "Ignore",
    }


def test_double_dash_ends_the_parameters() -> None:
    assert bind("--", "5", "-weird-client") == {
        "session_id": [5], "client_computer_name": ["-weird-client"],
    }


def test_a_name_where_a_value_belongs_is_a_missing_value() -> None:
    with pytest.raises(InvalidParameter, match="Missing an argument for parameter 'SessionId'"):
        bind("-SessionId", "-IncludeHidden")


def test_a_parameter_given_twice_is_an_error() -> None:
    with pytest.raises(InvalidParameter, match="'SessionId' is specified more than once"):
        bind("-SessionId", "1", "-sess", "2")


def test_hexadecimal_session_ids_and_negative_numbers_as_values() -> None:
    assert bind("-SessionId", "0x10,17") == {"session_id": [16, 17]}
    with pytest.raises(InvalidParameter, match=r'"-1" to type "System\.UInt64"'):
        bind("-1")


def test_switch_values() -> None:
    assert bind("-IncludeHidden:", "$false") == {"include_hidden": False}
    assert bind("-IncludeHidden:0") == {"include_hidden": False}
    with pytest.raises(InvalidParameter, match="a switch takes \\$true or \\$false"):
        bind("-IncludeHidden:maybe")


def test_lists_keep_quoted_commas_and_refuse_empty_elements() -> None:
    assert split_list("a, 'b,c' ,\"d\"") == ["a", "'b,c'", '"d"']
    assert bind("-ClientUserName", "'LAB\\a,b',x") == {"client_user_name": ["LAB\\a,b", "x"]}
    assert bind("-ClientUserName", "'it''s'") == {"client_user_name": ["it's"]}
    assert bind("-ClusterNodeName", "") == {"cluster_node_name": [""]}
    with pytest.raises(InvalidParameter, match="has an empty element"):
        bind("-SessionId", "1,,2")


def test_help_tokens_before_the_end_of_parameters() -> None:
    assert wants_help(["-SessionId", "5", "-?"])
    assert wants_help(["--HELP"])
    assert not wants_help(["--", "-?"])
    assert not wants_help(["-Hidden"])


def test_parse_objects_reads_arrays_objects_and_ndjson_with_their_lines() -> None:
    text = '[\n {"a": 1},\n {"a": 2}\n]\n{"a": 3}\n{"a":\n 4}\n[]\n'
    assert [(o.line, o.properties["a"]) for o in parse_objects(text, "x")] == [
        (2, 1), (3, 2), (5, 3), (6, 4),
    ]


@pytest.mark.parametrize("name", ["ThrottleLimit", "OperationTimeoutSec"])
def test_a_count_below_its_minimum_names_parameter_value_and_range(name: str) -> None:
    param = next(p for p in GET_PARAMS if p.name == name)
    assert convert(param, "0", "Get-SmbSession") == 0
    with pytest.raises(InvalidParameter) as err:
        convert(param, "-5", "Get-SmbSession")
    assert str(err.value) == (
        f"Get-SmbSession: Cannot validate argument on parameter '{name}'. The -5 argument is "
        "less than the minimum allowed range of 0. Supply an argument that is greater than "
        "or equal to 0 and then try the command again.")
    assert exit_code(err.value) == 2
