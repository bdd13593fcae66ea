"""Samba's smbXsrv records: sessions, tree connects and opens, per Samba release.

The global databases in the lock directory hold one NDR record per session
(``smbXsrv_session_global.tdb``), tree connect (``smbXsrv_tcon_global.tdb``) and open file
(``smbXsrv_open_global.tdb``), declared in ``source3/librpc/idl/smbXsrv.idl``, with the
authentication of a session from ``librpc/idl/auth.idl`` and ``librpc/idl/security.idl``.
Samba calls this "version 0, designed to be unstable": the layout changes between
releases, so every decoder takes a :class:`Layout`. What changed, checked against the
IDL files at each tag from samba-4.17.0 to samba-4.23.0:

========  ===========================================================================
4.19      ``auth_user_info.authenticated`` (u8) became ``user_flags`` (u32); open
          records lost their leading (ignored, NULL) ``db_rec`` pointer
4.20      ``security_token`` gained claims and device SIDs; the session record gained
          ``client_guid`` (after ``connection_dialect``)
4.23      channels gained ``transport_type`` (u8); open records gained
          ``session_global_id`` (hyper) and ``tcon_global_id`` (u32) after
          ``server_id``, and ``create_action`` (u32) after ``app_instance_id``
========  ===========================================================================

The session database is a watched database (``source3/lib/dbwrap/dbwrap_watch.c``): each
value starts with a u32 count of watchers and 32 bytes per watcher, then the NDR blob.
"""

from __future__ import annotations

import struct

from . import layouts, ndr
from .ndr import U32, NdrError, align4, align8, blob_end, sid_end

__all__ = [
    "KNOWN_LAYOUTS",
    "Channel",
    "Layout",
    "NdrError",
    "OpenGlobal",
    "ServerId",
    "SessionGlobal",
    "TconGlobal",
    "decode_open",
    "decode_session",
    "decode_tcon",
    "layout_for_version",
    "layout_named",
    "strip_watchers",
]

#: The SID of anonymous logons, S-1-5-7, as NDR bytes (hidden unless -IncludeHidden).
ANONYMOUS_SID_RAW = bytes([1, 1, 0, 0, 0, 0, 0, 5, 7, 0, 0, 0])
_WATCHER_SIZE = 32
_MAX_CHANNELS = 1024  # smbXsrv.idl: [range(1, 1024)] num_channels
_MAX_SIDS = 4096


class Layout:
    """The decoders' switches for one Samba release, read from its declared layout
    (:mod:`smbsession.samba.layouts`): which optional fields its records carry.

    Raises :class:`ValueError` when the release declares a field these decoders do not
    know (a new release with new fields: add them to the decoders, or the reader falls
    back to smbstatus).
    """

    __slots__ = (
        "application_key_ptr",
        "channel_transport_type",
        "crypto_algos",
        "key",
        "name",
        "open_db_rec",
        "open_session_ids",
        "open_v1_fields",
        "release",
        "session_client_guid",
        "ticket_type",
        "token_claims",
        "user_flags32",
        "version",
    )

    def __init__(self, release: layouts.Release) -> None:
        unknown = [
            f"{s}.{f.name} ({f.ndr})"
            for s, fields in release.structures.items()
            for f in fields
            if (f.name, f.ndr) not in _DECODED.get(s, ())
        ]
        if unknown:
            raise ValueError(f"Samba {release.name} declares fields the decoders do not "
                             f"read: {', '.join(unknown)}")
        has = release.has
        self.release = release
        self.name = release.name
        self.key = release.point
        self.version = release.info.format_version
        self.open_db_rec = has("smbXsrv_open_global", "db_rec")
        self.user_flags32 = has("auth_user_info", "user_flags")
        self.token_claims = has("security_token", "num_local_claims")
        self.session_client_guid = has("smbXsrv_session_global", "client_guid")
        self.channel_transport_type = has("smbXsrv_channel_global", "transport_type")
        self.open_session_ids = has("smbXsrv_open_global", "session_global_id")
        self.crypto_algos = has("smbXsrv_session_global", "signing_algo")
        self.application_key_ptr = has("smbXsrv_session_global", "application_key", "ignore")
        self.ticket_type = has("auth_session_info", "ticket_type")
        self.open_v1_fields = has("smbXsrv_open_global", "file_id")
        # fields that come and go together in these decoders
        together = (
            (self.crypto_algos, has("smbXsrv_channel_global", "signing_algo"),
             has("smbXsrv_session_global", "encryption_cipher")),
            (self.open_session_ids, has("smbXsrv_open_global", "create_action")),
            (self.open_v1_fields, has("smbXsrv_open_global", "persistent"),
             has("smbXsrv_open_global", "app_instance_vhigh")),
        )
        for group in together:
            if len(set(group)) != 1:
                raise ValueError(f"Samba {release.name}: a partial set of fields "
                                 "the decoders read together")

    def __repr__(self) -> str:
        return f"Layout({self.name!r})"


