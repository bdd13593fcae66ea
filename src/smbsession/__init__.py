"""smbsession: Get-SmbSession for Samba.

Lists the SMB sessions of a Samba server the way Windows' ``Get-SmbSession`` does, and
closes them the way ``Close-SmbSession`` does::

    >>> import smbsession
    >>> for s in smbsession.get_smb_session(client_user_name=["LAB\\\\alice"]):
    ...     print(s.session_id, s.client_computer_name, s.dialect, s.num_opens)

One server (this one: reading its state needs root, as ``smbstatus`` does) or many
(``cim_session=["ssh://fs1", "smb://CONTOSO\\admin@fs2"]``). The functions here are the
whole public interface: :func:`get_smb_session`, :func:`read_sessions` (this server,
unfiltered), :func:`stream_smb_session` (many servers, each as it answers),
:func:`close_smb_session`; the records (:class:`SmbSession`), the query
(:class:`SessionQuery`) and the errors (:mod:`smbsession.errors`).
"""

from __future__ import annotations

from .errors import (
    AccessDenied,
    ConfigNotFound,
    ConfirmationRequired,
    ExtraMissing,
    InvalidParameter,
    LabError,
    RemoteAccessDenied,
    RemoteError,
    SambaNotInstalled,
    ServerNotRunning,
    SessionNotFound,
    SmbSessionError,
    SmbSessionWarning,
    SourceError,
)
from .model import SmbSession, SourceResult
from .query import SessionQuery

TYPE_CHECKING = False  # typing and the closing/remote modules cost a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from .closing import CloseResult, close_smb_session
    from .remote.fleet import TargetResult

__all__ = [
    "AccessDenied",
    "CloseResult",
    "ConfigNotFound",
    "ConfirmationRequired",
    "ExtraMissing",
    "InvalidParameter",
    "LabError",
    "RemoteAccessDenied",
    "RemoteError",
    "SambaNotInstalled",
    "ServerNotRunning",
    "SessionNotFound",
    "SessionQuery",
    "SmbSession",
    "SmbSessionError",
    "SmbSessionWarning",
    "SourceError",
    "SourceResult",
    "TargetResult",
    "close_smb_session",
    "get_smb_session",
    "read_sessions",
    "stream_smb_session",
    "target_kinds",
]

__version__ = "0.2.0"

#: Data sources for a local Samba server.
SOURCES: tuple[str, ...] = ("auto", "tdb", "smbstatus")


def __getattr__(name: str) -> object:
    # Closing and the remote side load when first used, not with every listing.
    if name in ("CloseResult", "close_smb_session"):
        from . import closing

        return getattr(closing, name)
    if name == "TargetResult":
        from .remote.fleet import TargetResult

        return TargetResult
    raise AttributeError(f"module 'smbsession' has no attribute '{name}'")


def _tuple(values: Iterable[object] | object | None) -> tuple:
    if values is None:
        return ()
    if isinstance(values, (str, int)):
        return (values,)
    return tuple(values)  # type: ignore[arg-type]


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, SmbSessionWarning, stacklevel=3)


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
    from .samba import layouts, smbxsrv
    from .samba import server as samba_server

    server = samba_server.resolve(smb_conf)
    if source == "smbstatus":
        from .samba import smbstatus

        return smbstatus.read_sessions(server.config)
    if server.layout is None:
        newest = layouts.newest().name
        if layouts.is_newer_than_known(server.release):
            reason = (
                f"Samba {server.release} is newer than the newest release this smbsession "
                f"knows ({newest}), and its records do not all decode exactly with the "
                f"{newest} layout"
            )
        else:
            reason = (
                f"Samba {server.release or '(version unknown)'} stores sessions in a layout "
                f"this smbsession does not know (it knows {smbxsrv.KNOWN_LAYOUTS[0]} to "
                f"{newest})"
            )
        if source == "tdb":
            raise SourceError(f"{reason}.", "tdb")
        from .samba import smbstatus

        result = smbstatus.read_sessions(server.config)
        result.warnings.insert(0, f"{reason}; reading through smbstatus, with fewer properties")
        return result
    from .samba import tdb_source

    return tdb_source.read_sessions(server)


