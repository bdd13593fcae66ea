"""Errors raised by smbsession. Each message says what went wrong and what to do about it."""

from __future__ import annotations


class SmbSessionError(Exception):
    """Base class of every error smbsession raises on purpose.

    ``exit_code`` is what the command-line tools exit with when this error ends them.
    """

    exit_code: int = 1


class InvalidParameter(SmbSessionError):
    """A parameter was given a value it cannot take (names the parameter and the value)."""

    exit_code = 2


class ConfigNotFound(InvalidParameter):
    """The smb.conf that was asked for does not exist or cannot be read."""


class SambaNotInstalled(SmbSessionError):
    """A Samba program this operation needs is not installed."""


class ServerNotRunning(SmbSessionError):
    """No smbd is running for the chosen smb.conf."""


class AccessDenied(SmbSessionError):
    """Samba's state cannot be read with the current privileges (it is root-only)."""


class SourceError(SmbSessionError):
    """A data source failed in a way that leaves nothing to report."""


class RemoteError(SmbSessionError):
    """A remote target (``-CimSession``) failed; the message is ``<target>: <reason>``."""