#: The newest release whose fields the fast decoders below were written for: a field
#: declared for a later release is one they do not read.
DECODERS_KNOW = "4.25"


def _decoded() -> dict[str, set[tuple[str, str]]]:
    """Every (field, NDR type) the fast decoders below read, per structure."""
    return {s: {(f.name, f.ndr) for f in layouts.fields_at_or_before(s, DECODERS_KNOW)}
            for s in layouts.STRUCTURES}


_DECODED = _decoded()
_LAYOUTS: dict[str, Layout] = {}

#: Samba releases whose record layout this module knows.
KNOWN_LAYOUTS: tuple[str, ...] = tuple(r.name for r in layouts.RELEASES)


def layout_candidates(samba_version: str) -> list[Layout]:
    """The layouts Samba ``samba_version`` ("4.13.13-Debian", "4.22") may write, most
    likely first (two where a distribution may have backported fields: see
    :func:`smbsession.samba.layouts.variants`). KeyError when not declared."""
    out = []
    for rel in layouts.variants(samba_version):
        layout = _LAYOUTS.get(rel.point)
        if layout is None:
            layout = _LAYOUTS[rel.point] = Layout(rel)
        out.append(layout)
    return out


def layout_named(samba_version: str) -> Layout:
    """The most likely layout of ``samba_version``; KeyError when not declared."""
    return layout_candidates(samba_version)[0]


def layout_for_version(samba_version: str | None) -> Layout | None:
    """Return the most likely layout for a Samba version string (``"4.17.12-Debian"``),
    or None when this module does not know that release."""
    name = layouts.series(samba_version)
    if name is None or name not in KNOWN_LAYOUTS:
        return None
    return layout_named(samba_version or name)


def decodes_exactly(records: dict[str, list], layout: Layout) -> bool:
    """Whether every record decodes exactly with ``layout``: every byte consumed, each
    global id equal to its key (4-byte big-endian), every string valid.

    ``records`` maps ``session``/``tcon``/``open`` to ``TdbRecord``-like objects
    (``key``, ``value``). Used to choose between candidate layouts and to accept the
    newest known layout for a release newer than every declared one.
    """
    decoders = {"session": (decode_session, "session_global_id"),
                "tcon": (decode_tcon, "tcon_global_id"),
                "open": (decode_open, "open_global_id")}
    try:
        for kind, recs in records.items():
            decode, id_name = decoders[kind]
            for r in recs:
                if len(r.key) != 4:
                    return False
                got = decode(r.value, layout)
                if getattr(got, id_name) != int.from_bytes(r.key, "big"):
                    return False
    except NdrError:
        return False
    return True


class _Record:
    """A plain record: attributes named by ``__slots__``, compared and shown by value.
    (Hand-written rather than dataclasses: these are made by the ten thousand.)"""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({values})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]


class ServerId(_Record):
    """A Samba process: pid, task id, cluster node (vnn) and a random unique id.

    The defaults mean "task 0, this node, any instance" (``SERVERID_UNIQUE_ID_NOT_TO_VERIFY``).
    """

    __slots__ = ("pid", "task_id", "unique_id", "vnn")

    def __init__(self, pid: int, task_id: int = 0, vnn: int = 0xFFFFFFFF,
                 unique_id: int = 2**64 - 1) -> None:
        self.pid = pid
        self.task_id = task_id
        self.vnn = vnn
        self.unique_id = unique_id


