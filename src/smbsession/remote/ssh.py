"""Remote Samba servers over SSH, agentless: ``-CimSession ssh://[user@]host[:port]``.

Nothing of smbsession needs to be installed on the server beyond Python 3: the reader
(the standard-library modules that read a local Samba server) is zipped in memory, sent
over the SSH channel's stdin, and run there with ``python3``; it prints the sessions as
JSON, which become :class:`~smbsession.model.SmbSession` records here. ``-SmbConf``
applies on the server. Reading Samba's state needs root there, as locally.

SSH itself is asyncssh (the optional extra ``smbsession[remote]``), used as OpenSSH is:
``~/.ssh/config``, ``~/.ssh/known_hosts``, the agent and the default keys. Host keys are
verified: an unknown host key is refused, with its fingerprint and how to accept it.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

from ..errors import InvalidParameter, RemoteError
from ..model import ATTRIBUTE_OF, SmbSession, SourceResult

#: What the server does not run: the commands, the lab, and the remote and monitoring sides.
_NOT_SHIPPED = frozenset({"cli", "lab", "remote", "exporter", "top"})

# Runs on the server: read the zip from stdin, import the reader from it, do what argv
# says (list, or close the session ids given as JSON), print the answer as JSON.
_BOOTSTRAP = r"""
import json, os, sys, tempfile
data = sys.stdin.buffer.read()
fd, path = tempfile.mkstemp(suffix=".zip")
try:
    os.write(fd, data); os.close(fd)
    sys.path.insert(0, path)
    import smbsession
    action, conf = sys.argv[1], sys.argv[2] or None
    try:
        if action == "list":
            result = smbsession.read_sessions(conf)
            answer = {"sessions": [{**s.to_dict(), "_hidden": s.hidden,
                                     "_node_keys": list(s.cluster_node_keys)}
                                   for s in result.sessions],
                      "warnings": result.warnings}
        else:
            from smbsession.closing import close_by_id
            args = json.loads(sys.argv[3])
            done = close_by_id(args["ids"], conf, args["close_connection"])
            answer = {"results": [[sid, *outcome] for sid, outcome in done.items()]}
    except smbsession.SmbSessionError as exc:
        answer = {"error": str(exc)}
    print(json.dumps(answer))
finally:
    os.unlink(path)
"""

_TARGET = re.compile(r"^ssh://(?:(?P<user>[^@/\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+)"
                     r"(?::(?P<port>\d{1,5}))?/?$")



class SshTarget:
    """An ``ssh://[user@]host[:port]`` target; ``raw`` is the text as the user wrote it."""

    __slots__ = ("host", "port", "raw", "user")

    def __init__(self, raw: str, host: str, port: int | None, user: str | None) -> None:
        self.raw = raw
        self.host = host
        self.port = port
        self.user = user

    def __repr__(self) -> str:
        return f"SshTarget({self.raw!r})"


def parse_ssh_target(text: str) -> SshTarget:
    """Parse ``ssh://[user@]host[:port]`` (IPv6 in brackets); raise
    :class:`InvalidParameter` naming the value otherwise."""
    m = _TARGET.match(text.strip())
    port = int(m.group("port")) if m and m.group("port") else None
    if not m or (port is not None and not 0 < port < 65536):
        raise InvalidParameter(
            f"-CimSession: '{text}' is not an SSH target; write ssh://[user@]host[:port]."
        )
    return SshTarget(text, m.group("host").strip("[]"), port, m.group("user"))


def reader_zip() -> bytes:
    """The reader's modules, zipped (a few dozen KiB), to be run on the server."""
    root = Path(__file__).resolve().parent.parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if relative.parts[0] not in _NOT_SHIPPED:
                zf.write(path, f"smbsession/{relative.as_posix()}")
    return buf.getvalue()


def _text(output: bytes | str | None) -> str:
    """What the reader printed, as text (asyncssh gives bytes with ``encoding=None``)."""
    if isinstance(output, str):
        return output
    return (output or b"").decode(errors="replace")


def _session(row: dict, computer: str) -> SmbSession:
    fields = {ATTRIBUTE_OF[name]: value for name, value in row.items() if name in ATTRIBUTE_OF}
    if isinstance(fields.get("shares"), list):
        fields["shares"] = tuple(fields["shares"])
    return SmbSession(**fields, hidden=bool(row.get("_hidden")),
                      ps_computer_name=computer,
                      cluster_node_keys=tuple(str(k) for k in row.get("_node_keys") or ()))


