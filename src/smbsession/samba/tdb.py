"""A read-only reader of TDB files, Samba's "trivial database" (``lib/tdb``).

:func:`read_tdb` returns every live record of a TDB file. The file is opened
``O_RDONLY``; no lock is taken (neither fcntl locks nor the robust mutexes of Samba's
volatile databases) and nothing is ever written, so a running smbd can be neither stalled
nor damaged by it.

How the file is read
--------------------
The reader walks every hash chain from the hash table, in bucket order (the order of
``tdbdump``). A file of up to 64 MiB (10,000 sessions take 12 MiB) is read whole, with
one ``pread()``, and walked in memory; a larger one is read record by record, one
``pread()`` of its header, key and data (two when a record is larger than the ones
before it). It never maps the file: smbd truncates a ``CLEAR_IF_FIRST`` database when it
recreates it, and a mapping of a file that shrinks kills the reading process with
``SIGBUS``. Memory use is the records returned plus the file up to 64 MiB (else one
record); time is linear in the size of the file whatever it holds.

Layout (integers are 32-bit, in the byte order of the machine that created the file; the
version word tells which):

- The header is 168 bytes: ``"TDB file\\n"`` in a 32-byte field, then version, hash size,
  rwlocks, recovery start, sequence number, two magic hashes, feature flags, mutex size
  and reserved words.
- A file whose ``rwlocks`` word is the feature magic and whose feature flags include the
  mutex feature (Samba's volatile databases: ``smbXsrv_*_global.tdb``, ``locking.tdb``
  and others) starts with a mutex area of ``mutex_size`` bytes: a copy of the header,
  then a mutex for the free list and one per hash chain. The database proper, with its
  own copy of the header, starts at ``mutex_size``, and every offset stored inside it is
  relative to that start.
- After the header come the free-list head and ``hash_size`` chain heads, then records:
  a 24-byte header (next, rec_len, key_len, data_len, full_hash, magic) followed by the
  key, the data and padding. Chains hold live records (``TDB_MAGIC``) and deleted ones
  kept for reuse (``TDB_DEAD_MAGIC``); free records are only on the free list.

Concurrent writers
------------------
smbd may write while the file is read, so every record is checked before it is used:
its offset is aligned and inside the file, its lengths fit in the record and in the
file, its magic is live or dead, its hash belongs to the chain it was found in, and
neither its offset nor its key came up before in that chain (a cycle in a damaged file,
or a record that smbd reused meanwhile and linked in again at the head of the chain).
A chain that fails a check is walked once more from a fresh read of its head, after a
short pause and with the file size read again; if it fails again, the records from the
failure on are left out, counted in ``skipped`` and explained in ``problems``.

What no check can see is a value that smbd rewrites in place at the moment it is read:
TDB keeps no checksum, and writes the new data before the new length. Against a writer
storing 100,000 records a second (far more than smbd ever does), about 3 in 100,000
records read had such a value. Callers that decode values should treat one that does not
decode like a skipped record, and read the file again.
"""

from __future__ import annotations

import os
import struct
import time
from itertools import compress

TYPE_CHECKING = False  # collections costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "MAX_PROBLEMS",
    "TdbFormatError",
    "TdbRecord",
    "TdbScan",
    "TdbStream",
    "iter_tdb",
    "read_tdb",
    "stream_tdb",
]

TDB_MAGIC_FOOD = b"TDB file\n"
TDB_VERSION = 0x26011967 + 6
TDB_MAGIC = 0x26011999
TDB_DEAD_MAGIC = 0xFEE1DEAD
TDB_HASH_RWLOCK_MAGIC = 0x0BAD1A51
TDB_FEATURE_FLAG_MAGIC = 0x0BAD1A52
TDB_FEATURE_FLAG_MUTEX = 0x00000001
HEADER_SIZE = 168
RECORD_HEADER_SIZE = 24
#: How many reasons a scan lists at most; ``skipped`` always counts them all.
MAX_PROBLEMS = 20

