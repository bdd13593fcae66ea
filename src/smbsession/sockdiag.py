"""The kernel's view of TCP connections, over netlink ``NETLINK_SOCK_DIAG``.

Samba stores no idle time for a session; the kernel knows when each TCP connection last
received data (``tcpi_last_data_recv`` in ``struct tcp_info``, what ``ss -ti`` prints as
``lastrcv``). One ``SOCK_DIAG_BY_FAMILY`` dump per address family, asking for the
``INET_DIAG_INFO`` extension and filtered by local port in the kernel, gives it for every
connection of smbd. A dump walks every bucket of the kernel's TCP hash table (262,144 on
a machine with 24 GB, about a millisecond a family): when the caller knows which
connections it wants, and they are few, each is looked up by its address instead (the
same request without ``NLM_F_DUMP``, sent together in one datagram; one reply each, the
socket or ``NLMSG_ERROR`` with ``ENOENT``).

Wire structures (``linux/netlink.h``, ``linux/sock_diag.h``, ``linux/inet_diag.h``,
``linux/tcp.h``), all in host byte order unless said otherwise:

- ``nlmsghdr`` (16 bytes): length u32, type u16, flags u16, seq u32, pid u32; messages
  and attributes (``nlattr``: length u16, type u16) are padded to 4 bytes;
- request: ``nlmsghdr`` + ``inet_diag_req_v2`` (family u8, protocol u8, extensions u8,
  pad u8, states u32, ``inet_diag_sockid``) + an optional ``INET_DIAG_REQ_BYTECODE``
  attribute, the kernel-side filter (``inet_diag_bc_op``: code u8, yes u8, no u16);
- ``inet_diag_sockid`` (48 bytes): sport, dport (big-endian u16), src, dst (16 bytes each
  in network order, IPv4 in the first 4), interface u32, cookie (2 x u32;
  ``INET_DIAG_NOCOOKIE``, all ones, in a lookup by address);
- reply: ``nlmsghdr`` + ``inet_diag_msg`` (72 bytes: family, state, timer, retrans u8;
  sockid; expires, rqueue, wqueue, uid, inode u32) + attributes. ``INET_DIAG_INFO``
  carries ``struct tcp_info``, which has grown with the kernel: its length is the
  attribute's, and only the fields it holds are read. The dump ends with ``NLMSG_DONE``
  (whose payload, if any, is an error number); a refused request is ``NLMSG_ERROR``.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import time

# The C module under :mod:`socket`: its Python layer imports enum and selectors, which
# cost a listing more than its whole TCP query.
from _socket import AF_INET, AF_INET6, AF_NETLINK, IPPROTO_TCP, SOCK_DGRAM, inet_ntop, inet_pton
from _socket import socket as _Socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "TCP_STATES",
    "SockDiagError",
    "TcpConnection",
    "normalize_address",
    "parse_inet_diag_messages",
    "tcp_connections",
]

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_INFO = 2
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3

#: TCP state names by number (``include/net/tcp_states.h``).
TCP_STATES: tuple[str, ...] = (
    "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
)
_STATE_NAMES = TCP_STATES + tuple(str(number) for number in range(len(TCP_STATES), 256))
_STATE_BITS = {name.replace("_", ""): 1 << number for number, name in enumerate(TCP_STATES)}

_NLMSGHDR = struct.Struct("=IHHII")
_NLMSG_LENGTH_TYPE = struct.Struct("=IH10x")
_NLATTR = struct.Struct("=HH")
_BC_OP = struct.Struct("=BBH")
_REQ = struct.Struct("=BBBxI48x")
# inet_diag_req_v2 with its inet_diag_sockid filled in, for a lookup by address.
_REQ_ONE = struct.Struct("=BBBxI2s2s16s16sIII")
_NOCOOKIE = 0xFFFFFFFF
_ERRNO = struct.Struct("=i")
# nlmsghdr (length, type) + inet_diag_msg: family, state, (timer, retrans), sport, dport,
# src, dst, (if, cookie, expires, rqueue, wqueue), uid, inode. Ports are read in host
# order and swapped after: one unpack instead of two.
_NLMSG_INET_DIAG = struct.Struct("=IH10xBB2xHH16s16s24xII")
_SWAP_PORTS = sys.byteorder == "little"
# The fields read from struct tcp_info (linux/tcp.h; 8 bytes of u8 fields, then u32s and,
# from offset 104, u64s): (name, byte offset, struct code), in the order they are
# unpacked. bytes_acked and bytes_received (RFC 4898 HCThruOctetsAcked/Received) came with
# Linux 4.1 and 4.1, bytes_sent (HCDataOctetsOut, retransmissions included) with 4.19. The
# struct below (nlattr header + these fields) is made from this table; a shorter tcp_info
# (an older kernel) is read field by field (_short_tcp_info), the missing ones as None.
_TCPI_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("last_data_sent", 44, "I"),
    ("last_data_recv", 52, "I"),
    ("last_ack_recv", 56, "I"),
    ("rtt", 68, "I"),
    ("bytes_acked", 120, "Q"),
    ("bytes_received", 128, "Q"),
    ("bytes_sent", 200, "Q"),
)


def _tcp_info_format(fields: tuple[tuple[str, int, str], ...]) -> str:
    code, at = "=HH", 0
    for _, offset, kind in fields:
        code += f"{offset - at}x{kind}" if offset > at else kind
        at = offset + struct.calcsize("=" + kind)
    return code


_NLATTR_TCP_INFO = struct.Struct(_tcp_info_format(_TCPI_FIELDS))
_AF_INET = int(AF_INET)
_AF_INET6 = int(AF_INET6)
_ntop = inet_ntop
_V4_MAPPED = b"\0" * 10 + b"\xff\xff"
_V6_LOW = b"\0" * 12

_RECV_SIZE = 1 << 20
_MAX_DATAGRAMS = 1 << 20
_MAX_FILTER_PORTS = 256
#: Beyond this many wanted connections a dump costs less than the lookups.
_MAX_LOOKUPS = 512
#: Lookups sent in one datagram: their replies (about 330 bytes each) must fit the
#: socket's receive buffer, which the kernel fills before we read.
_LOOKUPS_PER_SEND = 128

Endpoint = tuple[str, int]
ConnectionKey = tuple[Endpoint, Endpoint]


class SockDiagError(OSError):
    """The kernel's socket information could not be read or parsed.

    ``errno`` is set when the kernel (or the netlink socket) gave one.
    """


class TcpConnection:
    """One TCP socket as the kernel's ``inet_diag`` reports it.

    ``local`` and ``remote`` are ``(address, port)``; the address is the kernel's, in
    canonical text form (an IPv4 client of a dual-stack IPv6 socket stays
    ``::ffff:a.b.c.d``; :func:`tcp_connections` keys it by the plain IPv4 address).
    The times are milliseconds since the event (``tcpi_last_data_recv`` and so on), the
    round-trip time is in microseconds (the kernel's smoothed ``tcpi_rtt``). The byte
    counts are the connection's totals since it was opened: ``bytes_received`` the data
    the peer sent, ``bytes_acked`` the data the peer acknowledged, ``bytes_sent`` the data
    sent including retransmissions (Linux 4.19+). They are ``None`` when the kernel sent
    no ``tcp_info`` for the socket (``TIME_WAIT``, ``SYN_RECV``) or a shorter one.
    """

    #: The fields, in the order the constructor takes them.
    FIELDS = ("local", "remote", "state", "inode", "uid", "last_data_recv_ms",
              "last_data_sent_ms", "last_ack_recv_ms", "rtt_us", "bytes_received",
              "bytes_acked", "bytes_sent")
    __slots__ = FIELDS

    local: Endpoint
    remote: Endpoint
    state: str
    inode: int
    uid: int
    last_data_recv_ms: int | None
    last_data_sent_ms: int | None
    last_ack_recv_ms: int | None
    rtt_us: int | None
    bytes_received: int | None
    bytes_acked: int | None
    bytes_sent: int | None

    def __init__(self, *values: object) -> None:
        if len(values) != len(self.FIELDS):
            raise TypeError(f"TcpConnection takes {len(self.FIELDS)} values: "
                            f"{', '.join(self.FIELDS)}")
        for setter, value in zip(_SETTERS, values, strict=True):
            setter(self, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TcpConnection is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def as_dict(self) -> dict[str, object]:
        """The connection's fields by name, in constructor order."""
        return dict(zip(self.FIELDS, self._values(), strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpConnection):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "TcpConnection(" + ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.FIELDS) + ")"


# The parser fills a TcpConnection's slots directly, without a call to __init__ per
# socket, which would double the parse time. (Hand-written rather than a dataclass:
# importing dataclasses costs a listing more than it reads.)
_SETTERS = tuple(TcpConnection.__dict__[name].__set__ for name in TcpConnection.FIELDS)


def _ipv6_text(packed: bytes) -> str:
    """Canonical text of a 16-byte IPv6 address, as :mod:`ipaddress` writes it."""
    if packed[:12] == _V6_LOW and packed != _V6_LOW:
        # glibc writes the deprecated IPv4-compatible form (::2:3 as ::0.2.0.3); rare.
        import ipaddress

        return str(ipaddress.IPv6Address(packed))
    return _ntop(_AF_INET6, packed)


def _key_host(family: int, packed: bytes) -> tuple[str, str]:
    """(text, key text) of an address: the key text of IPv4-mapped IPv6 is the IPv4."""
    if family == _AF_INET:
        text = _ntop(_AF_INET, packed[:4])
        return text, text
    text = _ipv6_text(packed)
    if packed[:12] == _V4_MAPPED:
        return text, _ntop(_AF_INET, packed[12:])
    return text, text


def normalize_address(text: str) -> Endpoint:
    """Turn one of Samba's socket addresses into the key form of :func:`tcp_connections`.

    Samba writes addresses as ``ipv4:192.0.2.1:445``, ``ipv6:2001:db8::1:445``,
    ``ipv6:::ffff:192.0.2.1:445`` (an IPv4 client of a dual-stack socket) or
    ``ipv6:fe80::1%eth0:445``. The result is ``(address, port)`` with the address in
    canonical text form, an IPv4-mapped IPv6 address as its IPv4 address (as the keys of
    :func:`tcp_connections` have it) and the zone id dropped (the kernel's view has no
    zone names). ``ipv6:[::1]:445`` is accepted too.

    Raises ValueError for anything else (another prefix, a port out of range, an address
    that is not of the prefix's family).
    """
    family_name, sep, rest = text.partition(":")
    host, colon, port_text = rest.rpartition(":")
    if not sep or not colon or not port_text.isdigit() or not port_text.isascii():
        raise ValueError(f"not a Samba socket address: {text!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {text!r}")
    if family_name == "ipv4":
        family = AF_INET
    elif family_name == "ipv6":
        family = AF_INET6
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        host = host.partition("%")[0]
    else:
        raise ValueError(f"not a Samba socket address: {text!r}")
    try:
        packed = inet_pton(family, host)
    except OSError:
        raise ValueError(f"not an {family_name} address: {host!r} in {text!r}") from None
    return _key_host(family, packed)[1], port


def _state_mask(states: Iterable[str] | int) -> int:
    if isinstance(states, int):
        return states
    if isinstance(states, str):
        states = (states,)
    mask = 0
    for name in states:
        bit = _STATE_BITS.get(name.upper().replace("_", "").replace("-", ""))
        if bit is None:
            raise ValueError(f"unknown TCP state {name!r} (known: {', '.join(TCP_STATES[1:])})")
        mask |= bit
    return mask


def _port_filter(ports: list[int]) -> bytes:
    """``INET_DIAG_REQ_BYTECODE`` accepting a local port in ``ports`` (as ``ss`` builds
    ``sport = :a or sport = :b``).

    Each port is ``S_GE p`` then ``S_LE p``; a jump taken on "yes" to exactly the end of
    the program accepts, a jump past it rejects. Between ports, a ``JMP`` (always "no")
    skips to the end after a match; its "yes" of 4 keeps every jump target on the chain
    of "yes" offsets, which the kernel's audit of the program requires.
    """
    total = 20 * len(ports) - 4
    ops: list[bytes] = []
    for index, port in enumerate(ports):
        last = index == len(ports) - 1
        ops += (_BC_OP.pack(INET_DIAG_BC_S_GE, 8, 20), _BC_OP.pack(0, 0, port),
                _BC_OP.pack(INET_DIAG_BC_S_LE, 8, 12), _BC_OP.pack(0, 0, port))
        if not last:
            ops.append(_BC_OP.pack(INET_DIAG_BC_JMP, 4, total - (20 * index + 16)))
    program = b"".join(ops)
    return _NLATTR.pack(_NLATTR.size + len(program), INET_DIAG_REQ_BYTECODE) + program


def _request(family: int, states: int, ports: int | Iterable[int] | None, seq: int) -> bytes:
    """One ``SOCK_DIAG_BY_FAMILY`` dump request for TCP sockets, asking for tcp_info."""
    body = _REQ.pack(family, IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), states)
    if isinstance(ports, int):
        ports = [ports]
    if ports is not None:
        body += _port_filter(list(ports))
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def _error(errno: int | None, message: str) -> SockDiagError:
    """A SockDiagError with ``errno`` set when there is one (``str()`` is then
    ``[Errno N] message``)."""
    return SockDiagError(errno, message) if errno else SockDiagError(message)