async def _run_reader(target: SshTarget, args: list[str], timeout: float,
                      options: dict[str, object]) -> dict:
    """Run the bootstrap with ``args`` on the server; return its JSON answer."""
    try:
        import asyncssh
    except ImportError:
        raise RemoteError(target.raw, "SSH targets need the remote extra: "
                          "pip install 'smbsession[remote]'") from None
    import asyncio
    import shlex

    async def run() -> str:
        async with asyncssh.connect(target.host, port=target.port or (),
                                    username=target.user or (), **options) as conn:
            command = " ".join(["python3", "-c", *map(shlex.quote, [_BOOTSTRAP, *args])])
            done = await conn.run(command, input=reader_zip(), encoding=None, check=False)
            if done.exit_status != 0:
                err = _text(done.stderr).strip().splitlines()
                raise RemoteError(target.raw, f"the reader failed on the server: "
                                  f"{err[-1] if err else done.exit_status}")
            return _text(done.stdout)

    try:
        out = await asyncio.wait_for(run(), timeout)
    except asyncssh.HostKeyNotVerifiable:
        raise RemoteError(target.raw, await _unknown_host_key(target)) from None
    except asyncssh.PermissionDenied:
        raise RemoteError(target.raw, "the server refused our SSH keys (permission "
                          "denied); check the user, ssh-agent and ~/.ssh") from None
    except (TimeoutError, asyncio.TimeoutError):
        raise RemoteError(target.raw, f"no answer within {timeout:g} s") from None
    except OSError as exc:
        reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0
                  else exc.strerror or str(exc))
        raise RemoteError(target.raw, f"cannot connect to {target.host}:"
                          f"{target.port or 22}: {reason}") from None
    except asyncssh.Error as exc:
        raise RemoteError(target.raw, f"{exc}") from None
    try:
        answer = json.loads(out)
    except ValueError:
        raise RemoteError(target.raw, "the server's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise RemoteError(target.raw, "the server's answer is not a JSON object")
    if answer.get("error"):
        raise RemoteError(target.raw, f"{answer['error']}")
    return answer


async def read_sessions_async(target: SshTarget, smb_conf: str | None = None,
                              timeout: float = 30.0, **options: object) -> SourceResult:
    """Read the sessions of the Samba server at ``target``, with the warnings of its
    reader (see :func:`list_sessions`)."""
    answer = await _run_reader(target, ["list", smb_conf or ""], timeout, options)
    try:
        return SourceResult([_session(row, target.raw) for row in answer["sessions"]],
                            [str(w) for w in answer.get("warnings", [])], f"ssh {target.raw}")
    except (KeyError, TypeError, ValueError) as exc:
        raise RemoteError(target.raw, f"the server's answer is malformed ({exc})") from None


async def close_sessions_async(target: SshTarget, session_ids: list[int],
                               smb_conf: str | None = None, close_connection: bool = False,
                               timeout: float = 30.0,
                               **options: object) -> dict[int, tuple[bool, str]]:
    """Close the sessions ``session_ids`` of the Samba server at ``target``: runs
    :func:`smbsession.closing.close_by_id` there (as root, without asking: confirm before
    calling) and returns what it returns."""
    request = json.dumps({"ids": session_ids, "close_connection": close_connection})
    answer = await _run_reader(target, ["close", smb_conf or "", request], timeout, options)
    try:
        return {int(sid): (bool(closed), str(message))
                for sid, closed, message in answer["results"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise RemoteError(target.raw, f"the server's answer is malformed ({exc})") from None


async def _unknown_host_key(target: SshTarget) -> str:
    import asyncssh

    where = f"[{target.host}]:{target.port}" if target.port else target.host
    try:
        key = await asyncssh.get_server_host_key(target.host, target.port or 22)
        fingerprint = key.get_fingerprint() if key else "unknown"
    except (OSError, asyncssh.Error):
        fingerprint = "unknown"
    return (f"the server's host key is not known ({fingerprint}). If that is "
            f"the right key, accept it with: ssh-keyscan -p {target.port or 22} {target.host} "
            f">> ~/.ssh/known_hosts   (or connect once with ssh {where})")


def list_sessions(target: SshTarget, smb_conf: str | None = None, timeout: float = 30.0,
                  **options: object) -> list[SmbSession]:
    """List the sessions of the Samba server at ``target`` over SSH.

    ``smb_conf`` is the smb.conf on the server (default: the server's own). ``options``
    go to ``asyncssh.connect`` (for example ``known_hosts=`` or ``client_keys=``); by
    default OpenSSH's files and agent are used and host keys are verified. Every failure
    is a :class:`RemoteError` whose message starts with the target.
    """
    import asyncio

    return asyncio.run(read_sessions_async(target, smb_conf, timeout, **options)).sessions