_SIGNATURE = TDB_MAGIC_FOOD + b"\0"
_SWAPPED_VERSION = int.from_bytes(TDB_VERSION.to_bytes(4, "little"), "big")
#: Pause before the first re-read of a scan, to let a writer finish what it was doing.
_RETRY_PAUSE = 0.002
#: Bytes read at first for a record; grows to fit the records seen, up to the maximum.
_FIRST_GUESS = 256
_MAX_GUESS = 1 << 14
#: A file up to this size is read whole, in one system call, and its chains walked in
#: memory (a read per record costs a listing of 10,000 sessions 20,000 system calls);
#: a larger one is read record by record, so that memory stays bounded.
_IMAGE_MAX = 64 << 20


class TdbFormatError(Exception):
    """The file is not a TDB database, or its header cannot be used.

    The message names the file and what is wrong with it. Damaged or half-written
    *records* never raise this: they are skipped and reported in :class:`TdbScan`.
    """


class TdbRecord:
    """One live record of a TDB file: its key and its value."""

    __slots__ = ("key", "value")
    key: bytes
    value: bytes

    def __init__(self, key: bytes, value: bytes) -> None:
        _set_key(self, key)
        _set_value(self, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TdbRecord is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TdbRecord):
            return NotImplemented
        return (self.key, self.value) == (other.key, other.value)

    def __hash__(self) -> int:
        return hash((self.key, self.value))

    def __repr__(self) -> str:
        return f"TdbRecord(key={self.key!r}, value={self.value!r})"


# Calling __init__ per record is 5% of the time of reading a large database: the chain
# walk fills the slots directly instead.
_new_record = object.__new__
_set_key = TdbRecord.__dict__["key"].__set__
_set_value = TdbRecord.__dict__["value"].__set__


class TdbScan:
    """What :func:`read_tdb` found in one file.

    ``records`` holds the live records in the order ``tdbdump`` prints them. ``skipped``
    counts the places where a hash chain (or the hash table) could not be read even on a
    second try: the record there and those after it in the same chain are missing.
    ``problems`` explains them, one line each, for the first :data:`MAX_PROBLEMS`.
    """

    __slots__ = ("problems", "records", "skipped")

    def __init__(self, records: list[TdbRecord], skipped: int = 0,
                 problems: list[str] | None = None) -> None:
        self.records = records
        self.skipped = skipped
        self.problems = [] if problems is None else problems

    def __repr__(self) -> str:
        return (f"TdbScan({len(self.records)} record(s), skipped={self.skipped}, "
                f"problems={self.problems!r})")


class _Layout:
    """Byte order and geometry of one TDB file, from its header: the struct byte order
    (``<`` or ``>``), the file offset of the database proper (the mutex area's size, or
    0) and the number of hash chains."""

    __slots__ = ("base", "hash_size", "order")

    def __init__(self, order: str, base: int, hash_size: int) -> None:
        self.order = order
        self.base = base
        self.hash_size = hash_size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Layout):
            return NotImplemented
        return (self.order, self.base, self.hash_size) == (other.order, other.base,
                                                            other.hash_size)

    def __hash__(self) -> int:
        return hash((self.order, self.base, self.hash_size))


