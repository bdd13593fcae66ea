"""The read-only TDB reader against real TDB files written by Samba's libtdb.

The fixtures (tests/fixtures/tdb, see its README) were written by smbd, tdbtool and
Samba's Python bindings; the oracle is Samba's ``tdbdump``, run live where it is
installed and otherwise replaced by what it printed for each fixture (expected.json).
Damaged files are real fixtures cut short or with one word patched. Live tests read a
database while Samba's libtdb rewrites it as fast as it can, and a running smbd's session
database while clients come and go.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from smbsession.lab import LAB_USERS, SHARE
from smbsession.samba import tdb
from smbsession.samba.tdb import TdbFormatError, TdbRecord, iter_tdb, read_tdb, stream_tdb

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tdb"
EXPECTED: dict[str, list[list[str]]] = json.loads((FIXTURES / "expected.json").read_text())
NAMES = sorted(EXPECTED)
SRC = str(Path(__file__).resolve().parents[2] / "src")

Pairs = list[tuple[bytes, bytes]]
RETRY_PAUSE = tdb._RETRY_PAUSE


@pytest.fixture(autouse=True)
def _no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Damaged files make the reader pause before its re-read; not worth waiting for.

    The tests with a live writer put the pause back."""
    monkeypatch.setattr(tdb, "_RETRY_PAUSE", 0.0)


@pytest.fixture(autouse=True, params=["whole file", "record by record"])
def read_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: a file read whole and walked in memory (up to 64 MiB), and one
    read a record at a time (a larger file)."""
    if request.param == "record by record":
        monkeypatch.setattr(tdb, "_IMAGE_MAX", -1)
    return str(request.param)


def tdbdump(path: Path) -> Pairs:
    """The records of ``path`` as Samba's tdbdump prints them, in its order."""
    out = subprocess.run(["tdbdump", str(path)], capture_output=True, check=True, timeout=60)
    text = out.stdout.decode("latin-1")

    def unescape(field: str) -> bytes:
        return re.sub(rb"\\([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]),
                      field.encode("latin-1"))

    pairs = []
    blocks = re.findall(r'^\{\nkey\((\d+)\) = "(.*)"\ndata\((\d+)\) = "(.*)"\n\}$', text, re.M)
    for key_len, key, data_len, data in blocks:
        pair = (unescape(key), unescape(data))
        assert (len(pair[0]), len(pair[1])) == (int(key_len), int(data_len))
        pairs.append(pair)
    assert len(pairs) == text.count("{\n"), "every block of tdbdump's output was parsed"
    return pairs


def pairs(records: Iterator[TdbRecord] | list[TdbRecord]) -> Pairs:
    return [(r.key, r.value) for r in records]


def digest(items: Pairs) -> list[list[str]]:
    return [[key.hex(), hashlib.sha256(value).hexdigest()] for key, value in items]


def layout(data: bytes) -> tuple[str, int, int]:
    """(struct byte order, offset of the database proper, hash size) of a TDB image."""
    order = "<" if struct.unpack_from("<I", data, 32)[0] == 0x26011967 + 6 else ">"
    hash_size, rwlocks = struct.unpack_from(order + "II", data, 36)
    features, mutex_size = struct.unpack_from(order + "II", data, 60)
    base = mutex_size if rwlocks == 0x0BAD1A52 and features & 1 else 0
    return order, base, hash_size


def chains(data: bytes) -> dict[int, list[int]]:
    """Record offsets (relative, as stored) of each non-empty chain of an intact image."""
    order, base, hash_size = layout(data)
    heads = struct.unpack_from(f"{order}{hash_size}I", data, base + 172)
    out = {}
    for bucket, offset in enumerate(heads):
        walk = []
        while offset:
            walk.append(offset)
            offset = struct.unpack_from(order + "I", data, base + offset)[0]
        if walk:
            out[bucket] = walk
    return out


