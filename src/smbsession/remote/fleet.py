"""Many servers at once: the targets of ``-CimSession``, asked concurrently.

A target is written as:

- ``localhost`` or ``.``: this server, read locally;
- ``ssh://[user@]host[:port]``: a Samba server over SSH (:mod:`.ssh`);
- ``smb://[DOMAIN\\user@]host[:port]``: a server's srvsvc, MS-SRVS (:mod:`.srvs`);
- a bare host name: the same as ``ssh://host`` (SSH is how Linux Samba servers are
  reached, and it gives every property; srvsvc gives fewer and needs a password).

At most ``throttle`` targets are asked at the same time (0: :data:`DEFAULT_THROTTLE`),
each within ``timeout`` seconds. A target that fails is reported with its reason and
the others' sessions are still returned; every session carries ``ps_computer_name``, the
target as the user wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ..closing import CloseResult, close_by_id
from ..errors import InvalidParameter, RemoteError, SmbSessionError
from ..model import SmbSession, SourceResult
from .srvs import SmbTarget, parse_smb_target
from .ssh import SshTarget, parse_ssh_target

#: Targets asked at once when ThrottleLimit is 0 or not given (PowerShell computes one;
#: 32 keeps a laptop's file descriptors and a fleet's sshd MaxStartups comfortable).
DEFAULT_THROTTLE = 32
LOCAL_NAMES = ("localhost", ".")

Target = str | SshTarget | SmbTarget  # str: a local target
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class SmbLogon:
    """How smb:// targets log on: ``credential`` (``DOMAIN\\user``) for targets that name
    no user, ``password`` (never logged or shown), or Kerberos from the credential cache."""

    credential: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    kerberos: bool = False


def parse_credential(text: str) -> tuple[str | None, str]:
    """Split ``-Credential`` (``DOMAIN\\user``, ``user@realm`` or ``user``) into
    (domain, user); raise :class:`InvalidParameter` for anything else."""
    domain, sep, user = text.strip().rpartition("\\")
    bad = not user or ":" in user or any(c in user for c in "/; \t") or (sep and not domain)
    if bad:
        raise InvalidParameter(
            f"-Credential: '{text}' is not a user name; write DOMAIN\\user or user (the "
            "password comes from SMBSESSION_PASSWORD or a prompt, never the command line)."
        )
    return (domain or None), user


def parse_target(raw: str, logon: SmbLogon | None = None) -> Target:
    """The target ``raw`` names: the local server (``raw`` itself), an :class:`SshTarget`
    or an :class:`SmbTarget` (with ``logon.credential`` as its user when it names none).
    Raises :class:`InvalidParameter` naming the value when it cannot be parsed."""
    low = raw.strip().lower()
    if not low:
        raise InvalidParameter("-CimSession: an empty target; write localhost, "
                               "ssh://[user@]host[:port] or smb://[DOMAIN\\user@]host[:port]")
    if low in LOCAL_NAMES:
        return raw
    if low.startswith("smb://"):
        target = parse_smb_target(raw)
        if target.user is None and logon is not None and logon.credential:
            domain, user = parse_credential(logon.credential)
            target = dataclasses.replace(target, user=user, domain=domain)
        return target
    if "://" in low and not low.startswith("ssh://"):
        raise InvalidParameter(f"-CimSession: '{raw}' has an unknown scheme; write localhost, "
                               "ssh://[user@]host[:port] or smb://[DOMAIN\\user@]host[:port]")
    target = parse_ssh_target(raw if low.startswith("ssh://") else f"ssh://{raw}")
    target.raw = raw
    return target


def check_targets(targets: Sequence[str], logon: SmbLogon | None = None) -> list[Target]:
    """Parse every target (see :func:`parse_target`) before anything is asked."""
    if logon is not None and logon.credential is not None:
        parse_credential(logon.credential)
    return [parse_target(raw, logon) for raw in targets]


def needs_password(targets: Sequence[Target]) -> bool:
    """Whether one of ``targets`` logs on with a password (an smb:// target)."""
    return any(isinstance(t, SmbTarget) for t in targets)


def _local(raw: str, smb_conf: str | None) -> SourceResult:
    from .. import read_sessions

    result = read_sessions(smb_conf)
    result.sessions = [s.replace(ps_computer_name=raw) for s in result.sessions]
    return result


async def _list_one(target: Target, smb_conf: str | None, timeout: float,
                    logon: SmbLogon) -> SourceResult:
    if isinstance(target, str):
        return await asyncio.to_thread(_local, target, smb_conf)
    if isinstance(target, SmbTarget):
        from . import srvs

        return SourceResult(await asyncio.to_thread(
            srvs.list_sessions, target, logon.password, timeout, logon.kerberos))
    from .ssh import read_sessions_async

    return await read_sessions_async(target, smb_conf, timeout)


def _name(target: Target) -> str:
    return target if isinstance(target, str) else str(target.raw or target)


def _each(targets: Sequence[Target], throttle: int, timeout: float,
          ask: Callable[[Target], Awaitable[T]]) -> list[T | str]:
    """Run ``ask`` for every target, at most ``throttle`` at once, each bounded by
    ``timeout`` (and a little more for the target's own timeouts to speak first); return
    per target its result or the error line ``<target>: <reason>``."""
    limit = throttle if throttle > 0 else DEFAULT_THROTTLE

    async def all_of() -> list[T | BaseException]:
        gate = asyncio.Semaphore(limit)

        async def one(target: Target) -> T:
            async with gate:
                try:
                    return await asyncio.wait_for(ask(target), timeout + 5)
                except (TimeoutError, asyncio.TimeoutError):
                    raise RemoteError(_name(target), f"no answer within {timeout:g} s"
                                      ) from None

        return await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)

    out: list[T | str] = []
    for target, result in zip(targets, asyncio.run(all_of()), strict=True):
        raw = _name(target)
        if isinstance(result, SmbSessionError):
            text = str(result)
            out.append(text if text.startswith(raw) else f"{raw}: {text}")
        elif isinstance(result, BaseException):
            out.append(f"{raw}: {type(result).__name__}: {result}")
        else:
            out.append(result)
    return out