class Channel(_Record):
    """One channel (TCP connection) of a session: ``smbXsrv_channel_global0``."""

    __slots__ = (
        "channel_id",
        "creation_time",
        "encryption_cipher",
        "local_address",
        "remote_address",
        "remote_name",
        "server_id",
        "signing_algo",
        "transport_type",
    )

    def __init__(
        self,
        server_id: ServerId,
        channel_id: int,
        creation_time: int,
        local_address: str,
        remote_address: str,
        remote_name: str,
        signing_algo: int,
        encryption_cipher: int,
        transport_type: int | None,
    ) -> None:
        self.server_id = server_id
        self.channel_id = channel_id
        self.creation_time = creation_time
        self.local_address = local_address
        self.remote_address = remote_address
        self.remote_name = remote_name
        self.signing_algo = signing_algo
        self.encryption_cipher = encryption_cipher
        self.transport_type = transport_type


class SessionGlobal(_Record):
    """A session: ``smbXsrv_session_global0`` and the parts of its authentication
    (``auth_session_info``) an admin wants. The auth fields are None while the session
    is being authenticated."""

    __slots__ = (
        "account_name",
        "auth_time",
        "channels",
        "client_guid",
        "connection_dialect",
        "creation_time",
        "domain_name",
        "encryption_cipher",
        "encryption_flags",
        "expiration_time",
        "gid",
        "session_global_id",
        "session_wire_id",
        "signing_algo",
        "signing_flags",
        "uid",
        "unix_name",
        "user_sid_raw",
    )

    def __init__(
        self,
        session_global_id: int,
        session_wire_id: int,
        creation_time: int,
        expiration_time: int,
        auth_time: int,
        connection_dialect: int,
        client_guid: str | None,
        signing_flags: int,
        signing_algo: int,
        encryption_flags: int,
        encryption_cipher: int,
        channels: tuple[Channel, ...],
        account_name: str | None,
        domain_name: str | None,
        user_sid_raw: bytes | None,
        uid: int | None,
        gid: int | None,
        unix_name: str | None,
    ) -> None:
        self.session_global_id = session_global_id
        self.session_wire_id = session_wire_id
        self.creation_time = creation_time
        self.expiration_time = expiration_time
        self.auth_time = auth_time
        self.connection_dialect = connection_dialect
        self.client_guid = client_guid
        self.signing_flags = signing_flags
        self.signing_algo = signing_algo
        self.encryption_flags = encryption_flags
        self.encryption_cipher = encryption_cipher
        self.channels = channels
        self.account_name = account_name
        self.domain_name = domain_name
        self.user_sid_raw = user_sid_raw
        self.uid = uid
        self.gid = gid
        self.unix_name = unix_name

    @property
    def user_sid(self) -> str | None:
        """The user's SID as text (``S-1-5-21-...``), None while not authenticated."""
        return None if self.user_sid_raw is None else ndr.sid(self.user_sid_raw, 0)[0]


class TconGlobal(_Record):
    """A tree connect: ``smbXsrv_tcon_global0``."""

    __slots__ = (
        "creation_time",
        "encryption_flags",
        "server_id",
        "session_global_id",
        "share_name",
        "signing_flags",
        "tcon_global_id",
        "tcon_wire_id",
    )

    def __init__(
        self,
        tcon_global_id: int,
        tcon_wire_id: int,
        server_id: ServerId,
        creation_time: int,
        share_name: str,
        encryption_flags: int,
        session_global_id: int,
        signing_flags: int,
    ) -> None:
        self.tcon_global_id = tcon_global_id
        self.tcon_wire_id = tcon_wire_id
        self.server_id = server_id
        self.creation_time = creation_time
        self.share_name = share_name
        self.encryption_flags = encryption_flags
        self.session_global_id = session_global_id
        self.signing_flags = signing_flags


