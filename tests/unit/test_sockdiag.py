"""smbsession.sockdiag: the kernel's TCP view over netlink sock_diag.

Live tests open real loopback connections and compare with what the sockets themselves
say (getsockname, getpeername, fstat) and with ``ss``; parser tests use real replies
captured by tests/fixtures/sockdiag/capture.py and messages built here from the UAPI
layouts.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import json
import os
import random
import re
import resource
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smbsession.sockdiag import (
    SockDiagError,
    TcpConnection,
    normalize_address,
    parse_inet_diag_messages,
    tcp_connections,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sockdiag"
JIFFY_SLACK_MS = 50  # tcp_info times count jiffies (10 ms at HZ=100)

# --- live sockets ------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _ipv6_loopback()
FAMILIES = [
    pytest.param(socket.AF_INET, "127.0.0.1", id="ipv4"),
    pytest.param(socket.AF_INET6, "::1", id="ipv6", marks=pytest.mark.skipif(
        not HAS_IPV6, reason="no IPv6 loopback here")),
]


class Sockets:
    """Listeners and connections on loopback, all closed at the end of the test."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def keep(self, sock: socket.socket) -> socket.socket:
        return self._stack.enter_context(sock)

    def listener(self, family: int = socket.AF_INET, host: str = "127.0.0.1",
                 dual_stack: bool = False) -> socket.socket:
        sock = self.keep(socket.socket(family, socket.SOCK_STREAM))
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, 0))
        sock.listen(4096)
        return sock

    def connect(self, server: socket.socket, family: int | None = None,
                host: str | None = None) -> tuple[socket.socket, socket.socket]:
        """(client, server side) of a new connection to ``server``."""
        address = server.getsockname()
        client = self.keep(socket.socket(family or server.family, socket.SOCK_STREAM))
        client.connect((host or address[0], address[1]))
        accepted, _ = server.accept()
        return client, self.keep(accepted)


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    with contextlib.ExitStack() as stack:
        yield Sockets(stack)


def _samba_form(sock: socket.socket, peer: bool = False) -> str:
    """The address as Samba writes it: ``ipv4:host:port`` / ``ipv6:host:port``."""
    host, port = (sock.getpeername() if peer else sock.getsockname())[:2]
    return f"{'ipv6' if sock.family == socket.AF_INET6 else 'ipv4'}:{host}:{port}"


def _key(sock: socket.socket) -> tuple[tuple[str, int], tuple[str, int]]:
    """The key of ``sock``'s connection in tcp_connections(), as Samba's view gives it."""
    return normalize_address(_samba_form(sock)), normalize_address(_samba_form(sock, True))


def _wait_until(moment: float) -> None:
    while time.monotonic() < moment:
        time.sleep(0.01)


@pytest.mark.parametrize(("family", "host"), FAMILIES)
def test_both_ends_of_a_connection_as_the_sockets_see_them(sockets: Sockets, family: int,
                                                           host: str) -> None:
    server = sockets.listener(family, host)
    client, accepted = sockets.connect(server)
    found = tcp_connections()
    for sock in (client, accepted):
        conn = found[_key(sock)]
        assert conn.local == sock.getsockname()[:2]
        assert conn.remote == sock.getpeername()[:2]
        assert conn.state == "ESTABLISHED"
        assert conn.inode == os.fstat(sock.fileno()).st_ino
        assert conn.uid == os.geteuid()
        for value in (conn.last_data_recv_ms, conn.last_data_sent_ms, conn.last_ack_recv_ms,
                      conn.rtt_us):
            assert isinstance(value, int)
            assert value >= 0