def patched(data: bytes, record: int, field: int, value: int) -> bytes:
    """``data`` with the 32-bit word ``field`` (0 next, 1 rec_len, 2 key_len, 3 data_len,
    4 full_hash, 5 magic) of the record at relative offset ``record`` set to ``value``."""
    order, base, _ = layout(data)
    out = bytearray(data)
    struct.pack_into(order + "I", out, base + record + 4 * field, value)
    return bytes(out)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- intact files -----------------------------------------------------------------------


def test_the_fixtures_cover_the_layouts_that_matter() -> None:
    kinds = {}
    for name in NAMES:
        data = (FIXTURES / name).read_bytes()
        order, base, hash_size = layout(data)
        dead = struct.pack(order + "I", 0xFEE1DEAD)
        kinds[name] = (order, base > 0, dead in data[base + 172 + 4 * hash_size :])
    assert {kinds[n][:2] for n in NAMES if n.startswith("smbXsrv_")} == {("<", True)}
    assert kinds["python_bigendian.tdb"][0] == ">"
    assert kinds["python_mutex.tdb"] == ("<", True, True)
    assert kinds["python_volatile_dead.tdb"] == ("<", False, True)
    assert kinds["tdbtool_plain.tdb"] == ("<", False, False)
    assert sum(len(EXPECTED[n]) for n in NAMES) >= 90
    for name in ("python_bigendian.tdb", "python_volatile_dead.tdb", "python_mutex.tdb"):
        assert max(map(len, chains((FIXTURES / name).read_bytes()).values())) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_records_are_what_tdbdump_printed(name: str) -> None:
    scan = read_tdb(FIXTURES / name)
    assert digest(pairs(scan.records)) == EXPECTED[name]
    assert (scan.skipped, scan.problems) == (0, [])


@pytest.mark.parametrize("name", NAMES)
def test_records_equal_tdbdump_run_now(name: str) -> None:
    if shutil.which("tdbdump") is None:
        pytest.skip("tdbdump (Debian package tdb-tools) is not installed")
    assert pairs(read_tdb(FIXTURES / name).records) == tdbdump(FIXTURES / name)


@pytest.mark.parametrize("name", NAMES)
def test_iter_and_stream_yield_the_same_records(name: str) -> None:
    path = FIXTURES / name
    records = read_tdb(path).records
    assert list(iter_tdb(path)) == records
    assert list(iter_tdb(str(path))) == records
    stream = stream_tdb(path)
    assert list(stream) == records
    assert (stream.skipped, stream.problems, stream.fell_back) == (0, [], False)


def test_session_records_are_keyed_by_global_id() -> None:
    records = read_tdb(FIXTURES / "smbXsrv_session_global.tdb").records
    assert len(records) == 5
    assert all(len(r.key) == 4 and len(r.value) > 100 for r in records)
    assert len({r.key for r in records}) == 5
    record = records[0]
    assert record == TdbRecord(record.key, record.value)
    with pytest.raises(AttributeError):
        record.key = b"x"  # type: ignore[misc]


# --- not a TDB ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "less than a TDB header"),
        (b"TDB file\n", "less than a TDB header"),
        (b"not a tdb at all" * 20, "no 'TDB file' signature"),
        (b"TDB file\n\0" + b"\0" * 200, "unknown TDB version"),
    ],
    ids=["empty", "signature only", "text", "zero version"],
)
def test_a_file_that_is_not_a_tdb_is_a_format_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, "bad.tdb", content)
    with pytest.raises(TdbFormatError, match=message) as error:
        read_tdb(path)
    assert str(path) in str(error.value)
    with pytest.raises(TdbFormatError):
        list(stream_tdb(path))
    with pytest.raises(TdbFormatError):
        next(iter_tdb(path))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (36, 0, "invalid hash size"),
        (40, 0x12345678, "spinlock"),
        (60, 3, "unknown feature flags"),
        (64, 100, "invalid mutex area size"),
        (64, 12288, "no matching second header"),
        (64, 1 << 20, "cut short before its second header"),
    ],
)
def test_an_unusable_header_is_a_format_error(
    tmp_path: Path, field: int, value: int, message: str
) -> None:
    data = bytearray((FIXTURES / "smbXsrv_session_global.tdb").read_bytes())
    struct.pack_into("<I", data, field, value)
    with pytest.raises(TdbFormatError, match=message):
        read_tdb(write(tmp_path, "bad.tdb", bytes(data)))


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_tdb(tmp_path / "absent.tdb")