class OpenGlobal(_Record):
    """An open file: ``smbXsrv_open_global0``. ``session_global_id`` and
    ``tcon_global_id`` exist from Samba 4.23 on (None before)."""

    __slots__ = (
        "disconnect_time",
        "durable",
        "open_global_id",
        "open_owner_raw",
        "open_persistent_id",
        "open_time",
        "open_volatile_id",
        "server_id",
        "session_global_id",
        "tcon_global_id",
    )

    def __init__(
        self,
        server_id: ServerId,
        session_global_id: int | None,
        tcon_global_id: int | None,
        open_global_id: int,
        open_persistent_id: int,
        open_volatile_id: int,
        open_owner_raw: bytes,
        open_time: int,
        durable: bool,
        disconnect_time: int,
    ) -> None:
        self.server_id = server_id
        self.session_global_id = session_global_id
        self.tcon_global_id = tcon_global_id
        self.open_global_id = open_global_id
        self.open_persistent_id = open_persistent_id
        self.open_volatile_id = open_volatile_id
        self.open_owner_raw = open_owner_raw
        self.open_time = open_time
        self.durable = durable
        self.disconnect_time = disconnect_time

    @property
    def open_owner(self) -> str:
        """The SID of the user who opened the file, as text."""
        return ndr.sid(self.open_owner_raw, 0)[0]


def strip_watchers(value: bytes) -> bytes:
    """Return the NDR blob of a watched record (drop the dbwrap_watch header)."""
    if len(value) < 4:
        raise NdrError("watched record shorter than its header")
    n = int.from_bytes(value[:4], "little")
    if n > (len(value) - 4) // _WATCHER_SIZE:
        raise NdrError(f"watched record claims {n} watchers in {len(value)} bytes")
    return value[4 + n * _WATCHER_SIZE :]


# smbXsrv_*_globalB (version, seqnum, union level, referent) and the start of the
# version-0 struct at offset 16 (aligned to 8): [ignore] db_rec, then its first fields.
_SESSION_HEAD = struct.Struct("<IIIIIIQQQQIIH")  # ... connection_dialect
_SESSION_CRYPTO = struct.Struct("<BxHBxH")  # signing_flags, _algo, encryption_flags, _cipher
_TCON_HEAD = struct.Struct("<IIIIIII4xQIIQQ")  # ... server_id, creation_time
_OPEN_HEAD = struct.Struct("<IIII")
_SERVER_ID = struct.Struct("<QIIQ")  # pid (hyper), task_id, vnn, unique_id (hyper)
_CHANNEL_HEAD = struct.Struct("<QIIQQQ")  # server_id, channel_id, creation_time
_CHANNEL_TAIL = struct.Struct("<IIIHH")  # [ignore] key, seqnum, [ignore] conn, algo, cipher
_AUTH_HEAD = struct.Struct("<IIIII")  # token, unix_token, info, unix_info, [ignore] torture
_USER_INFO = struct.Struct("<IIB3xIIIIIIIIQQQQQQHHI")
_UNIX_TOKEN = struct.Struct("<QQI")  # uid, gid (hyper), ngroups
_STR_HDR = struct.Struct("<III").unpack_from  # size, offset, length
_TWO_U32 = struct.Struct("<II").unpack_from
_EIGHT_U32 = struct.Struct("<8I").unpack_from
_PERSISTENT_VOLATILE = struct.Struct("<QQ")
_U16 = struct.Struct("<H").unpack_from
_SESSION_FLAGS_OLD = struct.Struct("<BB")  # 4.13, 4.14: signing_flags, encryption_flags


def _check_header(version: int, level: int, referent: int, layout: Layout) -> None:
    """Check a ``*B`` header: format version 0 has a unique info pointer (a referent id,
    never 0); version 1 a ``[ref]`` one (nothing marshalled: bytes 12..15 are padding)."""
    if version != layout.version or level != version or (version == 0 and referent == 0):
        raise NdrError(f"record of format version {version}/{level}; Samba {layout.name} "
                       f"writes version {layout.version}")


