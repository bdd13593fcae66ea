"""Decoding real smbXsrv databases captured from Samba 4.17 and 4.22 (tests/fixtures).

Each fixture directory holds the three databases of a lab with sample clients and
``expected.json``: Samba's own view of the same moment (``smbstatus --json`` and, for
4.22, Samba's Python bindings). See tests/fixtures/capture.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path

import pytest

from smbsession.model import dialect_name, samba_dialect_name
from smbsession.samba.smbxsrv import (
    KNOWN_LAYOUTS,
    NdrError,
    decode_open,
    decode_session,
    decode_tcon,
    layout_for_version,
)
from smbsession.samba.tdb import TdbRecord

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# (releases whose smbstatus has --json: 4.17 on; 4.13's capture is in tests/unit/test_layouts.py)
RELEASES = sorted(p.name for p in FIXTURES.glob("samba-*")
                  if "smbstatus" in json.loads((p / "expected.json").read_text()))


def _load(release: str) -> tuple[dict, dict]:
    base = FIXTURES / release
    expected = json.loads((base / "expected.json").read_text())
    layout = layout_for_version(expected["samba_version"])
    assert layout is not None
    raw = json.loads((base / "records.json").read_text())
    records = {
        kind: [TdbRecord(bytes.fromhex(k), bytes.fromhex(v)) for k, v in pairs]
        for kind, pairs in raw.items()
    }
    decoded = {
        "session": [decode_session(r.value, layout) for r in records["session"]],
        "tcon": [decode_tcon(r.value, layout) for r in records["tcon"]],
        "open": [decode_open(r.value, layout) for r in records["open"]],
        "raw": records,
    }
    return expected, decoded


def test_fixtures_cover_two_releases() -> None:
    assert {"samba-4.17", "samba-4.22"} <= set(RELEASES)


@pytest.mark.parametrize("release", RELEASES)
def test_sessions_match_smbstatus(release: str) -> None:
    expected, decoded = _load(release)
    oracle = expected["smbstatus"]["sessions"]
    mine = {s.session_global_id: s for s in decoded["session"]}
    assert set(mine) == {int(k) for k in oracle}
    for key, want in oracle.items():
        got = mine[int(key)]
        channel = got.channels[0]
        assert got.unix_name == want["username"]
        assert got.uid == want["uid"] and got.gid == want["gid"]
        assert channel.remote_address == want["hostname"]
        assert channel.remote_name == want["remote_machine"]
        assert channel.server_id.pid == int(want["server_id"]["pid"])
        assert channel.server_id.unique_id == int(want["server_id"]["unique_id"])
        assert channel.server_id.vnn == int(want["server_id"]["vnn"])
        assert dialect_name(got.connection_dialect) == samba_dialect_name(
            want["session_dialect"]
        )
        assert got.domain_name == "LABSRV" and got.account_name == want["username"]
        if "client_guid" in want:
            assert got.client_guid == want["client_guid"]


@pytest.mark.parametrize("release", RELEASES)
def test_tree_connects_and_opens_match_smbstatus(release: str) -> None:
    expected, decoded = _load(release)
    tcons = expected["smbstatus"]["tcons"]
    mine = {t.tcon_global_id: t for t in decoded["tcon"]}
    assert set(mine) == {int(k) for k in tcons}
    for key, want in tcons.items():
        assert mine[int(key)].share_name == want["service"]
        assert mine[int(key)].session_global_id == int(want["session_id"])
        assert mine[int(key)].server_id.pid == int(want["server_id"]["pid"])
    opens = [
        (int(op["server_id"]["pid"]), int(op["share_file_id"]))
        for entry in expected["smbstatus"]["open_files"].values()
        for op in entry["opens"].values()
    ]
    assert len(decoded["open"]) == len(opens)
    assert sorted(o.server_id.pid for o in decoded["open"]) == sorted(p for p, _ in opens)
    for o in decoded["open"]:
        assert o.open_owner.startswith("S-1-5-21-")


@pytest.mark.parametrize("release", [r for r in RELEASES if r >= "samba-4.20"])
def test_everything_matches_samba_own_bindings(release: str) -> None:
    expected, decoded = _load(release)
    bindings = expected["bindings"]
    for record, got in zip(decoded["raw"]["session"], decoded["session"], strict=True):
        want = bindings["session"][record.key.hex()]
        channel = got.channels[0]
        assert (got.session_global_id, got.session_wire_id) == (want["global_id"],
                                                                 want["wire_id"])
        assert got.creation_time == want["creation_time"]
        assert got.connection_dialect == want["dialect"]
        assert (got.account_name, got.domain_name) == (want["account"], want["domain"])
        assert (channel.local_address, channel.remote_address, channel.remote_name) == (
            want["local"], want["remote"], want["remote_name"])
        assert (channel.signing_algo, channel.encryption_cipher) == (want["signing_algo"],
                                                                      want["cipher"])
        assert (channel.server_id.pid, channel.server_id.unique_id) == (want["pid"],
                                                                          want["unique_id"])
    for record, got in zip(decoded["raw"]["tcon"], decoded["tcon"], strict=True):
        want = bindings["tcon"][record.key.hex()]
        assert (got.tcon_global_id, got.share_name, got.session_global_id) == (
            want["global_id"], want["share"], want["session_global_id"])
    for record, got in zip(decoded["raw"]["open"], decoded["open"], strict=True):
        want = bindings["open"][record.key.hex()]
        assert (got.open_global_id, got.server_id.pid, got.open_owner) == (
            want["global_id"], want["pid"], want["owner"])


@pytest.mark.parametrize("release", RELEASES)
def test_a_record_read_with_another_release_layout_is_refused(release: str) -> None:
    expected, decoded = _load(release)
    mine = layout_for_version(expected["samba_version"])
    value = decoded["raw"]["session"][0].value
    other = [name for name in KNOWN_LAYOUTS
             if layout_for_version(name + ".0").session_client_guid != mine.session_client_guid]
    with pytest.raises(NdrError):
        decode_session(value, layout_for_version(other[0] + ".0"))


@pytest.mark.parametrize("release", RELEASES)
def test_truncated_and_garbled_records_raise_ndr_error_only(release: str) -> None:
    expected, decoded = _load(release)
    layout = layout_for_version(expected["samba_version"])
    rng = random.Random(4242)
    for kind, decode in (("session", decode_session), ("tcon", decode_tcon),
                         ("open", decode_open)):
        value = decoded["raw"][kind][0].value
        for cut in range(0, len(value), 7):
            with pytest.raises(NdrError):
                decode(value[:cut], layout)
        for _ in range(300):
            garbled = bytearray(value)
            for _ in range(rng.randint(1, 8)):
                garbled[rng.randrange(len(garbled))] = rng.randrange(256)
            with contextlib.suppress(NdrError):
                decode(bytes(garbled), layout)
        with pytest.raises(NdrError):
            decode(os.urandom(64), layout)


def test_impossible_counts_fail_fast() -> None:
    expected, decoded = _load("samba-4.17")
    layout = layout_for_version(expected["samba_version"])
    value = bytearray(decoded["raw"]["session"][0].value)
    value[0:4] = (10**9).to_bytes(4, "little")  # a billion watchers
    with pytest.raises(NdrError, match="watchers"):
        decode_session(bytes(value), layout)


def test_layouts_by_version() -> None:
    assert layout_for_version("4.17.12-Debian").name == "4.17"
    assert layout_for_version("4.22.11-Debian-4.22.11+dfsg-0+deb13u1").name == "4.22"
    assert layout_for_version("4.12.0") is None
    assert layout_for_version("4.26.0") is None
    assert layout_for_version(None) is None


def test_a_guid_is_spelled_as_uuid_spells_it() -> None:
    """ndr.guid writes what str(uuid.UUID(bytes_le=...)) writes, for any 16 bytes, at
    any alignment, a repeated GUID included (it is spelled once and remembered)."""
    import uuid

    from smbsession.samba import ndr

    rng = random.Random(7)
    for _ in range(500):
        raw = bytes(rng.getrandbits(8) for _ in range(16))
        for pad in range(4):
            data = b"\xaa" * pad + b"\0" * (-pad % 4) + raw
            assert ndr.guid(data, pad) == (str(uuid.UUID(bytes_le=raw)), len(data))
            assert ndr.guid(data, pad)[0] == str(uuid.UUID(bytes_le=raw))
    with pytest.raises(ndr.NdrError, match="runs past the end"):
        ndr.guid(b"\0" * 19, 4)