def target_kinds(cim_session: Sequence[str] | str, credential: str | None = None) -> list[str]:
    """Check -CimSession targets (and ``credential``) without asking any: return each
    target's kind, ``local``, ``ssh`` or ``smb`` (smb:// targets log on with a password
    or Kerberos). Raises :class:`InvalidParameter` naming the first bad one."""
    from .remote.fleet import SmbLogon, check_targets, target_kind

    targets = [cim_session] if isinstance(cim_session, str) else list(cim_session)
    return [target_kind(t) for t in check_targets(targets, SmbLogon(credential))]


def stream_smb_session(
    cim_session: Sequence[str] | str,
    smb_conf: str | None = None,
    credential: str | None = None,
    password: str | None = None,
    kerberos: bool = False,
    throttle_limit: int = 0,
    operation_timeout_sec: int = 0,
) -> Iterator[TargetResult]:
    """Ask many servers for their sessions at once; yield one
    :class:`~smbsession.remote.fleet.TargetResult` per target as each answers.

    A target is ``localhost`` (this server), ``ssh://[user@]host[:port]`` (a Samba server
    over SSH: every property; needs the ``remote`` extra and Python 3 on the server),
    ``smb://[DOMAIN\\user@]host[:port]`` (the server's MS-SRVS: Windows or Samba, fewer
    properties) or a bare host name (``ssh://host``). ``smb_conf`` applies on the local
    and ssh:// targets; ``credential`` (``DOMAIN\\user``) is the account of smb:// targets
    that name none, logging on with ``password`` or, with ``kerberos``, the credential
    cache. At most ``throttle_limit`` targets are asked at once (0: 32), each within
    ``operation_timeout_sec`` seconds (0: 60). Each result holds the target's sessions
    (``ps_computer_name`` set to its PSComputerName) and warnings, or its error.

    Raises :class:`InvalidParameter` for a target or credential that cannot be parsed,
    before anything is asked.
    """
    from .remote.fleet import SmbLogon, stream_sessions

    targets = [cim_session] if isinstance(cim_session, str) else list(cim_session)
    return stream_sessions(targets, smb_conf, throttle_limit,
                           float(operation_timeout_sec or 60),
                           SmbLogon(credential, password, kerberos))


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
    cim_session: Sequence[str] | str | None = None,
    credential: str | None = None,
    password: str | None = None,
    kerberos: bool = False,
    throttle_limit: int = 0,
    operation_timeout_sec: int = 0,
) -> list[SmbSession]:
    """Return the SMB sessions of the local Samba server, or of the servers
    ``cim_session`` names, like ``Get-SmbSession``.

    Each filter takes one value or a list; a session is returned when it matches any value
    of every filter given. Matches are exact and case-insensitive: ``client_computer_name``
    also matches an IPv6 address without brackets and the client's NetBIOS name;
    ``client_user_name`` is ``DOMAIN\\user``, and a bare user name matches any domain.
    ``include_hidden`` adds anonymous sessions and sessions still authenticating.
    ``smb_instance`` is ``"Default"`` (Samba's only instance); ``"CSV"``, ``"SBL"`` and
    ``"SR"`` select nothing. Sessions are ordered by SessionId. Records the source had to
    skip are reported as :class:`SmbSessionWarning`; the good ones are still returned.

    With ``cim_session`` (and ``credential``, ``password``, ``kerberos``,
    ``throttle_limit``, ``operation_timeout_sec``: see :func:`stream_smb_session`), every
    target is asked at once; a target that fails is reported as a
    :class:`SmbSessionWarning` (``<target>: <reason>``) and the others' sessions are
    returned, in target order.

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
    if cim_session:
        targets = [cim_session] if isinstance(cim_session, str) else list(cim_session)
        answers = {a.target: a for a in stream_smb_session(
            targets, smb_conf, credential, password, kerberos, throttle_limit,
            operation_timeout_sec)}
        sessions: list[SmbSession] = []
        for answer in sorted(answers.values(), key=lambda a: targets.index(a.target)):
            if answer.error is not None:
                _warn(str(answer.error))
            for message in answer.warnings:
                _warn(f"{answer.target}: {message}")
            sessions.extend(answer.sessions)
        return query.select(sessions)
    result = read_sessions(smb_conf, source)
    for message in result.warnings:
        _warn(message)
    return query.select(result.sessions)