def test_random_bytes_never_pass_for_a_tdb(tmp_path: Path) -> None:
    rng = random.Random(20241124)
    path = tmp_path / "random.tdb"
    for size in (1, 9, 100, 167, 168, 4096, 65536):
        for _ in range(5):
            path.write_bytes(rng.randbytes(size))
            with pytest.raises(TdbFormatError):
                read_tdb(path)


@pytest.mark.parametrize("name", ["smbXsrv_session_global.tdb", "python_bigendian.tdb"])
def test_random_bytes_behind_a_real_header_end_quickly(tmp_path: Path, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    _, base, _ = layout(data)
    rng = random.Random(7)
    path = tmp_path / "noise.tdb"
    started = time.monotonic()
    for size in (0, 100, 4096, 1 << 16, 1 << 18):
        for _ in range(4):
            path.write_bytes(data[: base + 168] + rng.randbytes(size))
            scan = read_tdb(path)
            assert scan.skipped == len(scan.problems) or len(scan.problems) == tdb.MAX_PROBLEMS
            assert all(isinstance(r.key, bytes) for r in scan.records)
    assert time.monotonic() - started < 20


# --- damaged files ------------------------------------------------------------------------

CUT = ["smbXsrv_session_global.tdb", "python_bigendian.tdb", "python_volatile_dead.tdb",
       "python_mutex.tdb"]


@pytest.mark.parametrize("name", CUT)
def test_truncated_copies_never_raise_and_return_a_subset(tmp_path: Path, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    _, base, hash_size = layout(data)
    full = pairs(read_tdb(FIXTURES / name).records)
    header_end = base + 168
    table_end = header_end + 4 * (hash_size + 1)
    special = {0, 1, 9, 40, 167, 168, base + 100, base + 167, header_end, header_end + 4,
               header_end + 4 * (hash_size // 2), table_end - 1, table_end, len(data) - 1}
    cuts = sorted(special | set(range(header_end, len(data), 53)))
    path = tmp_path / "cut.tdb"
    lost_somewhere = False
    for cut in cuts:
        path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(TdbFormatError):
                read_tdb(path)
            continue
        scan = read_tdb(path)
        got = pairs(scan.records)
        assert set(got) <= set(full), cut
        assert [p for p in full if p in set(got)] == got, "order kept"
        if got != full:
            lost_somewhere = True
            assert scan.skipped >= 1 and scan.problems, f"cut at {cut}: silent loss"
        assert pairs(stream_tdb(path)) == got
    assert lost_somewhere
    path.write_bytes(data)
    assert pairs(read_tdb(path).records) == full


def test_a_hash_table_cut_short_is_one_problem(tmp_path: Path) -> None:
    data = (FIXTURES / "tdbtool_plain.tdb").read_bytes()
    scan = read_tdb(write(tmp_path, "cut.tdb", data[: 168 + 4 + 40]))  # 10 of 131 heads
    present = [bucket for bucket in chains(data) if bucket < 10]
    assert present, "the fixture has a record in one of the first ten chains"
    assert scan.records == [] and scan.skipped == len(present) + 1
    assert [p.split(":")[0] for p in scan.problems[:-1]] == [f"chain {b}" for b in present]
    assert scan.problems[-1] == (
        "the file ends inside the hash table: chains 10 to 130 cannot be read"
    )


def test_a_huge_hash_size_in_a_small_file_is_bounded(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "tdbtool_plain.tdb").read_bytes())
    struct.pack_into("<I", data, 36, 0x3FFFFFFF)
    started = time.monotonic()
    scan = read_tdb(write(tmp_path, "wide.tdb", bytes(data)))
    assert time.monotonic() - started < 5
    assert scan.skipped >= 1


def _first_record(data: bytes) -> tuple[int, int]:
    """(bucket, offset) of the first record of the first non-empty chain."""
    bucket, walk = next(iter(chains(data).items()))
    return bucket, walk[0]


def test_a_chain_made_cyclic_through_itself_terminates(tmp_path: Path) -> None:
    data = (FIXTURES / "smbXsrv_session_global.tdb").read_bytes()
    full = pairs(read_tdb(FIXTURES / "smbXsrv_session_global.tdb").records)
    bucket, record = _first_record(data)
    scan = read_tdb(write(tmp_path, "cyclic.tdb", patched(data, record, 0, record)))
    assert scan.skipped == 1 and "loops" in scan.problems[0]
    assert f"chain {bucket}" in scan.problems[0]
    assert pairs(scan.records) == full  # the chain held that one record


def test_a_long_cycle_terminates_and_returns_each_record_once(tmp_path: Path) -> None:
    name = "python_volatile_dead.tdb"
    data = (FIXTURES / name).read_bytes()
    full = pairs(read_tdb(FIXTURES / name).records)
    walk = max(chains(data).values(), key=len)
    assert len(walk) >= 4
    cyclic = patched(data, walk[-1], 0, walk[1])  # the last record points back to the 2nd
    started = time.monotonic()
    scan = read_tdb(write(tmp_path, "cyclic.tdb", cyclic))
    assert time.monotonic() - started < 5
    assert scan.skipped == 1 and "loops" in scan.problems[0]
    assert pairs(scan.records) == full  # every record was reached before the loop closed
    stream = stream_tdb(tmp_path / "cyclic.tdb")
    assert pairs(stream) == full and stream.skipped == 1 and stream.fell_back


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (5, 0x12345678, "bad magic"),
        (5, ~0x26011999 & 0xFFFFFFFF, "bad magic"),  # a free record in a chain
        (2, 0x7FFFFFF0, "impossible lengths"),
        (3, 0xFFFFFFF0, "impossible lengths"),
        (1, 0xFFFFFFFC, "impossible lengths"),
        (1, 6, "impossible lengths"),  # misaligned
        (4, None, "has the hash of chain"),
        (0, 3, "misaligned or outside"),
        (0, 0xFFFFFFF0, "misaligned or outside"),
        (0, 8, "misaligned or outside"),  # into the header
    ],
)
def test_a_damaged_record_is_skipped_and_explained(
    tmp_path: Path, field: int, value: int | None, message: str
) -> None:
    data = (FIXTURES / "python_mutex.tdb").read_bytes()
    full = pairs(read_tdb(FIXTURES / "python_mutex.tdb").records)
    bucket, walk = max(chains(data).items(), key=lambda item: len(item[1]))
    order, base, hash_size = layout(data)
    live = [o for o in walk if struct.unpack_from(order + "I", data, base + o + 20)[0]
            == 0x26011999]
    assert len(live) >= 2
    target = live[0]  # a live record with another live one after it
    if value is None:
        value = (bucket + 1) % hash_size
    scan = read_tdb(write(tmp_path, "damaged.tdb", patched(data, target, field, value)))
    assert scan.skipped == 1, scan.problems
    assert message in scan.problems[0] and f"chain {bucket}" in scan.problems[0]
    got = pairs(scan.records)
    assert set(got) < set(full)
    assert [p for p in full if p in set(got)] == got


def test_problems_are_bounded_but_all_counted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = bytearray((FIXTURES / "tdbtool_plain.tdb").read_bytes())
    heads = chains(bytes(data))
    for walk in heads.values():
        struct.pack_into("<I", data, walk[0] + 20, 0)
    monkeypatch.setattr(tdb, "MAX_PROBLEMS", 5)
    scan = read_tdb(write(tmp_path, "zeroed.tdb", bytes(data)))
    assert scan.records == []
    assert scan.skipped == len(heads) > 5
    assert len(scan.problems) == 5
    assert all("bad magic 0x00000000" in p for p in scan.problems)


def test_a_key_in_two_chains_is_returned_once(tmp_path: Path) -> None:
    """A record whose header was written for one key and whose key bytes are still
    another's (libtdb writes them apart) sits in the wrong chain: the key the scan has
    already read is not returned a second time, and the scan says so."""
    data = (FIXTURES / "tdbtool_plain.tdb").read_bytes()
    order, base, _ = layout(data)
    walks = chains(data)

    def key_of(offset: int) -> bytes:
        key_len = struct.unpack_from(order + "I", data, base + offset + 8)[0]
        return data[base + offset + 24:base + offset + 24 + key_len]

    first, *others = sorted(walks)
    taken = key_of(walks[first][0])
    bucket = next(b for b in others if len(key_of(walks[b][0])) == len(taken))
    target = walks[bucket][0]
    torn = bytearray(data)
    torn[base + target + 24:base + target + 24 + len(taken)] = taken
    scan = read_tdb(write(tmp_path, "torn.tdb", bytes(torn)))
    keys = [r.key for r in scan.records]
    assert keys.count(taken) == 1 and len(keys) == len(set(keys))
    # the torn record's chain stops there; every other chain is read whole
    expected = {key_of(o) for b, walk in walks.items() if b != bucket for o in walk}
    assert set(keys) == expected
    assert scan.skipped == 1 and "read twice in one scan" in scan.problems[0]


def test_damaged_chains_do_not_read_the_file_again_and_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, read_mode: str
) -> None:
    """Every chain damaged: each is read again once, record by record, and the file is
    read whole at most once (not once more for each damaged chain)."""
    data = bytearray((FIXTURES / "tdbtool_plain.tdb").read_bytes())
    heads = chains(bytes(data))
    for walk in heads.values():
        struct.pack_into("<I", data, walk[0] + 20, 0)
    path = write(tmp_path, "zeroed.tdb", bytes(data))
    sizes: list[int] = []
    real_pread = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        sizes.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", pread)
    scan = read_tdb(path)
    assert scan.skipped == len(heads) > 2
    whole = sum(1 for size in sizes if size >= len(data))
    assert whole == (1 if read_mode == "whole file" else 0)