def _channel(d: bytes, p: int, layout: Layout) -> tuple[Channel, int]:
    p = (p + 7) & ~7
    pid, task, vnn, unique, channel_id, creation = _CHANNEL_HEAD.unpack_from(d, p)
    p += 40
    # local_address, remote_address, remote_name: three strings, each 4-aligned
    p = (p + 3) & ~3
    size, offset, length = _STR_HDR(d, p)
    if offset or length > size or not length:
        raise NdrError(f"string at offset {p}: offset {offset}, length {length} of {size}")
    local = d[p + 12 : p + 11 + length].decode()
    p = (p + 15 + length) & ~3
    size, offset, length = _STR_HDR(d, p)
    if offset or length > size or not length:
        raise NdrError(f"string at offset {p}: offset {offset}, length {length} of {size}")
    remote = d[p + 12 : p + 11 + length].decode()
    p = (p + 15 + length) & ~3
    size, offset, length = _STR_HDR(d, p)
    if offset or length > size or not length:
        raise NdrError(f"string at offset {p}: offset {offset}, length {length} of {size}")
    name = d[p + 12 : p + 11 + length].decode()
    p = (p + 15 + length) & ~3
    p = ((p + 4 + U32(d, p)[0]) + 3) & ~3  # signing_key_blob
    if layout.crypto_algos:
        _, _, _, algo, cipher = _CHANNEL_TAIL.unpack_from(d, p)
        p += 16
    else:  # 4.13, 4.14: no signing_algo
        algo = 0
        cipher = _U16(d, p + 12)[0]
        p += 14
    transport = None
    if layout.channel_transport_type:
        transport = d[p]
        p += 1
    key = (pid, task, vnn, unique)
    server = _SERVER_IDS.get(key)
    if server is None:
        if len(_SERVER_IDS) >= _SERVER_IDS_MAX:
            _SERVER_IDS.clear()
        server = _SERVER_IDS[key] = ServerId(pid, task, vnn, unique)
    return Channel(server, channel_id, creation, local, remote, name, algo, cipher,
                   transport), p


# The sessions of one smbd share its server id: one object for all of them. (ServerId is
# not changed once made.)
_SERVER_IDS: dict[tuple[int, int, int, int], ServerId] = {}
_SERVER_IDS_MAX = 4096


def _security_token(d: bytes, p: int, layout: Layout) -> tuple[bytes | None, int]:
    """``security_token``: the user's SID (the first one, raw) and the end position."""
    p = align8(p)
    num_sids, size = _TWO_U32(d, p)
    if num_sids != size or num_sids > _MAX_SIDS:
        raise NdrError(f"security token has {num_sids} SIDs (array of {size})")
    p += 8
    user_sid = None
    for i in range(num_sids):
        n = d[p + 1]
        if n > 15:
            raise NdrError(f"SID at offset {p} claims {n} sub-authorities (at most 15)")
        if i == 0:
            user_sid = d[p : p + 8 + 4 * n]
        p += 8 + 4 * n  # dom_sid is 4-aligned and a multiple of 4 long
    p = align8(p) + 12  # privilege_mask (hyper), rights_mask
    if layout.token_claims:
        counts = _EIGHT_U32(d, p)  # 4 counts, then the sizes of the 4 arrays
        if counts[0] or counts[1] or counts[2]:
            raise NdrError(f"security token carries claims {counts[:3]}; not decoded")
        if counts[7] != counts[3] or counts[4:7] != (0, 0, 0):
            raise NdrError("security token claim array sizes differ from their counts")
        p += 32
        for _ in range(counts[3]):
            p = sid_end(d, p)
        p = ((p + 1) & ~1) + 2  # evaluate_claims
    return user_sid, p