def _kernel_error(code: int, what: str) -> SockDiagError:
    number = -code
    if number <= 0:
        return SockDiagError(f"sock_diag {what}: error code {code}")
    return SockDiagError(number, f"sock_diag {what}: {os.strerror(number)}")


class _GcPaused:
    """No cyclic garbage collection while the parser makes its many small objects (none
    of them in a cycle): the collections the allocations trigger would cost a third more
    for 20,000 connections, and more in a process that holds much else."""

    __slots__ = ("enabled",)

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()


def _parse(
    data: bytes | bytearray | memoryview,
    size: int,
    out: list[TcpConnection],
    keyed: dict[ConnectionKey, TcpConnection] | None,
    errors: list[int] | None = None,
) -> bool:
    """Parse the netlink messages in ``data[:size]``, appending to ``out`` (and, keyed by
    (local, remote) with IPv4-mapped addresses as IPv4, to ``keyed``); return whether the
    buffer ended with ``NLMSG_DONE``. With ``errors``, the error numbers of
    ``NLMSG_ERROR`` replies are appended to it (the answers to lookups of sockets that are
    not there) instead of raising.

    The attributes of a message are walked up to ``INET_DIAG_INFO`` (:func:`_tcp_info`).
    """
    unpack_header = _NLMSG_LENGTH_TYPE.unpack_from
    unpack_message = _NLMSG_INET_DIAG.unpack_from
    swap = _SWAP_PORTS
    states = _STATE_NAMES
    hosts_by_family: dict[int, dict[bytes, tuple[str, str]]] = {_AF_INET: {}, _AF_INET6: {}}
    new = object.__new__
    cls = TcpConnection
    (set_local, set_remote, set_state, set_inode, set_uid, set_recv, set_sent, set_ack,
     set_rtt, set_bytes_received, set_bytes_acked, set_bytes_sent) = _SETTERS
    seen = _AttributeWalk()
    tcp_info = _tcp_info
    pos = 0
    done = False
    while pos < size:
        if pos + 88 <= size:
            # Header and inet_diag_msg at once; ignored if this is another message.
            (length, kind, family, state, sport, dport, src, dst, uid,
             inode) = unpack_message(data, pos)
        elif pos + 16 <= size:
            length, kind = unpack_header(data, pos)
        else:
            raise SockDiagError(f"netlink reply ends inside a message header (at byte {pos})")
        end = pos + length
        if length < 16 or end > size:
            raise SockDiagError(
                f"netlink message of length {length} at byte {pos} does not fit the "
                f"{size}-byte reply")
        done = False
        if kind == SOCK_DIAG_BY_FAMILY:
            if length < 88:
                raise SockDiagError(f"inet_diag_msg at byte {pos} is shorter than 72 bytes")
            if swap:
                sport = ((sport & 0xFF) << 8) | (sport >> 8)
                dport = ((dport & 0xFF) << 8) | (dport >> 8)
            hosts = hosts_by_family.get(family)
            if hosts is None:
                raise SockDiagError(f"inet_diag_msg at byte {pos} has address family {family}")
            (sent, received, acked, rtt, bytes_acked, bytes_received,
             bytes_sent) = tcp_info(data, pos + 88, end, seen)
            names = hosts.get(src)
            if names is None:
                names = hosts[src] = _key_host(family, src)
            local_host, local_key = names
            names = hosts.get(dst)
            if names is None:
                names = hosts[dst] = _key_host(family, dst)
            remote_host, remote_key = names
            local = (local_host, sport)
            remote = (remote_host, dport)
            conn = new(cls)
            set_local(conn, local)
            set_remote(conn, remote)
            set_state(conn, states[state])
            set_inode(conn, inode)
            set_uid(conn, uid)
            set_recv(conn, received)
            set_sent(conn, sent)
            set_ack(conn, acked)
            set_rtt(conn, rtt)
            set_bytes_received(conn, bytes_received)
            set_bytes_acked(conn, bytes_acked)
            set_bytes_sent(conn, bytes_sent)
            out.append(conn)
            if keyed is not None:
                key = (local if local_key is local_host else (local_key, sport),
                       remote if remote_key is remote_host else (remote_key, dport))
                keyed.setdefault(key, conn)
        else:
            done = _control(kind, data, pos, length, errors)
        pos += (length + 3) & ~3
    return done