def _parse_header(path: str, fd: int) -> _Layout:
    """Read and check the header(s) of an open file; raise TdbFormatError if unusable."""
    head = os.pread(fd, HEADER_SIZE, 0)
    if len(head) < HEADER_SIZE:
        raise TdbFormatError(
            f"{path}: not a TDB file: {len(head)} bytes, less than a TDB header"
        )
    if not head.startswith(_SIGNATURE):
        raise TdbFormatError(f"{path}: not a TDB file: no 'TDB file' signature")
    (version,) = struct.unpack_from("<I", head, 32)
    if version == TDB_VERSION:
        order = "<"
    elif version == _SWAPPED_VERSION:
        order = ">"
    else:
        raise TdbFormatError(f"{path}: unknown TDB version 0x{version:08x}")
    hash_size, rwlocks = struct.unpack_from(order + "II", head, 36)
    features, mutex_size = struct.unpack_from(order + "II", head, 60)
    if rwlocks not in (0, TDB_HASH_RWLOCK_MAGIC, TDB_FEATURE_FLAG_MAGIC):
        raise TdbFormatError(
            f"{path}: TDB in the obsolete spinlock format (rwlocks 0x{rwlocks:08x})"
        )
    if rwlocks != TDB_FEATURE_FLAG_MAGIC:
        features = 0
    if features & ~TDB_FEATURE_FLAG_MUTEX:
        raise TdbFormatError(f"{path}: TDB with unknown feature flags 0x{features:08x}")
    if not 0 < hash_size <= 0xFFFFFFFF // 4:
        raise TdbFormatError(f"{path}: TDB header with an invalid hash size ({hash_size})")
    if not features & TDB_FEATURE_FLAG_MUTEX:
        return _Layout(order, 0, hash_size)
    if mutex_size < HEADER_SIZE or mutex_size % 4:
        raise TdbFormatError(
            f"{path}: TDB with mutexes, but an invalid mutex area size ({mutex_size})"
        )
    inner = os.pread(fd, HEADER_SIZE, mutex_size)
    if len(inner) < HEADER_SIZE:
        raise TdbFormatError(
            f"{path}: TDB with mutexes cut short before its second header "
            f"(at offset {mutex_size})"
        )
    if not inner.startswith(_SIGNATURE) or struct.unpack_from(order + "II", inner, 32) != (
        version,
        hash_size,
    ):
        raise TdbFormatError(
            f"{path}: TDB with mutexes, but no matching second header at offset {mutex_size}"
        )
    return _Layout(order, mutex_size, hash_size)


