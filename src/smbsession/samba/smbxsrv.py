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

import re
from dataclasses import dataclass

from .ndr import NdrError, NdrReader

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
    "strip_watchers",
]

#: The SID of anonymous logons (hidden unless -IncludeHidden).
ANONYMOUS_SID = "S-1-5-7"
_WATCHER_SIZE = 32
_MAX_CHANNELS = 1024  # smbXsrv.idl: [range(1, 1024)] num_channels
_MAX_SIDS = 4096


@dataclass(frozen=True)
class Layout:
    """What the records of one Samba release look like (see the table above)."""

    name: str
    open_db_rec: bool = False
    user_flags32: bool = False
    token_claims: bool = False
    session_client_guid: bool = False
    channel_transport_type: bool = False
    open_session_ids: bool = False


_LAYOUTS = {
    "4.17": Layout("4.17", open_db_rec=True),
    "4.18": Layout("4.18", open_db_rec=True),
    "4.19": Layout("4.19", user_flags32=True),
    "4.20": Layout("4.20", user_flags32=True, token_claims=True, session_client_guid=True),
    "4.21": Layout("4.21", user_flags32=True, token_claims=True, session_client_guid=True),
    "4.22": Layout("4.22", user_flags32=True, token_claims=True, session_client_guid=True),
    "4.23": Layout("4.23", user_flags32=True, token_claims=True, session_client_guid=True,
                   channel_transport_type=True, open_session_ids=True),
}

#: Samba releases whose record layout this module knows.
KNOWN_LAYOUTS: tuple[str, ...] = tuple(_LAYOUTS)


def layout_for_version(samba_version: str | None) -> Layout | None:
    """Return the layout for a Samba version string (``"4.17.12-Debian"``), or None
    when this module does not know that release."""
    m = re.match(r"(\d+)\.(\d+)\.", samba_version or "")
    return _LAYOUTS.get(f"{m.group(1)}.{m.group(2)}") if m else None


@dataclass(frozen=True)
class ServerId:
    """A Samba process: pid, task id, cluster node (vnn) and a random unique id."""

    pid: int
    task_id: int
    vnn: int
    unique_id: int


@dataclass(frozen=True)
class Channel:
    """One channel (TCP connection) of a session: ``smbXsrv_channel_global0``."""

    server_id: ServerId
    channel_id: int
    creation_time: int
    local_address: str
    remote_address: str
    remote_name: str
    signing_algo: int
    encryption_cipher: int
    transport_type: int | None


@dataclass(frozen=True)
class SessionGlobal:
    """A session: ``smbXsrv_session_global0`` and the parts of its authentication
    (``auth_session_info``) an admin wants. The auth fields are None while the session
    is being authenticated."""

    session_global_id: int
    session_wire_id: int
    creation_time: int
    expiration_time: int
    auth_time: int
    connection_dialect: int
    client_guid: str | None
    signing_flags: int
    signing_algo: int
    encryption_flags: int
    encryption_cipher: int
    channels: tuple[Channel, ...]
    account_name: str | None
    domain_name: str | None
    user_sid: str | None
    uid: int | None
    gid: int | None
    unix_name: str | None


@dataclass(frozen=True)
class TconGlobal:
    """A tree connect: ``smbXsrv_tcon_global0``."""

    tcon_global_id: int
    tcon_wire_id: int
    server_id: ServerId
    creation_time: int
    share_name: str
    encryption_flags: int
    session_global_id: int
    signing_flags: int


@dataclass(frozen=True)
class OpenGlobal:
    """An open file: ``smbXsrv_open_global0``. ``session_global_id`` and
    ``tcon_global_id`` exist from Samba 4.23 on (None before)."""

    server_id: ServerId
    session_global_id: int | None
    tcon_global_id: int | None
    open_global_id: int
    open_persistent_id: int
    open_volatile_id: int
    open_owner: str
    open_time: int
    durable: bool
    disconnect_time: int


def strip_watchers(value: bytes) -> memoryview:
    """Return the NDR blob of a watched record (drop the dbwrap_watch header)."""
    if len(value) < 4:
        raise NdrError("watched record shorter than its header")
    n = int.from_bytes(value[:4], "little")
    start = 4 + n * _WATCHER_SIZE
    if n > (len(value) - 4) // _WATCHER_SIZE:
        raise NdrError(f"watched record claims {n} watchers in {len(value)} bytes")
    return memoryview(value)[start:]