class _AttributeWalk:
    """Where the previous message's ``INET_DIAG_INFO`` was, and the attribute bytes
    before it: the kernel sends the same ones in every message, usually byte for byte."""

    __slots__ = ("prefix", "prefix_length")

    def __init__(self) -> None:
        self.prefix: bytes | bytearray | memoryview = b""
        self.prefix_length = -1


_NO_TCP_INFO = (None,) * 7


def _tcp_info(data: bytes | bytearray | memoryview, first: int, end: int,
              seen: _AttributeWalk) -> tuple:
    """The tcp_info values of one message whose attributes run from ``first`` to ``end``:
    (sent, received, acked, rtt, bytes_acked, bytes_received, bytes_sent), all None
    without ``INET_DIAG_INFO``. When the bytes before the previous message's
    ``INET_DIAG_INFO`` recur, the walk is skipped (same bytes, same walk)."""
    info_size = _NLATTR_TCP_INFO.size
    at = first + seen.prefix_length
    if seen.prefix_length >= 0 and at + info_size <= end and data[first:at] == seen.prefix:
        info_length, attr_type, *values = _NLATTR_TCP_INFO.unpack_from(data, at)
        if attr_type & 0x3FFF == INET_DIAG_INFO and info_size <= info_length <= end - at:
            return tuple(values)
    at = first
    while at + 4 <= end:
        attr_length, attr_type = _NLATTR.unpack_from(data, at)
        if attr_length < 4 or at + attr_length > end:
            raise SockDiagError(
                f"netlink attribute of length {attr_length} at byte {at} runs past its "
                "message")
        if attr_type & 0x3FFF == INET_DIAG_INFO:
            if attr_length >= info_size:
                seen.prefix_length = at - first
                seen.prefix = data[first:at]
                return tuple(_NLATTR_TCP_INFO.unpack_from(data, at)[2:])
            return _short_tcp_info(data, at + 4, attr_length - 4)
        at += (attr_length + 3) & ~3
    return _NO_TCP_INFO


