"""Close-SmbSession: close exactly the chosen sessions of the local Samba server.

The whole query is resolved before anything is closed; each closing is confirmed (unless
``force``); each session is reported closed only after it is verifiably gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import AccessDenied, ConfirmationRequired, SessionNotFound, SourceError
from .model import SmbSession
from .query import SessionQuery

#: Answers a confirmation callback may give, as PowerShell offers them.
YES, YES_TO_ALL, NO, NO_TO_ALL = "yes", "all", "no", "none"


class CloseResult:
    """What happened to one session: ``closed`` or not, and why (``message``)."""

    __slots__ = ("closed", "message", "session")

    def __init__(self, session: SmbSession, closed: bool, message: str) -> None:
        self.session = session
        self.closed = closed
        self.message = message

    def __repr__(self) -> str:
        return (f"CloseResult(session_id={self.session.session_id}, closed={self.closed}, "
                f"message={self.message!r})")


def target(session: SmbSession) -> str:
    """The target text PowerShell prints for a session (its SessionId)."""
    return str(session.session_id)


def require_force(close_connection: bool, force: bool) -> None:
    """Raise :class:`ConfirmationRequired` for ``close_connection`` without ``force``:
    ending a connection ends its other sessions, which no prompt names."""
    if close_connection and not force:
        raise ConfirmationRequired(
            "close_connection ends every session on the connection; it needs force as "
            "well."
        )


def close_smb_session(
    query: SessionQuery,
    smb_conf: str | None = None,
    force: bool = False,
    confirm: Callable[[SmbSession], str] | None = None,
    what_if: bool = False,
    close_connection: bool = False,
    timeout: float = 10.0,
) -> list[CloseResult]:
    """Close the sessions ``query`` selects; return one result per session.

    Closing a session closes every file it has open (unsaved client data may be lost),
    so it must be confirmed: ``force=True``, or ``confirm`` called once per session and
    answering ``"yes"``, ``"all"`` (yes to all), ``"no"`` or ``"none"`` (no to all).
    ``what_if=True`` closes nothing and returns every selected session with
    ``closed=False``. ``close_connection=True`` (with ``force``) ends the whole TCP
    connection of each session, and with it every other session on that connection.

    Raises :class:`AccessDenied` unless run as root, :class:`SessionNotFound` when the
    query selects nothing, :class:`ConfirmationRequired` when neither ``force`` nor
    ``confirm`` is given; in all three cases nothing is closed.
    """
    from .samba import logoff as backend
    from .samba import server as samba_server
    from .samba import tdb_source

    if os.geteuid() != 0 and not what_if:
        raise AccessDenied("closing sessions needs root. Run it with sudo.")
    require_force(close_connection, force)
    server = samba_server.resolve(smb_conf)
    layout = server.layout
    if layout is None:
        raise SourceError(
            f"the session records of Samba {server.release or '(version unknown)'} are not "
            "known to smbsession, so no session can be closed safely.", "tdb"
        )
    if query.session_id:  # a session asked for by id is closed even if hidden
        query = query.replace(include_hidden=True)
    selected = query.select(tdb_source.read_sessions(server).sessions)
    if not selected:
        raise SessionNotFound(_not_found(query), query.unmatched([]))
    if what_if:
        return [CloseResult(s, False, "what if") for s in selected]
    if not force and confirm is None:
        raise ConfirmationRequired(
            "nothing was closed. Closing a session closes its open files; confirm with "
            "force, or give a confirm callback."
        )
    records = backend.live_sessions(server, layout)
    results: list[CloseResult] = []
    answer_all: str | None = YES_TO_ALL if force else None
    closed_ids: set[int] = set()
    for session in selected:
        if session.session_id in closed_ids:
            results.append(CloseResult(session, True, "closed with its connection"))
            continue
        answer = answer_all or confirm(session)  # type: ignore[misc]
        if answer in (YES_TO_ALL, NO_TO_ALL):
            answer_all = answer
        if answer in (NO, NO_TO_ALL):
            results.append(CloseResult(session, False, "declined"))
            continue
        record = records.get(session.session_id)
        if record is None:
            results.append(CloseResult(session, True, "already gone"))
            continue
        try:
            if close_connection:
                ended = backend.close_connection(server, layout, record, timeout)
                closed_ids.update(ended)
                results.append(CloseResult(session, True, f"connection ended ({len(ended)} "
                                                          "session(s))"))
            else:
                backend.close_session(server, layout, record, timeout)
                closed_ids.add(session.session_id)
                results.append(CloseResult(session, True, "closed"))
        except backend.CloseFailed as exc:
            results.append(CloseResult(session, False, str(exc)))
    return results


def close_by_id(session_ids: list[int], smb_conf: str | None = None,
                close_connection: bool = False) -> dict[int, tuple[bool, str]]:
    """Close the sessions with these ids, without asking (confirm before calling), as
    :func:`close_smb_session` with ``force``. Returns ``{session id: (closed,
    message)}`` for the sessions the server still had; an id missing from it was already
    gone. What remote targets run on the server, and the local target of a fleet."""
    query = SessionQuery(session_id=tuple(session_ids), include_hidden=True)
    try:
        done = close_smb_session(query, smb_conf, force=True, close_connection=close_connection)
    except SessionNotFound:
        return {}
    return {r.session.session_id: (r.closed, r.message) for r in done}


def _not_found(query: SessionQuery) -> str:
    if not query.unmatched([]):
        return "no session to close"
    return f"no session matches {query.describe()}"