def _auth(d: bytes, p: int, layout: Layout) -> tuple[tuple, int]:
    """``auth_session_info``: (account, domain, user SID, uid, gid, unix name), end."""
    p = align4(p)
    token_p, unix_p, info_p, unix_info_p, _ = _AUTH_HEAD.unpack_from(d, p)
    p += 20
    p = ((p + 4 + U32(d, p)[0] + 3) & ~3) + 4  # session_key, [ignore] credentials
    p = align4(p) + 16  # unique_session_token
    if layout.ticket_type:
        p = ((p + 1) & ~1) + 2
    user_sid = uid = gid = account = domain = unix_name = None
    if token_p:
        user_sid, p = _security_token(d, p, layout)
    if unix_p:
        p = align4(p)
        size = U32(d, p)[0]
        p = align8(p + 4)
        uid, gid, ngroups = _UNIX_TOKEN.unpack_from(d, p)
        if ngroups != size:
            raise NdrError("unix token group array size differs from ngroups")
        p = align8(p + 20) + 8 * ngroups
    if info_p:
        p = align4(p)
        f = _USER_INFO.unpack_from(d, p)
        p += _USER_INFO.size + (4 if layout.user_flags32 else 1)
        # account_name, user_principal_name, domain_name, dns_domain_name, full_name,
        # logon_script, profile_path, home_directory, home_drive, logon_server
        for index, present in enumerate((f[0], f[1], *f[3:11])):
            if present:
                p = (p + 3) & ~3
                size, offset, length = _STR_HDR(d, p)
                if offset or length > size:
                    raise NdrError(f"string at offset {p}: offset {offset}, length {length}")
                if index == 0:
                    account = d[p + 12 : p + 11 + length].decode() if length else ""
                elif index == 2:
                    domain = d[p + 12 : p + 11 + length].decode() if length else ""
                p += 12 + length
    if unix_info_p:
        p = align4(p)
        name_p, sanitized_p = _TWO_U32(d, p)
        p += 8
        if name_p:
            raw, p = ndr.string(d, p)
            unix_name = raw.decode()
        if sanitized_p:
            _, p = ndr.string(d, p)
    return (account, domain, user_sid, uid, gid, unix_name), p


_NO_AUTH = (None, None, None, None, None, None)
# The authentication of every session of one user is the same bytes but for the session
# key and the session token (random per session), and it is the last part of the record.
# Decoding it once per distinct value of the rest saves most of the work on a busy server.
_AUTH_MEMO: dict[tuple[str, bytes], tuple] = {}
_AUTH_MEMO_MAX = 4096


def _auth_memo_key(d: bytes, p: int) -> bytes:
    """The auth part of a record from ``p`` on, without its session key and token."""
    p = align4(p)
    key_len = U32(d, p + 20)[0]
    after_key = p + 24 + key_len
    token = align4(align4(after_key) + 4)
    if token + 16 > len(d):
        raise NdrError("session authentication ends early")
    return d[p : p + 24] + d[after_key:token] + d[token + 16 :]


def _auth_memoized(d: bytes, p: int, layout: Layout) -> tuple:
    memo_key = (layout.key, _auth_memo_key(d, p))
    found = _AUTH_MEMO.get(memo_key)
    if found is None:
        found, end = _auth(d, p, layout)
        if end != len(d):
            raise NdrError(f"{len(d) - end} bytes left over after the session record")
        if len(_AUTH_MEMO) >= _AUTH_MEMO_MAX:
            _AUTH_MEMO.clear()
        _AUTH_MEMO[memo_key] = found
    return found


def decode_session(value: bytes, layout: Layout) -> SessionGlobal:
    """Decode a value of ``smbXsrv_session_global.tdb`` (watcher header included).

    Raises :class:`NdrError` when the bytes do not decode exactly with ``layout``.
    """
    d = strip_watchers(value)
    try:
        (
            version,
            _seq,
            level,
            referent,
            _db_rec,
            global_id,
            wire_id,
            creation,
            expiration,
            auth_time,
            _auth_seq,
            auth_p,
            dialect,
        ) = _SESSION_HEAD.unpack_from(d, 0)
        _check_header(version, level, referent, layout)
        p = _SESSION_HEAD.size
        client_guid = None
        if layout.session_client_guid:
            client_guid, p = ndr.guid(d, p)
        if layout.crypto_algos:
            sign_flags, sign_algo, enc_flags, enc_cipher = _SESSION_CRYPTO.unpack_from(d, p)
            p += _SESSION_CRYPTO.size
        else:
            sign_flags, enc_flags = _SESSION_FLAGS_OLD.unpack_from(d, p)
            sign_algo = enc_cipher = 0
            p += 2
        for _ in range(3):  # signing, encryption, decryption key blobs,
            p = (p + 3) & ~3  # each followed by its [ignore] key pointer
            p = ((p + 4 + U32(d, p)[0] + 3) & ~3) + 4
        p = (p + 3) & ~3  # the application key blob (and from 4.15 its pointer)
        p = ((p + 4 + U32(d, p)[0] + 3) & ~3) + (4 if layout.application_key_ptr else 0)
        num_channels = U32(d, p)[0]
        if not 1 <= num_channels <= _MAX_CHANNELS:
            raise NdrError(f"session has {num_channels} channels (1 to {_MAX_CHANNELS})")
        p += 4
        channels = []
        for _ in range(num_channels):
            channel, p = _channel(d, p, layout)
            channels.append(channel)
        if auth_p:
            auth = _auth_memoized(d, p, layout)
            p = len(d)
        else:
            auth = _NO_AUTH
    except (struct.error, IndexError) as exc:
        raise NdrError(f"session record ends early: {exc}") from None
    except UnicodeDecodeError as exc:
        raise NdrError(f"session record holds a string that is not UTF-8: {exc}") from None
    if p != len(d):
        raise NdrError(f"{len(d) - p} bytes left over after the session record")
    return SessionGlobal(
        global_id,
        wire_id,
        creation,
        expiration,
        auth_time,
        dialect,
        client_guid,
        sign_flags,
        sign_algo,
        enc_flags,
        enc_cipher,
        tuple(channels),
        *auth,
    )


