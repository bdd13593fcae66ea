"""The read-only TDB reader on real Samba databases (tests/fixtures), intact and damaged."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from smbsession.samba.tdb import (
    HEADER_SIZE,
    TDB_MAGIC,
    TdbFormatError,
    read_tdb,
    stream_tdb,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DATABASES = sorted(FIXTURES.glob("samba-*/smbXsrv_*_global.tdb"))


def _tdbdump(path: Path) -> list[tuple[bytes, bytes]]:
    """The records as Samba's own tdbdump prints them."""
    out = subprocess.run(["tdbdump", str(path)], capture_output=True, check=True).stdout
    text = out.decode("latin-1")

    def unescape(s: str) -> bytes:
        raw = s.encode("latin-1")
        return re.sub(rb"\\([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)

    pairs = re.findall(r'key\(\d+\) = "(.*?)"\ndata\(\d+\) = "(.*?)"\n}', text, re.S)
    return sorted((unescape(k), unescape(v)) for k, v in pairs)


def _pairs(records) -> list[tuple[bytes, bytes]]:
    return sorted((r.key, r.value) for r in records)


def test_fixtures_exist() -> None:
    assert len(DATABASES) >= 3


@pytest.mark.parametrize("path", DATABASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_readers_agree_with_tdbdump(path: Path) -> None:
    if shutil.which("tdbdump") is None:
        pytest.skip("tdbdump (tdb-tools) is not installed")
    want = _tdbdump(path)
    assert want, "the fixture holds records"
    assert _pairs(read_tdb(path).records) == want
    stream = stream_tdb(path)
    assert _pairs(stream) == want
    assert not stream.fell_back and stream.skipped == 0


@pytest.mark.parametrize("path", DATABASES[:3], ids=lambda p: p.name)
def test_keys_are_big_endian_global_ids(path: Path) -> None:
    for record in read_tdb(path).records:
        assert len(record.key) == 4 and int.from_bytes(record.key, "big") > 0


def test_mutex_databases_are_read_past_the_mutex_area() -> None:
    path = FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb"
    data = path.read_bytes()
    mutex_size = struct.unpack_from("<I", data, 64)[0]
    assert mutex_size > 0
    assert data[mutex_size : mutex_size + 9] == b"TDB file\n"
    assert read_tdb(path).records


def test_reading_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "session.tdb"
    shutil.copyfile(FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb", path)
    path.chmod(0o400)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    read_tdb(path)
    list(stream_tdb(path))
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_truncated_files_never_raise_and_return_a_subset(tmp_path: Path) -> None:
    source = FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb"
    data = source.read_bytes()
    full = set(_pairs(read_tdb(source).records))
    mutex = struct.unpack_from("<I", data, 64)[0]
    cut_path = tmp_path / "cut.tdb"
    for cut in range(mutex + HEADER_SIZE + 600, len(data), 997):
        cut_path.write_bytes(data[:cut])
        chained = read_tdb(cut_path)
        streamed = stream_tdb(cut_path)
        assert set(_pairs(chained.records)) <= full
        assert set(_pairs(streamed)) <= full


def test_not_a_tdb_is_a_format_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tdb"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(TdbFormatError, match="not a TDB"):
        read_tdb(junk)
    with pytest.raises(TdbFormatError):
        list(stream_tdb(junk))
    short = tmp_path / "short.tdb"
    short.write_bytes(b"TDB file\n")
    with pytest.raises(TdbFormatError):
        read_tdb(short)


def _first_chain_head(data: bytes) -> tuple[int, int]:
    """(offset of the first non-empty hash chain head, base of the database proper)."""
    base = struct.unpack_from("<I", data, 64)[0]
    hash_size = struct.unpack_from("<I", data, 36)[0]
    heads = struct.unpack_from(f"<{hash_size}I", data, base + HEADER_SIZE + 4)
    bucket = next(i for i, h in enumerate(heads) if h)
    return base + HEADER_SIZE + 4 + 4 * bucket, base


def test_a_chain_made_cyclic_terminates_and_is_reported(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb").read_bytes())
    head_at, base = _first_chain_head(bytes(data))
    first = struct.unpack_from("<I", data, head_at)[0]
    assert struct.unpack_from("<I", data, base + first + 20)[0] == TDB_MAGIC
    struct.pack_into("<I", data, base + first, first)  # the record's next points at itself
    path = tmp_path / "cyclic.tdb"
    path.write_bytes(bytes(data))
    scan = read_tdb(path)
    assert scan.skipped == 1 and "loops" in scan.problems[0]


def test_a_record_with_bad_magic_is_skipped_and_reported(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb").read_bytes())
    head_at, base = _first_chain_head(bytes(data))
    first = struct.unpack_from("<I", data, head_at)[0]
    struct.pack_into("<I", data, base + first + 20, 0x12345678)
    path = tmp_path / "bad.tdb"
    path.write_bytes(bytes(data))
    scan = read_tdb(path)
    assert scan.skipped == 1 and "bad magic" in scan.problems[0]
    stream = stream_tdb(path)
    records = list(stream)
    assert stream.fell_back and len(records) == len(scan.records)


def test_impossible_lengths_are_bounded(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "samba-4.17" / "smbXsrv_session_global.tdb").read_bytes())
    head_at, base = _first_chain_head(bytes(data))
    first = struct.unpack_from("<I", data, head_at)[0]
    struct.pack_into("<I", data, base + first + 8, 0x7FFFFFF0)  # key_len of 2 GiB
    path = tmp_path / "huge.tdb"
    path.write_bytes(bytes(data))
    scan = read_tdb(path)
    assert scan.skipped == 1 and "impossible lengths" in scan.problems[0]
    assert len(list(stream_tdb(path))) == len(scan.records)
