"""smbsession: Get-SmbSession for Samba.

Lists the SMB sessions of a Samba server the way Windows' ``Get-SmbSession`` does::

    >>> import smbsession
    >>> for s in smbsession.get_smb_session(client_user_name=["LAB\\\\alice"]):
    ...     print(s.session_id, s.client_computer_name, s.dialect, s.num_opens)

Reading a real server's state needs root, as ``smbstatus`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from .closing import CloseResult, ConfirmationRequired, SessionNotFound, close_smb_session
from .errors import (
    AccessDenied,
    ConfigNotFound,
    InvalidParameter,
    SambaNotInstalled,
    ServerNotRunning,
    SmbSessionError,
    SourceError,
)
from .model import SmbSession, SourceResult
from .query import SessionQuery

__all__ = [
    "AccessDenied",
    "CloseResult",
    "ConfigNotFound",
    "ConfirmationRequired",
    "InvalidParameter",
    "SambaNotInstalled",
    "ServerNotRunning",
    "SessionNotFound",
    "SessionQuery",
    "SmbSession",
    "SmbSessionError",
    "SmbSessionWarning",
    "SourceError",
    "SourceResult",
    "close_smb_session",
    "get_smb_session",
    "read_sessions",
]

__version__ = "0.1.0"

#: Data sources for a local Samba server.
SOURCES: tuple[str, ...] = ("auto", "tdb", "smbstatus")


class SmbSessionWarning(UserWarning):
    """Something was skipped while reading (a record, a fact); the rest was delivered."""


def _tuple(values: Iterable[object] | object | None) -> tuple:
    if values is None:
        return ()
    if isinstance(values, (str, int)):
        return (values,)
    return tuple(values)  # type: ignore[arg-type]


def read_sessions(smb_conf: str | None = None, source: str = "auto") -> SourceResult:
    """Read every session of the local Samba server, unfiltered, with the source's warnings.

    ``smb_conf`` names the server's smb.conf (default: ``$SMB_CONF_PATH``, else Samba's
    compiled-in path). ``source`` is ``"tdb"`` (Samba's databases, read directly: every
    property), ``"smbstatus"`` (Samba's ``smbstatus --json``: fewer properties, slower) or
    ``"auto"``: the databases when the running Samba release's record layout is known,
    else smbstatus, with a warning saying so.

    Raises :class:`ConfigNotFound`, :class:`ServerNotRunning`, :class:`AccessDenied`,
    :class:`SambaNotInstalled` or :class:`SourceError` when nothing can be read.
    """
    if source not in SOURCES:
        raise InvalidParameter(
            f"'{source}' is not a source; use one of: {', '.join(SOURCES)}.", "source", source
        )
    from .samba import server as samba_server
    from .samba import smbxsrv

    server = samba_server.resolve(smb_conf)
    if source == "smbstatus":
        from .samba import smbstatus

        return smbstatus.read_sessions(server.config)
    if server.layout is None:
        reason = (
            f"Samba {server.release or '(version unknown)'} stores sessions in a layout this "
            f"smbsession does not know (it knows {', '.join(smbxsrv.KNOWN_LAYOUTS)})"
        )
        if source == "tdb":
            raise SourceError(f"{reason}.", "tdb")
        from .samba import smbstatus

        result = smbstatus.read_sessions(server.config)
        result.warnings.insert(0, f"{reason}; reading through smbstatus, with fewer properties")
        return result
    from .samba import tdb_source

    return tdb_source.read_sessions(server)


def get_smb_session(
    session_id: Iterable[int] | int | None = None,
    client_computer_name: Iterable[str] | str | None = None,
    client_user_name: Iterable[str] | str | None = None,
    scope_name: Iterable[str] | str | None = None,
    cluster_node_name: Iterable[str] | str | None = None,
    include_hidden: bool = False,
    smb_instance: str | None = "Default",
    smb_conf: str | None = None,
    source: str = "auto",
) -> list[SmbSession]:
    """Return the SMB sessions of the local Samba server, like ``Get-SmbSession``.

    Each filter takes one value or a list; a session is returned when it matches any value
    of every filter given. Matches are exact and case-insensitive: ``client_computer_name``
    also matches an IPv6 address without brackets and the client's NetBIOS name;
    ``client_user_name`` is ``DOMAIN\\user``, and a bare user name matches any domain.
    ``include_hidden`` adds anonymous sessions and sessions still authenticating.
    ``smb_instance`` is ``"Default"`` (Samba's only instance); ``"CSV"``, ``"SBL"`` and
    ``"SR"`` select nothing. Sessions are ordered by SessionId. Records the source had to
    skip are reported as :class:`SmbSessionWarning`; the good ones are still returned.

    Raises :class:`InvalidParameter` for a bad argument (naming it), and
    :class:`ConfigNotFound`, :class:`ServerNotRunning`, :class:`AccessDenied`,
    :class:`SambaNotInstalled` or :class:`SourceError` when nothing can be read.
    """
    query = SessionQuery(
        session_id=_tuple(session_id),
        client_computer_name=_tuple(client_computer_name),
        client_user_name=_tuple(client_user_name),
        scope_name=_tuple(scope_name),
        cluster_node_name=_tuple(cluster_node_name),
        include_hidden=include_hidden,
        smb_instance=smb_instance,
    )
    result = read_sessions(smb_conf, source)
    if result.warnings:
        import warnings

        for message in result.warnings:
            warnings.warn(message, SmbSessionWarning, stacklevel=2)
    return query.select(result.sessions)
