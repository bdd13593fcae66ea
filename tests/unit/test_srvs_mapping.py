"""MS-SRVS answers to sessions, from a real answer of Samba 4.17 (tests/fixtures/srvs)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

pytest.importorskip("impacket")
from smbsession.remote.srvs import RemoteLimit, decode_page, session_from_entry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "srvs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
ANSWER = (FIXTURES / "level1.bin").read_bytes()


def test_samba_level_1_answer_maps_as_captured() -> None:
    entries, resume = decode_page(ANSWER, 1)
    assert resume == len(entries)  # Samba hands back the count, with ERROR_SUCCESS
    # Samba refuses level 10, so its level-1 idle time (always 0) is not believed.
    rows = [session_from_entry(e, 1, False, EXPECTED["target"]).to_dict() for e in entries]
    assert rows == EXPECTED["sessions"]
    assert {r["ClientUserName"] for r in rows} >= {"labalice", "labbob", "labcarol", "root"}
    assert all(r["SecondsIdle"] is None and r["SessionId"] == 0 for r in rows)


def test_the_error_code_is_the_last_word() -> None:
    assert struct.unpack("<L", ANSWER[-4:]) == (0,)


@pytest.mark.parametrize("cut", [0, 4, 16, len(ANSWER) // 2, len(ANSWER) - 5])
def test_a_truncated_answer_is_a_decode_error(cut: int) -> None:
    with pytest.raises(RemoteLimit, match="does not decode"):
        decode_page(ANSWER[:cut], 1)


def test_an_answer_of_another_level_is_a_decode_error() -> None:
    with pytest.raises(RemoteLimit):
        decode_page(ANSWER, 502)


def test_a_name_that_is_not_utf16_costs_no_session() -> None:
    # Found by benchmarks/fuzz/fuzz_readers.py --target srvs: a lone surrogate in a client
    # name made impacket raise UnicodeDecodeError when the field was read.
    damaged = bytearray(ANSWER)
    damaged[245] = 0xD8
    entries, _resume = decode_page(bytes(damaged), 1)
    rows = [session_from_entry(e, 1, False, "smb://x") for e in entries]
    assert len(rows) == len(EXPECTED["sessions"])
    names = [r.client_computer_name for r in rows]
    assert "\ufffd27.0.0.1" in names
    assert names.count("127.0.0.1") == len(rows) - 1
