"""Closing sessions of a local Samba server, one at a time, through Samba's messaging.

A session is closed by asking the smbd that serves it (``MSG_SMBXSRV_SESSION_CLOSE``,
see :mod:`smbsession.samba.messaging`) with its global id, wire id and creation time:
smbd logs off exactly that session and closes its open files; other sessions on the same
TCP connection stay up. Checked live on Samba 4.17 and 4.22, for SMB2/3 and, on these
releases, for SMB1 sessions too. Nothing here writes to Samba's files: the only action
is the datagram, and success is verified by reading the session database again.

Ending a whole connection (``MSG_SHUTDOWN`` to its smbd) takes every session on it down;
it is only done when asked for explicitly.
"""

from __future__ import annotations

import time

from .messaging import (
    MSG_SHUTDOWN,
    MSG_SMBXSRV_SESSION_CLOSE,
    MessagingError,
    encode_session_close,
)
from .server import Server
from .smbxsrv import Layout, SessionGlobal


class CloseFailed(Exception):
    """One session could not be closed (the message says why)."""


def live_sessions(server: Server, layout: Layout) -> dict[int, SessionGlobal]:
    """Return the live session records of the server, by session global id."""
    from .tdb_source import live_sessions as records

    return {g.session_global_id: g for g in records(server, layout, [])}


def _wait_gone(server: Server, layout: Layout, ids: set[int], timeout: float) -> set[int]:
    """Wait until none of ``ids`` is a live session; return those still there."""
    deadline = time.monotonic() + timeout
    remaining = set(ids)
    while True:
        remaining &= set(live_sessions(server, layout))
        if not remaining or time.monotonic() >= deadline:
            return remaining
        time.sleep(0.1)


def close_session(server: Server, layout: Layout, g: SessionGlobal,
                  timeout: float = 10.0) -> None:
    """Close one session and wait (at most ``timeout`` seconds) until it is gone.

    Raises :class:`CloseFailed` when the message cannot be delivered or the session is
    still there afterwards.
    """
    payload = encode_session_close(g.session_global_id, g.session_wire_id, g.creation_time,
                                   layout.version)
    try:
        server.store.send(g.channels[0].server_id, MSG_SMBXSRV_SESSION_CLOSE, payload)
    except MessagingError as exc:
        raise CloseFailed(str(exc)) from None
    if _wait_gone(server, layout, {g.session_global_id}, timeout):
        raise CloseFailed(f"smbd {g.channels[0].server_id.pid} did not close the session "
                          f"within {timeout:g} s")


def close_connection(server: Server, layout: Layout, g: SessionGlobal,
                     timeout: float = 10.0) -> list[int]:
    """End the whole TCP connection (the smbd process) that serves session ``g``.

    Every session of that smbd goes; returns their global ids. Raises
    :class:`CloseFailed` when the smbd does not end within ``timeout`` seconds.
    """
    pid = g.channels[0].server_id.pid
    victims = {sid for sid, other in live_sessions(server, layout).items()
               if other.channels[0].server_id.pid == pid}
    try:
        server.store.send(g.channels[0].server_id, MSG_SHUTDOWN, b"")
    except MessagingError as exc:
        raise CloseFailed(str(exc)) from None
    if _wait_gone(server, layout, victims, timeout):
        raise CloseFailed(f"smbd {pid} did not end within {timeout:g} s")
    return sorted(victims)
