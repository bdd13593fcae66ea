"""Many servers at once: the targets of ``-CimSession``, asked concurrently.

A target is written as:

- ``localhost`` or ``.``: this server, read locally;
- ``ssh://[user@]host[:port]``: a Samba server over SSH (:mod:`.ssh`);
- ``smb://[DOMAIN\\user@]host[:port]``: a server's srvsvc, MS-SRVS (:mod:`.srvs`);
- a bare host name: the same as ``ssh://host`` (SSH is how Linux Samba servers are
  reached, and it gives every property; srvsvc gives fewer and needs a password).

At most ``throttle`` targets are asked at the same time (0: :data:`DEFAULT_THROTTLE`),
each within ``timeout`` seconds, and each target's answer is delivered as soon as it
comes (:func:`stream_sessions`). A target that fails is reported with its reason and the
others' sessions are still delivered. Every session carries ``ps_computer_name``: the
host as the target names it, with the port only where two targets share a host
(:func:`computer_names`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
    ssh = parse_ssh_target(raw if low.startswith("ssh://") else f"ssh://{raw}")
    ssh.raw = raw
    return ssh


def check_targets(targets: Sequence[str], logon: SmbLogon | None = None) -> list[Target]:
    """Parse every target (see :func:`parse_target`) before anything is asked."""
    if logon is not None and logon.credential is not None:
        parse_credential(logon.credential)
    return [parse_target(raw, logon) for raw in targets]


def target_kind(target: Target) -> str:
    """``local``, ``ssh`` or ``smb``: how ``target`` is asked."""
    if isinstance(target, str):
        return "local"
    return "smb" if isinstance(target, SmbTarget) else "ssh"


def computer_names(targets: Sequence[Target]) -> list[str]:
    """The PSComputerName of each target: the host as the target names it (no scheme,
    no user), with ``:port`` added only where two targets name the same host."""
    hosts: list[tuple[str, int | None]] = []
    for target in targets:
        if isinstance(target, str):
            hosts.append((target, None))
            continue
        host = f"[{target.host}]" if ":" in target.host else target.host
        hosts.append((host, target.port))
    count = Counter(h.lower() for h, _ in hosts)
    names = [f"{host}:{port}" if count[host.lower()] > 1 and port is not None else host
             for host, port in hosts]
    again = Counter(n.lower() for n in names)  # the same host and port twice, or localhost
    return [name if again[name.lower()] == 1 else _name(target)
            for name, target in zip(names, targets, strict=True)]


class TargetResult:
    """What one -CimSession target gave: ``target`` as written, ``computer`` (its
    PSComputerName), its ``sessions`` and ``warnings`` (records or facts it skipped), or
    ``error``, a :class:`~smbsession.errors.RemoteError`, when it failed."""

    __slots__ = ("computer", "error", "sessions", "target", "warnings")

    def __init__(self, target: str, computer: str, sessions: list[SmbSession],
                 warnings: list[str], error: RemoteError | None = None) -> None:
        self.target = target
        self.computer = computer
        self.sessions = sessions
        self.warnings = warnings
        self.error = error

    def __repr__(self) -> str:
        state = f"error={self.error}" if self.error else f"{len(self.sessions)} session(s)"
        return f"TargetResult({self.target!r}, {state})"


def _local(smb_conf: str | None) -> SourceResult:
    from .. import read_sessions

    return read_sessions(smb_conf)


async def _list_one(target: Target, smb_conf: str | None, timeout: float,
                    logon: SmbLogon) -> SourceResult:
    if isinstance(target, str):
        return await asyncio.to_thread(_local, smb_conf)
    if isinstance(target, SmbTarget):
        from . import srvs

        return SourceResult(await asyncio.to_thread(
            srvs.list_sessions, target, logon.password, timeout, logon.kerberos))
    from .ssh import read_sessions_async

    return await read_sessions_async(target, smb_conf, timeout)


def _name(target: Target) -> str:
    return target if isinstance(target, str) else str(target.raw or target)


def _as_remote_error(target: Target, exc: BaseException) -> RemoteError:
    if isinstance(exc, RemoteError) and exc.target == _name(target):
        return exc
    if isinstance(exc, SmbSessionError):
        return RemoteError(_name(target), str(exc))
    return RemoteError(_name(target), f"{type(exc).__name__}: {exc}")


def _each(targets: Sequence[Target], throttle: int, timeout: float,
          ask: Callable[[Target], Awaitable[T]]) -> Iterator[tuple[int, T | RemoteError]]:
    """Run ``ask`` for every target, at most ``throttle`` at once, each bounded by
    ``timeout`` (and a little more for the target's own timeouts to speak first); yield
    ``(index of the target, its result or its error)`` as each one ends."""
    limit = throttle if throttle > 0 else DEFAULT_THROTTLE
    done: queue.SimpleQueue[tuple[int, T | RemoteError] | None] = queue.SimpleQueue()

    async def all_of() -> None:
        gate = asyncio.Semaphore(limit)

        async def one(index: int, target: Target) -> None:
            async with gate:
                try:
                    result: T | RemoteError = await asyncio.wait_for(ask(target), timeout + 5)
                except (TimeoutError, asyncio.TimeoutError):
                    result = RemoteError(_name(target), f"no answer within {timeout:g} s")
                except Exception as exc:  # a target's failure never loses the others
                    result = _as_remote_error(target, exc)
            done.put((index, result))

        await asyncio.gather(*(one(i, t) for i, t in enumerate(targets)))

    def run() -> None:
        try:
            asyncio.run(all_of())
        finally:
            done.put(None)

    threading.Thread(target=run, name="smbsession-fleet", daemon=True).start()
    while (item := done.get()) is not None:
        yield item


def stream_sessions(targets: Sequence[str], smb_conf: str | None = None, throttle: int = 0,
                    timeout: float = 60.0, logon: SmbLogon | None = None,
                    ) -> Iterator[TargetResult]:
    """Ask every target for its sessions; yield one :class:`TargetResult` per target, as
    each one answers (the fastest first).

    ``smb_conf`` applies to the local and ssh:// targets (on each server); ``logon`` says
    how smb:// targets log on. Raises :class:`InvalidParameter` for a target that cannot
    be parsed, before anything is asked.
    """
    logon = logon or SmbLogon()
    parsed = check_targets(targets, logon)
    names = computer_names(parsed)
    for index, result in _each(parsed, throttle, timeout,
                               lambda t: _list_one(t, smb_conf, timeout, logon)):
        raw, computer = _name(parsed[index]), names[index]
        if isinstance(result, RemoteError):
            yield TargetResult(raw, computer, [], [], result)
        else:
            yield TargetResult(raw, computer,
                               [s.replace(ps_computer_name=computer) for s in result.sessions],
                               list(result.warnings))


def read_many(targets: Sequence[str], smb_conf: str | None = None, throttle: int = 0,
              timeout: float = 60.0, logon: SmbLogon | None = None,
              ) -> tuple[list[SmbSession], list[str], list[str]]:
    """Ask every target for its sessions, as :func:`stream_sessions`, and wait for all.

    Returns the sessions, in target order; one error line ``<target>: <reason>`` per
    target that failed; and the warnings of the targets that answered, each
    ``<target>: <warning>``.
    """
    results = {r.target: r for r in stream_sessions(targets, smb_conf, throttle, timeout,
                                                    logon)}
    ordered = [results[_name(t)] for t in check_targets(targets, logon)]
    sessions = [s for r in ordered for s in r.sessions]
    errors = [str(r.error) for r in ordered if r.error is not None]
    warnings = [f"{r.target}: {w}" for r in ordered for w in r.warnings]
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


def close_many(chosen: Sequence[SmbSession], targets: Sequence[str],
               smb_conf: str | None = None, throttle: int = 0, timeout: float = 60.0,
               logon: SmbLogon | None = None,
               close_connection: bool = False) -> tuple[list[CloseResult], list[RemoteError]]:
    """Close ``chosen`` sessions, each on the one of ``targets`` it was listed from (its
    ``ps_computer_name``, see :func:`computer_names`), without asking: confirm before
    calling.

    Local and ssh:// targets close each session by its id, as
    :func:`smbsession.close_smb_session` does (root on the server). smb:// targets have
    no session id: MS-SRVS ``NetrSessionDel`` ends every session of the user from the
    client (see :func:`smb_pairs`), which the caller must say before asking. Returns the
    result per session and one error per target that could not be reached.
    """
    logon = logon or SmbLogon()
    parsed = check_targets(targets, logon)
    target_of = dict(zip(computer_names(parsed), parsed, strict=True))
    by_target: dict[str, list[SmbSession]] = {}
    results: list[CloseResult] = []
    for s in chosen:
        if s.ps_computer_name in target_of:
            by_target.setdefault(s.ps_computer_name, []).append(s)
        else:
            results.append(CloseResult(s, False, f"{s.ps_computer_name or 'this server'} is "
                                                 "not one of the -CimSession targets"))
    names = list(by_target)
    asked = [target_of[name] for name in names]
    errors: list[RemoteError] = []

    def ask(target: Target) -> Awaitable[list[CloseResult]]:
        return _close_one(target, by_target[names[asked.index(target)]], smb_conf, timeout,
                          logon, close_connection)

    for _index, result in _each(asked, throttle, timeout, ask):
        if isinstance(result, RemoteError):
            errors.append(result)
        else:
            results.extend(result)
    return results, errors
