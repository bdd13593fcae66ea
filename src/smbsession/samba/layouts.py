"""The smbXsrv record layout of every Samba release, declared once, as data.

Each structure Samba stores in its smbXsrv databases (``source3/librpc/idl/smbXsrv.idl``,
with ``librpc/idl/auth.idl`` and ``librpc/idl/security.idl`` for a session's
authentication) is declared below field by field, in wire order, with the NDR type the IDL
gives it and the release tag that brought the field in (``since``) or took it out
(``until``). A release's layout is the set of fields alive at its tag: :func:`release`.

Adding a release is: one line in :data:`RELEASES` and, where its IDL differs, a few
fields with ``since=`` / ``until=`` here. :mod:`smbsession.samba.smbxsrv` reads these
declarations (its fast decoders take their switches from them, and refuse a layout that
declares a field they do not know), and :func:`decode` is a slow, generic decoder of the
same declarations that the unit tests run against the fast one on every captured record.

NDR types used (pidl, NDR32, little-endian; alignment counted from the blob's start):

========== ========================================================================
uint8      1 byte; ``boolean8`` and the ``smbXsrv_*_flags`` bitmaps are uint8
uint16     2 bytes, aligned to 2 (``enum`` types with no ``[v1_enum]`` are uint16)
uint32     4 bytes, aligned to 4 (``NTSTATUS``, ``bitmap32bit``, ``[v1_enum]``)
hyper      8 bytes, aligned to 8 (``uid_t``/``gid_t``/``se_privilege`` are hyper)
NTTIME     8 bytes, aligned to 4 (``udlong`` likewise)
GUID       16 bytes, aligned to 4
dom_sid    revision, count, 6-byte authority, ``count`` u32 sub-authorities
string     ``[charset(UTF8), string] char x[]``: u32 size, offset, length, bytes
ustring    ``[unique, charset(UTF8), string] char *x``: referent, deferred string
blob       ``DATA_BLOB``: u32 length, bytes
ignore     an ``[ignore]`` pointer: a NULL referent (4 bytes)
ptr:S      a unique pointer to structure S: referent, deferred S
S[n]       ``S x[n]``: n elements of S, n given by field n, no size marshalled
S[*n]      ``[size_is(n)] S x[*]``: conformant, a u32 size then the elements; when the
           array is a structure's last member the size moves to the structure's start
========== ========================================================================
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False

if TYPE_CHECKING:  # (typing and dataclasses cost every listing's start-up a few ms)
    from typing import Any


class Field:
    """One member of an NDR structure.

    ``name`` as the IDL spells it; ``ndr`` its wire type (see the module's table);
    ``since`` the first release with it, ``until`` the first release without it
    (``"4.15"`` means tag ``samba-4.15.0``). ``backported``: point releases of older
    series that have it too (``"4.16.4"``: 4.16.4 and later 4.16 releases);
    ``maybe``: series where a distribution backported it without upstream (Debian's
    4.13.13+dfsg-1~deb11u6 has 4.17's ``ticket_type``): both are tried, and the one
    every record decodes exactly with is used.
    """

    __slots__ = ("backported", "maybe", "name", "ndr", "since", "until")

    def __init__(self, name: str, ndr: str, since: str = "4.13", until: str | None = None,
                 backported: tuple[str, ...] = (), maybe: tuple[str, ...] = ()) -> None:
        self.name = name
        self.ndr = ndr
        self.since = since
        self.until = until
        self.backported = backported
        self.maybe = maybe

    def _key(self) -> tuple:
        return (self.name, self.ndr, self.since, self.until, self.backported, self.maybe)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.ndr!r}, since={self.since!r})"


def _f(name: str, ndr: str, since: str = "4.13", until: str | None = None,
       backported: tuple[str, ...] = (), maybe: tuple[str, ...] = ()) -> Field:
    return Field(name, ndr, since, until, backported, maybe)


#: Every structure, every field it ever had at tags samba-4.13.0 .. samba-4.25 (Debian's
#: 4.25.1 source and the 4.25 python3-samba bindings agree with master's IDL of Aug 2026).
STRUCTURES: dict[str, tuple[Field, ...]] = {
    # librpc/idl/server_id.idl
    "server_id": (
        _f("pid", "hyper"),
        _f("task_id", "uint32"),
        _f("vnn", "uint32"),
        _f("unique_id", "hyper"),
    ),
    # librpc/idl/file_id.idl
    "file_id": (
        _f("devid", "NTTIME"),  # udlong
        _f("inode", "NTTIME"),
        _f("extid", "NTTIME"),
    ),
    # source3/librpc/idl/smbXsrv.idl (named ...0 until 4.24, without the 0 in 4.25)
    "smbXsrv_channel_global": (
        _f("server_id", "server_id"),
        _f("channel_id", "hyper"),
        _f("creation_time", "NTTIME"),
        _f("local_address", "string"),
        _f("remote_address", "string"),
        _f("remote_name", "string"),
        _f("signing_key_blob", "blob"),
        _f("signing_key", "ignore"),
        _f("auth_session_info_seqnum", "uint32"),
        _f("connection", "ignore"),
        _f("signing_algo", "uint16", since="4.15"),
        _f("encryption_cipher", "uint16"),
        _f("transport_type", "uint8", since="4.23"),
    ),
    "smbXsrv_session_global": (
        _f("db_rec", "ignore"),
        _f("session_global_id", "uint32"),
        _f("session_wire_id", "hyper"),
        _f("creation_time", "NTTIME"),
        _f("expiration_time", "NTTIME"),
        _f("auth_time", "NTTIME"),
        _f("auth_session_info_seqnum", "uint32"),
        _f("auth_session_info", "ptr:auth_session_info"),
        _f("connection_dialect", "uint16"),
        _f("client_guid", "GUID", since="4.20"),
        _f("signing_flags", "uint8"),
        _f("signing_algo", "uint16", since="4.15"),
        _f("encryption_flags", "uint8"),
        _f("encryption_cipher", "uint16", since="4.15"),
        _f("signing_key_blob", "blob"),
        _f("signing_key", "ignore"),
        _f("encryption_key_blob", "blob"),
        _f("encryption_key", "ignore"),
        _f("decryption_key_blob", "blob"),
        _f("decryption_key", "ignore"),
        _f("application_key", "blob", until="4.15"),
        _f("application_key_blob", "blob", since="4.15"),
        _f("application_key", "ignore", since="4.15"),
        _f("num_channels", "uint32"),
        _f("channels", "smbXsrv_channel_global[num_channels]"),
    ),
    "smbXsrv_tcon_global": (
        _f("db_rec", "ignore"),
        _f("tcon_global_id", "uint32"),
        _f("tcon_wire_id", "uint32"),
        _f("server_id", "server_id"),
        _f("creation_time", "NTTIME"),
        _f("share_name", "string"),
        _f("encryption_flags", "uint8"),
        _f("session_global_id", "uint32"),
        _f("signing_flags", "uint8"),
    ),
    "smbXsrv_open_global": (
        _f("db_rec", "ignore", until="4.19"),
        _f("server_id", "server_id"),
        _f("session_global_id", "hyper", since="4.23"),
        _f("tcon_global_id", "uint32", since="4.23"),
        _f("open_global_id", "uint32"),
        _f("open_persistent_id", "hyper"),
        _f("open_volatile_id", "hyper"),
        _f("file_id", "file_id", since="4.25"),
        _f("name_hash", "uint32", since="4.25"),
        _f("open_owner", "dom_sid"),
        _f("open_time", "NTTIME"),
        _f("create_guid", "GUID"),
        _f("client_guid", "GUID"),
        _f("app_instance_id", "GUID"),
        _f("app_instance_vhigh", "hyper", since="4.25"),
        _f("app_instance_vlow", "hyper", since="4.25"),
        _f("create_action", "uint32", since="4.23"),
        _f("disconnect_time", "NTTIME"),
        _f("durable_timeout_msec", "uint32"),
        _f("durable", "uint8"),
        _f("persistent", "uint8", since="4.25"),
        _f("backend_cookie", "blob"),
        _f("channel_sequence", "uint16"),
        _f("channel_generation", "hyper"),
        _f("lock_sequence_array", "uint8[64]"),
    ),
    "smbXsrv_session_close": (
        _f("old_session_global_id", "uint32"),
        _f("old_session_wire_id", "hyper"),
        _f("old_creation_time", "NTTIME"),
        _f("new_session_wire_id", "hyper"),
    ),
    # librpc/idl/auth.idl
    "auth_session_info": (
        _f("security_token", "ptr:security_token"),
        _f("unix_token", "ptr:security_unix_token"),
        _f("info", "ptr:auth_user_info"),
        _f("unix_info", "ptr:auth_user_info_unix"),
        _f("torture", "ignore"),
        _f("session_key", "blob"),
        _f("credentials", "ignore"),
        _f("unique_session_token", "GUID"),
        # CVE-2022-32744 fixes (samba-4.14.14, samba-4.15.9, samba-4.16.4)
        _f("ticket_type", "uint16", since="4.17", backported=("4.14.14", "4.15.9", "4.16.4"),
           maybe=("4.13",)),
    ),
    "auth_user_info": (
        _f("account_name", "ustring"),
        _f("user_principal_name", "ustring"),
        _f("user_principal_constructed", "uint8"),
        _f("domain_name", "ustring"),
        _f("dns_domain_name", "ustring"),
        _f("full_name", "ustring"),
        _f("logon_script", "ustring"),
        _f("profile_path", "ustring"),
        _f("home_directory", "ustring"),
        _f("home_drive", "ustring"),
        _f("logon_server", "ustring"),
        _f("last_logon", "NTTIME"),
        _f("last_logoff", "NTTIME"),
        _f("acct_expiry", "NTTIME"),
        _f("last_password_change", "NTTIME"),
        _f("allow_password_change", "NTTIME"),
        _f("force_password_change", "NTTIME"),
        _f("logon_count", "uint16"),
        _f("bad_password_count", "uint16"),
        _f("acct_flags", "uint32"),
        _f("authenticated", "uint8", until="4.19"),
        _f("user_flags", "uint32", since="4.19"),
    ),
    "auth_user_info_unix": (
        _f("unix_name", "ustring"),
        _f("sanitized_username", "ustring"),
    ),
    # librpc/idl/security.idl
    "security_token": (
        _f("num_sids", "uint32"),
        _f("sids", "dom_sid[*num_sids]"),
        _f("privilege_mask", "hyper"),
        _f("rights_mask", "uint32"),
        _f("num_local_claims", "uint32", since="4.20"),
        _f("num_user_claims", "uint32", since="4.20"),
        _f("num_device_claims", "uint32", since="4.20"),
        _f("num_device_sids", "uint32", since="4.20"),
        _f("local_claims", "claim[*num_local_claims]", since="4.20"),
        _f("user_claims", "claim[*num_user_claims]", since="4.20"),
        _f("device_claims", "claim[*num_device_claims]", since="4.20"),
        _f("device_sids", "dom_sid[*num_device_sids]", since="4.20"),
        _f("evaluate_claims", "uint16", since="4.20"),
    ),
    "security_unix_token": (
        _f("uid", "hyper"),
        _f("gid", "hyper"),
        _f("ngroups", "uint32"),
        _f("groups", "hyper[*ngroups]"),
    ),
}


class ReleaseInfo:
    """One Samba release series as smbsession knows it: ``name`` ("4.22"), ``tag`` (the
    git tag its IDL was read at), ``format_version`` (SMBXSRV_VERSION_0, or 1 from 4.25),
    ``debian`` (the Debian suite that ships it, tested live; None: from the IDL only)."""

    __slots__ = ("debian", "format_version", "name", "note", "tag")

    def __init__(self, name: str, tag: str, format_version: int, debian: str | None,
                 note: str = "") -> None:
        self.name = name
        self.tag = tag
        self.format_version = format_version
        self.debian = debian
        self.note = note


#: Every release series, oldest first. The newest is what a newer, unknown release is
#: tried with (see :func:`smbsession.samba.server.resolve`).
RELEASES: tuple[ReleaseInfo, ...] = (
    ReleaseInfo("4.13", "samba-4.13.0", 0, "bullseye"),
    ReleaseInfo("4.14", "samba-4.14.0", 0, None, "same records as 4.13"),
    ReleaseInfo("4.15", "samba-4.15.0", 0, None, "signing/encryption algorithms"),
    ReleaseInfo("4.16", "samba-4.16.0", 0, None, "same records as 4.15"),
    ReleaseInfo("4.17", "samba-4.17.0", 0, "bookworm", "ticket_type"),
    ReleaseInfo("4.18", "samba-4.18.0", 0, None, "same records as 4.17"),
    ReleaseInfo("4.19", "samba-4.19.0", 0, None, "user_flags; open loses db_rec"),
    ReleaseInfo("4.20", "samba-4.20.0", 0, None, "claims, device SIDs, client_guid"),
    ReleaseInfo("4.21", "samba-4.21.0", 0, None, "same records as 4.20"),
    ReleaseInfo("4.22", "samba-4.22.0", 0, "trixie", "same records as 4.20"),
    ReleaseInfo("4.23", "samba-4.23.0", 0, None, "transport_type; opens name session"),
    ReleaseInfo("4.24", "samba-4.24.0", 0, "trixie-backports", "renames only"),
    ReleaseInfo("4.25", "samba-4.25.1 (Debian source)", 1, "sid", "format version 1"),
)

_BY_NAME = {r.name: r for r in RELEASES}


def _key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split("."))


_POINTS: dict[str, tuple[int, int, int]] = {}


def _point(version: str) -> tuple[int, int, int]:
    """(4, 16, 5) for "4.16.5-Debian", (4, 16, 0) for "4.16". Remembered: the few tags
    of the declarations are asked about hundreds of times per listing."""
    point = _POINTS.get(version)
    if point is None:
        numbers = _leading_numbers(version)
        if len(numbers) < 2:
            raise KeyError(version)
        point = _POINTS[version] = (numbers[0], numbers[1], numbers[2] if len(numbers) > 2 else 0)
    return point


def _leading_numbers(version: str) -> list[int]:
    """The dotted numbers a version begins with: [4, 22, 11] for "4.22.11-Debian"
    (written out: the regular expression module costs every listing's start-up)."""
    numbers: list[int] = []
    for part in version.split(".", 3)[:3]:
        digits = ""
        for char in part:
            if not char.isdigit() or not char.isascii():
                break
            digits += char
        if not digits:
            break
        numbers.append(int(digits))
        if digits != part:
            break
    return numbers


def _present(f: Field, at: tuple[int, int, int], with_maybe: bool) -> bool:
    if f.until is not None and at >= _point(f.until):
        return False
    if at >= _point(f.since):
        return True
    for b in f.backported:
        bp = _point(b)
        if at[:2] == bp[:2] and at >= bp:
            return True
    return with_maybe and f"{at[0]}.{at[1]}" in f.maybe


def fields_at(structure: str, version: str, with_maybe: bool = False) -> tuple[Field, ...]:
    """The fields of ``structure`` in Samba ``version`` ("4.22" or "4.16.5"), in wire
    order; ``with_maybe`` includes the fields a distribution may have backported."""
    at = _point(version)
    return tuple(f for f in STRUCTURES[structure] if _present(f, at, with_maybe))


def fields_at_or_before(structure: str, name: str) -> tuple[Field, ...]:
    """Every field ``structure`` had in any release up to ``name``."""
    at = _point(name)
    return tuple(f for f in STRUCTURES[structure] if _point(f.since) <= at)


class Release:
    """A release's whole layout: every structure's fields at its version. ``point`` is
    "4.16.5", or "4.13.13+ticket_type" with a distribution's backported fields."""

    __slots__ = ("info", "point", "structures")

    def __init__(self, info: ReleaseInfo, point: str,
                 structures: dict[str, tuple[Field, ...]]) -> None:
        self.info = info
        self.point = point
        self.structures = structures

    @property
    def name(self) -> str:
        """The series, with a distribution's backported fields: "4.22", "4.13+ticket_type"."""
        extra = self.point.split("+", 1)
        return self.info.name + (f"+{extra[1]}" if len(extra) > 1 else "")

    def has(self, structure: str, field: str, ndr: str | None = None) -> bool:
        """Whether ``structure`` has ``field`` (of NDR type ``ndr``, when given)."""
        return any(f.name == field and (ndr is None or f.ndr == ndr)
                   for f in self.structures[structure])


def variants(version: str) -> list[Release]:
    """The layouts Samba ``version`` ("4.13.13-Debian", "4.22") may write, most likely
    first: one, or two where a distribution may have backported fields. KeyError when
    the series is not declared."""
    at = _point(version)
    info = _BY_NAME[f"{at[0]}.{at[1]}"]
    point = ".".join(map(str, at))
    plain = Release(info, point, {s: fields_at(s, point) for s in STRUCTURES})
    extra = {s: fields_at(s, point, with_maybe=True) for s in STRUCTURES}
    if extra == plain.structures:
        return [plain]
    added = sorted({f.name for s in STRUCTURES for f in extra[s]}
                   - {f.name for s in STRUCTURES for f in plain.structures[s]})
    return [Release(info, f"{point}+{'+'.join(added)}", extra), plain]


def release(version: str) -> Release:
    """The most likely declared layout of Samba ``version``; KeyError if unknown."""
    return variants(version)[0]


def series(samba_version: str | None) -> str | None:
    """``"4.22"`` for ``"4.22.11-Debian-..."``; None when it does not look like one."""
    numbers = _leading_numbers(samba_version or "")
    # "4.22.11..." has three numbers, or two followed by a dot ("4.22." then text)
    if len(numbers) >= 3 or (len(numbers) == 2 and (samba_version or "").count(".") >= 2):
        return f"{numbers[0]}.{numbers[1]}"
    return None


def newest() -> ReleaseInfo:
    """The newest release series declared here."""
    return RELEASES[-1]


def is_newer_than_known(samba_version: str | None) -> bool:
    """Whether ``samba_version`` is a release series newer than every declared one."""
    s = series(samba_version)
    return s is not None and _key(s) > _key(RELEASES[-1].name)


# --- The generic decoder: slow, straight from the declarations (a cross-check) ---------


class LayoutError(ValueError):
    """The bytes do not decode exactly with the declared layout."""


_SCALARS = {"uint8": ("<B", 1), "uint16": ("<H", 2), "uint32": ("<I", 4),
            "hyper": ("<Q", 8), "NTTIME": ("<Q", 4)}


class _Pull:
    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 0

    def align(self, n: int) -> None:
        self.p = (self.p + n - 1) & ~(n - 1)

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.d):
            raise LayoutError(f"reading {n} bytes at {self.p} runs past the end")
        out = self.d[self.p:self.p + n]
        self.p += n
        return out

    def scalar(self, ndr: str) -> int:
        fmt, align = _SCALARS[ndr]
        self.align(align)
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def string(self) -> str:
        self.align(4)
        size, offset, length = struct.unpack("<III", self.take(12))
        if offset or length > size:
            raise LayoutError(f"string: offset {offset}, length {length} of {size}")
        raw = self.take(length)
        if not raw or raw[-1] != 0:
            raise LayoutError("string without its terminating NUL")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LayoutError(f"string is not UTF-8: {exc}") from None


def _alignment(rel: Release, ndr: str) -> int:
    """NDR alignment of a type: the largest alignment of its scalars."""
    if ndr in _SCALARS:
        return _SCALARS[ndr][1]
    if ndr.endswith("]"):
        return _alignment(rel, ndr.split("[")[0])
    if ndr in ("string", "ustring", "blob", "ignore", "GUID", "dom_sid", "claim") \
            or ndr.startswith("ptr:"):
        return 4
    return max(_alignment(rel, f.ndr) for f in rel.structures[ndr])


def _decode_struct(rel: Release, name: str, pull: _Pull) -> dict[str, Any]:
    fields = rel.structures[name]
    surrounding = None
    if "[*" in fields[-1].ndr:  # a conformant array last: its size comes first
        pull.align(4)
        surrounding = pull.scalar("uint32")
    pull.align(_alignment(rel, name))
    out: dict[str, Any] = {}
    deferred: list[tuple[str, str]] = []
    for f in fields:
        out[f.name] = _decode_field(rel, f, pull, out, deferred,
                                    surrounding if f is fields[-1] else None)
    for field_name, target in deferred:
        if target == "ustring":
            out[field_name] = pull.string()
        else:
            out[field_name] = _decode_struct(rel, target, pull)
    return out


def _decode_field(rel: Release, f: Field, pull: _Pull, out: dict[str, Any],
                  deferred: list[tuple[str, str]], size: int | None) -> Any:
    ndr = f.ndr
    if ndr in _SCALARS:
        return pull.scalar(ndr)
    if ndr == "string":
        return pull.string()
    if ndr == "blob":
        pull.align(4)
        return pull.take(pull.scalar("uint32"))
    if ndr == "ignore":
        if pull.scalar("uint32"):
            raise LayoutError(f"[ignore] pointer {f.name} is not NULL")
        return None
    if ndr == "GUID":
        pull.align(4)
        return pull.take(16)
    if ndr == "dom_sid":
        return _sid(pull)
    if ndr == "uint8[64]":
        return pull.take(64)
    if ndr == "ustring" or ndr.startswith("ptr:"):
        if pull.scalar("uint32"):
            deferred.append((f.name, "ustring" if ndr == "ustring" else ndr[4:]))
        return None
    import re  # the generic decoder is for tests: not on the listing path

    m = re.fullmatch(r"(\w+)\[(\*?)(\w+)\]", ndr)
    if m:
        element, conformant, count_field = m.groups()
        count = out[count_field]
        if conformant:
            if size is None:
                size = pull.scalar("uint32")
            if size != count:
                raise LayoutError(f"{f.name}: array size {size} differs from {count_field}")
        if element == "dom_sid":
            return [_sid(pull) for _ in range(count)]
        if element == "hyper":
            return [pull.scalar("hyper") for _ in range(count)]
        if element == "claim":
            if count:
                raise LayoutError(f"{f.name}: claims are not decoded here")
            return []
        return [_decode_struct(rel, element, pull) for _ in range(count)]
    return _decode_struct(rel, ndr, pull)


def _sid(pull: _Pull) -> str:
    pull.align(4)
    revision, n = pull.take(2)
    if n > 15:
        raise LayoutError(f"SID with {n} sub-authorities")
    authority = int.from_bytes(pull.take(6), "big")
    subs = struct.unpack(f"<{n}I", pull.take(4 * n))
    return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs)


#: The ``*B`` wrapper of each database's records.
RECORD_STRUCTURES = {"session": "smbXsrv_session_global", "tcon": "smbXsrv_tcon_global",
                     "open": "smbXsrv_open_global", "close": "smbXsrv_session_close"}


def decode(kind: str, blob: bytes, rel: Release) -> dict[str, Any]:
    """Decode one NDR ``smbXsrv_*B`` blob (no watcher header) with ``rel``'s declarations.

    ``kind`` is ``session``, ``tcon``, ``open`` or ``close``. Format version 0 marshals
    the union's info pointer as a unique pointer (a referent id); version 1 as ``[ref]``
    (nothing). Every byte must be consumed. Slow; for tests and diagnostics.
    """
    pull = _Pull(blob)
    version, _seq_or_reserved, level = struct.unpack("<III", pull.take(12))
    if version != rel.info.format_version or level != version:
        raise LayoutError(f"record of format version {version}/{level}, "
                          f"Samba {rel.name} writes version {rel.info.format_version}")
    if version == 0 and not pull.scalar("uint32"):
        raise LayoutError("NULL info pointer")
    out = _decode_struct(rel, RECORD_STRUCTURES[kind], pull)
    if pull.p != len(blob):
        raise LayoutError(f"{len(blob) - pull.p} bytes left over")
    return out



# --- The generic encoder: the inverse of decode (test records for IDL-only releases) ----


class _Push:
    def __init__(self) -> None:
        self.b = bytearray()

    def align(self, n: int) -> None:
        self.b += bytes((-len(self.b)) % n)

    def scalar(self, ndr: str, value: int) -> None:
        fmt, align = _SCALARS[ndr]
        self.align(align)
        self.b += struct.pack(fmt, value)

    def string(self, value: str) -> None:
        raw = value.encode() + b"\0"
        self.align(4)
        self.b += struct.pack("<III", len(raw), 0, len(raw)) + raw


def _push_sid(push: _Push, text: str) -> None:
    parts = text.split("-")
    subs = [int(x) for x in parts[3:]]
    push.align(4)
    push.b += bytes([int(parts[1]), len(subs)]) + int(parts[2]).to_bytes(6, "big")
    push.b += struct.pack(f"<{len(subs)}I", *subs)


def _default(ndr: str) -> Any:
    if ndr in _SCALARS:
        return 0
    return {"string": "", "blob": b"", "GUID": bytes(16), "uint8[64]": bytes(64),
            "file_id": None}.get(ndr)


def _encode_struct(rel: Release, name: str, value: dict[str, Any], push: _Push) -> None:
    fields = rel.structures[name]
    if "[*" in fields[-1].ndr:
        push.align(4)
        push.scalar("uint32", len(value.get(fields[-1].name) or []))
    push.align(_alignment(rel, name))
    deferred: list[tuple[str, Any]] = []
    for f in fields:
        v = value.get(f.name, _default(f.ndr))
        ndr = f.ndr
        if ndr in _SCALARS:
            push.scalar(ndr, int(v or 0))
        elif ndr == "string":
            push.string(v or "")
        elif ndr == "blob":
            push.scalar("uint32", len(v or b""))
            push.b += v or b""
        elif ndr == "ignore":
            push.scalar("uint32", 0)
        elif ndr == "GUID":
            push.align(4)
            push.b += v or bytes(16)
        elif ndr == "dom_sid":
            _push_sid(push, v)
        elif ndr == "uint8[64]":
            push.b += v or bytes(64)
        elif ndr == "ustring" or ndr.startswith("ptr:"):
            push.scalar("uint32", 0x20000 + 4 * len(deferred) if v is not None else 0)
            if v is not None:
                deferred.append((ndr, v))
        elif "[" in ndr:
            element, rest = ndr.split("[")
            items = v or []
            if rest.startswith("*") and f is not fields[-1]:
                push.scalar("uint32", len(items))
            for item in items:
                if element == "dom_sid":
                    _push_sid(push, item)
                elif element == "hyper":
                    push.scalar("hyper", item)
                else:
                    _encode_struct(rel, element, item, push)
        else:
            _encode_struct(rel, ndr, v or {}, push)
    for ndr, v in deferred:
        if ndr == "ustring":
            push.string(v)
        else:
            _encode_struct(rel, ndr[4:], v, push)


def encode(kind: str, value: dict[str, Any], rel: Release, seqnum: int = 1) -> bytes:
    """Encode ``value`` (as :func:`decode` returns it) as an ``smbXsrv_*B`` blob of
    ``rel``'s layout; fields ``rel`` has and ``value`` lacks are zero/empty, fields
    ``value`` has and ``rel`` lacks are dropped. For tests of releases with no package."""
    push = _Push()
    v = rel.info.format_version
    push.b += struct.pack("<III", v, seqnum, v)
    push.scalar("uint32", 0x20000 if v == 0 else 0)  # v1: alignment padding
    if value.get("num_channels") is not None and "channels" in value:
        value = {**value, "num_channels": len(value["channels"])}
    _encode_struct(rel, RECORD_STRUCTURES[kind], value, push)
    return bytes(push.b)