@pytest.mark.parametrize(("family", "host"), FAMILIES)
def test_idle_time_grows_while_the_client_is_quiet_and_resets(sockets: Sockets, family: int,
                                                              host: str) -> None:
    server = sockets.listener(family, host)
    client, accepted = sockets.connect(server)
    port = server.getsockname()[1]

    sent = time.monotonic()
    client.sendall(b"hello")
    assert accepted.recv(16) == b"hello"
    received = time.monotonic()

    _wait_until(received + 0.4)
    early = tcp_connections([port])[_key(accepted)].last_data_recv_ms
    _wait_until(received + 1.0)
    before = time.monotonic()
    conn = tcp_connections([port])[_key(accepted)]
    after = time.monotonic()
    assert conn.last_data_recv_ms is not None and early is not None
    assert conn.last_data_recv_ms >= 900
    assert (before - received) * 1000 - JIFFY_SLACK_MS <= conn.last_data_recv_ms
    assert conn.last_data_recv_ms <= (after - sent) * 1000 + JIFFY_SLACK_MS
    assert early < conn.last_data_recv_ms
    # The client's side: it sent then, and received nothing since the handshake.
    mirror = tcp_connections([client.getsockname()[1]])[_key(client)]
    assert mirror.last_data_sent_ms is not None
    assert abs(mirror.last_data_sent_ms - conn.last_data_recv_ms) < 200

    again = time.monotonic()
    client.sendall(b"again")
    assert accepted.recv(16) == b"again"
    conn = tcp_connections([port])[_key(accepted)]
    assert conn.last_data_recv_ms is not None
    assert conn.last_data_recv_ms <= (time.monotonic() - again) * 1000 + JIFFY_SLACK_MS
    assert conn.last_data_recv_ms < 500


def test_last_data_sent_and_rtt_of_the_server_side(sockets: Sockets) -> None:
    server = sockets.listener()
    client, accepted = sockets.connect(server)
    client.sendall(b"question")
    assert accepted.recv(16) == b"question"
    _wait_until(time.monotonic() + 0.3)
    answered = time.monotonic()
    accepted.sendall(b"answer")
    assert client.recv(16) == b"answer"
    conn = tcp_connections([server.getsockname()[1]])[_key(accepted)]
    assert conn.last_data_sent_ms is not None and conn.last_data_recv_ms is not None
    assert conn.last_data_sent_ms <= (time.monotonic() - answered) * 1000 + JIFFY_SLACK_MS
    assert conn.last_data_recv_ms >= 300 - JIFFY_SLACK_MS
    assert conn.rtt_us is not None and 0 < conn.rtt_us < 1_000_000


def test_ipv4_client_of_a_dual_stack_listener(sockets: Sockets) -> None:
    if not HAS_IPV6:
        pytest.skip("no IPv6 here")
    try:
        server = sockets.listener(socket.AF_INET6, "::ffff:127.0.0.1", dual_stack=True)
    except OSError as exc:
        pytest.skip(f"no dual-stack socket here: {exc}")
    client, accepted = sockets.connect(server, socket.AF_INET, "127.0.0.1")
    port, client_port = server.getsockname()[1], client.getsockname()[1]
    assert accepted.getsockname()[0] == "::ffff:127.0.0.1"  # what Samba sees, too

    found = tcp_connections([port, client_port])
    key = (("127.0.0.1", port), ("127.0.0.1", client_port))
    assert _key(accepted) == key  # Samba's "ipv6:::ffff:127.0.0.1:port" form
    assert (normalize_address(f"ipv4:127.0.0.1:{port}"),
            normalize_address(f"ipv4:127.0.0.1:{client_port}")) == key
    conn = found[key]
    assert conn.local == ("::ffff:127.0.0.1", port)  # the kernel's own form is kept
    assert conn.remote == ("::ffff:127.0.0.1", client_port)
    assert conn.inode == os.fstat(accepted.fileno()).st_ino
    # The client's side is an IPv4 socket of the same 4-tuple, seen from the other end.
    mirror = found[(("127.0.0.1", client_port), ("127.0.0.1", port))]
    assert mirror.inode == os.fstat(client.fileno()).st_ino


def test_port_filter_returns_only_the_wanted_ports(sockets: Sockets) -> None:
    first, second, third = (sockets.listener() for _ in range(3))
    pairs = [sockets.connect(server) for server in (first, second, third) for _ in range(2)]
    ports = [s.getsockname()[1] for s in (first, second, third)]

    only_first = tcp_connections([ports[0]])
    assert set(only_first) == {_key(accepted) for _, accepted in pairs[:2]}

    two = tcp_connections([ports[0], ports[2]])
    assert set(two) == {_key(accepted) for _, accepted in pairs[:2] + pairs[4:]}

    clients = tcp_connections([client.getsockname()[1] for client, _ in pairs])
    assert {_key(client) for client, _ in pairs} <= set(clients)
    assert all(local[1] != port for local, _ in clients for port in ports)

    assert tcp_connections([]) == {}
    # 256 ports: the longest kernel filter; beyond, the ports are filtered here.
    for others in (range(1, 254), range(1, 400)):
        wanted = {*ports, *others}
        many = tcp_connections(wanted)
        assert {_key(a) for _, a in pairs} <= set(many)
        assert all(local[1] in wanted for local, _ in many)


