"""Output formats and -Property on the real command line, against real lab sessions.

Table (the seed's layout), List (the seed's Example 5), Json, NDJson, Csv, and -Property
as Select-Object picks properties (issue 4).
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from conftest import run_cli, run_get, smbprotocol_sessions
from smbsession.lab import NETBIOS_NAME, Lab

#: Example 5 of the seed: the MSFT_SmbSession properties in the order Windows lists them.
SEED_LIST_ORDER = [
    "ClientComputerName", "ClientUserName", "ClusterNodeName", "Dialect", "NumOpens",
    "ScopeName", "SecondsExists", "SecondsIdle", "SessionId", "TransportName",
]
EXTRAS = [
    "ClientNetBiosName", "ClientGuid", "EncryptionCipher", "EncryptionDegree", "SigningCipher",
    "SigningDegree", "Shares", "SmbdPid", "BytesReceived", "BytesSent", "RttMicroseconds",
]
#: Every property in the order List, Json, NDJson and Csv give them.
EVERY = [*SEED_LIST_ORDER, "SmbInstance", *EXTRAS, "PSComputerName"]
#: Properties whose value changes from one second to the next.
CLOCKS = {"SecondsExists", "SecondsIdle", "BytesReceived", "BytesSent", "RttMicroseconds"}


def stable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in CLOCKS}


def json_rows(lab: Lab, *args: str) -> list[dict]:
    out = run_get(lab, *args, "-Format", "Json")
    assert out.returncode == 0, out.stderr
    return out.json()


def test_list_is_the_seeds_example_5(lab: Lab, alice_bob: list) -> None:
    alice = alice_bob[0].session_id
    out = run_get(lab, "-SessionId", str(alice), "-Format", "List")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == EVERY
    assert {line.index(" : ") if " : " in line else len(line) - 2 for line in lines} == {
        len("ClientComputerName")
    }
    values = dict(re.match(r"(\w+) +: ?(.*)", line).groups() for line in lines)
    (row,) = json_rows(lab, "-SessionId", str(alice))
    assert values["SessionId"] == str(alice) == str(row["SessionId"])
    assert values["ClientUserName"] == f"{NETBIOS_NAME}\\labalice"
    assert values["NumOpens"] == "1" and values["ScopeName"] == "*"
    assert values["ClusterNodeName"] == "" and values["PSComputerName"] == ""
    assert values["Shares"] == "{share}"


def test_property_star_without_format_gives_the_list(lab: Lab, alice_bob: list) -> None:
    alice = str(alice_bob[0].session_id)
    listed = run_get(lab, "-SessionId", alice, "-Property", "*")
    assert listed.returncode == 0
    assert [line.split(" ")[0] for line in listed.stdout.splitlines()] == EVERY


def test_two_records_in_a_list_are_one_blank_line_apart(lab: Lab, alice_bob: list) -> None:
    both = ",".join(str(s.session_id) for s in alice_bob)
    out = run_get(lab, "-SessionId", both, "-Format", "List")
    blocks = out.stdout.split("\n\n")
    assert len(blocks) == 2
    assert all(block.strip().splitlines()[0].startswith("ClientComputerName ") for block in blocks)


def test_json_is_an_array_of_typed_values_with_windows_names(lab: Lab, alice_bob: list) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    rows = {r["SessionId"]: r for r in json_rows(lab)}
    for sid in (alice, bob):
        assert list(rows[sid]) == EVERY
        assert type(rows[sid]["SessionId"]) is int and type(rows[sid]["NumOpens"]) is int
        assert type(rows[sid]["SecondsExists"]) is int
        assert rows[sid]["SmbInstance"] == "Default"
        assert rows[sid]["PSComputerName"] is None
        assert rows[sid]["Shares"] == ["share"]
    assert rows[alice]["NumOpens"] == 1 and rows[bob]["NumOpens"] == 0
    assert rows[alice]["Dialect"] == rows[bob]["Dialect"] == "3.1.1"


def test_ndjson_holds_the_json_objects_one_a_line(lab: Lab, alice_bob: list) -> None:
    both = ",".join(str(s.session_id) for s in alice_bob)
    array = json_rows(lab, "-SessionId", both)
    out = run_get(lab, "-SessionId", both, "-Format", "NDJson")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("{") and line.endswith("}") for line in lines)
    assert [stable(json.loads(line)) for line in lines] == [stable(r) for r in array]


def test_csv_has_a_header_of_property_names_then_one_row_a_session(
    lab: Lab, alice_bob: list
) -> None:
    both = ",".join(str(s.session_id) for s in alice_bob)
    array = json_rows(lab, "-SessionId", both)
    out = run_get(lab, "-SessionId", both, "-Format", "Csv")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0] == ",".join(EVERY)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["SessionId"] for r in rows] == [str(r["SessionId"]) for r in array]
    assert [r["ClientUserName"] for r in rows] == [r["ClientUserName"] for r in array]
    assert rows[0]["PSComputerName"] == "" and rows[0]["Shares"] == "{share}"


def test_property_picks_properties_in_the_order_given(lab: Lab, alice_bob: list) -> None:
    alice = str(alice_bob[0].session_id)
    rows = json_rows(lab, "-SessionId", alice, "-Property", "dialect,SessionId")
    assert rows == [{"Dialect": "3.1.1", "SessionId": int(alice)}]
    rows = json_rows(lab, "-SessionId", alice, "-Property", "Client*,PSComputerName")
    assert list(rows[0]) == [
        "ClientComputerName", "ClientUserName", "ClientNetBiosName", "ClientGuid",
        "PSComputerName",
    ]


def test_up_to_four_properties_make_a_table_in_the_seeds_columns(
    lab: Lab, alice_bob: list
) -> None:
    alice = str(alice_bob[0].session_id)
    out = run_get(lab, "-SessionId", alice, "-Property", "SessionId,Dialect,NumOpens")
    lines = out.stdout.splitlines()
    assert lines[0] == "SessionId".ljust(30) + "Dialect".ljust(30) + "NumOpens"
    assert lines[1] == "---------".ljust(30) + "-------".ljust(30) + "--------"
    assert lines[2] == alice.ljust(30) + "3.1.1".ljust(30) + "1"


def test_an_unknown_property_is_an_error_listing_the_properties(lab: Lab) -> None:
    out = run_get(lab, "-Property", "SessionId,Owner")
    assert out.returncode == 2 and out.stdout == ""
    assert "'Owner' is not a property" in out.stderr
    assert ", ".join(EVERY) in out.stderr


def test_no_session_prints_an_empty_array_and_no_table(lab: Lab) -> None:
    assert run_get(lab, "-SmbInstance", "CSV").stdout == ""
    assert run_get(lab, "-SmbInstance", "CSV", "-Json").json() == []
    assert run_get(lab, "-SmbInstance", "CSV", "-Format", "NDJson").stdout == ""
    assert run_get(lab, "-SmbInstance", "CSV", "-Format", "Csv").stdout == ",".join(EVERY) + "\n"


def test_a_value_too_long_for_its_column_is_cut_with_an_ellipsis(lab_chroot: Lab) -> None:
    # Samba 4.20 and later record the client's GUID: 36 characters, for 29 in a column.
    with smbprotocol_sessions(lab_chroot, ["labbob"]) as (bob,):
        guid = json_rows(lab_chroot, "-SessionId", str(bob.session_id))[0]["ClientGuid"]
        table = run_get(lab_chroot, "-SessionId", str(bob.session_id),
                        "-Property", "ClientGuid,SessionId")
    if guid is None:
        pytest.skip("this Samba release's source gives no ClientGuid")
    row = table.stdout.splitlines()[2]
    assert len(guid) > 29
    assert row[:30] == guid[:28] + "… "
    assert row[30:] == str(bob.session_id)


@pytest.mark.parametrize("command", ["get", "close"])
def test_a_format_that_does_not_exist_lists_the_formats(command: str) -> None:
    out = run_cli(command, "-Format", "Xml")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().endswith(
        "Cannot validate argument on parameter 'Format'. The argument \"Xml\" does not "
        "belong to the set \"Table,List,Json,NDJson,Csv\". Supply one of: Table, List, Json, "
        "NDJson, Csv.")
    assert "Traceback" not in out.stderr