def _control(kind: int, data: bytes | bytearray | memoryview, pos: int, length: int,
             errors: list[int] | None = None) -> bool:
    """Handle a message that is not a socket's (``NLMSG_DONE``, ``NLMSG_ERROR``,
    ``NLMSG_NOOP``); return whether it ends the dump. An error is appended to ``errors``
    when that is given, else raised."""
    if kind == NLMSG_DONE:
        if length >= 20:
            (code,) = _ERRNO.unpack_from(data, pos + 16)
            if code < 0:
                raise _kernel_error(code, "dump failed")
        return True
    if kind == NLMSG_ERROR:
        if length < 20:
            raise SockDiagError("netlink error message without its error number")
        (code,) = _ERRNO.unpack_from(data, pos + 16)
        if errors is not None:
            errors.append(-code)
        elif code != 0:
            raise _kernel_error(code, "request refused")
        return False
    if kind != NLMSG_NOOP:
        raise SockDiagError(f"unexpected netlink message type {kind} at byte {pos}")
    return False


def _short_tcp_info(data: bytes | bytearray | memoryview, start: int,
                    size: int) -> tuple[int | None, ...]:
    """The :data:`_TCPI_FIELDS` of a tcp_info shorter than today's, in their order, None
    for the fields it does not hold."""
    return tuple(
        struct.unpack_from("=" + kind, data, start + offset)[0]
        if offset + struct.calcsize("=" + kind) <= size else None
        for _, offset, kind in _TCPI_FIELDS)


