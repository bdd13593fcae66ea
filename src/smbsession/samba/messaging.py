"""Samba's datagram messaging, send side only: how we ask one smbd to close one session.

Every Samba process listens on a Unix datagram socket ``<lockdir>/msg.sock/<pid>``
(``lib/messaging/messages_dgm.c``); Debian's Samba 4.13 puts ``msg.sock`` in the private
directory instead (upstream ``source3/lib/messages.c`` at samba-4.13.0), so when the lock
directory has none, the socket the process bound is looked up in ``/proc/net/unix``.
A message that fits one datagram is sent as:

====== ===== ==========================================================================
offset size  field
====== ===== ==========================================================================
0      8     fragment cookie: 0 means "not fragmented" (host byte order)
8      24    destination server_id: pid u64, task_id u32, vnn u32, unique_id u64 (LE)
32     24    source server_id, same layout
56     4     message type u32 (LE), ``librpc/idl/messaging.idl``
60     ...   payload
====== ===== ==========================================================================

(``source3/lib/messages_util.c`` puts destination, source and type in that order.)

``MSG_SMBXSRV_SESSION_CLOSE`` carries an NDR ``smbXsrv_session_closeB``
(``source3/librpc/idl/smbXsrv.idl``); smbd looks the session up by its wire id, checks
the global id and creation time, and logs off just that session. The datagram layout is
the same from Samba 4.13 to 4.25; the close message is format version 0 up to 4.24 and
version 1 from 4.25 on (``SMBXSRV_VERSION_1``: the union's info pointer is ``[ref]``, so
no referent id is marshalled and bytes 12..15 are alignment padding). smbd refuses a
close message of the other version.
"""

from __future__ import annotations

import os
import socket
import struct

from .smbxsrv import ServerId

#: Message types (librpc/idl/messaging.idl).
MSG_SHUTDOWN = 0x000D
MSG_SMBXSRV_SESSION_CLOSE = 0x0600

_SERVER_ID = struct.Struct("<QIIQ")
_COOKIE = struct.Struct("=Q")
_TYPE = struct.Struct("<I")
# smbXsrv_session_closeB: version u32, reserved u32, union level u32; version 0: a unique
# pointer's referent u32, version 1: 4 bytes of padding; then smbXsrv_session_close (8-byte
# aligned): global id u32, 4 bytes pad, wire id u64, creation NTTIME u64, new wire id u64.
_CLOSE_B = struct.Struct("<IIII")
_CLOSE_0 = struct.Struct("<I4xQQQ")
_REFERENT = 0x00020000


class MessagingError(OSError):
    """A message could not be delivered (the smbd is gone, or its socket refused it)."""


def encode_session_close(session_global_id: int, session_wire_id: int,
                         creation_time: int, version: int = 0) -> bytes:
    """Return the NDR ``smbXsrv_session_closeB`` that asks smbd to close one session.

    ``creation_time`` is the session's NTTIME creation time as stored in
    ``smbXsrv_session_global.tdb``; smbd refuses the request when it does not match, so a
    session id reused after a restart is never closed by mistake. ``version`` is the
    format version the server's release writes (``Layout.version``: 1 from Samba 4.25).
    """
    if version not in (0, 1):
        raise ValueError(f"close message format version {version} (0 or 1)")
    for name, value, bits in (("session_global_id", session_global_id, 32),
                              ("session_wire_id", session_wire_id, 64),
                              ("creation_time", creation_time, 64)):
        if not 0 <= value < 2**bits:
            raise ValueError(f"{name} {value} does not fit in {bits} bits")
    head = _CLOSE_B.pack(0, 0, 0, _REFERENT) if version == 0 else _CLOSE_B.pack(1, 0, 1, 0)
    return head + _CLOSE_0.pack(
        session_global_id, session_wire_id, creation_time, 0
    )


def encode_message(msg_type: int, dst: ServerId, src: ServerId, payload: bytes) -> bytes:
    """Return one unfragmented datagram carrying ``payload`` from ``src`` to ``dst``."""
    return b"".join((
        _COOKIE.pack(0),
        _SERVER_ID.pack(dst.pid, dst.task_id, dst.vnn, dst.unique_id),
        _SERVER_ID.pack(src.pid, src.task_id, src.vnn, src.unique_id),
        _TYPE.pack(msg_type),
        payload,
    ))


def _bound_socket(pid: int) -> str | None:
    """The path (as we see it) of the ``msg.sock/<pid>`` socket process ``pid`` bound,
    from ``/proc/net/unix`` (paths there are as the binder sees them: inside its root)."""
    suffix = f"/msg.sock/{pid}"
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 8 and fields[7].endswith(suffix):
                    candidate = f"/proc/{pid}/root{fields[7]}"
                    if os.path.exists(candidate):
                        return candidate
    except OSError:
        return None
    return None


def send(lock_dir: str, dst: ServerId, msg_type: int, payload: bytes) -> None:
    """Send one message to the Samba process ``dst`` through ``<lock_dir>/msg.sock``.

    The sender needs no socket of its own in Samba's directories: nothing is created
    there. Raises :class:`MessagingError` when the process has no socket (it is gone) or
    the socket refuses the datagram.
    """
    path = os.path.join(lock_dir, "msg.sock", str(dst.pid))
    if not os.path.exists(path):
        path = _bound_socket(dst.pid) or path
    datagram = encode_message(msg_type, dst, ServerId(os.getpid()), payload)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        try:
            sock.sendto(datagram, path)
        except FileNotFoundError:
            raise MessagingError(f"smbd {dst.pid} has no messaging socket ({path})") from None
        except OSError as exc:
            raise MessagingError(f"cannot send to smbd {dst.pid}: {exc.strerror or exc}") from None
