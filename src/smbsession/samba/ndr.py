"""NDR pull primitives: just enough of DCE/RPC NDR (32-bit) to read Samba's records.

Samba stores its smbXsrv records as NDR produced by pidl. The rules these functions follow:

- every scalar is aligned to its size, counted from the start of the NDR buffer
  (``NTTIME``/``udlong`` are 8 bytes aligned to 4; ``hyper`` is aligned to 8);
- a unique pointer is a 4-byte referent id (0 for NULL); what it points to follows later,
  after all the scalars of the enclosing structure (deferred), in member order;
  pidl's ``[ignore]`` pointers are sent as NULL referents;
- ``[charset(UTF8), string]`` strings are conformant-varying: max count, offset, actual
  count (u32 each), then the bytes including the terminating NUL;
- ``DATA_BLOB`` is a u32 length and the bytes; a ``GUID`` is 16 bytes aligned to 4; a
  ``dom_sid`` is revision u8, sub-authority count u8, a 6-byte big-endian authority and
  the sub-authorities (u32 each).

Servers hold tens of thousands of records, so the decoders are written for CPython's
speed: they carry the position as a plain int and each primitive returns
``(value, next position)``. Any failure raises :class:`NdrError`; the decoders convert
``struct.error`` (reading past the end) into it at their boundary.
"""

from __future__ import annotations

import struct

U32 = struct.Struct("<I").unpack_from
_STR_HDR = struct.Struct("<III").unpack_from
_SID_HDR = struct.Struct("<BB").unpack_from


class NdrError(ValueError):
    """The bytes are not a valid encoding of the expected NDR structure."""


def align4(pos: int) -> int:
    """``pos`` rounded up to a multiple of 4."""
    return (pos + 3) & ~3


def align8(pos: int) -> int:
    """``pos`` rounded up to a multiple of 8."""
    return (pos + 7) & ~7


def string(data: bytes, pos: int) -> tuple[bytes, int]:
    """A conformant-varying string at ``pos`` (aligned to 4): its bytes without the NUL."""
    pos = (pos + 3) & ~3
    size, offset, length = _STR_HDR(data, pos)
    start = pos + 12
    end = start + length
    if offset or length > size or end > len(data):
        raise NdrError(f"string at offset {pos}: offset {offset}, length {length} of {size}")
    return data[start : end - 1 if length and data[end - 1] == 0 else end], end


def text(raw: bytes) -> str:
    """Decode a string's bytes as UTF-8 (raising :class:`NdrError` when they are not)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NdrError(f"string is not UTF-8: {exc}") from None


def blob_end(data: bytes, pos: int) -> int:
    """The position after a ``DATA_BLOB`` at ``pos`` (aligned to 4)."""
    pos = (pos + 3) & ~3
    end = pos + 4 + U32(data, pos)[0]
    if end > len(data):
        raise NdrError(f"DATA_BLOB at offset {pos} runs past the end")
    return end


def guid(data: bytes, pos: int) -> tuple[str, int]:
    """A GUID at ``pos`` (aligned to 4), as its usual text form (what
    ``str(uuid.UUID(bytes_le=...))`` writes: the first three fields little-endian)."""
    pos = (pos + 3) & ~3
    raw = data[pos : pos + 16]
    if len(raw) != 16:
        raise NdrError(f"GUID at offset {pos} runs past the end")
    text = _GUID_TEXT.get(raw)
    if text is None:
        if len(_GUID_TEXT) >= _GUID_TEXT_MAX:
            _GUID_TEXT.clear()
        text = _GUID_TEXT[raw] = (f"{raw[3::-1].hex()}-{raw[5:3:-1].hex()}-"
                                  f"{raw[7:5:-1].hex()}-{raw[8:10].hex()}-{raw[10:].hex()}")
    return text, pos + 16


# The sessions of one client share its GUID: each is spelled once.
_GUID_TEXT: dict[bytes, str] = {}
_GUID_TEXT_MAX = 4096


def sid(data: bytes, pos: int) -> tuple[str, int]:
    """A ``dom_sid`` at ``pos`` (aligned to 4), as ``S-1-5-21-...``."""
    pos = (pos + 3) & ~3
    revision, n = _SID_HDR(data, pos)
    if n > 15:
        raise NdrError(f"SID at offset {pos} claims {n} sub-authorities (at most 15)")
    authority = int.from_bytes(data[pos + 2 : pos + 8], "big")
    subs = struct.unpack_from(f"<{n}I", data, pos + 8)
    return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs), pos + 8 + 4 * n


def sid_end(data: bytes, pos: int) -> int:
    """The position after a ``dom_sid`` at ``pos``, without decoding it."""
    pos = (pos + 3) & ~3
    n = data[pos + 1]
    if n > 15:
        raise NdrError(f"SID at offset {pos} claims {n} sub-authorities (at most 15)")
    return pos + 8 + 4 * n
