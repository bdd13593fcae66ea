"""Many servers at once: the targets of ``-CimSession``, asked concurrently.

A target is written as:

- ``localhost`` or ``.``: this server, read locally;
- ``ssh://[user@]host[:port]``: a Samba server over SSH (:mod:`.ssh`);
- ``smb://[DOMAIN\\user@]host[:port]``: a server's srvsvc (MS-SRVS), when available;
- a bare host name: the same as ``ssh://host`` (SSH is how Linux servers are reached).

At most ``throttle`` targets are asked at the same time (0: :data:`DEFAULT_THROTTLE`),
each within ``timeout`` seconds. A target that fails is reported with its reason and
the others' sessions are still returned; every session carries ``ps_computer_name``, the
target as the user wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from ..errors import InvalidParameter, SmbSessionError
from ..model import SmbSession

#: Targets asked at once when ThrottleLimit is 0 or not given (PowerShell computes one;
#: 32 keeps a laptop's file descriptors and a fleet's sshd MaxStartups comfortable).
DEFAULT_THROTTLE = 32
LOCAL_NAMES = ("localhost", ".")


def _local(raw: str, smb_conf: str | None) -> list[SmbSession]:
    from .. import read_sessions

    return [dataclasses.replace(s, ps_computer_name=raw)
            for s in read_sessions(smb_conf).sessions]


async def _one(raw: str, smb_conf: str | None, timeout: float) -> list[SmbSession]:
    if raw.lower() in LOCAL_NAMES:
        return await asyncio.wait_for(asyncio.to_thread(_local, raw, smb_conf), timeout)
    if raw.lower().startswith("smb://"):
        raise SmbSessionError(f"{raw}: smb:// targets (MS-SRVS) are not available yet")
    from .ssh import list_sessions_async, parse_ssh_target

    text = raw if raw.lower().startswith("ssh://") else f"ssh://{raw}"
    target = parse_ssh_target(text)
    target.raw = raw
    return await list_sessions_async(target, smb_conf, timeout)


def check_targets(targets: list[str]) -> None:
    """Raise :class:`InvalidParameter` for a target that cannot be parsed."""
    from .ssh import parse_ssh_target

    for raw in targets:
        low = raw.lower()
        if low in LOCAL_NAMES or low.startswith("smb://"):
            continue
        parse_ssh_target(raw if low.startswith("ssh://") else f"ssh://{raw}")
        if not raw.strip():
            raise InvalidParameter("-CimSession: an empty target")


def read_many(targets: list[str], smb_conf: str | None = None, throttle: int = 0,
              timeout: float = 60.0) -> tuple[list[SmbSession], list[str]]:
    """Ask every target; return (their sessions, in target order) and one error line
    ``<target>: <reason>`` per target that failed."""
    check_targets(targets)
    limit = throttle if throttle > 0 else DEFAULT_THROTTLE

    async def ask_all() -> list[list[SmbSession] | BaseException]:
        gate = asyncio.Semaphore(limit)

        async def ask(raw: str) -> list[SmbSession]:
            async with gate:
                try:
                    return await _one(raw, smb_conf, timeout)
                except (TimeoutError, asyncio.TimeoutError):
                    raise SmbSessionError(f"{raw}: no answer within {timeout:g} s") from None

        return await asyncio.gather(*(ask(t) for t in targets), return_exceptions=True)

    sessions: list[SmbSession] = []
    errors: list[str] = []
    for raw, result in zip(targets, asyncio.run(ask_all()), strict=True):
        if isinstance(result, SmbSessionError):
            text = str(result)
            errors.append(text if text.startswith(raw) else f"{raw}: {text}")
        elif isinstance(result, BaseException):
            errors.append(f"{raw}: {type(result).__name__}: {result}")
        else:
            sessions.extend(result)
    return sessions, errors