def decode_tcon(value: bytes, layout: Layout) -> TconGlobal:
    """Decode a value of ``smbXsrv_tcon_global.tdb``."""
    try:
        (
            version,
            _seq,
            level,
            referent,
            _db_rec,
            global_id,
            wire_id,
            pid,
            task,
            vnn,
            unique,
            creation,
        ) = _TCON_HEAD.unpack_from(value, 0)
        _check_header(version, level, referent, layout)
        share, p = ndr.string(value, _TCON_HEAD.size)
        enc_flags = value[p]
        session_id, sign_flags = struct.unpack_from("<IB", value, align4(p + 1))
        p = align4(p + 1) + 5
    except (struct.error, IndexError) as exc:
        raise NdrError(f"tree connect record ends early: {exc}") from None
    if p != len(value):
        raise NdrError(f"{len(value) - p} bytes left over after the tree connect record")
    return TconGlobal(
        global_id,
        wire_id,
        ServerId(pid, task, vnn, unique),
        creation,
        ndr.text(share),
        enc_flags,
        session_id,
        sign_flags,
    )


def decode_open(value: bytes, layout: Layout) -> OpenGlobal:
    """Decode a value of ``smbXsrv_open_global.tdb``."""
    try:
        version, _seq, level, referent = _OPEN_HEAD.unpack_from(value, 0)
        _check_header(version, level, referent, layout)
        p = 16 + (8 if layout.open_db_rec else 0)  # [ignore] db_rec, padded to 8
        pid, task, vnn, unique = _SERVER_ID.unpack_from(value, p)
        p += 24
        session_id = tcon_id = None
        if layout.open_session_ids:
            session_id, tcon_id = struct.unpack_from("<QI", value, p)
            p += 12
        p = align4(p)
        global_id = U32(value, p)[0]
        p = align8(p + 4)
        persistent, volatile = _PERSISTENT_VOLATILE.unpack_from(value, p)
        p += 16
        if layout.open_v1_fields:
            p += 28  # file_id (3 udlong), name_hash
        p = align4(p)
        owner_end = sid_end(value, p)
        owner = value[p:owner_end]
        p = owner_end
        open_time = struct.unpack_from("<Q", value, align4(p))[0]
        p = align4(p) + 8 + 48  # open_time; create_guid, client_guid, app_instance_id
        if layout.open_v1_fields:
            p = align8(p) + 16  # app_instance_vhigh, app_instance_vlow
        if layout.open_session_ids:
            p += 4  # create_action
        disconnect, _timeout, durable = struct.unpack_from("<QIB", value, p)
        p += 13
        if layout.open_v1_fields:
            p += 1  # persistent
        p = blob_end(value, p)  # backend_cookie
        p = align8(((p + 1) & ~1) + 2) + 8 + 64  # channel_sequence, generation, locks
    except (struct.error, IndexError) as exc:
        raise NdrError(f"open record ends early: {exc}") from None
    if p != len(value):
        raise NdrError(f"{len(value) - p} bytes left over after the open record")
    return OpenGlobal(
        ServerId(pid, task, vnn, unique),
        session_id,
        tcon_id,
        global_id,
        persistent,
        volatile,
        owner,
        open_time,
        bool(durable),
        disconnect,
    )