@pytest.mark.parametrize(("family", "host"), FAMILIES)
def test_named_connections_are_looked_up_as_the_dump_lists_them(sockets: Sockets,
                                                                family: int,
                                                                host: str) -> None:
    """``only``: each connection asked by its address gives what the dump gives for it,
    and nothing else; more than one datagram of lookups (128 a datagram) too."""
    server = sockets.listener(family, host)
    pairs = [sockets.connect(server) for _ in range(140)]
    port = server.getsockname()[1]
    keys = [_key(accepted) for _, accepted in pairs]
    dumped = tcp_connections([port])
    looked_up = tcp_connections([port], only=keys)
    assert set(looked_up) == set(keys)
    for key in keys:
        assert looked_up[key].inode == dumped[key].inode
        assert looked_up[key].local == dumped[key].local
        assert looked_up[key].state == "ESTABLISHED"
    assert set(tcp_connections([port], only=keys[:3])) == set(keys[:3])
    # a wanted connection on another port than local_ports is not asked for
    assert tcp_connections([port + 1 if port < 65535 else 1], only=keys) == {}
    assert tcp_connections([port], only=[]) == {}


def test_a_looked_up_ipv4_client_of_a_dual_stack_socket(sockets: Sockets) -> None:
    if not HAS_IPV6:
        pytest.skip("no IPv6 loopback here")
    server = sockets.listener(socket.AF_INET6, "::", dual_stack=True)
    client, accepted = sockets.connect(server, socket.AF_INET, "127.0.0.1")
    port = server.getsockname()[1]
    key = (normalize_address(f"ipv4:127.0.0.1:{port}"),
           normalize_address(f"ipv4:127.0.0.1:{client.getsockname()[1]}"))
    conn = tcp_connections([port], only=[key])[key]
    assert conn.local == ("::ffff:127.0.0.1", port)
    assert conn.inode == os.fstat(accepted.fileno()).st_ino


def test_a_missing_or_ended_named_connection(sockets: Sockets) -> None:
    """A connection that is not there is missing from the result (the dump confirms it);
    one in a state not asked for is too; a key that is no address is a ValueError."""
    server = sockets.listener()
    client, accepted = sockets.connect(server)
    port = server.getsockname()[1]
    live = _key(accepted)
    gone = (("127.0.0.1", port), ("127.0.0.1", 1))
    assert set(tcp_connections([port], only=[live, gone])) == {live}
    key = _key(client)
    client.close()
    assert accepted.recv(16) == b""
    accepted.close()
    deadline = time.monotonic() + 5
    while key not in tcp_connections([key[0][1]], states="TIME_WAIT", only=[key]):
        assert time.monotonic() < deadline, "the client's side never reached TIME_WAIT"
        time.sleep(0.01)
    assert tcp_connections([key[0][1]], only=[key]) == {}
    with pytest.raises(ValueError, match="not a connection key"):
        tcp_connections(only=[(("not an address", 1), ("127.0.0.1", 2))])


def test_unfiltered_dump_includes_other_ports(sockets: Sockets) -> None:
    server = sockets.listener()
    client, accepted = sockets.connect(server)
    found = tcp_connections()
    assert _key(client) in found and _key(accepted) in found


def test_states(sockets: Sockets) -> None:
    server = sockets.listener()
    client, accepted = sockets.connect(server)
    port = server.getsockname()[1]

    listening = tcp_connections([port], states=("LISTEN",))
    assert list(listening) == [(("127.0.0.1", port), ("0.0.0.0", 0))]
    assert listening[("127.0.0.1", port), ("0.0.0.0", 0)].state == "LISTEN"
    both = tcp_connections([port], states=["listen", "ESTABLISHED"])
    assert {conn.state for conn in both.values()} == {"LISTEN", "ESTABLISHED"}

    # The side that closes first ends in TIME_WAIT: no socket, no tcp_info.
    key = _key(client)
    client.close()
    assert accepted.recv(16) == b""
    accepted.close()
    deadline = time.monotonic() + 5
    while key not in (waiting := tcp_connections([key[0][1]], states="TIME_WAIT")):
        assert time.monotonic() < deadline, "the client's side never reached TIME_WAIT"
        time.sleep(0.01)
    conn = waiting[key]
    assert (conn.state, conn.inode) == ("TIME_WAIT", 0)
    assert conn.last_data_recv_ms is conn.rtt_us is None
    assert key not in tcp_connections([key[0][1]])

    with pytest.raises(ValueError, match="unknown TCP state"):
        tcp_connections(states=["ESTABLISHED", "SLEEPY"])
    with pytest.raises(ValueError, match="65535"):
        tcp_connections([70000])


