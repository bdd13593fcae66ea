"""The kernel's view of TCP connections, over netlink ``NETLINK_SOCK_DIAG``.

Samba stores no idle time for a session; the kernel knows when each TCP connection last
received data (``tcpi_last_data_recv`` in ``struct tcp_info``, what ``ss -ti`` prints as
``lastrcv``). One ``SOCK_DIAG_BY_FAMILY`` dump per address family and local port, asking
for ``INET_DIAG_INFO``, gives it for every established connection of smbd.

Wire structures (``linux/netlink.h``, ``linux/inet_diag.h``, ``linux/tcp.h``):

- request: ``nlmsghdr`` (16 bytes) + ``inet_diag_req_v2`` (family u8, protocol u8,
  extensions u8, pad u8, states u32, ``inet_diag_sockid``) + an optional
  ``INET_DIAG_REQ_BYTECODE`` attribute filtering by local port;
- ``inet_diag_sockid`` (48 bytes): sport, dport (big-endian u16), src, dst (16 bytes
  each, IPv4 in the first 4), interface u32, cookie (2 x u32);
- reply: ``nlmsghdr`` + ``inet_diag_msg`` (family, state, timer, retrans u8; sockid;
  expires, rqueue, wqueue, uid, inode u32) + attributes; ``INET_DIAG_INFO`` carries
  ``struct tcp_info``, whose length depends on the kernel: only fields present are read.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
TCP_STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
              "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")
TCP_ESTABLISHED = 1

_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBxI")
_SOCKID = struct.Struct(">HH16s16s")
_MSG = struct.Struct("=BBBB")
_MSG_TAIL = struct.Struct("=IIIII")
_NLATTR = struct.Struct("=HH")
_BC_OP = struct.Struct("=BBH")
_INET_DIAG_MSG_SIZE = 4 + 48 + 20
# struct tcp_info: 8 bytes of u8 fields, then u32s; offsets of the ones we read.
_TCPI_LAST_DATA_SENT = 44
_TCPI_LAST_DATA_RECV = 52
_TCPI_LAST_ACK_RECV = 56
_TCPI_RTT = 68
_U32 = struct.Struct("=I").unpack_from
_RECV_SIZE = 1 << 20
_MAX_REPLIES = 100_000

Endpoint = tuple[str, int]


class SockDiagError(OSError):
    """The kernel's socket information could not be read or parsed."""


class TcpConnection:
    """One TCP connection as the kernel sees it (times in milliseconds, rtt in µs)."""

    __slots__ = (
        "inode",
        "last_ack_recv_ms",
        "last_data_recv_ms",
        "last_data_sent_ms",
        "local",
        "remote",
        "rtt_us",
        "state",
        "uid",
    )

    def __init__(
        self,
        local: Endpoint,
        remote: Endpoint,
        state: str,
        inode: int,
        uid: int,
        last_data_recv_ms: int | None,
        last_data_sent_ms: int | None,
        last_ack_recv_ms: int | None,
        rtt_us: int | None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.state = state
        self.inode = inode
        self.uid = uid
        self.last_data_recv_ms = last_data_recv_ms
        self.last_data_sent_ms = last_data_sent_ms
        self.last_ack_recv_ms = last_ack_recv_ms
        self.rtt_us = rtt_us

    def __repr__(self) -> str:
        return (f"TcpConnection(local={self.local}, remote={self.remote}, state={self.state}, "
                f"last_data_recv_ms={self.last_data_recv_ms})")


def _host(text: str) -> str:
    """Canonical text of an address (zone id dropped, IPv4-mapped shown as IPv4)."""
    host = text.split("%", 1)[0]
    try:
        if ":" not in host:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host))
        return _address(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, host))
    except OSError:
        raise ValueError(f"not an IP address: {host!r}") from None


def normalize_address(text: str) -> Endpoint:
    """Turn Samba's ``ipv4:1.2.3.4:445`` / ``ipv6:fe80::1%eth0:445`` into ``(host, port)``
    in the form :func:`tcp_connections` uses (IPv4-mapped IPv6 becomes IPv4, zone ids are
    dropped). Raises ValueError for anything else."""
    family, sep, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if not sep or family not in ("ipv4", "ipv6") or not port.isdigit():
        raise ValueError(f"not a Samba socket address: {text!r}")
    return _host(host), int(port)


def _port_filter(port: int) -> bytes:
    """inet_diag bytecode accepting exactly local port ``port``."""
    ops = b"".join((
        _BC_OP.pack(INET_DIAG_BC_S_GE, 8, 20), _BC_OP.pack(0, 0, port),
        _BC_OP.pack(INET_DIAG_BC_S_LE, 8, 12), _BC_OP.pack(0, 0, port),
    ))
    return _NLATTR.pack(_NLATTR.size + len(ops), INET_DIAG_REQ_BYTECODE) + ops