def parse_inet_diag_messages(data: bytes) -> list[TcpConnection]:
    """Parse a complete netlink reply to ``SOCK_DIAG_BY_FAMILY`` dump requests.

    ``data`` is what the kernel sent, the datagrams concatenated: ``inet_diag_msg``
    messages (with their attributes) and ``NLMSG_DONE`` at the end; several dumps one
    after the other are allowed. Returns the sockets in the order of the reply, each as a
    :class:`TcpConnection` (addresses as the kernel gives them).

    Raises :class:`SockDiagError` for an ``NLMSG_ERROR`` reply (with the kernel's errno), a
    dump that ended with an error, and for bytes that are not such a reply: truncated
    (including a reply without its final ``NLMSG_DONE``), lengths that do not add up, an
    unknown message type or address family. No other exception comes out of it.
    """
    out: list[TcpConnection] = []
    try:
        with _GcPaused():
            done = _parse(data, len(data), out, None)
    except (struct.error, IndexError, ValueError, TypeError) as exc:  # pragma: no cover
        raise SockDiagError(f"malformed sock_diag reply: {exc}") from None
    if not done:
        raise SockDiagError("sock_diag reply is truncated: it does not end with NLMSG_DONE")
    return out


def _dump(sock: _Socket, request: bytes, buffer: bytearray, deadline: float,
          out: list[TcpConnection], keyed: dict[ConnectionKey, TcpConnection]) -> None:
    sock.send(request)
    view = memoryview(buffer)
    for _ in range(_MAX_DATAGRAMS):
        size = _receive(sock, buffer, deadline)
        if _parse(bytes(view[:size]), size, out, keyed):
            return
    raise SockDiagError(f"sock_diag dump did not end after {_MAX_DATAGRAMS} datagrams")


