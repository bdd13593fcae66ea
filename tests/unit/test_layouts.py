"""The declared layouts (samba/layouts.py) against real records of every live release and
against records re-encoded for the releases without a Debian package.

Captured records: tests/fixtures/samba-4.xx (4.13 bullseye, 4.17 bookworm, 4.22 trixie,
4.24 trixie-backports, 4.25 sid; 4.25's oracle is its own python3-samba bindings).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smbsession.samba import layouts
from smbsession.samba.smbxsrv import (
    KNOWN_LAYOUTS,
    NdrError,
    decode_open,
    decode_session,
    decode_tcon,
    layout_candidates,
    layout_named,
    strip_watchers,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LIVE = sorted(p.name.removeprefix("samba-") for p in FIXTURES.glob("samba-*"))
IDL_ONLY = [r.name for r in layouts.RELEASES if r.debian is None]
FAST = {"session": decode_session, "tcon": decode_tcon, "open": decode_open}


def _records(release: str) -> tuple[str, dict[str, list[bytes]]]:
    base = FIXTURES / f"samba-{release}"
    version = json.loads((base / "expected.json").read_text())["samba_version"]
    raw = json.loads((base / "records.json").read_text())
    return version, {k: [bytes.fromhex(v) for _, v in pairs] for k, pairs in raw.items()}


def _blob(kind: str, value: bytes) -> bytes:
    return strip_watchers(value) if kind == "session" else value


def _agree(kind: str, fast, generic: dict) -> None:
    """The fast decoder's record equals the generic decoding, field by field."""
    if kind == "session":
        assert fast.session_global_id == generic["session_global_id"]
        assert fast.session_wire_id == generic["session_wire_id"]
        assert fast.creation_time == generic["creation_time"]
        assert fast.connection_dialect == generic["connection_dialect"]
        assert fast.signing_flags == generic["signing_flags"]
        assert fast.encryption_flags == generic["encryption_flags"]
        assert fast.encryption_cipher == generic.get("encryption_cipher", 0)
        for ch, want in zip(fast.channels, generic["channels"], strict=True):
            assert ch.server_id.pid == want["server_id"]["pid"]
            assert ch.server_id.unique_id == want["server_id"]["unique_id"]
            assert (ch.local_address, ch.remote_address, ch.remote_name) == (
                want["local_address"], want["remote_address"], want["remote_name"])
            assert ch.encryption_cipher == want["encryption_cipher"]
            assert ch.signing_algo == want.get("signing_algo", 0)
            assert ch.transport_type == want.get("transport_type")
        auth = generic["auth_session_info"]
        if auth is None:
            assert fast.account_name is None
        else:
            assert fast.account_name == auth["info"]["account_name"]
            assert fast.domain_name == auth["info"]["domain_name"]
            assert fast.user_sid == auth["security_token"]["sids"][0]
            assert fast.uid == auth["unix_token"]["uid"]
            assert fast.unix_name == auth["unix_info"]["unix_name"]
    elif kind == "tcon":
        assert fast.tcon_global_id == generic["tcon_global_id"]
        assert fast.share_name == generic["share_name"]
        assert fast.session_global_id == generic["session_global_id"]
        assert fast.server_id.pid == generic["server_id"]["pid"]
    else:
        assert fast.open_global_id == generic["open_global_id"]
        assert fast.open_owner == generic["open_owner"]
        assert fast.open_time == generic["open_time"]
        assert fast.durable == bool(generic["durable"])
        assert fast.session_global_id == generic.get("session_global_id")
        assert fast.tcon_global_id == generic.get("tcon_global_id")


def test_every_declared_release_has_fast_decoders() -> None:
    for name in KNOWN_LAYOUTS:
        assert layout_named(name).name.startswith(name)


def test_the_matrix_covers_4_13_to_4_25() -> None:
    assert [r.name for r in layouts.RELEASES] == [f"4.{m}" for m in range(13, 26)]
    assert {"4.13", "4.17", "4.22", "4.24", "4.25"} <= set(LIVE)


@pytest.mark.parametrize("release", LIVE)
def test_fast_and_generic_decoders_agree_on_captured_records(release: str) -> None:
    version, records = _records(release)
    (layout,) = [c for c in layout_candidates(version)
                 if all(_decodes(FAST[k], v, c) for k, vs in records.items() for v in vs)]
    assert records["session"] and records["tcon"] and records["open"]
    for kind, values in records.items():
        for value in values:
            _agree(kind, FAST[kind](value, layout), layouts.decode(kind, _blob(kind, value),
                                                                  layout.release))


def _decodes(decode, value: bytes, layout) -> bool:
    try:
        decode(value, layout)
    except NdrError:
        return False
    return True