def _request(family: int, states: int, port: int | None, seq: int) -> bytes:
    body = _REQ.pack(family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), states)
    body += _SOCKID.pack(0, 0, b"", b"") + b"\0" * 12
    if port is not None:
        body += _port_filter(port)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if raw[:12] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped: the client's IPv4 address
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _parse_one(data: bytes, start: int, end: int) -> TcpConnection:
    if end - start < _INET_DIAG_MSG_SIZE:
        raise SockDiagError("inet_diag_msg shorter than its fixed part")
    family, state, _timer, _retrans = _MSG.unpack_from(data, start)
    sport, dport, src, dst = _SOCKID.unpack_from(data, start + 4)
    _exp, _rq, _wq, uid, inode = _MSG_TAIL.unpack_from(data, start + 52)
    info: tuple[int | None, ...] = (None, None, None, None)
    pos = start + _INET_DIAG_MSG_SIZE
    while pos + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(data, pos)
        if length < _NLATTR.size or pos + length > end:
            raise SockDiagError(f"netlink attribute of length {length} runs past its message")
        if kind == INET_DIAG_INFO:
            payload, size = pos + _NLATTR.size, length - _NLATTR.size

            def field(offset: int, payload: int = payload, size: int = size) -> int | None:
                return _U32(data, payload + offset)[0] if offset + 4 <= size else None

            info = (field(_TCPI_LAST_DATA_RECV), field(_TCPI_LAST_DATA_SENT),
                    field(_TCPI_LAST_ACK_RECV), field(_TCPI_RTT))
        pos += (length + 3) & ~3
    name = TCP_STATES[state] if state < len(TCP_STATES) else str(state)
    return TcpConnection((_address(family, src), sport), (_address(family, dst), dport), name,
                         inode, uid, *info)


def parse_inet_diag_messages(data: bytes) -> tuple[list[TcpConnection], bool]:
    """Parse one netlink reply buffer; return its connections and whether the dump ended
    (``NLMSG_DONE`` seen). Raises :class:`SockDiagError` for an error reply or bytes that
    do not parse."""
    out: list[TcpConnection] = []
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size or pos + length > len(data):
            raise SockDiagError(f"netlink message of length {length} runs past the reply")
        if kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR:
            if length < _NLMSGHDR.size + 4:
                raise SockDiagError("netlink error message without its error number")
            errno = -struct.unpack_from("=i", data, pos + _NLMSGHDR.size)[0]
            raise SockDiagError(errno, f"sock_diag: {os.strerror(errno)}")
        if kind == SOCK_DIAG_BY_FAMILY:
            out.append(_parse_one(data, pos + _NLMSGHDR.size, pos + length))
        pos += (length + 3) & ~3
    if pos != len(data):
        raise SockDiagError("netlink reply ends inside a message header")
    return out, False


def _dump(sock: socket.socket, family: int, states: int, port: int | None,
          seq: int) -> list[TcpConnection]:
    sock.send(_request(family, states, port, seq))
    found: list[TcpConnection] = []
    for _ in range(_MAX_REPLIES):
        chunk = sock.recv(_RECV_SIZE)
        if not chunk:
            raise SockDiagError("netlink socket closed during the dump")
        conns, done = parse_inet_diag_messages(chunk)
        found += conns
        if done:
            return found
    raise SockDiagError("sock_diag dump did not end")


def tcp_connections(local_ports: Iterable[int] | None = None,
                    states: int = 1 << TCP_ESTABLISHED) -> dict[tuple[Endpoint, Endpoint],
                                                              TcpConnection]:
    """Return the TCP connections of both address families, keyed by (local, remote).

    ``local_ports`` restricts the dump to those local ports (the kernel filters, so a
    server with many other connections stays cheap); ``states`` is a bit mask of TCP
    states (default: established only). Raises :class:`SockDiagError` when netlink is
    unavailable or its reply does not parse.
    """
    ports: list[int | None] = list(local_ports) if local_ports is not None else [None]
    result: dict[tuple[Endpoint, Endpoint], TcpConnection] = {}
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise SockDiagError(exc.errno, f"netlink sock_diag is unavailable: {exc}") from None
    with sock:
        sock.settimeout(5)
        seq = 1
        for family in (socket.AF_INET, socket.AF_INET6):
            for port in ports:
                try:
                    conns = _dump(sock, family, states, port, seq)
                except (TimeoutError, OSError) as exc:
                    if isinstance(exc, SockDiagError):
                        raise
                    raise SockDiagError(getattr(exc, "errno", None) or 0,
                                        f"sock_diag dump failed: {exc}") from None
                seq += 1
                for conn in conns:
                    result[(conn.local, conn.remote)] = conn
    return result
