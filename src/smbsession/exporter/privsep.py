"""Privilege separation: a root reader behind a socket pair, an unprivileged HTTP front.

Reading Samba's databases needs root (they are mode 0600), serving HTTP does not. Started
as root, the exporter forks before it serves anything:

- the **reader** (child) stays root and keeps nothing but its end of a unix socket pair.
  It understands one request, ``read``, and answers with the sessions. It takes
  no parameter from the front (the smb.conf was fixed when it was forked), so a
  compromised front can read sessions — what it would serve anyway — and nothing else:
  no closing, no files, no other server.
- the **front** (parent) drops to an unprivileged user (``--user``, default ``nobody``:
  supplementary groups cleared, then gid, then uid) after it has bound its port and
  read its TLS key, and serves HTTP. It parses HTTP and YAML, the attack surface, as
  that user.

Each answer is length-prefixed (8-byte big-endian length, then the records pickled: the
data flows from the privileged side to the unprivileged one only, and the front's
unpickler builds nothing but :class:`~smbsession.SmbSession` records and plain data), so
the two sides cannot lose their place in the stream. The request is one fixed line. If
the reader dies, the front exits (its service manager restarts both).
"""

from __future__ import annotations

import io
import os
import pickle
import pwd
import socket
import struct
import threading

from ..errors import SmbSessionError, SourceError
from ..model import SmbSession

__all__ = ["PrivilegedReader", "drop_privileges", "fork_reader"]

_LENGTH = struct.Struct(">Q")
_MAX_ANSWER = 1 << 31


def _encode(sessions: list[SmbSession], warnings: list[str]) -> bytes:
    return pickle.dumps((sessions, warnings), protocol=pickle.HIGHEST_PROTOCOL)


def _error(message: str) -> bytes:
    return pickle.dumps(("error", message), protocol=pickle.HIGHEST_PROTOCOL)


class _Unpickler(pickle.Unpickler):
    """Only records and plain data: the answer comes from the root reader, which the
    front trusts, but nothing else than an SmbSession may be built from it anyway."""

    def find_class(self, module: str, name: str) -> type:
        if (module, name) == ("smbsession.model", "SmbSession"):
            return SmbSession
        raise pickle.UnpicklingError(f"the reader's answer names {module}.{name}")


def _decode(data: bytes) -> tuple[list[SmbSession], list[str]]:
    answer = _Unpickler(io.BytesIO(data)).load()
    if answer[0] == "error":
        raise SourceError(str(answer[1]))
    sessions, warnings = answer
    if not all(type(s) is SmbSession for s in sessions):
        raise SourceError("the root reader's answer holds something else than sessions")
    return sessions, [str(w) for w in warnings]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _serve(sock: socket.socket, smb_conf: str | None) -> None:
    """The reader's loop: one ``read`` request, one answer, until the front goes away."""
    import smbsession

    stream = sock.makefile("rb")
    while True:
        line = stream.readline()
        if not line:
            return
        if line != b"read\n":
            answer = _error("the reader only answers 'read'")
        else:
            try:
                result = smbsession.read_sessions(smb_conf)
                answer = _encode(result.sessions, list(result.warnings))
            except SmbSessionError as exc:
                answer = _error(str(exc))
            except Exception as exc:  # the reader must outlive any one failed read
                answer = _error(f"{type(exc).__name__}: {exc}")
        sock.sendall(_LENGTH.pack(len(answer)) + answer)


def fork_reader(smb_conf: str | None) -> tuple[int, PrivilegedReader]:
    """Fork the root reader; return its pid and the front's :class:`PrivilegedReader`.
    Call before any thread is started."""
    front, back = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the reader
        code = 0
        try:
            front.close()
            _serve(back, smb_conf)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    back.close()
    return pid, PrivilegedReader(front)


class PrivilegedReader:
    """The front's side: asks the root reader for the sessions (one request at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def __call__(self) -> tuple[list[SmbSession], list[str]]:
        with self._lock:
            try:
                self.sock.sendall(b"read\n")
                (size,) = _LENGTH.unpack(_recv_exactly(self.sock, _LENGTH.size))
                if size > _MAX_ANSWER:
                    raise SourceError(f"the root reader's answer is too long ({size} bytes)")
                data = _recv_exactly(self.sock, size)
            except (EOFError, OSError) as exc:
                raise SourceError(f"the root reader is gone ({exc or 'end of stream'})") from None
        return _decode(data)


def drop_privileges(user: str) -> None:
    """Become ``user`` for good: supplementary groups cleared, its group, its uid.
    Raises :class:`~smbsession.errors.InvalidParameter` for an unknown user."""
    from ..errors import InvalidParameter

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise InvalidParameter(f"--user: '{user}' is not a user of this system") from None
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir  # its ~/.ssh for ssh:// probe targets
    os.environ["USER"] = os.environ["LOGNAME"] = entry.pw_name
    if os.getuid() == 0 and entry.pw_uid != 0:  # pragma: no cover - defensive
        raise OSError("could not drop root privileges")