def test_debian_4_13_has_the_backported_ticket_type() -> None:
    version, records = _records("4.13")
    with_it, without = layout_candidates(version)
    assert with_it.ticket_type and not without.ticket_type
    assert all(_decodes(decode_session, v, with_it) for v in records["session"])
    assert not any(_decodes(decode_session, v, without) for v in records["session"])


def test_ticket_type_backports_by_point_release() -> None:
    assert not layout_named("4.16.3").ticket_type and layout_named("4.16.4").ticket_type
    assert not layout_named("4.15.8").ticket_type and layout_named("4.15.9").ticket_type
    assert layout_named("4.14.14").ticket_type and layout_named("4.17.0").ticket_type


def test_4_25_records_are_format_version_1_and_match_its_bindings() -> None:
    version, records = _records("4.25")
    expected = json.loads((FIXTURES / "samba-4.25/expected.json").read_text())["bindings"]
    layout = layout_named(version)
    assert layout.version == 1
    for value in records["session"]:
        assert strip_watchers(value)[:4] == b"\x01\0\0\0"
    sessions = {s["global_id"]: s for s in expected["session"].values()}
    for value in records["session"]:
        got = decode_session(value, layout)
        want = sessions[got.session_global_id]
        assert (got.session_wire_id, got.creation_time, got.connection_dialect) == (
            want["wire_id"], want["creation_time"], want["dialect"])
        assert got.account_name == want["account"] and got.domain_name == want["domain"]
        assert got.channels[0].remote_address == want["remote"]
    opens = {o["global_id"]: o for o in expected["open"].values()}
    for value in records["open"]:
        got = decode_open(value, layout)
        assert got.open_owner == opens[got.open_global_id]["owner"]
    # a version-0 layout refuses these records instead of misreading them
    with pytest.raises(NdrError, match="format version"):
        decode_session(records["session"][0], layout_named("4.24"))


def _neighbour(release: str) -> str:
    """The live release whose records are re-encoded for an IDL-only release."""
    return {"4.14": "4.13", "4.15": "4.13", "4.16": "4.13", "4.18": "4.17", "4.19": "4.17",
            "4.20": "4.22", "4.21": "4.22", "4.23": "4.24"}[release]


@pytest.mark.parametrize("release", IDL_ONLY)
def test_records_re_encoded_for_releases_without_a_package(release: str) -> None:
    """Captured records of the neighbouring live release, decoded with its declarations,
    encoded for ``release``'s (fields it lacks zero, fields it has not dropped), then read by
    the fast decoders with ``release``'s layout: every field they share is the same."""
    version, records = _records(_neighbour(release))
    source = next(c for c in layout_candidates(version)
                  if all(_decodes(decode_session, v, c) for v in records["session"]))
    target = layout_named(f"{release}.0")
    for kind, values in records.items():
        for value in values:
            generic = layouts.decode(kind, _blob(kind, value), source.release)
            blob = layouts.encode(kind, generic, target.release)
            again = layouts.decode(kind, blob, target.release)
            fast = FAST[kind](bytes(4) + blob if kind == "session" else blob, target)
            _agree(kind, fast, again)
            struct = layouts.RECORD_STRUCTURES[kind]
            shared = ({(f.name, f.ndr) for f in target.release.structures[struct]}
                      & {(f.name, f.ndr) for f in source.release.structures[struct]})
            for name, _ in shared:
                if name not in ("channels", "auth_session_info"):
                    assert again[name] == generic[name], name


def _tdb_records(release: str) -> dict[str, list]:
    from smbsession.samba.tdb import TdbRecord

    raw = json.loads((FIXTURES / f"samba-{release}" / "records.json").read_text())
    return {k: [TdbRecord(bytes.fromhex(a), bytes.fromhex(b)) for a, b in pairs]
            for k, pairs in raw.items()}


def test_newest_layout_is_accepted_only_when_every_record_decodes_exactly() -> None:
    from smbsession.samba.smbxsrv import decodes_exactly

    newest = layout_named(layouts.newest().name)
    assert decodes_exactly(_tdb_records("4.25"), newest)
    assert not decodes_exactly(_tdb_records("4.24"), newest)  # format 0 records
    assert not decodes_exactly(_tdb_records("4.22"), layout_named("4.24"))  # no transport
    records = _tdb_records("4.25")
    first = records["tcon"][0]
    records["tcon"][0] = type(first)(b"\0\0\0\1", first.value)  # id differs from its key
    assert not decodes_exactly(records, newest)
    assert layouts.is_newer_than_known("4.26.0") and not layouts.is_newer_than_known("4.25.1")
