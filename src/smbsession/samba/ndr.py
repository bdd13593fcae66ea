"""NDR pull primitives: just enough of DCE/RPC NDR (32-bit) to read Samba's records.

Samba stores its smbXsrv records as NDR produced by pidl. The rules this reader follows:

- every scalar is aligned to its size, counted from the start of the NDR buffer
  (``NTTIME``/``udlong`` are 8 bytes aligned to 4; ``hyper`` is aligned to 8);
- a unique pointer is a 4-byte referent id (0 for NULL); what it points to follows later,
  after all the scalars of the enclosing structure (deferred), in member order;
- pidl's ``[ignore]`` pointers are sent as NULL referents;
- ``[charset(UTF8), string]`` strings are conformant-varying: max count, offset, actual
  count (u32 each), then the bytes including the terminating NUL;
- ``DATA_BLOB`` is a u32 length and the bytes; a ``GUID`` is 16 bytes aligned to 4; a
  ``dom_sid`` is revision u8, sub-authority count u8, a 6-byte big-endian authority and
  the sub-authorities (u32 each).

Every failure raises :class:`NdrError`; counts and lengths are checked against the bytes
that remain before anything is allocated.
"""

from __future__ import annotations

import struct
import uuid

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_STR_HDR = struct.Struct("<III").unpack_from


class NdrError(ValueError):
    """The bytes are not a valid encoding of the expected NDR structure."""


class NdrReader:
    """Reads NDR scalars from ``data`` at ``pos``, in order, checking every bound."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)

    def _need(self, size: int) -> int:
        pos = self.pos
        if size < 0 or pos + size > self.end:
            raise NdrError(f"needs {size} bytes at offset {pos}, {self.end - pos} remain")
        self.pos = pos + size
        return pos

    def align(self, n: int) -> None:
        """Skip padding up to the next multiple of ``n``."""
        pad = -self.pos % n
        if pad:
            self._need(pad)

    def u8(self) -> int:
        """An unsigned byte."""
        return self.data[self._need(1)]

    def u16(self) -> int:
        """A little-endian uint16, aligned to 2."""
        self.align(2)
        return _U16(self.data, self._need(2))[0]

    def u32(self) -> int:
        """A little-endian uint32, aligned to 4."""
        self.align(4)
        return _U32(self.data, self._need(4))[0]

    def hyper(self) -> int:
        """A little-endian uint64, aligned to 8."""
        self.align(8)
        return _U64(self.data, self._need(8))[0]

    def udlong(self) -> int:
        """A uint64 aligned to 4 (``udlong``, ``NTTIME``)."""
        self.align(4)
        return _U64(self.data, self._need(8))[0]

    nttime = udlong

    def ptr(self) -> bool:
        """A unique pointer's referent id: True when the pointer is not NULL."""
        return self.u32() != 0

    def count(self, item_size: int, limit: int | None = None) -> int:
        """A u32 element count, checked against what remains (``item_size`` bytes each)."""
        n = self.u32()
        if limit is not None and n > limit:
            raise NdrError(f"count {n} at offset {self.pos - 4} exceeds {limit}")
        if n * item_size > self.end - self.pos:
            raise NdrError(f"count {n} at offset {self.pos - 4} runs past the end")
        return n

    def skip(self, size: int) -> None:
        """Skip ``size`` bytes."""
        self._need(size)

    def blob(self) -> bytes:
        """A ``DATA_BLOB``: u32 length, then the bytes."""
        n = self.count(1)
        start = self._need(n)
        return bytes(self.data[start : start + n])

    def skip_blob(self) -> None:
        """Skip a ``DATA_BLOB`` without copying it."""
        self._need(self.count(1))

    def guid(self) -> str:
        """A GUID, as its usual text form."""
        self.align(4)
        start = self._need(16)
        return str(uuid.UUID(bytes_le=bytes(self.data[start : start + 16])))

    def string(self) -> str:
        """A conformant-varying UTF-8 string (``[charset(UTF8),string]``)."""
        self.align(4)
        if self.pos + 12 > self.end:
            raise NdrError(f"string header at offset {self.pos} runs past the end")
        size, offset, length = _STR_HDR(self.data, self.pos)
        self.pos += 12
        if offset != 0 or length > size:
            raise NdrError(f"string at offset {self.pos - 12} has offset {offset}, "
                           f"length {length} of {size}")
        start = self._need(length)
        raw = bytes(self.data[start : start + length])
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NdrError(f"string at offset {start} is not UTF-8: {exc}") from None

    def sid(self) -> str:
        """A ``dom_sid``, as ``S-1-5-21-...``."""
        self.align(4)
        start = self._need(8)
        revision, n = self.data[start], self.data[start + 1]
        if n > 15:
            raise NdrError(f"SID at offset {start} claims {n} sub-authorities (at most 15)")
        authority = int.from_bytes(self.data[start + 2 : start + 8], "big")
        subs = struct.unpack_from(f"<{n}I", self.data, self._need(4 * n))
        return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs)

    def done(self) -> None:
        """Raise unless every byte was consumed (a record decoded with the wrong layout
        practically never ends exactly at the end)."""
        if self.pos != self.end:
            raise NdrError(f"{self.end - self.pos} bytes left over after the structure")