def _receive(sock: _Socket, buffer: bytearray, deadline: float) -> int:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the kernel did not answer in time")
    sock.settimeout(remaining)
    size: int = sock.recv_into(buffer)
    if size == 0:
        raise SockDiagError("netlink socket closed during the dump")
    return size


def _lookup_request(key: ConnectionKey, states: int, seq: int) -> bytes:
    """A ``SOCK_DIAG_BY_FAMILY`` request (no dump) for the one TCP socket of ``key``.

    An IPv4 pair is asked as ``AF_INET``: the kernel then finds the socket whether it is
    an IPv4 one or a dual-stack IPv6 one holding an IPv4-mapped connection."""
    (local, local_port), (remote, remote_port) = key
    family = AF_INET6 if ":" in local or ":" in remote else AF_INET
    try:
        src, dst = inet_pton(family, local), inet_pton(family, remote)
        sport, dport = local_port.to_bytes(2, "big"), remote_port.to_bytes(2, "big")
    except (OSError, OverflowError, AttributeError):
        raise ValueError(f"not a connection key: {key!r}") from None
    body = _REQ_ONE.pack(family, IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), states, sport,
                         dport, src.ljust(16, b"\0"), dst.ljust(16, b"\0"), 0, _NOCOOKIE,
                         _NOCOOKIE)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST,
                          seq, 0) + body


def _lookup(sock: _Socket, keys: list[ConnectionKey], states: int, buffer: bytearray,
            deadline: float, keyed: dict[ConnectionKey, TcpConnection]) -> set[ConnectionKey]:
    """Look up each of ``keys`` by address, the found ones into ``keyed`` when their state
    is in ``states``; return the keys of the sockets found, in whatever state."""
    view = memoryview(buffer)
    seen: set[ConnectionKey] = set()
    for first in range(0, len(keys), _LOOKUPS_PER_SEND):
        batch = keys[first:first + _LOOKUPS_PER_SEND]
        sock.send(b"".join(_lookup_request(key, states, first + index + 1)
                           for index, key in enumerate(batch)))
        out: list[TcpConnection] = []
        found: dict[ConnectionKey, TcpConnection] = {}
        errors: list[int] = []
        while len(out) + len(errors) < len(batch):
            size = _receive(sock, buffer, deadline)
            _parse(bytes(view[:size]), size, out, found, errors)
        for code in errors:
            if code != 2:  # ENOENT: no such socket
                raise _kernel_error(-code, "lookup refused")
        seen.update(found)
        for key, conn in found.items():
            if _STATE_BITS.get(conn.state.replace("_", ""), 0) & states:
                keyed.setdefault(key, conn)
    return seen


