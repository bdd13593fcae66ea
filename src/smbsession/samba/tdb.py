"""A read-only reader of TDB files (Samba's "trivial database", ``lib/tdb``).

It opens the file ``O_RDONLY``, takes no lock (neither fcntl nor the robust mutexes of
Samba's volatile databases) and never writes, so it cannot stall or damage smbd. It reads
the file in one go and walks every hash chain from the hash table.

On-disk layout (``lib/tdb/common/tdb_private.h``), in the file's byte order:

- ``struct tdb_header`` (168 bytes): ``"TDB file\\n"`` padded to 32 bytes, version,
  hash_size, rwlocks, recovery_start, sequence_number, magic1_hash, magic2_hash,
  feature_flags, mutex_size, 25 reserved words.
- With ``TDB_FEATURE_FLAG_MUTEX`` the first ``mutex_size`` bytes hold the mutexes (they
  start with a copy of the header); the database proper starts at ``mutex_size`` and every
  offset stored in it is relative to that start.
- After the header: the free-list head, then ``hash_size`` chain heads (u32 offsets).
- ``struct tdb_record`` (24 bytes): next, rec_len, key_len, data_len, full_hash, magic;
  then the key and the data. Live records carry ``TDB_MAGIC``; deleted ones awaiting
  reuse carry ``TDB_DEAD_MAGIC`` and are skipped.

smbd may write while we read. Every record is validated (offsets inside the file, lengths
that fit, magic); a chain that looks torn is read again from a fresh copy of the file, and
skipped if it still does not validate. Skips are counted and explained, never hidden.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

TDB_MAGIC_FOOD = b"TDB file\n"
TDB_VERSION = 0x26011967 + 6
TDB_MAGIC = 0x26011999
TDB_DEAD_MAGIC = 0xFEE1DEAD
TDB_FEATURE_FLAG_MAGIC = 0x0BAD1A52
TDB_FEATURE_FLAG_MUTEX = 0x00000001
HEADER_SIZE = 168
RECORD_HEADER_SIZE = 24
#: Problems listed in a scan at most (the count in ``skipped`` is always complete).
MAX_PROBLEMS = 20


class TdbFormatError(ValueError):
    """The file is not a TDB database (or its header is unusable)."""


@dataclass(frozen=True)
class TdbRecord:
    """One live record: its key and its value, as bytes."""

    key: bytes
    value: bytes


@dataclass
class TdbScan:
    """The result of reading a TDB: its live records and what had to be skipped."""

    records: list[TdbRecord]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Layout:
    order: str
    base: int
    hash_size: int


def _layout(path: str, data: bytes) -> _Layout:
    if len(data) < HEADER_SIZE or not data.startswith(TDB_MAGIC_FOOD):
        raise TdbFormatError(f"{path} is not a TDB database (no 'TDB file' header)")
    for order in "<>":
        version, hash_size = struct.unpack_from(order + "II", data, 32)
        if version == TDB_VERSION:
            break
    else:
        raise TdbFormatError(f"{path}: unknown TDB version 0x{version:08x}")
    rwlocks, = struct.unpack_from(order + "I", data, 40)
    features, mutex_size = struct.unpack_from(order + "II", data, 60)
    base = 0
    if rwlocks == TDB_FEATURE_FLAG_MAGIC and features & TDB_FEATURE_FLAG_MUTEX:
        base = mutex_size
    if hash_size == 0 or base + HEADER_SIZE + 4 * (hash_size + 1) > len(data):
        raise TdbFormatError(
            f"{path}: TDB header is unusable (hash size {hash_size}, file {len(data)} bytes)"
        )
    return _Layout(order, base, hash_size)


def _read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:
            chunk = os.read(fd, max(size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _heads(data: bytes, lay: _Layout) -> tuple[int, ...]:
    return struct.unpack_from(f"{lay.order}{lay.hash_size}I", data, lay.base + HEADER_SIZE + 4)


def _walk_chain(data: bytes, lay: _Layout, bucket: int,
                offset: int) -> tuple[list[TdbRecord], str | None]:
    """Return the live records of the chain starting at ``offset``, and why the walk
    stopped early (or None)."""
    unpack_rec = struct.Struct(lay.order + "IIIIII").unpack_from
    size = len(data) - lay.base
    view = memoryview(data)
    records: list[TdbRecord] = []
    steps = 0
    max_steps = size // RECORD_HEADER_SIZE + 1
    while offset:
        steps += 1
        if steps > max_steps:
            return records, f"chain {bucket} loops"
        if offset < HEADER_SIZE or offset + RECORD_HEADER_SIZE > size:
            return records, f"chain {bucket} points outside the file (offset {offset})"
        nxt, rec_len, key_len, data_len, _hash, magic = unpack_rec(data, lay.base + offset)
        start = lay.base + offset + RECORD_HEADER_SIZE
        if magic == TDB_MAGIC:
            if key_len + data_len > rec_len or offset + RECORD_HEADER_SIZE + rec_len > size:
                return records, f"record at {offset} has impossible lengths"
            key = bytes(view[start : start + key_len])
            value = bytes(view[start + key_len : start + key_len + data_len])
            records.append(TdbRecord(key, value))
        elif magic != TDB_DEAD_MAGIC:
            return records, f"record at {offset} has bad magic 0x{magic:08x}"
        offset = nxt
    return records, None


def read_tdb(path: str | os.PathLike[str]) -> TdbScan:
    """Read every live record of the TDB file at ``path``: read-only, without locks.

    A hash chain that does not validate (smbd was rewriting it, or the file is damaged)
    is read again from a fresh copy of the file; if it still fails, its records from the
    break on are skipped and counted in ``skipped``, with a reason in ``problems``.
    Raises :class:`TdbFormatError` when the file is not a TDB, and ``OSError`` when it
    cannot be opened.
    """
    name = os.fspath(path)
    data = _read_file(name)
    lay = _layout(name, data)
    scan = TdbScan(records=[])
    fresh: bytes | None = None
    for bucket, head in enumerate(_heads(data, lay)):
        if not head:
            continue
        records, problem = _walk_chain(data, lay, bucket, head)
        if problem is not None:
            if fresh is None:
                fresh = _read_file(name)
            try:
                fresh_lay = _layout(name, fresh)
                head = _heads(fresh, fresh_lay)[bucket]
                retry, problem = _walk_chain(fresh, fresh_lay, bucket, head)
            except TdbFormatError as exc:
                retry, problem = records, str(exc)
            records = retry if len(retry) >= len(records) or problem is None else records
            if problem is not None:
                scan.skipped += 1
                if len(scan.problems) < MAX_PROBLEMS:
                    scan.problems.append(problem)
        scan.records.extend(records)
    return scan


def iter_tdb(path: str | os.PathLike[str]) -> Iterator[TdbRecord]:
    """Yield the live records of the TDB at ``path`` (see :func:`read_tdb`)."""
    yield from read_tdb(path).records