def test_a_chain_repaired_before_the_re_read_is_read_whole(tmp_path: Path) -> None:
    """What happens when smbd finishes a write between the two reads of a chain."""
    data = (FIXTURES / "python_volatile_dead.tdb").read_bytes()
    full = pairs(read_tdb(FIXTURES / "python_volatile_dead.tdb").records)
    _, walk = max(chains(data).items(), key=lambda item: len(item[1]))
    path = write(tmp_path, "moving.tdb", patched(data, walk[1], 5, 0x0BADBAD0))
    real_restat = tdb._Reader.restat
    calls = []

    def restat_after_the_write(reader: tdb._Reader) -> None:
        calls.append(reader)
        if len(calls) > 1:  # the first is at open; the next one prepares the re-read
            path.write_bytes(data)
        real_restat(reader)

    with mock.patch.object(tdb._Reader, "restat", restat_after_the_write):
        stream = stream_tdb(path)
        got = pairs(stream)
    assert got == full
    assert (stream.skipped, stream.fell_back) == (0, True)


def test_a_file_cut_shorter_during_the_read_is_no_error(tmp_path: Path) -> None:
    """The hash table is cut short, and shorter still when the reader looks again."""
    data = (FIXTURES / "tdbtool_plain.tdb").read_bytes()
    path = write(tmp_path, "shrinking.tdb", data[: 168 + 4 + 40])
    real_restat = tdb._Reader.restat
    calls = []

    def restat_after_a_truncation(reader: tdb._Reader) -> None:
        calls.append(reader)
        if len(calls) > 1:
            path.write_bytes(data[: 168 + 4 + 8])
        real_restat(reader)

    with mock.patch.object(tdb._Reader, "restat", restat_after_a_truncation):
        scan = read_tdb(path)
    assert scan.records == [] and scan.skipped >= 1
    assert "hash table" in scan.problems[-1]