def tcp_connections(
    local_ports: Iterable[int] | None = None,
    states: Iterable[str] | int = ("ESTABLISHED",),
    *,
    only: Iterable[ConnectionKey] | None = None,
    timeout: float = 5.0,
) -> dict[ConnectionKey, TcpConnection]:
    """Return the TCP sockets of both address families, keyed by ``(local, remote)``.

    ``local_ports``, if given, keeps the sockets whose local port is one of them (for a
    server: its listening ports); the kernel applies the filter, so other connections of a
    busy machine cost next to nothing. ``states`` names the TCP states to return
    (``"ESTABLISHED"``, ``"LISTEN"``, ``"TIME_WAIT"``... as in :data:`TCP_STATES`), or is
    the kernel's bit mask; by default established connections only. ``only``, if given,
    names the connections wanted (keys as below): the result holds no others, and when
    they are few the kernel is asked for each by its address instead of listing every
    socket (if one of them is not found, every socket is listed after all, so a
    connection the lookup could not name exactly, a link-local one bound to its
    interface, is still found). ``timeout`` bounds the whole call, in seconds.

    Keys are ``((address, port), (address, port))`` with the address in canonical text
    form and an IPv4-mapped IPv6 address (an IPv4 client of a dual-stack socket) as its
    IPv4 address, so that ``(normalize_address(samba_local),
    normalize_address(samba_remote))`` finds Samba's connection whichever socket accepted
    it. The :class:`TcpConnection` keeps the kernel's own addresses.

    Any user can call it: the kernel lists every socket of the network namespace (with
    tcp_info) to unprivileged callers too. Raises :class:`SockDiagError` when netlink
    sock_diag is not available or refuses the request, when the kernel does not answer
    within ``timeout``, or when its reply does not parse; ValueError for an unknown state
    name, a port out of range or a key that is not an address.
    """
    mask = _state_mask(states)
    ports: list[int] | None = None
    if local_ports is not None:
        ports = sorted({int(port) for port in local_ports})
        if any(not 0 <= port <= 65535 for port in ports):
            raise ValueError(f"TCP ports are 0 to 65535, not {ports}")
        if not ports:
            return {}
    wanted = None if only is None else set(only)
    if wanted is not None and ports is not None:
        allowed = set(ports)
        wanted = {key for key in wanted if key[0][1] in allowed}
    if wanted is not None and not wanted:
        return {}
    try:
        sock = _Socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise _error(exc.errno, f"netlink sock_diag is not available: {exc}") from None
    deadline = time.monotonic() + timeout
    buffer = bytearray(_RECV_SIZE)
    keyed: dict[ConnectionKey, TcpConnection] = {}
    try:
        with _GcPaused():
            if wanted is not None and len(wanted) <= _MAX_LOOKUPS:
                if wanted <= _lookup(sock, sorted(wanted), mask, buffer, deadline, keyed):
                    return keyed
                keyed = {}
            _dump_families(sock, mask, ports, buffer, deadline, keyed)
    except TimeoutError:
        raise SockDiagError(f"no complete sock_diag reply within {timeout} s") from None
    except SockDiagError:
        raise
    except OSError as exc:
        raise _error(exc.errno, f"sock_diag request failed: {exc}") from None
    except (struct.error, IndexError) as exc:  # pragma: no cover
        raise SockDiagError(f"malformed sock_diag reply: {exc}") from None
    finally:
        sock.close()
    if wanted is not None:
        return {key: conn for key, conn in keyed.items() if key in wanted}
    if ports is not None and len(ports) > _MAX_FILTER_PORTS:
        allowed = set(ports)
        return {key: conn for key, conn in keyed.items() if conn.local[1] in allowed}
    return keyed


def _dump_families(sock: _Socket, mask: int, ports: list[int] | None, buffer: bytearray,
                   deadline: float, keyed: dict[ConnectionKey, TcpConnection]) -> None:
    """One dump per address family into ``keyed``."""
    # A long list would exceed the attribute's 16-bit length: the caller filters those.
    kernel_ports = ports if ports is None or len(ports) <= _MAX_FILTER_PORTS else None
    out: list[TcpConnection] = []
    for seq, family in enumerate((AF_INET, AF_INET6), 1):
        try:
            _dump(sock, _request(family, mask, kernel_ports, seq), buffer, deadline, out,
                  keyed)
        except SockDiagError as exc:
            if family == AF_INET6 and exc.errno in (2, 97):  # ENOENT, EAFNOSUPPORT
                continue  # a kernel without IPv6 has no IPv6 sockets
            raise
