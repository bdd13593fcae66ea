"""Every error and warning smbsession raises on purpose.

Each error carries what went wrong as attributes (the parameter and the value, the target,
the path), so that a program can act on it without parsing its message; the message says
what went wrong and what to do about it, in plain words. None of them speaks the command
line: the commands turn them into PowerShell's messages and pick the exit code.

The hierarchy::

    SmbSessionError
    ├── InvalidParameter          a bad argument (``parameter``, ``value``)
    │   └── ConfigNotFound        the smb.conf asked for cannot be read (``path``)
    ├── SambaNotInstalled         a Samba program is missing (``program``)
    ├── ServerNotRunning          no smbd runs for the smb.conf (``config_path``)
    ├── AccessDenied              Samba's state is root-only (``path``)
    ├── SourceError               a source failed and left nothing to report (``source``)
    ├── SessionNotFound           a close selected nothing (``unmatched``)
    ├── ConfirmationRequired      a close needs force or a confirmation
    ├── RemoteError               a -CimSession target failed (``target``, ``reason``)
    │   ├── RemoteAccessDenied    the target refused to list sessions to this account
    │   └── ExtraMissing          an optional extra is not installed (``extra``)
    └── LabError                  the lab could not be set up, started or stopped

    SmbSessionWarning (a UserWarning): something was skipped; the rest was delivered.
"""

from __future__ import annotations

TYPE_CHECKING = False  # collections costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Sequence


class SmbSessionError(Exception):
    """Base class of every error smbsession raises on purpose."""


class InvalidParameter(SmbSessionError):
    """A parameter was given a value it cannot take.

    ``parameter`` is the Python name of the parameter (``session_id``, ``source``; None
    when the error is about the input as a whole), ``value`` the value given, and
    ``detail`` what is wrong with it and what is accepted. The message is
    ``<parameter>: <detail>``.
    """

    def __init__(self, detail: str, parameter: str | None = None,
                 value: object = None) -> None:
        self.detail = detail
        self.parameter = parameter
        self.value = value
        super().__init__(f"{parameter}: {detail}" if parameter else detail)


class ConfigNotFound(InvalidParameter):
    """The smb.conf that was asked for (``path``) does not exist or cannot be read."""

    def __init__(self, detail: str, path: str) -> None:
        self.path = path
        super().__init__(detail, "smb_conf", path)


class SambaNotInstalled(SmbSessionError):
    """A Samba program this operation needs (``program``) is not installed."""

    def __init__(self, message: str, program: str | None = None) -> None:
        self.program = program
        super().__init__(message)


class ServerNotRunning(SmbSessionError):
    """No smbd is running for the smb.conf ``config_path``."""

    def __init__(self, message: str, config_path: str | None = None) -> None:
        self.config_path = config_path
        super().__init__(message)


class AccessDenied(SmbSessionError):
    """Samba's state (``path``, when one file is the reason) cannot be read or changed
    with the current privileges: it is root-only."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class SourceError(SmbSessionError):
    """A data source (``source``: ``tdb``, ``smbstatus``, ``ctdb``...) failed in a way that
    leaves nothing to report."""

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(message)


class SessionNotFound(SmbSessionError):
    """The query matched no session, so nothing was closed.

    ``unmatched`` lists the ``(property, value)`` pairs that matched nothing, PowerShell
    property names first (``("SessionId", 7)``); empty when the query had no filter.
    """

    def __init__(self, message: str,
                 unmatched: Sequence[tuple[str, object]] = ()) -> None:
        self.unmatched = tuple(unmatched)
        super().__init__(message)


class ConfirmationRequired(SmbSessionError):
    """Closing needs ``force`` or an interactive confirmation (nothing was closed)."""


class RemoteError(SmbSessionError):
    """A remote target failed: ``target`` as the caller wrote it, ``reason`` why.

    The message is ``<target>: <reason>``.
    """

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}" if target else reason)


class RemoteAccessDenied(RemoteError):
    """The server refused to list its sessions to this account (MS-SRVS NetrSessionEnum
    needs administrator rights)."""


class ExtraMissing(RemoteError):
    """An optional extra this target needs (``extra``: ``remote``...) is not installed."""

    def __init__(self, target: str, reason: str, extra: str = "remote") -> None:
        self.extra = extra
        super().__init__(target, reason)


class LabError(SmbSessionError):
    """The lab could not be set up, started or stopped (the message says why)."""


class SmbSessionWarning(UserWarning):
    """Something was skipped while reading (a record, a fact); the rest was delivered."""


class NamespaceError(SmbSessionError):
    """Another process's namespace could not be entered (``pid``, the namespace ``path``
    such as ``/proc/1234/ns/net``, the ``reason`` and the ``errno``)."""

    def __init__(self, pid: int, path: str, reason: str, errno: int | None = None) -> None:
        super().__init__(f"cannot enter the namespace {path} of process {pid}: {reason}")
        self.pid = pid
        self.path = path
        self.reason = reason
        self.errno = errno


class KerberosError(RemoteError):
    """Kerberos authentication to a remote target failed before any SMB was spoken: a
    missing or expired credential cache, an unsupported cache type, a wrong realm, a KDC
    that does not answer. ``target``, ``ccache`` and ``reason`` say which and why."""

    def __init__(self, target: str, reason: str, ccache: str | None = None) -> None:
        self.ccache = ccache
        super().__init__(target, f"Kerberos logon failed: {reason}")


class ClusterUnavailable(SourceError):
    """A clustered server's ctdbd cannot be used: its socket (``socket_path``) is absent,
    refuses connections, or ctdbd refused or garbled a request (``reason`` says which).

    Nothing is listed from a cluster whose ctdbd cannot be asked: a cluster listing is
    never made from one node's local copy of the databases.
    """

    def __init__(self, message: str, socket_path: str | None = None,
                 reason: str | None = None) -> None:
        self.socket_path = socket_path
        self.reason = reason
        super().__init__(message, "ctdb")


class ClusterTimeout(ClusterUnavailable):
    """ctdbd did not answer within ``deadline`` seconds: typically a traverse during a
    recovery, or a node that stopped answering; nothing partial is listed."""

    def __init__(self, message: str, socket_path: str | None = None,
                 deadline: float | None = None) -> None:
        self.deadline = deadline
        super().__init__(message, socket_path, "timeout")
