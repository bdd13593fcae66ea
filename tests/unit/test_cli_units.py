"""Pure functions of the command line: parameter binding and output formats."""

from __future__ import annotations

import json
import sys

import pytest

from smbsession.cli.binder import Binder
from smbsession.cli.errors import exit_code
from smbsession.cli.formats import format_csv, format_list, format_table, render
from smbsession.cli.get import GET_PARAMS
from smbsession.errors import InvalidParameter
from smbsession.model import TABLE_PROPERTIES, SmbSession


def bind(*argv: str) -> dict:
    return Binder("Get-SmbSession", GET_PARAMS).bind(list(argv))


def test_names_are_case_insensitive_prefixes_and_gnu_spellings() -> None:
    assert bind("-sessionid", "5") == {"session_id": [5]}
    assert bind("-sess", "5") == {"session_id": [5]}
    assert bind("--session-id", "5") == {"session_id": [5]}
    assert bind("--client-user-name=LAB\\bob") == {"client_user_name": ["LAB\\bob"]}
    assert bind("-SmbConf:/etc/x.conf") == {"smb_conf": "/etc/x.conf"}


def test_positional_binding_follows_the_seed_order() -> None:
    assert bind("7", "10.0.0.1", "LAB\\bob", "*", "node1") == {
        "session_id": [7],
        "client_computer_name": ["10.0.0.1"],
        "client_user_name": ["LAB\\bob"],
        "scope_name": ["*"],
        "cluster_node_name": ["node1"],
    }


def test_arrays_with_and_without_spaces() -> None:
    assert bind("-SessionId", "1,2,3") == {"session_id": [1, 2, 3]}
    assert bind("-SessionId", "1,", "2,", "3") == {"session_id": [1, 2, 3]}


def test_switches() -> None:
    assert bind("-IncludeHidden") == {"include_hidden": True}
    assert bind("-IncludeHidden:$false") == {"include_hidden": False}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-Cl", "x"], "ambiguous. Possible matches include: -ClientComputerName"),
        (["-Bogus", "1"], "'Bogus'"),
        (["-SessionId", "abc"], 'value "abc" to type "System.UInt64"'),
        (["-SessionId", "18446744073709551616"], "larger than 18446744073709551615"),
        (["-SmbInstance", "Nope"], "Default, CSV, SBL, SR"),
        (["-Format", "xml"], "Table, List, Json, NDJson, Csv"),
        (["-SessionId"], "Missing an argument for parameter 'SessionId'"),
        (["1", "2", "3", "4", "5", "6"], "positional parameter cannot be found"),
    ],
)
def test_bad_parameters_name_the_parameter_and_value(argv: list[str], needle: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        bind(*argv)
    assert needle in str(err.value)
    assert exit_code(err.value) == 2


def test_enum_values_are_case_insensitive() -> None:
    assert bind("-SmbInstance", "csv") == {"smb_instance": "CSV"}
    assert bind("-f", "ndjson") == {"format": "NDJson"}


SAMPLE = [
    SmbSession(8813272891441, "192.168.101.13", "Contoso\\Contoso-HV1$", num_opens=1),
    SmbSession(85899345929, "[fe80::c8c0:f65d:3bc6:7313]", "Contoso\\Contoso-FS1$", num_opens=0),
]


def test_table_reproduces_the_seed_rows() -> None:
    rows = [s.to_dict(TABLE_PROPERTIES) for s in SAMPLE]
    lines = "".join(format_table(rows, TABLE_PROPERTIES)).splitlines()
    # Rows of the seed's Example 1, character for character.
    assert lines[2] == (
        "8813272891441                 192.168.101.13                Contoso\\Contoso-HV1$"
        "          1"
    )
    assert lines[3] == (
        "85899345929                   [fe80::c8c0:f65d:3bc6:7313]   Contoso\\Contoso-FS1$"
        "          0"
    )


def test_table_cuts_long_values_with_an_ellipsis() -> None:
    long_user = "VERYLONGDOMAINNAME\\averyveryverylongaccount"
    rows = [SmbSession(1, "10.0.0.1", long_user, num_opens=0).to_dict(TABLE_PROPERTIES)]
    line = "".join(format_table(rows, TABLE_PROPERTIES)).splitlines()[2]
    assert line[60:89] == long_user[:28] + "…"
    assert line[89] == " " and line[90:] == "0"


def test_list_aligns_names_and_json_keeps_numbers() -> None:
    row = SAMPLE[0].to_dict()
    text = "".join(format_list([row]))
    assert "ClientComputerName : 192.168.101.13" in text
    assert "SessionId          : 8813272891441" in text
    data = json.loads("".join(render("Json", [row], ())))
    assert data[0]["SessionId"] == 8813272891441 and data[0]["SecondsIdle"] is None


def test_csv_has_a_header_of_property_names() -> None:
    rows = [s.to_dict() for s in SAMPLE]
    text = "".join(format_csv(rows, tuple(rows[0])))
    assert text.splitlines()[0].startswith("ClientComputerName,ClientUserName,")
    assert "8813272891441" in text.splitlines()[1]


def test_json_and_ndjson_encoded_in_chunks_equal_one_object_at_a_time() -> None:
    from smbsession.cli import formats

    tricky = [{"SessionId": 1, "ClientUserName": "LAB\\a}, {b", "Shares": ("x", "y")},
              {"SessionId": 2, "ClientUserName": "LAB\\b},{c", "Shares": None}]
    many = [{"SessionId": i, "ClientUserName": "LABSRV\\é", "NumOpens": None}
            for i in range(2 * formats._CHUNK + 7)]
    for rows in ([], tricky[:1], tricky + many, many):
        one_by_one = "[" + "".join(("," if i else "") + "\n  " + json.dumps(r, ensure_ascii=False)
                                   for i, r in enumerate(rows)) + "\n]\n"
        assert "".join(formats.format_json(rows)) == one_by_one
        compact = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                          for r in rows)
        assert "".join(formats.format_ndjson(rows)) == compact


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
def test_json_encoder_writes_what_the_json_module_writes(
        separators: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from smbsession.cli.formats import json_encoder

    rows = [{"ClientUserName": "CONTOSO\\Zoë \"q\" }, {\n\x00\u2028", "SessionId": 2**64 - 1,
             "Shares": ["IPC$", "data"], "SecondsIdle": None, "Encrypted": True,
             "Ratio": 0.1, "Nested": {"x": [False, -0.0, float("inf")]}}]
    want = json.JSONEncoder(ensure_ascii=False, separators=separators).encode(rows)
    assert json_encoder(separators)(rows) == want
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_encoder(separators)([object()])
    # without the C encoder: the json module itself, same text
    monkeypatch.setitem(sys.modules, "_json", None)
    assert json_encoder(separators)(rows) == want


def test_batched_joins_pieces_into_few_writes() -> None:
    from smbsession.cli.formats import batched

    pieces = [f"row {i}\n" for i in range(10_000)]
    joined = list(batched(iter(pieces), size=1000))
    assert "".join(joined) == "".join(pieces)
    assert all(len(chunk) >= 1000 for chunk in joined[:-1])
    assert len(joined) < len(pieces) / 100
    assert list(batched(iter([]))) == []