def _ss_line(local: socket.socket) -> str:
    sport, dport = local.getsockname()[1], local.getpeername()[1]
    out = subprocess.run(
        ["ss", "-tinHe", "state", "established", f"( sport = :{sport} and dport = :{dport} )"],
        capture_output=True, text=True, check=True).stdout
    assert out.strip(), "ss does not list the connection"
    return " ".join(out.split())


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
@pytest.mark.parametrize(("family", "host"), FAMILIES)
def test_agrees_with_ss(sockets: Sockets, family: int, host: str) -> None:
    server = sockets.listener(family, host)
    client, accepted = sockets.connect(server)
    port = server.getsockname()[1]
    client.sendall(b"x")
    assert accepted.recv(4) == b"x"
    _wait_until(time.monotonic() + 0.6)

    first = tcp_connections([port])[_key(accepted)]
    line = _ss_line(accepted)
    last = tcp_connections([port])[_key(accepted)]

    def field(name: str) -> str | None:
        match = re.search(rf"\b{name}:([0-9.]+)", line)
        return match.group(1) if match else None

    assert first.last_data_recv_ms is not None and last.last_data_recv_ms is not None
    theirs = int(field("lastrcv") or 0)  # ss leaves out zeros
    assert first.last_data_recv_ms - JIFFY_SLACK_MS <= theirs
    assert theirs <= last.last_data_recv_ms + JIFFY_SLACK_MS
    assert int(field("ino") or 0) == first.inode
    # No segment in between: the smoothed rtt ss prints (ms, %g) is the same number.
    assert round(float(field("rtt") or 0) * 1000) == first.rtt_us


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_an_unprivileged_user_reads_other_users_tcp_info(sockets: Sockets) -> None:
    server = sockets.listener()
    client, accepted = sockets.connect(server)
    client.sendall(b"x")
    assert accepted.recv(4) == b"x"
    port, key = server.getsockname()[1], _key(accepted)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            conn = tcp_connections([port])[key]
            os.write(write_end, json.dumps(conn.as_dict()).encode())
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reply:
        seen = json.loads(reply.read())
    os.waitpid(pid, 0)
    assert "error" not in seen, seen
    assert seen["uid"] == 0  # root's socket...
    assert seen["inode"] == os.fstat(accepted.fileno()).st_ino
    assert seen["last_data_recv_ms"] is not None  # ...with its tcp_info, for "nobody"


