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

Two ways to read, same result on a quiet file:

- :func:`read_tdb` walks every hash chain of a copy of the whole file. smbd may write
  while we read: every record is validated (offsets inside the file, lengths that fit,
  magic); a chain that looks torn is read again from a fresh copy of the file, and skipped
  if it still does not validate. Skips are counted and explained, never hidden.
- :func:`stream_tdb` reads the records in file order, in chunks, the way ``tdb_check``
  walks them (each record is followed by the next, ``rec_len`` bytes later), so memory
  stays small however large the database. Where the records stop tiling the file (a
  write in progress, damage), it falls back to walking the chains for whatever it has
  not delivered yet.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

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


class TdbRecord:
    """One live record: its key and its value, as bytes."""

    __slots__ = ("key", "value")

    def __init__(self, key: bytes, value: bytes) -> None:
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"TdbRecord(key={self.key!r}, value=<{len(self.value)} bytes>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TdbRecord) and (self.key, self.value) == (other.key, other.value)

    __hash__ = None  # type: ignore[assignment]


class TdbScan:
    """The result of reading a TDB: its live records and what had to be skipped."""

    __slots__ = ("problems", "records", "skipped")

    def __init__(self, records: list[TdbRecord] | None = None) -> None:
        self.records: list[TdbRecord] = [] if records is None else records
        self.skipped = 0
        self.problems: list[str] = []


class _Layout:
    """Byte order, start of the database proper, and hash size of one TDB file."""

    __slots__ = ("base", "hash_size", "order")

    def __init__(self, order: str, base: int, hash_size: int) -> None:
        self.order = order
        self.base = base
        self.hash_size = hash_size


def _layout(path: str, data: bytes, size: int | None = None) -> _Layout:
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
    size = len(data) if size is None else size
    if hash_size == 0 or base + HEADER_SIZE + 4 * (hash_size + 1) > size:
        raise TdbFormatError(
            f"{path}: TDB header is unusable (hash size {hash_size}, file {size} bytes)"
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
    scan = TdbScan()
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


_CHUNK = 4 << 20
_TDB_FREE_MAGIC = ~TDB_MAGIC & 0xFFFFFFFF
_TDB_RECOVERY_MAGIC = 0xF53BC0E7


class TdbStream:
    """The live records of a TDB, read in file order with bounded memory.

    Iterate over it once; afterwards ``skipped`` and ``problems`` say what could not be
    read (as for :class:`TdbScan`), and ``fell_back`` whether the chains had to be walked.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.skipped = 0
        self.problems: list[str] = []
        self.fell_back = False

    def __iter__(self) -> Iterator[TdbRecord]:
        seen: set[bytes] = set()
        try:
            for record in self._linear():
                seen.add(record.key)
                yield record
            return
        except _LostTrack as exc:
            self.fell_back = True
            reason = str(exc)
        scan = read_tdb(self.path)
        self.skipped, self.problems = scan.skipped, scan.problems
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"file order lost ({reason}); walked the hash chains")
        for record in scan.records:
            if record.key not in seen:
                yield record

    def _linear(self) -> Iterator[TdbRecord]:
        unpack_rec = None
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, HEADER_SIZE, 0)
            lay = _layout(self.path, head, size)
            recovery = lay.base + struct.unpack_from(lay.order + "I", head, 44)[0]
            unpack_rec = struct.Struct(lay.order + "IIIIII").unpack_from
            off = lay.base + HEADER_SIZE + 4 * (lay.hash_size + 1)
            buf, buf_start = b"", off
            while off + RECORD_HEADER_SIZE <= size:
                if off + RECORD_HEADER_SIZE > buf_start + len(buf):
                    buf, buf_start = self._refill(fd, buf, buf_start, off, RECORD_HEADER_SIZE)
                _next, rec_len, key_len, data_len, _hash, magic = unpack_rec(buf, off - buf_start)
                end = off + RECORD_HEADER_SIZE + rec_len
                known = magic in (TDB_MAGIC, TDB_DEAD_MAGIC, _TDB_FREE_MAGIC, _TDB_RECOVERY_MAGIC)
                if rec_len % 4 or end > size or not (known or off == recovery):
                    raise _LostTrack(f"record at {off - lay.base}: magic 0x{magic:08x}, "
                                     f"length {rec_len}")
                if magic == TDB_MAGIC:
                    if key_len + data_len > rec_len:
                        raise _LostTrack(f"record at {off - lay.base} has impossible lengths")
                    start = off + RECORD_HEADER_SIZE
                    stop = start + key_len + data_len
                    if stop > buf_start + len(buf):
                        buf, buf_start = self._refill(fd, buf, buf_start, off, stop - off)
                    s = start - buf_start
                    yield TdbRecord(buf[s : s + key_len], buf[s + key_len : s + key_len + data_len])
                off = end
        finally:
            os.close(fd)

    @staticmethod
    def _refill(fd: int, buf: bytes, buf_start: int, off: int, need: int) -> tuple[bytes, int]:
        """Keep ``buf`` from ``off`` on and read on until it holds ``need`` bytes more."""
        keep = buf[off - buf_start :] if off < buf_start + len(buf) else b""
        want = max(_CHUNK, need - len(keep))
        more = os.pread(fd, want, off + len(keep))
        data = keep + more
        if len(data) < need:
            raise _LostTrack(f"file ends inside the record at {off}")
        return data, off


class _LostTrack(Exception):
    """The records stopped tiling the file: fall back to the chains."""


def stream_tdb(path: str | os.PathLike[str]) -> TdbStream:
    """Return the live records of the TDB at ``path`` as a :class:`TdbStream`.

    Iterating opens the file read-only and takes no lock, like :func:`read_tdb`, but
    holds only a few MiB of the file at a time. Raises :class:`TdbFormatError` (when
    iterated) for a file that is not a TDB.
    """
    return TdbStream(path)


def iter_tdb(path: str | os.PathLike[str]) -> Iterator[TdbRecord]:
    """Yield the live records of the TDB at ``path`` (see :func:`stream_tdb`)."""
    yield from stream_tdb(path)