def _server_id(r: NdrReader) -> ServerId:
    pid = r.hyper()
    return ServerId(pid, r.u32(), r.u32(), r.hyper())


def _union_header(r: NdrReader) -> None:
    """``smbXsrv_*_globalB``: version, seqnum, union level, pointer to the version-0 struct."""
    version = r.u32()
    r.u32()  # seqnum
    level = r.u32()
    if version != 0 or level != 0:
        raise NdrError(f"record version {version}/{level} is not version 0")
    if not r.ptr():
        raise NdrError("record has no version-0 body")


def _channel(r: NdrReader, layout: Layout) -> Channel:
    sid = _server_id(r)
    channel_id = r.hyper()
    creation = r.nttime()
    local, remote, name = r.string(), r.string(), r.string()
    r.skip_blob()  # signing_key_blob
    r.ptr()  # [ignore] signing_key
    r.u32()  # auth_session_info_seqnum
    r.ptr()  # [ignore] connection
    algo, cipher = r.u16(), r.u16()
    transport = r.u8() if layout.channel_transport_type else None
    return Channel(sid, channel_id, creation, local, remote, name, algo, cipher, transport)


def _skip_claims(r: NdrReader, count: int, what: str) -> None:
    r.u32()  # conformance
    if count:
        raise NdrError(f"security token carries {count} {what} claims; claims are not decoded")


def _security_token(r: NdrReader, layout: Layout) -> str | None:
    """``security_token``; returns the user's SID (the first one)."""
    r.align(8)
    num_sids = r.count(8, _MAX_SIDS)
    if r.u32() != num_sids:
        raise NdrError("security token SID array size differs from num_sids")
    sids = [r.sid() for _ in range(num_sids)]
    r.hyper()  # privilege_mask
    r.u32()  # rights_mask
    if layout.token_claims:
        counts = [r.u32() for _ in range(4)]  # local, user, device claims; device SIDs
        for n, what in zip(counts[:3], ("local", "user", "device"), strict=True):
            _skip_claims(r, n, what)
        if r.u32() != counts[3]:
            raise NdrError("device SID array size differs from num_device_sids")
        for _ in range(counts[3]):
            r.sid()
        r.u16()  # evaluate_claims
    return sids[0] if sids else None


def _unix_token(r: NdrReader) -> tuple[int, int]:
    """``security_unix_token``: (uid, gid)."""
    conformance = r.u32()
    uid, gid = r.hyper(), r.hyper()
    ngroups = r.count(8)
    if ngroups != conformance:
        raise NdrError("unix token group array size differs from ngroups")
    for _ in range(ngroups):
        r.hyper()
    return uid, gid


def _user_info(r: NdrReader, layout: Layout) -> tuple[str | None, str | None]:
    """``auth_user_info``: (account_name, domain_name)."""
    r.align(4)
    present = []
    for index in range(10):
        # account_name, user_principal_name, [constructed u8], domain_name, ...
        present.append(r.ptr())
        if index == 1:
            r.u8()  # user_principal_constructed
    for _ in range(6):
        r.nttime()  # last_logon ... force_password_change
    r.u16()  # logon_count
    r.u16()  # bad_password_count
    r.u32()  # acct_flags
    if layout.user_flags32:
        r.u32()  # user_flags
    else:
        r.u8()  # authenticated
    strings = [r.string() if p else None for p in present]
    return strings[0], strings[2]


def _unix_info(r: NdrReader) -> str | None:
    """``auth_user_info_unix``: the Unix user name."""
    r.align(4)
    name_p, sanitized_p = r.ptr(), r.ptr()
    name = r.string() if name_p else None
    if sanitized_p:
        r.string()
    return name


@dataclass(frozen=True)
class _Auth:
    account_name: str | None = None
    domain_name: str | None = None
    user_sid: str | None = None
    uid: int | None = None
    gid: int | None = None
    unix_name: str | None = None