def read_many(targets: Sequence[str], smb_conf: str | None = None, throttle: int = 0,
              timeout: float = 60.0, logon: SmbLogon | None = None,
              ) -> tuple[list[SmbSession], list[str], list[str]]:
    """Ask every target for its sessions.

    ``smb_conf`` applies to the local and ssh:// targets (on each server); ``logon`` says
    how smb:// targets log on. Returns the sessions, in target order; one error line
    ``<target>: <reason>`` per target that failed; and the warnings of the targets that
    answered (records they skipped, a fallback source), each ``<target>: <warning>``.
    Raises :class:`InvalidParameter` for a target that cannot be parsed, before anything
    is asked.
    """
    logon = logon or SmbLogon()
    parsed = check_targets(targets, logon)
    sessions: list[SmbSession] = []
    errors: list[str] = []
    warnings: list[str] = []
    for target, result in zip(parsed, _each(parsed, throttle, timeout,
                                            lambda t: _list_one(t, smb_conf, timeout, logon)),
                              strict=True):
        if isinstance(result, str):
            errors.append(result)
        else:
            sessions.extend(result.sessions)
            warnings.extend(f"{_name(target)}: {w}" for w in result.warnings)
    return sessions, errors, warnings


def smb_pairs(sessions: Sequence[SmbSession]) -> list[tuple[str, str | None]]:
    """The distinct (ClientComputerName, ClientUserName) pairs NetrSessionDel needs for
    ``sessions``, in order (each ends every session of that user from that client)."""
    return list(dict.fromkeys((s.client_computer_name, s.client_user_name)
                              for s in sessions if s.client_computer_name))


async def _close_one(target: Target, sessions: list[SmbSession], smb_conf: str | None,
                     timeout: float, logon: SmbLogon,
                     close_connection: bool) -> list[CloseResult]:
    if isinstance(target, SmbTarget):
        from . import srvs

        pairs = smb_pairs(sessions)
        reasons = await asyncio.to_thread(srvs.delete_sessions, target, logon.password, pairs,
                                          timeout, logon.kerberos)
        outcome = dict(zip(pairs, reasons, strict=True))

        def result(s: SmbSession) -> CloseResult:
            reason = outcome.get((s.client_computer_name or "", s.client_user_name),
                                 "no client address to name in NetrSessionDel")
            return CloseResult(s, reason is None, reason or "ended by NetrSessionDel")

        return [result(s) for s in sessions]
    ids = [s.session_id for s in sessions]
    if isinstance(target, str):
        done = await asyncio.to_thread(close_by_id, ids, smb_conf, close_connection)
    else:
        from .ssh import close_sessions_async

        done = await close_sessions_async(target, ids, smb_conf, close_connection, timeout)
    return [CloseResult(s, *done.get(s.session_id, (False, "not found: already gone")))
            for s in sessions]


def close_many(chosen: Sequence[SmbSession], smb_conf: str | None = None, throttle: int = 0,
               timeout: float = 60.0, logon: SmbLogon | None = None,
               close_connection: bool = False) -> tuple[list[CloseResult], list[str]]:
    """Close ``chosen`` sessions, each on the target it was listed from
    (``ps_computer_name``), without asking: confirm before calling.

    Local and ssh:// targets close each session by its id, as
    :func:`smbsession.close_smb_session` does (root on the server). smb:// targets have
    no session id: MS-SRVS ``NetrSessionDel`` ends every session of the user from the
    client (see :func:`smb_pairs`), which the caller must say before asking. Returns the
    result per session and one error line per target that could not be reached.
    """
    logon = logon or SmbLogon()
    by_target: dict[str, list[SmbSession]] = {}
    for s in chosen:
        by_target.setdefault(s.ps_computer_name or "localhost", []).append(s)
    names = list(by_target)
    parsed = check_targets(names, logon)
    results: list[CloseResult] = []
    errors: list[str] = []

    def ask(target: Target) -> Awaitable[list[CloseResult]]:
        return _close_one(target, by_target[_name(target)], smb_conf, timeout, logon,
                          close_connection)

    for result in _each(parsed, throttle, timeout, ask):
        if isinstance(result, str):
            errors.append(result)
        else:
            results.extend(result)
    return results, errors
