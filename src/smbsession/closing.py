"""Close-SmbSession: close exactly the chosen sessions, of this server or of many.

The whole selection is made before anything is closed; each closing is confirmed (unless
``force``), once per session, through one confirmation loop (:func:`confirmations`); each
session is reported closed only after it is verifiably gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from .errors import (
    AccessDenied,
    ConfirmationRequired,
    RemoteError,
    SessionNotFound,
    SmbSessionWarning,
    SourceError,
)
from .model import NO_SESSION_ID, SmbSession
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
    """What closing ``session`` closes, as PowerShell names the target of an operation:
    its SessionId (``... on <computer>`` for a remote one); for a session read through
    MS-SRVS, which has no id, every session of its user from its client."""
    where = f" on {session.ps_computer_name}" if session.ps_computer_name else ""
    if session.session_id == NO_SESSION_ID and session.ps_computer_name:
        return (f"every session of {session.client_user_name or 'any user'} from "
                f"{session.client_computer_name}{where}")
    return f"{session.session_id}{where}"


def require_force(close_connection: bool, force: bool) -> None:
    """Raise :class:`ConfirmationRequired` for ``close_connection`` without ``force``:
    ending a connection ends its other sessions, which no prompt names."""
    if close_connection and not force:
        raise ConfirmationRequired(
            "close_connection ends every session on the connection; it needs force as "
            "well."
        )


def confirmations(items: Iterable[SmbSession], force: bool,
                  confirm: Callable[[SmbSession], str] | None) -> Iterator[tuple[SmbSession, bool]]:
    """Yield each item with whether closing it was confirmed: all of them with ``force``,
    else as ``confirm`` answers (``yes``, ``all`` for yes to all, ``no``, ``none`` for no
    to all: after ``all`` or ``none`` it is not asked again)."""
    answer_all: str | None = YES_TO_ALL if force else None
    for item in items:
        answer = answer_all or (confirm(item) if confirm is not None else NO)
        if answer in (YES_TO_ALL, NO_TO_ALL):
            answer_all = answer
        yield item, answer in (YES, YES_TO_ALL)


def _neighbours(session: SmbSession, every: Sequence[SmbSession]) -> list[int]:
    """The other sessions on the connection (the smbd) of ``session``."""
    return [s.session_id for s in every
            if s.smbd_pid == session.smbd_pid and s.session_id != session.session_id
            and s.ps_computer_name == session.ps_computer_name]


def _what_if(selected: Sequence[SmbSession], every: Sequence[SmbSession],
             close_connection: bool) -> list[CloseResult]:
    results = []
    for session in selected:
        others = _neighbours(session, every) if close_connection else []
        message = "what if"
        if others:
            message += (": ending its connection also ends session(s) "
                        + ", ".join(map(str, others)))
        results.append(CloseResult(session, False, message))
    return results


def _select(query: SessionQuery | None, sessions: Sequence[SmbSession]) -> list[SmbSession]:
    query = query or SessionQuery()
    if query.session_id:  # a session asked for by id is closed even if hidden
        query = query.replace(include_hidden=True)
    selected = query.select(sessions)
    missing = query.unmatched(selected)
    if missing or (not selected and query != SessionQuery()):
        raise SessionNotFound(_not_found(query), missing)
    return selected


def close_smb_session(
    query: SessionQuery | None = None,
    smb_conf: str | None = None,
    force: bool = False,
    confirm: Callable[[SmbSession], str] | None = None,
    what_if: bool = False,
    close_connection: bool = False,
    timeout: float = 10.0,
    *,
    input_object: Sequence[SmbSession] = (),
    cim_session: Sequence[str] | str | None = None,
    credential: str | None = None,
    password: str | None = None,
    kerberos: bool = False,
    throttle_limit: int = 0,
    operation_timeout_sec: int = 0,
    on_error: Callable[[RemoteError], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> list[CloseResult]:
    """Close the sessions ``query`` selects (or the sessions of ``input_object``, as
    ``Get-SmbSession`` returned them); return one result per session.

    Closing a session closes every file it has open (unsaved client data may be lost),
    so it must be confirmed: ``force=True``, or ``confirm`` called once per session and
    answering ``"yes"``, ``"all"`` (yes to all), ``"no"`` or ``"none"`` (no to all).
    ``what_if=True`` closes nothing and returns every selected session with
    ``closed=False`` (with ``close_connection``, the message names the other sessions
    its connection would take down). ``close_connection=True`` (with ``force``) ends the
    whole TCP connection of each session, and with it every other session on it.

    With ``cim_session`` (targets as :func:`smbsession.get_smb_session` takes them), the
    sessions are listed on every target, chosen and confirmed here, then closed on their
    own target. A session read through MS-SRVS (``smb://``) has no id: closing it ends
    every session of its user from its client (said through ``on_warning`` first). A
    target that fails is passed to ``on_error`` (default: a :class:`SmbSessionWarning`)
    and the others are still closed.

    Raises :class:`AccessDenied` unless run as root (locally), :class:`SessionNotFound`
    when a filter value matches nothing, :class:`ConfirmationRequired` when neither
    ``force`` nor ``confirm`` is given; in these cases nothing is closed.
    """
    if cim_session:
        return _close_remote(query, input_object, cim_session, _Remote(
            smb_conf, credential, password, kerberos, throttle_limit,
            float(operation_timeout_sec or 60), on_error, on_warning),
            force, confirm, what_if, close_connection)
    from .samba import logoff as backend
    from .samba import server as samba_server
    from .samba import tdb_source

    if os.geteuid() != 0 and not what_if:
        raise AccessDenied("closing sessions needs root. Run it with sudo.")
    server = samba_server.resolve(smb_conf)
    layout = server.layout
    if layout is None:
        raise SourceError(
            f"the session records of Samba {server.release or '(version unknown)'} are not "
            "known to smbsession, so no session can be closed safely.", "tdb"
        )
    every = tdb_source.read_sessions(server).sessions
    selected = list(input_object) if input_object else _select(query, every)
    if what_if:
        return _what_if(selected, every, close_connection)
    require_force(close_connection, force)
    if not force and confirm is None:
        raise ConfirmationRequired(
            "nothing was closed. Closing a session closes its open files; confirm with "
            "force, or give a confirm callback."
        )
    records = backend.live_sessions(server, layout)
    results: list[CloseResult] = []
    closed_ids: set[int] = set()
    for session, accepted in confirmations(selected, force, confirm):
        if session.session_id in closed_ids:
            results.append(CloseResult(session, True, "closed with its connection"))
            continue
        if not accepted:
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


class _Remote:
    """How to reach the -CimSession targets of one close, and where their troubles go."""

    def __init__(self, smb_conf: str | None, credential: str | None, password: str | None,
                 kerberos: bool, throttle: int, timeout: float,
                 on_error: Callable[[RemoteError], None] | None,
                 on_warning: Callable[[str], None] | None) -> None:
        from .remote.fleet import SmbLogon

        self.smb_conf = smb_conf
        self.logon = SmbLogon(credential, password, kerberos)
        self.throttle = throttle
        self.timeout = timeout
        self.on_error = on_error or _warn_error
        self.on_warning = on_warning or _warn


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, SmbSessionWarning, stacklevel=4)


def _warn_error(error: RemoteError) -> None:
    _warn(str(error))


def _close_remote(query: SessionQuery | None, input_object: Sequence[SmbSession],
                  cim_session: Sequence[str] | str, remote: _Remote, force: bool,
                  confirm: Callable[[SmbSession], str] | None, what_if: bool,
                  close_connection: bool) -> list[CloseResult]:
    from .remote.fleet import close_many, stream_sessions

    targets = [cim_session] if isinstance(cim_session, str) else list(cim_session)
    every: list[SmbSession] = []
    if input_object:
        selected = list(input_object)
    else:
        for answer in stream_sessions(targets, remote.smb_conf, remote.throttle,
                                      remote.timeout, remote.logon):
            if answer.error is not None:
                remote.on_error(answer.error)
            every.extend(answer.sessions)
            for line in answer.warnings:
                remote.on_warning(f"{answer.target}: {line}")
        selected = _select(query, every)
    # A unit is what one confirmation closes: a session, or, through MS-SRVS, every
    # session of a user from a client (NetrSessionDel has no session id).
    units: dict[str, list[SmbSession]] = {}
    for session in selected:
        units.setdefault(target(session), []).append(session)
    for name, members in units.items():
        if members[0].session_id == NO_SESSION_ID:
            remote.on_warning(f"{members[0].ps_computer_name}: MS-SRVS has no session id: "
                              f"closing ends {name} ({len(members)} listed) through "
                              "NetrSessionDel; a Samba server ends the whole smbd of each, "
                              "with every other session on the same connection.")
    if what_if:
        return _what_if([m[0] for m in units.values()], every, close_connection)
    require_force(close_connection, force)
    if not force and confirm is None:
        raise ConfirmationRequired(
            "nothing was closed. Closing a session closes its open files; confirm with "
            "force, or give a confirm callback."
        )
    chosen: list[SmbSession] = []
    declined: list[CloseResult] = []
    for first, accepted in confirmations([m[0] for m in units.values()], force, confirm):
        members = units[target(first)]
        if accepted:
            chosen.extend(members)
        else:
            declined.extend(CloseResult(s, False, "declined") for s in members)
    results, errors = close_many(chosen, targets, remote.smb_conf, remote.throttle,
                                 remote.timeout, remote.logon, close_connection)
    for error in errors:
        remote.on_error(error)
    return declined + results


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
    return f"no session matches {query.describe()}"