class _Reader:
    """An open TDB file: read-only descriptor, layout, and the chain walk."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        try:
            self.layout = _parse_header(path, self.fd)
        except BaseException:
            os.close(self.fd)
            raise
        lay = self.layout
        self.unpack = struct.Struct(lay.order + "6I").unpack_from
        self.data_start = HEADER_SIZE + 4 * (lay.hash_size + 1)
        self.guess = _FIRST_GUESS
        self.end = 0
        self.image: bytes | None = None
        #: Whether restat() takes the file whole (until a re-read: then records are read
        #: one by one, fresh, and a damaged chain costs no second copy of the file).
        self.whole = True
        self.restat()

    @classmethod
    def open(cls, path: str) -> _Reader:
        """Open ``path``; if its header is unusable, try once more after a pause.

        A database that smbd is creating is briefly empty or half-written.
        """
        try:
            return cls(path)
        except TdbFormatError:
            time.sleep(_RETRY_PAUSE)
            return cls(path)

    def close(self) -> None:
        os.close(self.fd)

    def restat(self) -> None:
        """Read the file size again, and a small file's bytes; they bound every offset
        and every chain walk."""
        size = os.fstat(self.fd).st_size
        self.image = os.pread(self.fd, size, 0) if self.whole and size <= _IMAGE_MAX else None
        if self.image is not None:
            size = len(self.image)
        self.end = max(size - self.layout.base, 0)
        self.read = self._reader()

    def _reader(self) -> Callable[[int, int], bytes]:
        """``read(size, offset)``: from the file's image when it has one, else pread."""
        image, fd, pread = self.image, self.fd, os.pread
        if image is not None:
            return lambda size, at: image[at:at + size]
        return lambda size, at: pread(fd, size, at)

    def same_file(self) -> str | None:
        """None if the header still describes the same database, else what changed."""
        try:
            again = _parse_header(self.path, self.fd)
        except TdbFormatError as exc:
            return str(exc)
        return None if again == self.layout else "the file was recreated while being read"

    def heads(self) -> tuple[int, ...]:
        """The chain heads; fewer than ``hash_size`` if the file ends inside the table."""
        lay = self.layout
        room = max(self.end - HEADER_SIZE - 4, 0)
        table = self.read(min(4 * lay.hash_size, room), lay.base + HEADER_SIZE + 4)
        return struct.unpack_from(f"{lay.order}{len(table) // 4}I", table)

    def chain(self, bucket: int, offset: int,
              keys: set[bytes]) -> tuple[list[TdbRecord], str | None]:
        """Walk one chain: its live records, and why the walk stopped early (or None).

        Every record returned has passed the checks; the walk stops at the first record
        that fails one. ``keys`` holds the keys the scan has returned so far, this walk's
        included: a key seen twice (in this chain or another) means a record changed
        while it was read (its header and its key were written apart).
        """
        read = self.read
        unpack = self.unpack
        base = self.layout.base
        hash_size = self.layout.hash_size
        end = self.end
        low = self.data_start
        guess = self.guess
        new, set_key, set_value = _new_record, _set_key, _set_value
        records: list[TdbRecord] = []
        append = records.append
        problem = None
        offsets: set[int] = set()
        while offset:
            if offset < low or offset + RECORD_HEADER_SIZE > end or offset & 3:
                problem = (
                    f"chain {bucket}: record offset {offset} is misaligned or outside "
                    f"the records area ({low} to {end})"
                )
                break
            if offset in offsets:
                # A cycle in a damaged file, or a record that smbd reused while the chain
                # was read: a reused record is linked in again at the head of its chain.
                problem = f"chain {bucket}: loops back to the record at {offset}"
                break
            offsets.add(offset)
            at = base + offset
            chunk = read(guess, at)
            if len(chunk) < RECORD_HEADER_SIZE:
                problem = f"chain {bucket}: the file ends inside the record at {offset}"
                break
            nxt, rec_len, key_len, data_len, full_hash, magic = unpack(chunk)
            if full_hash % hash_size != bucket and magic in (TDB_MAGIC, TDB_DEAD_MAGIC):
                problem = (
                    f"chain {bucket}: record at {offset} has the hash of chain "
                    f"{full_hash % hash_size}"
                )
                break
            if magic == TDB_MAGIC:
                size = RECORD_HEADER_SIZE + key_len + data_len
                if (
                    key_len + data_len > rec_len
                    or offset + RECORD_HEADER_SIZE + rec_len > end
                    or rec_len & 3
                ):
                    problem = (
                        f"chain {bucket}: record at {offset} has impossible lengths "
                        f"(record {rec_len}, key {key_len}, data {data_len}; "
                        f"{end} bytes of records)"
                    )
                    break
                if size > len(chunk):
                    if size > guess:
                        guess = min(size + size // 4, _MAX_GUESS)
                    chunk = read(size, at)
                    if len(chunk) < size:
                        problem = f"chain {bucket}: the file ends inside the record at {offset}"
                        break
                    if unpack(chunk) != (nxt, rec_len, key_len, data_len, full_hash, magic):
                        problem = f"chain {bucket}: record at {offset} changed while read"
                        break
                key_end = RECORD_HEADER_SIZE + key_len
                key = chunk[RECORD_HEADER_SIZE:key_end]
                if key in keys:
                    problem = (f"chain {bucket}: key {key.hex()} was read twice in one scan "
                               "(changed while read)")
                    break
                keys.add(key)
                record = new(TdbRecord)
                set_key(record, key)
                set_value(record, chunk[key_end:size])
                append(record)
            elif magic != TDB_DEAD_MAGIC:
                problem = f"chain {bucket}: record at {offset} has bad magic 0x{magic:08x}"
                break
            offset = nxt
        self.guess = guess
        return records, problem


class _Problems:
    """Counts skipped places and keeps the first reasons."""

    def __init__(self) -> None:
        self.skipped = 0
        self.problems: list[str] = []
        self.reread = False

    def add(self, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(reason)


def _chains(path: str, report: _Problems) -> Iterator[list[TdbRecord]]:
    """Yield the live records of each non-empty chain of the file, in bucket order.

    A chain that fails a check is walked once more; what still fails goes to ``report``.
    Raises TdbFormatError (before yielding anything) if the file is not a TDB.
    """
    reader = _Reader.open(path)
    keys: set[bytes] = set()
    try:
        heads = reader.heads()
        declared = reader.layout.hash_size
        start = 0
        while True:
            # (compress: a Samba 4.25 database has 10,007 buckets, most of them empty)
            for bucket in compress(range(start, len(heads)), heads[start:]):
                records, problem = reader.chain(bucket, heads[bucket], keys)
                if problem is not None:
                    records, problem = _reread_chain(reader, report, bucket, records, problem,
                                                     keys)
                    if problem is not None:
                        report.add(problem)
                if records:
                    yield records
            if len(heads) >= declared:
                return
            # The file ends inside the hash table: read it again once.
            start = len(heads)
            if _prepare_reread(reader, report) is None:
                heads = reader.heads()
            if start >= len(heads):
                report.add(
                    f"the file ends inside the hash table: chains {start} to "
                    f"{declared - 1} cannot be read"
                )
                return
    finally:
        reader.close()


def _prepare_reread(reader: _Reader, report: _Problems) -> str | None:
    """Get ready to read part of the file again: None, or why that is pointless."""
    if not report.reread:
        report.reread = True
        time.sleep(_RETRY_PAUSE)
    reader.whole = False
    reader.restat()
    return reader.same_file()


def _reread_chain(
    reader: _Reader, report: _Problems, bucket: int, records: list[TdbRecord], problem: str,
    keys: set[bytes],
) -> tuple[list[TdbRecord], str | None]:
    """Walk a chain that failed a check once more, from a fresh read of its head
    (``keys``: the scan's keys, from which the first walk's are taken out)."""
    changed = _prepare_reread(reader, report)
    if changed is not None:
        return records, f"{problem}; not read again: {changed}"
    lay = reader.layout
    raw = os.pread(reader.fd, 4, lay.base + HEADER_SIZE + 4 + 4 * bucket)
    if len(raw) < 4:
        return records, f"{problem}; not read again: the file now ends before its head"
    (head,) = struct.unpack(lay.order + "I", raw)
    keys.difference_update(record.key for record in records)
    return reader.chain(bucket, head, keys) if head else ([], None)


def read_tdb(path: str | os.PathLike[str]) -> TdbScan:
    """Read every live record of a TDB file, read-only, without taking any lock.

    The file is opened with ``O_RDONLY``; nothing is written and no lock is taken, so a
    running smbd is not disturbed, and may be writing meanwhile. Both byte orders and
    databases with robust mutexes (Samba's volatile databases, such as
    ``smbXsrv_session_global.tdb``) are read.

    Every record is checked before it is returned. A hash chain that fails a check
    (smbd was changing it, or the file is damaged or cut short) is read once more; if
    it fails again, the records from the failure on are left out and the scan says so
    in ``skipped`` and ``problems``. Time and memory are bounded by the size of the file,
    however damaged it is.

    Returns a :class:`TdbScan` with the records in the order ``tdbdump`` prints them.
    Raises :class:`TdbFormatError` if the file is not a TDB (no TDB signature, unknown
    version, header cut short or inconsistent), and ``OSError`` if it cannot be opened
    or read.
    """
    report = _Problems()
    records: list[TdbRecord] = []
    for chain in _chains(os.fspath(path), report):
        records += chain
    return TdbScan(records, report.skipped, report.problems)


def iter_tdb(path: str | os.PathLike[str]) -> Iterator[TdbRecord]:
    """Yield the live records of a TDB file one by one, as :func:`read_tdb` reads them.

    Only one hash chain is held in memory at a time. Skipped records are not reported;
    use :func:`stream_tdb` or :func:`read_tdb` to learn about them. Raises
    :class:`TdbFormatError` on the first ``next()`` if the file is not a TDB.
    """
    for chain in _chains(os.fspath(path), _Problems()):
        yield from chain


class TdbStream:
    """The live records of a TDB file, to iterate over once, chain by chain.

    After the iteration, ``skipped`` and ``problems`` are those a :class:`TdbScan` would
    have, and ``fell_back`` says whether part of the file had to be read a second time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.skipped = 0
        self.problems: list[str] = []
        self.fell_back = False

    def __iter__(self) -> Iterator[TdbRecord]:
        report = _Problems()
        try:
            for chain in _chains(self.path, report):
                yield from chain
        finally:
            self.skipped, self.problems, self.fell_back = (
                report.skipped,
                report.problems,
                report.reread,
            )


def stream_tdb(path: str | os.PathLike[str]) -> TdbStream:
    """Return the live records of a TDB file as a :class:`TdbStream`.

    Reads like :func:`read_tdb` but holds only one hash chain in memory at a time; the
    file is opened when the iteration starts. Raises :class:`TdbFormatError` from the
    iteration if the file is not a TDB.
    """
    return TdbStream(path)
