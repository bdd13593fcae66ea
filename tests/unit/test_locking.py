"""locking.tdb's share mode records (samba/locking.py): a record captured from Samba 4.17's
locking.tdb, and records built here by hand, byte by byte, for each declared format
(watchers, g_lock holders and delete tokens, which a live listing rarely meets). The live
tests are tests/test_releases.py::test_num_opens_split_by_share (4.13, 4.17, 4.22, and
the exact counts of 4.24 and 4.25)."""

from __future__ import annotations

import struct

import pytest

from smbsession.samba import locking
from smbsession.samba.ndr import NdrError

#: One record of the 4.17.12 lab's locking.tdb while smbprotocol held bench-560.txt open
#: (`make bench`): key, then value.
CAPTURED_4_17 = (
    "00fe0000000000004ad42000000000000000000000000000",
    "00000000000000000000000000000000000000000000000000000000a7335f429fca9896a6335f429fca98"
    "960000000096000000a5335f429fca9896c80000000000020004000200000000000000000000000000ce21"
    "29fd5f82dd01000000000000000000fe0000000000004ad420000000000000000000000000002500000000"
    "000000250000002f746d702f736d6273657373696f6e2d62656e63682d6c656375676e6a302f7368617265"
    "000000000e000000000000000e00000062656e63682d3536302e74787400b92700000000000000000000ff"
    "ffffff978fa988daba1ad39f00000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000089001200030000000000000000000000431b106b00000000c2d002"
    "001900000000000000eb03000000000000d0e3d36c431b106b00000000c2d00200",
)


def test_a_captured_4_17_record() -> None:
    key, value = (bytes.fromhex(x) for x in CAPTURED_4_17)
    path, entries = locking._Decoder("4.17.12-Debian").entries(key, value)
    assert path == "/tmp/smbsession-bench-lecugnj0/share"
    (pid, task_id, vnn, unique_id, uid), = entries
    assert (pid, task_id, vnn, unique_id, uid) == (0x27B9, 0, 0xFFFFFFFF, 0xD31ABADA88A98F97,
                                                  1003)
    # 4.13's g_lock header has one epoch less: the same bytes are not a 4.13 record
    with pytest.raises(NdrError):
        locking._Decoder("4.13.13").entries(key, value)


def _server_id(pid: int, unique: int) -> bytes:
    return struct.pack("<QIIQ", pid, 0, 0xFFFFFFFF, unique)


def _string(text: str, pos: int) -> bytes:
    raw = text.encode() + b"\0"
    return bytes((-pos) % 4) + struct.pack("<III", len(raw), 0, len(raw)) + raw


def _share_mode_data(series: str, key: bytes, path: str, tokens: int) -> bytes:
    """``share_mode_data`` as pidl marshals it (open_files.idl at the series' tag)."""
    d = struct.pack("<QH2xIIIII", 7, 0x1FF, 0x20000, 0x20004, 0, tokens, tokens)
    for _ in range(tokens):
        if series == "4.22":  # name_hash, parent_lease_key (aligned to 8), two pointers
            d += bytes((-len(d)) % 8) + struct.pack("<I4x16sII", 1, bytes(16), 0, 0)
        else:  # name_hash, two pointers
            d += struct.pack("<III", 1, 0, 0)
    d += struct.pack("<QQ", 11, 12)  # old and changed write time (NTTIME: aligned to 4)
    d += key  # file_id (udlong x 3)
    d += bytes((-len(d)) % 8)
    d += _string(path, len(d))
    d += _string("a/file.txt", len(d))
    return d


def _entry(pid: int, unique: int, uid: int) -> bytes:
    """``share_mode_entry``: 120 bytes of scalars, then the time once more (132)."""
    e = _server_id(pid, unique) + struct.pack("<QH2x16s4x16sIII4x", 5, 0, bytes(16),
                                              bytes(16), 0x120089, 3, 0)
    e += struct.pack("<QIQIH2xI", 1_700_000_000, 9, 42, uid, 0, 0xABC)
    e += struct.pack("<QI", 1_700_000_000, 9)
    assert len(e) == 132
    return e


def _record(series: str, key: bytes, path: str, entries: list[bytes], tokens: int = 0,
            watchers: int = 0, shared: int = 0) -> bytes:
    epochs = 1 if series == "4.13" else 2
    value = struct.pack("<I", watchers) + bytes(32 * watchers)
    value += _server_id(0, 0) + bytes(8 * epochs) + struct.pack("<I", shared)
    value += b"".join(_server_id(100 + i, i) for i in range(shared))
    smd = _share_mode_data(series, key, path, tokens)
    return value + struct.pack("<I", len(smd)) + smd + b"".join(entries)


@pytest.mark.parametrize(("series", "release"), [
    ("4.13", "4.13.13"), ("4.13", "4.16.11"), ("4.17", "4.17.12"), ("4.17", "4.21.4"),
    ("4.22", "4.22.11"),
])
@pytest.mark.parametrize(("tokens", "watchers", "shared"), [(0, 0, 0), (2, 1, 3)])
def test_each_format(series: str, release: str, tokens: int, watchers: int,
                     shared: int) -> None:
    key = struct.pack("<QQQ", 0xFE00, 0x1234, 0)
    entries = [_entry(4242, 99, 1001), _entry(4242, 99, 1002), _entry(77, 5, 1001)]
    value = _record(series, key, "/srv/share two", entries, tokens, watchers, shared)
    decoder = locking._Decoder(release)
    assert decoder.format.name == series
    path, found = decoder.entries(key, value)
    assert path == "/srv/share two"
    assert [(pid, unique, uid) for pid, _, _, unique, uid in found] == \
        [(4242, 99, 1001), (4242, 99, 1002), (77, 5, 1001)]
    with pytest.raises(NdrError):  # another file's key: the record is not taken
        decoder.entries(struct.pack("<QQQ", 0xFE00, 0x1235, 0), value)
    with pytest.raises(NdrError):  # a torn array of entries
        decoder.entries(key, value[:-1])


def test_records_without_entries() -> None:
    decoder = locking._Decoder("4.22.11")
    key = bytes(24)
    assert decoder.entries(key, b"") == ("", [])  # a fresh record
    assert decoder.entries(key, struct.pack("<I", 0) + bytes(20)) == ("", [])  # no g_lock data
    assert decoder.entries(key, _record("4.22", key, "/srv", [])) == ("", [])


def test_releases_whose_opens_name_their_session_need_no_locking_tdb() -> None:
    assert locking._decoder("4.23.0") is None
    assert locking._decoder("4.25.1-Debian") is None
    assert locking._decoder("4.12.0") is None
    assert locking._decoder(None) is None


def test_nested_share_paths_cannot_be_told_apart() -> None:
    assert locking._nested("/srv/a", "/srv/a")
    assert locking._nested("/srv", "/srv/a")
    assert locking._nested("/srv/a/b", "/srv/a/")
    assert not locking._nested("/srv/a", "/srv/ab")
    assert not locking._nested("/srv/a", "/srv/b")