# --- read-only ----------------------------------------------------------------------------


def test_the_file_is_opened_read_only_and_never_locked_mapped_or_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "session.tdb"
    shutil.copyfile(FIXTURES / "smbXsrv_session_global.tdb", path)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    flags_seen: list[int] = []
    real_open = os.open

    def spy_open(file, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        flags_seen.append(flags)
        return real_open(file, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the reader must not lock, map or write")

    monkeypatch.setattr(os, "open", spy_open)
    for name in ("write", "pwrite", "ftruncate", "truncate"):
        monkeypatch.setattr(os, name, forbidden)
    for name in ("fcntl", "flock", "lockf"):
        monkeypatch.setattr(fcntl, name, forbidden)
    monkeypatch.setattr(mmap, "mmap", forbidden)
    assert len(read_tdb(path).records) == 5
    assert len(list(stream_tdb(path))) == 5
    assert flags_seen and all(f & os.O_ACCMODE == os.O_RDONLY for f in flags_seen)
    unwanted = os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_WRONLY | os.O_RDWR
    assert not any(f & unwanted for f in flags_seen)
    monkeypatch.undo()
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_a_user_who_cannot_write_the_file_reads_it(tmp_path: Path) -> None:
    directory = Path(tempfile.mkdtemp(prefix="tdb-ro-"))
    try:
        directory.chmod(0o755)
        path = directory / "session.tdb"
        shutil.copyfile(FIXTURES / "smbXsrv_session_global.tdb", path)
        path.chmod(0o444 if os.geteuid() == 0 else 0o400)
        if os.geteuid() != 0:
            assert len(read_tdb(path).records) == 5
            return
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to drop root")
        code = ("import os, sys; from smbsession.samba.tdb import read_tdb; "
                "print(len(read_tdb(sys.argv[1]).records), os.access(sys.argv[1], os.W_OK))")
        from conftest import as_user

        cmd, env = as_user("nobody", "-c", code, str(path))
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              env=env, cwd="/")
        assert (done.returncode, done.stdout.split()) == (0, ["5", "False"]), done.stderr
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- a concurrent writer ------------------------------------------------------------------

#: Stores and deletes records of a mutex TDB with Samba's libtdb, as fast as it can; every
#: value starts with the SHA-256 of its key and the rest of the value.
_WRITER = r"""
import hashlib, os, random, sys, time, tdb
db = tdb.Tdb(sys.argv[1], 131, 4096 | 1 | 2048 | 256, os.O_RDWR | os.O_CREAT, 0o600)
rng = random.Random(5)
for i in range(400):
    body = rng.randbytes(rng.randint(200, 1500))
    db.store(b"s%04d" % i, hashlib.sha256(b"s%04d" % i + body).digest() + body)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    key = b"s%04d" % rng.randrange(400)
    if rng.random() < 0.3:
        try:
            db.delete(key)
        except RuntimeError:
            pass
    else:
        body = rng.randbytes(rng.randint(200, 1500))
        db.store(key, hashlib.sha256(key + body).digest() + body)
"""


def _python_with_libtdb() -> str | None:
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if python and subprocess.run([python, "-I", "-c", "import tdb"],
                                     capture_output=True, check=False).returncode == 0:
            return python
    return None


def test_reading_while_libtdb_writes_at_full_speed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    python = _python_with_libtdb()
    if python is None:
        pytest.skip("Samba's Python bindings for TDB (python3-tdb) are not installed")
    monkeypatch.setattr(tdb, "_RETRY_PAUSE", RETRY_PAUSE)
    path = tmp_path / "busy.tdb"
    writer = subprocess.Popen([python, "-I", "-c", _WRITER, str(path), "4"],
                              stdout=subprocess.PIPE, text=True)
    scans = records = torn = skipped = 0
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        while writer.poll() is None:
            scan = read_tdb(path)
            scans += 1
            skipped += scan.skipped
            keys = [r.key for r in scan.records]
            assert len(set(keys)) == len(keys), "a key came twice in one scan"
            assert all(re.fullmatch(rb"s\d{4}", key) for key in keys)
            for record in scan.records:
                body = record.value[32:]
                torn += hashlib.sha256(record.key + body).digest() != record.value[:32]
            records += len(keys)
    finally:
        writer.kill()
        writer.wait()
    print(f"{scans} scans, {records} records, {torn} values caught mid-rewrite, "
          f"{skipped} skipped")
    assert scans >= 20 and records >= 20 * 200
    # A value rewritten in place cannot be told from a whole one (see the module's
    # documentation); it stays rare even with a writer this fast.
    assert torn <= records / 1000


# --- a running smbd -----------------------------------------------------------------------


def _samba_lab_missing() -> str | None:
    if os.geteuid() != 0:
        return "the Samba lab needs root"
    for program in ("smbd", "smbclient", "tdbdump"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/sbin/{program}"):
            return f"{program} is not installed"
    return None


@contextlib.contextmanager
def _churning_clients(lab, stop: threading.Event) -> Iterator[list[int]]:  # type: ignore[no-untyped-def]
    """Sessions that log on, list the share and log off, over and over, in a thread.

    Yields a list whose only item counts the sessions that worked."""
    done = [0]

    def churn() -> None:
        i = 0
        while not stop.is_set():
            user = lab.user(LAB_USERS[i % len(LAB_USERS)])
            protocol = ("SMB3_11", "SMB2_10", "NT1")[i % 3]
            client = subprocess.run(
                ["smbclient", f"//127.0.0.1/{SHARE}", "-p", str(lab.port), "-s",
                 str(lab.conf_path), "-A", str(user.auth_file(lab)), "-m", protocol,
                 "-c", "ls"],
                capture_output=True, timeout=30, check=False,
            )
            done[0] += client.returncode == 0
            i += 1

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(40)


def test_a_running_smbds_session_database_reads_like_tdbdump(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = _samba_lab_missing()
    if reason:
        pytest.skip(reason)
    monkeypatch.setattr(tdb, "_RETRY_PAUSE", RETRY_PAUSE)
    from conftest import smbclient_session

    lab = request.getfixturevalue("lab")
    path = lab.directory / "lock" / "smbXsrv_session_global.tdb"
    stop = threading.Event()
    agreed = 0
    distinct: set[frozenset[bytes]] = set()
    with smbclient_session(lab, "labalice"), smbclient_session(lab, "labbob", "SMB2_10"):
        deadline = time.monotonic() + 30
        while len(read_tdb(path).records) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        with _churning_clients(lab, stop) as churned:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (
                agreed >= 8 and churned[0] >= 4 and len(distinct) >= 3
            ):
                first = read_tdb(path)
                dumped = tdbdump(path)
                second = read_tdb(path)
                distinct.add(frozenset(r.key for r in first.records))
                if pairs(first.records) == dumped == pairs(second.records):
                    agreed += 1
                    assert (first.skipped, second.skipped) == (0, 0)
                time.sleep(0.01)
    print(f"{agreed} reads agreed with tdbdump; {churned[0]} short sessions; "
          f"{len(distinct)} different sets of sessions seen")
    assert agreed >= 8, f"only {agreed} stable reads agreed with tdbdump"
    assert churned[0] >= 4 and len(distinct) >= 3, "the clients changed the database"