def _auth_session_info(r: NdrReader, layout: Layout) -> _Auth:
    r.align(4)
    token_p, unix_token_p, info_p, unix_info_p = r.ptr(), r.ptr(), r.ptr(), r.ptr()
    r.ptr()  # [ignore] torture
    r.skip_blob()  # session_key
    r.ptr()  # [ignore] credentials
    r.guid()  # unique_session_token
    r.u16()  # ticket_type
    user_sid = _security_token(r, layout) if token_p else None
    uid, gid = _unix_token(r) if unix_token_p else (None, None)
    account, domain = _user_info(r, layout) if info_p else (None, None)
    unix_name = _unix_info(r) if unix_info_p else None
    return _Auth(account, domain, user_sid, uid, gid, unix_name)


def decode_session(value: bytes, layout: Layout) -> SessionGlobal:
    """Decode a value of ``smbXsrv_session_global.tdb`` (watcher header included).

    Raises :class:`NdrError` when the bytes do not decode exactly with ``layout``.
    """
    r = NdrReader(strip_watchers(value))
    _union_header(r)
    r.align(8)
    r.ptr()  # [ignore] db_rec
    global_id = r.u32()
    wire_id = r.hyper()
    creation, expiration, auth_time = r.nttime(), r.nttime(), r.nttime()
    r.u32()  # auth_session_info_seqnum
    auth_p = r.ptr()
    dialect = r.u16()
    client_guid = r.guid() if layout.session_client_guid else None
    signing_flags = r.u8()
    signing_algo = r.u16()
    encryption_flags = r.u8()
    encryption_cipher = r.u16()
    for _ in range(4):  # signing, encryption, decryption, application key blobs
        r.skip_blob()
        r.ptr()  # [ignore] the key object
    num_channels = r.count(48, _MAX_CHANNELS)
    channels = tuple(_channel(r, layout) for _ in range(num_channels))
    auth = _auth_session_info(r, layout) if auth_p else _Auth()
    r.done()
    return SessionGlobal(
        session_global_id=global_id,
        session_wire_id=wire_id,
        creation_time=creation,
        expiration_time=expiration,
        auth_time=auth_time,
        connection_dialect=dialect,
        client_guid=client_guid,
        signing_flags=signing_flags,
        signing_algo=signing_algo,
        encryption_flags=encryption_flags,
        encryption_cipher=encryption_cipher,
        channels=channels,
        account_name=auth.account_name,
        domain_name=auth.domain_name,
        user_sid=auth.user_sid,
        uid=auth.uid,
        gid=auth.gid,
        unix_name=auth.unix_name,
    )


def decode_tcon(value: bytes, layout: Layout) -> TconGlobal:
    """Decode a value of ``smbXsrv_tcon_global.tdb``."""
    r = NdrReader(value)
    _union_header(r)
    r.align(8)
    r.ptr()  # [ignore] db_rec
    global_id, wire_id = r.u32(), r.u32()
    sid = _server_id(r)
    creation = r.nttime()
    share = r.string()
    encryption_flags = r.u8()
    session_global_id = r.u32()
    signing_flags = r.u8()
    r.done()
    return TconGlobal(global_id, wire_id, sid, creation, share, encryption_flags,
                      session_global_id, signing_flags)


def decode_open(value: bytes, layout: Layout) -> OpenGlobal:
    """Decode a value of ``smbXsrv_open_global.tdb``."""
    r = NdrReader(value)
    _union_header(r)
    r.align(8)
    if layout.open_db_rec:
        r.ptr()  # [ignore] db_rec
    sid = _server_id(r)
    session_id = tcon_id = None
    if layout.open_session_ids:
        session_id, tcon_id = r.hyper(), r.u32()
    global_id = r.u32()
    persistent, volatile = r.hyper(), r.hyper()
    owner = r.sid()
    open_time = r.nttime()
    for _ in range(3):
        r.guid()  # create_guid, client_guid, app_instance_id
    if layout.open_session_ids:
        r.u32()  # create_action
    disconnect = r.nttime()
    r.u32()  # durable_timeout_msec
    durable = bool(r.u8())
    r.skip_blob()  # backend_cookie
    r.u16()  # channel_sequence
    r.hyper()  # channel_generation
    r.skip(64)  # lock_sequence_array
    r.done()
    return OpenGlobal(sid, session_id, tcon_id, global_id, persistent, volatile, owner,
                      open_time, durable, disconnect)
