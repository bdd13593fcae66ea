"""The kernel's TCP view over netlink sock_diag, on real loopback sockets."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import time

import pytest

from smbsession.netinfo import (
    SockDiagError,
    normalize_address,
    parse_inet_diag_messages,
    tcp_connections,
)


def _pair(family: int = socket.AF_INET, host: str = "127.0.0.1"):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen()
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    return server, client, accepted


def _key(sock: socket.socket) -> tuple:
    local, remote = sock.getsockname(), sock.getpeername()
    return (normalize_address_tuple(local), normalize_address_tuple(remote))


def normalize_address_tuple(addr: tuple) -> tuple[str, int]:
    return (addr[0], addr[1])


def test_server_side_idle_time_grows_and_resets() -> None:
    server, client, accepted = _pair()
    try:
        port = server.getsockname()[1]
        client.sendall(b"hello")
        accepted.recv(16)
        quiet = time.monotonic()
        time.sleep(1.2)
        conn = tcp_connections([port])[_key(accepted)]
        elapsed_ms = (time.monotonic() - quiet) * 1000
        assert conn.state == "ESTABLISHED"
        assert 900 <= conn.last_data_recv_ms <= elapsed_ms + 200
        client.sendall(b"again")
        accepted.recv(16)
        assert tcp_connections([port])[_key(accepted)].last_data_recv_ms < 500
    finally:
        for s in (client, accepted, server):
            s.close()


def test_port_filter_keeps_only_that_port() -> None:
    first, c1, a1 = _pair()
    second, c2, a2 = _pair()
    try:
        port = first.getsockname()[1]
        found = tcp_connections([port])
        assert _key(a1) in found
        assert all(local[1] == port for local, _ in found)
        assert _key(a2) not in found
    finally:
        for s in (c1, a1, first, c2, a2, second):
            s.close()


def test_ipv6_loopback() -> None:
    try:
        server, client, accepted = _pair(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        found = tcp_connections([server.getsockname()[1]])
        assert (("::1", server.getsockname()[1]), ("::1", client.getsockname()[1])) in found
    finally:
        for s in (client, accepted, server):
            s.close()


def test_agrees_with_ss() -> None:
    server, client, accepted = _pair()
    try:
        port = server.getsockname()[1]
        client.sendall(b"x")
        accepted.recv(4)
        time.sleep(0.6)
        mine = tcp_connections([port])[_key(accepted)].last_data_recv_ms
        out = subprocess.run(["ss", "-tin", "sport", "=", f":{port}"], capture_output=True,
                             text=True, check=True).stdout
        theirs = int(out.split("lastrcv:")[1].split()[0])
        assert abs(theirs - mine) < 300
    finally:
        for s in (client, accepted, server):
            s.close()


@pytest.mark.parametrize(("samba", "key"), [
    ("ipv4:127.0.0.1:51234", ("127.0.0.1", 51234)),
    ("ipv6:::1:445", ("::1", 445)),
    ("ipv6:::ffff:127.0.0.1:445", ("127.0.0.1", 445)),
    ("ipv6:fe80::1%eth0:445", ("fe80::1", 445)),
    ("ipv6:fe80:0:0::1:445", ("fe80::1", 445)),
])
def test_samba_addresses(samba: str, key: tuple[str, int]) -> None:
    assert normalize_address(samba) == key


@pytest.mark.parametrize("bad", ["", "127.0.0.1:445", "ipv4:999.1.1.1:1", "ipv4:1.2.3.4:x",
                                 "unix:/tmp/sock"])
def test_bad_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_address(bad)


def test_garbage_replies_raise_sock_diag_error_only() -> None:
    import random

    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        with contextlib.suppress(SockDiagError):
            parse_inet_diag_messages(data)
    with pytest.raises(SockDiagError, match="ends inside"):
        parse_inet_diag_messages(b"\x30\x00\x00\x00\x14\x00")
    short_error = struct.pack("=IHHII", 16, 2, 0, 1, 0)  # NLMSG_ERROR without its errno
    with pytest.raises(SockDiagError):
        parse_inet_diag_messages(short_error)