def test_many_connections(sockets: Sockets) -> None:
    count = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * count + 100:
        if hard != resource.RLIM_INFINITY and hard < 2 * count + 100:
            pytest.skip(f"needs {2 * count + 100} file descriptors, the limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * count + 100, hard))
    server = sockets.listener()
    pairs = [sockets.connect(server) for _ in range(count)]
    port = server.getsockname()[1]
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        found = tcp_connections([port])
        timings.append(time.perf_counter() - start)
    assert set(found) == {_key(accepted) for _, accepted in pairs}
    assert {conn.inode for conn in found.values()} == {
        os.fstat(accepted.fileno()).st_ino for _, accepted in pairs}
    # Dump and parse, measured at about 3 ms per 1,000 connections: generous bound.
    assert min(timings) < 1.0, f"{count} connections took {min(timings):.3f} s"


# --- messages built from the UAPI layouts --------------------------------------------------

STATE_NUMBERS = {"ESTABLISHED": 1, "TIME_WAIT": 6, "CLOSE_WAIT": 8, "LISTEN": 10}


def _nlmsg(kind: int, payload: bytes, flags: int = 2, seq: int = 1) -> bytes:
    """nlmsghdr (len u32, type u16, flags u16, seq u32, pid u32) + payload, padded to 4."""
    message = struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload
    return message + b"\0" * (-len(message) % 4)


def _nlattr(kind: int, payload: bytes) -> bytes:
    attribute = struct.pack("=HH", 4 + len(payload), kind) + payload
    return attribute + b"\0" * (-len(attribute) % 4)


def _tcp_info(sent: int, received: int, acked: int, rtt: int, size: int = 248,
              octets: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """A tcp_info (linux/tcp.h); ``octets`` is (bytes_acked, bytes_received, bytes_sent)."""
    info = bytearray(max(size, 208))
    info[0] = 1  # tcpi_state
    for offset, value in ((44, sent), (48, 4242), (52, received), (56, acked), (60, 65535),
                          (64, 1), (68, rtt), (72, 7)):
        struct.pack_into("=I", info, offset, value)
    for offset, value in zip((120, 128, 200), octets, strict=True):
        struct.pack_into("=Q", info, offset, value)
    struct.pack_into("=Q", info, 112, 2**64 - 1)  # max_pacing_rate, just before bytes_acked
    return bytes(info[:size])


def _packed(family: int, host: str) -> bytes:
    return socket.inet_pton(family, host).ljust(16, b"\0")


def _diag(family: int, local: tuple[str, int], remote: tuple[str, int], *,
          state: str = "ESTABLISHED", uid: int = 1000, inode: int = 4242,
          info: bytes | None = None, before: tuple[tuple[int, bytes], ...] = ((8, b"\0"),),
          after: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """One SOCK_DIAG_BY_FAMILY reply message: inet_diag_msg + attributes."""
    sockid = (struct.pack(">HH", local[1], remote[1]) + _packed(family, local[0])
              + _packed(family, remote[0]) + struct.pack("=III", 0, 0x1234, 0x5678))
    body = (struct.pack("=BBBB", family, STATE_NUMBERS[state], 0, 0) + sockid
            + struct.pack("=IIIII", 0, 0, 0, uid, inode))
    attributes = list(before) + ([(2, info)] if info is not None else []) + list(after)
    return _nlmsg(20, body + b"".join(_nlattr(kind, data) for kind, data in attributes))


def _done(error: int = 0) -> bytes:
    return _nlmsg(3, struct.pack("=i", error))


def test_messages_built_from_the_headers() -> None:
    v4, v6 = socket.AF_INET, socket.AF_INET6
    reply = b"".join((
        _diag(v4, ("192.0.2.1", 445), ("198.51.100.7", 50123),
              info=_tcp_info(11, 22, 33, 44, octets=(2**40 + 1, 2**33 + 2, 2**40 + 9)),
              uid=3000000000, inode=0xFFFFFFFF),
        _diag(v6, ("2001:db8::1", 445), ("2001:db8::beef", 65535),
              info=_tcp_info(5, 6, 7, 8)),
        _diag(v6, ("::ffff:192.0.2.1", 445), ("::ffff:203.0.113.9", 1),
              info=_tcp_info(1, 2, 3, 4), before=((8, b"\0"), (15, b"\0" * 4), (11, b"\1"))),
        _diag(v4, ("192.0.2.1", 1), ("192.0.2.2", 443), state="TIME_WAIT", uid=0, inode=0,
              before=()),
        _diag(v4, ("192.0.2.1", 445), ("0.0.0.0", 0), state="LISTEN",
              info=_tcp_info(0, 0, 0, 0), after=((4, b"cubic\0"),)),
        _done(),
    ))
    assert parse_inet_diag_messages(reply) == [
        TcpConnection(("192.0.2.1", 445), ("198.51.100.7", 50123), "ESTABLISHED", 0xFFFFFFFF,
                      3000000000, 22, 11, 33, 44, 2**33 + 2, 2**40 + 1, 2**40 + 9),
        TcpConnection(("2001:db8::1", 445), ("2001:db8::beef", 65535), "ESTABLISHED", 4242,
                      1000, 6, 5, 7, 8, 0, 0, 0),
        TcpConnection(("::ffff:192.0.2.1", 445), ("::ffff:203.0.113.9", 1), "ESTABLISHED",
                      4242, 1000, 2, 1, 3, 4, 0, 0, 0),
        TcpConnection(("192.0.2.1", 1), ("192.0.2.2", 443), "TIME_WAIT", 0, 0,
                      None, None, None, None, None, None, None),
        TcpConnection(("192.0.2.1", 445), ("0.0.0.0", 0), "LISTEN", 4242, 1000, 0, 0, 0, 0,
                      0, 0, 0),
    ]


def test_byte_counts_of_older_kernels() -> None:
    """A tcp_info of Linux 4.1-4.18 (bytes_acked and bytes_received, no bytes_sent) and of
    older kernels (none of them): what it does not hold is None."""
    v4 = socket.AF_INET
    reply = b"".join((
        _diag(v4, ("192.0.2.1", 445), ("192.0.2.7", 1), info=_tcp_info(
            1, 2, 3, 4, size=192, octets=(10, 20, 30))),
        _diag(v4, ("192.0.2.1", 445), ("192.0.2.7", 2), info=_tcp_info(
            1, 2, 3, 4, size=104, octets=(10, 20, 30))),
        _done(),
    ))
    first, second = parse_inet_diag_messages(reply)
    assert (first.bytes_acked, first.bytes_received, first.bytes_sent) == (10, 20, None)
    assert (second.rtt_us, second.bytes_acked, second.bytes_received) == (4, None, None)


def test_attributes_that_change_from_message_to_message() -> None:
    """Each message's own attributes are walked: other ones before INET_DIAG_INFO, none,
    an INET_DIAG_INFO of another length, one that looks like INET_DIAG_INFO inside
    another attribute."""
    v4 = socket.AF_INET
    fake_info = struct.pack("=HH", 80, 2) + b"\xff" * 76
    shapes = [
        ((8, b"\0"),),
        ((8, b"\0"),),
        ((8, b"\3"),),
        (),
        ((8, b"\0"), (21, b"\1" * 8)),
        ((8, b"\0"), (99, b"\1" * 8 + fake_info)),  # fake where the last one's was
        ((8, b"\0"),),
    ]
    messages = []
    expected = []
    for index, before in enumerate(shapes):
        size = 232 if index != 6 else 104
        messages.append(_diag(v4, ("10.0.0.1", 445), ("10.0.0.2", 1000 + index),
                              info=_tcp_info(index, 100 + index, 200 + index, 300 + index,
                                             size=size), before=before))
        expected.append((1000 + index, 100 + index, index, 200 + index, 300 + index))
    conns = parse_inet_diag_messages(b"".join(messages) + _done())
    assert [(c.remote[1], c.last_data_recv_ms, c.last_data_sent_ms, c.last_ack_recv_ms,
             c.rtt_us) for c in conns] == expected


@pytest.mark.parametrize(("size", "expected"), [
    (0, (None, None, None, None)),
    (44, (None, None, None, None)),
    (48, (None, 10, None, None)),
    (56, (20, 10, None, None)),
    (60, (20, 10, 30, None)),
    (72, (20, 10, 30, 40)),
    (104, (20, 10, 30, 40)),
])
def test_a_shorter_tcp_info_gives_the_fields_it_holds(size: int, expected: tuple) -> None:
    reply = _diag(socket.AF_INET, ("10.0.0.1", 445), ("10.0.0.2", 5000),
                  info=_tcp_info(10, 20, 30, 40, size=size)) + _done()
    (conn,) = parse_inet_diag_messages(reply)
    assert (conn.last_data_recv_ms, conn.last_data_sent_ms, conn.last_ack_recv_ms,
            conn.rtt_us) == expected


def test_error_replies() -> None:
    request_header = struct.pack("=IHHII", 72, 20, 0x301, 1, 0)
    with pytest.raises(SockDiagError, match="refused: Permission denied") as refused:
        parse_inet_diag_messages(_nlmsg(2, struct.pack("=i", -13) + request_header, flags=0))
    assert refused.value.errno == 13
    assert isinstance(refused.value, OSError)
    with pytest.raises(SockDiagError, match="dump failed: Invalid argument") as failed:
        parse_inet_diag_messages(_done(-22))
    assert failed.value.errno == 22
    with pytest.raises(SockDiagError, match="without its error number"):
        parse_inet_diag_messages(_nlmsg(2, b""))
    # An acknowledgement (error 0) is no error; an empty dump is a list of nothing.
    assert parse_inet_diag_messages(_nlmsg(2, struct.pack("=i", 0) + request_header)
                                    + _done()) == []
    assert parse_inet_diag_messages(_nlmsg(3, b"")) == []
    with pytest.raises(SockDiagError, match="message type 1234"):
        parse_inet_diag_messages(_nlmsg(1234, b"") + _done())
    unknown_family = bytearray(_diag(socket.AF_INET, ("10.0.0.1", 1), ("10.0.0.2", 2)))
    unknown_family[16] = 7
    with pytest.raises(SockDiagError, match="address family 7"):
        parse_inet_diag_messages(bytes(unknown_family) + _done())


def test_parse_cost_of_20000_connections() -> None:
    """20,000 connections from 20,000 client addresses, as a busy smbd would have."""
    info = _tcp_info(1, 2, 3, 4, size=248)
    reply = b"".join(
        _diag(socket.AF_INET, ("10.0.0.1", 445),
              (f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}", 1024 + i % 60000),
              info=info, before=((8, b"\0"), (15, b"\0" * 4), (21, b"\1" * 8), (22, b"\0\0")))
        for i in range(20_000)) + _done()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        conns = parse_inet_diag_messages(reply)
        timings.append(time.perf_counter() - start)
    assert len(conns) == 20_000
    assert conns[-1].remote == ("10.1.78.31", 1024 + 19_999)
    # Measured at about 55 ms here (each client address is new to the parser); the bound
    # leaves room for slow machines.
    assert min(timings) < 0.5, f"parsing 20,000 connections took {min(timings):.3f} s"


# --- captured real replies -----------------------------------------------------------------

SCENARIO = json.loads((FIXTURES / "expected.json").read_text())
REPLIES = {name: (FIXTURES / f"{name}.bin").read_bytes() for name in ("ipv4", "ipv6")}


def _endpoint(value: list) -> tuple[str, int]:
    return value[0], value[1]


def test_captured_replies_match_the_sockets_and_ss() -> None:
    parsed = {(c.local, c.remote): c
              for reply in REPLIES.values() for c in parse_inet_diag_messages(reply)}
    expected = SCENARIO["sockets"]
    assert set(parsed) == {(_endpoint(e["local"]), _endpoint(e["remote"])) for e in expected}
    for entry in expected:
        conn = parsed[_endpoint(entry["local"]), _endpoint(entry["remote"])]
        assert (conn.state, conn.inode, conn.uid) == (entry["state"], entry["inode"],
                                                      entry["uid"])
        ss = entry["ss"]["tcp_info"]
        if ss is None:
            assert (conn.last_data_recv_ms, conn.last_data_sent_ms, conn.last_ack_recv_ms,
                    conn.rtt_us) == (None, None, None, None)
            continue
        # ss ran right after the dump: its times are the same or a little later.
        for ours, theirs in ((conn.last_data_recv_ms, ss["lastrcv"]),
                             (conn.last_data_sent_ms, ss["lastsnd"]),
                             (conn.last_ack_recv_ms, ss["lastack"])):
            assert ours is not None
            assert ours <= theirs <= ours + 100
        assert conn.rtt_us == ss["rtt_us"]


def test_captured_reply_times_are_those_of_the_scenario() -> None:
    server = _endpoint(SCENARIO["connection_a"]["server"])
    client = _endpoint(SCENARIO["connection_a"]["client"])
    (conn,) = [c for c in parse_inet_diag_messages(REPLIES["ipv4"])
               if (c.local, c.remote) == (server, client)]
    assert conn.last_data_recv_ms is not None and conn.last_data_sent_ms is not None
    assert abs(conn.last_data_recv_ms - SCENARIO["client_sent_ms_before_dump"]) < 100
    assert abs(conn.last_data_sent_ms - SCENARIO["server_sent_ms_before_dump"]) < 100


def test_captured_replies_concatenated() -> None:
    both = parse_inet_diag_messages(REPLIES["ipv4"] + REPLIES["ipv6"])
    assert len(both) == len(SCENARIO["sockets"])
    mapped = [c for c in both if c.local[0] == "::ffff:127.0.0.1" and c.state == "ESTABLISHED"]
    assert len(mapped) == 1


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_every_truncation_of_a_real_reply_is_a_sock_diag_error(name: str) -> None:
    data = REPLIES[name]
    for cut in range(len(data)):
        with pytest.raises(SockDiagError):
            parse_inet_diag_messages(data[:cut])


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_damaged_real_replies_raise_only_sock_diag_error(name: str) -> None:
    data = REPLIES[name]
    rng = random.Random(name)
    for _ in range(3000):
        damaged = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            at = rng.randrange(len(damaged))
            damaged[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        try:
            result = parse_inet_diag_messages(bytes(damaged))
        except SockDiagError:
            continue
        assert all(isinstance(conn, TcpConnection) for conn in result)


def test_garbage_raises_only_sock_diag_error() -> None:
    rng = random.Random(20)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        with contextlib.suppress(SockDiagError):
            parse_inet_diag_messages(data)
    message = _diag(socket.AF_INET, ("10.0.0.1", 1), ("10.0.0.2", 2), info=_tcp_info(1, 2, 3, 4))
    for bad, reason in (
        (b"", "does not end with NLMSG_DONE"),
        (b"\x30\0\0\0\x14\0", "ends inside a message header"),
        (struct.pack("=I", 0) + message[4:] + _done(), "length 0"),
        (struct.pack("=I", 1 << 31) + message[4:] + _done(), "does not fit"),
        (_nlmsg(20, b"\0" * 40) + _done(), "shorter than 72 bytes"),
        (message[:88] + struct.pack("=HH", 2, 8) + message[92:] + _done(), "attribute of length 2"),
        (message[:88] + struct.pack("=HH", 999, 8) + message[92:] + _done(), "runs past"),
        (message, "does not end with NLMSG_DONE"),
    ):
        with pytest.raises(SockDiagError, match=reason):
            parse_inet_diag_messages(bad)


def test_connections_are_frozen_values() -> None:
    (conn,) = parse_inet_diag_messages(
        _diag(socket.AF_INET, ("10.0.0.1", 1), ("10.0.0.2", 2), info=_tcp_info(1, 2, 3, 4))
        + _done())
    with pytest.raises(AttributeError):
        conn.last_data_recv_ms = 0  # type: ignore[misc]
    same = TcpConnection(*conn.as_dict().values())
    assert conn == same and conn is not same
    assert hash(conn) == hash(same)
    assert conn.as_dict()["remote"] == ("10.0.0.2", 2)


def test_a_timeout_is_a_sock_diag_error() -> None:
    with pytest.raises(SockDiagError, match="within 0 s"):
        tcp_connections(timeout=0)


def test_garbage_collection_is_back_on_after_each_call() -> None:
    """The parser pauses the cyclic garbage collector, never for longer than the call."""
    assert gc.isenabled()
    tcp_connections()
    with pytest.raises(SockDiagError):
        parse_inet_diag_messages(b"\0" * 40)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_inet_diag_messages(REPLIES["ipv4"])
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


# --- Samba's addresses -------------------------------------------------------------------


@pytest.mark.parametrize(("samba", "key"), [
    ("ipv4:127.0.0.1:51234", ("127.0.0.1", 51234)),
    ("ipv4:192.168.10.20:445", ("192.168.10.20", 445)),
    ("ipv6:::1:51234", ("::1", 51234)),
    ("ipv6:::1:445", ("::1", 445)),
    ("ipv6:::ffff:127.0.0.1:445", ("127.0.0.1", 445)),
    ("ipv6:::ffff:7f00:1:445", ("127.0.0.1", 445)),
    ("ipv6:::FFFF:10.1.2.3:50000", ("10.1.2.3", 50000)),
    ("ipv6:fe80::1%eth0:445", ("fe80::1", 445)),
    ("ipv6:fe80::a00:27ff:fe4e:66a1%enp0s3:51234", ("fe80::a00:27ff:fe4e:66a1", 51234)),
    ("ipv6:fe80::1%2:445", ("fe80::1", 445)),
    ("ipv6:2001:DB8:0:0:0:0:0:1:445", ("2001:db8::1", 445)),
    ("ipv6:2001:db8:0:1:0:0:0:1:139", ("2001:db8:0:1::1", 139)),
    ("ipv6:[2001:db8::5]:445", ("2001:db8::5", 445)),
    ("ipv6:::0.2.0.3:445", ("::2:3", 445)),
    ("ipv4:0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_samba_addresses(samba: str, key: tuple[str, int]) -> None:
    assert normalize_address(samba) == key


@pytest.mark.parametrize("bad", [
    "", "127.0.0.1:445", "ipv4:127.0.0.1", "ipv4:127.0.0.1:", "ipv4:127.0.0.1:65536",
    "ipv4:1.2.3.4:x", "ipv4:1.2.3.4:-1", "ipv4:1.2.3.4:\u0664\u0664\u0665", "ipv4:::1:445",
    "ipv4:999.1.1.1:1", "ipv6:127.0.0.1:445", "ipv6:fe80::1%:445x", "unix:/run/samba/sock",
    "tcp:1.2.3.4:445", "IPV4:1.2.3.4:445",
])
def test_not_samba_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_address(bad)


def test_ipv6_text_is_that_of_ipaddress() -> None:
    rng = random.Random(6)
    for _ in range(2000):
        words = [rng.choice((0, 0, 0, 1, 0xFFFF, rng.randrange(65536))) for _ in range(8)]
        address = ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in words))
        host, port = normalize_address(f"ipv6:{address.exploded}:445")
        mapped = address.ipv4_mapped
        assert host == (str(mapped) if mapped else str(address))
        assert port == 445
