"""The ctdb protocol and client, from real ctdbd packets (tests/fixtures/ctdb/).

The fixtures are the byte streams a real ctdbd (Samba 4.17.12's, node 0 of a 2-node lab
cluster) sent to one client connection, captured by tests/fixtures/ctdb/capture.py. A
replay server sends them back to :class:`CtdbClient` over a real unix socket; the client
uses the request ids and srvid of the capture, so the replies answer its requests.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smbsession.errors import ClusterTimeout, ClusterUnavailable
from smbsession.samba.ctdb import protocol as p
from smbsession.samba.ctdb.client import CtdbClient
from smbsession.samba.smbxsrv import decode_session, layout_for_version

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ctdb"
LAYOUT = layout_for_version("4.17.12")


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _packets(stream: bytes) -> list[bytes]:
    out = []
    while stream:
        length = p.U32.unpack_from(stream)[0]
        out.append(stream[:length])
        stream = stream[length:]
    return out


@contextmanager
def replay(stream: bytes, chunk: int = 5, close_after: bool = False) -> Iterator[str]:
    """A unix socket that sends ``stream`` to its first client in ``chunk``-byte pieces
    (packets cut anywhere, as a stream socket may deliver them), reads whatever the
    client sends, and then stays silent (or closes, with ``close_after``)."""
    directory = tempfile.mkdtemp(prefix="smbsession-ctdb-")
    path = os.path.join(directory, "ctdbd.socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(0.05)
        with conn:
            for i in range(0, len(stream), chunk):
                conn.sendall(stream[i:i + chunk])
            while not done.is_set() and not close_after:
                try:
                    if not conn.recv(65536):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield path
    finally:
        done.set()
        worker.join(2)
        server.close()
        os.unlink(path)
        os.rmdir(directory)


def _client(path: str, fixture: dict, timeout: float = 5.0) -> CtdbClient:
    client = CtdbClient(path, timeout=timeout)
    client._reqid = fixture["reqid_start"]
    return client


# -- structures -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["controls", "traverse", "traverse_stalled"])
def test_every_captured_packet_is_padded_to_8_bytes_and_parses(name: str) -> None:
    packets = _packets(bytes.fromhex(_fixture(name)["stream"]))
    assert packets
    padded = 0
    for packet in packets:
        header = p.Header.unpack(packet)
        assert header.length == len(packet)
        assert header.length % 8 == 0
        if header.operation == p.CTDB_REPLY_CONTROL:
            reply = p.parse_reply_control(packet)
            real = p.HEADER.size + p.REPLY_CONTROL.size + len(reply.data)
        else:
            assert header.operation == p.CTDB_REQ_MESSAGE
            real = p.HEADER.size + p.REQ_MESSAGE.size + len(p.parse_message(packet).data)
        assert p.padded(real) == len(packet)
        padded += real != len(packet)
    assert padded, "the capture should hold packets that ctdbd padded"


def test_the_end_marker_is_an_empty_record() -> None:
    fixture = _fixture("traverse")
    messages = [p.parse_message(pk) for pk in _packets(bytes.fromhex(fixture["stream"]))
                if p.Header.unpack(pk).operation == p.CTDB_REQ_MESSAGE]
    records = [p.parse_rec_data(m.data) for m in messages]
    assert [r.end for r in records] == [False] * (len(records) - 1) + [True]
    assert all(m.srvid == fixture["srvid"] for m in messages)
    end = messages[-1].data
    assert len(end) == p.REC_DATA.size and p.REC_DATA.unpack(end)[2:] == (0, 0)


def test_records_carry_the_24_byte_ltdb_header() -> None:
    fixture = _fixture("traverse")
    for packet in _packets(bytes.fromhex(fixture["stream"])):
        if p.Header.unpack(packet).operation != p.CTDB_REQ_MESSAGE:
            continue
        record = p.parse_rec_data(p.parse_message(packet).data)
        if record.end:
            continue
        _length, _reqid, keylen, datalen = p.REC_DATA.unpack_from(p.parse_message(packet).data)
        assert keylen == 4 and datalen == len(record.value) + 24


@pytest.mark.parametrize("cut", [1, 8, 15, 20])
def test_truncated_traverse_data_is_a_protocol_error(cut: int) -> None:
    fixture = _fixture("traverse")
    message = next(p.parse_message(pk) for pk in _packets(bytes.fromhex(fixture["stream"]))
                   if p.Header.unpack(pk).operation == p.CTDB_REQ_MESSAGE)
    with pytest.raises(p.CtdbProtocolError):
        p.parse_rec_data(message.data[:-cut])


def test_a_record_shorter_than_its_ltdb_header_is_a_protocol_error() -> None:
    data = p.REC_DATA.pack(p.REC_DATA.size + 4 + 10, 1, 4, 10) + b"k" * 4 + b"v" * 10
    with pytest.raises(p.CtdbProtocolError, match="ltdb header"):
        p.parse_rec_data(data)


def test_a_header_only_record_has_an_empty_value() -> None:
    header = p.LTDB_HEADER.pack(7, 1, 0, 0)
    data = p.REC_DATA.pack(p.REC_DATA.size + 4 + 24, 1, 4, 24) + b"\0\0\0\1" + header
    record = p.parse_rec_data(data)
    assert not record.end and record.value == b"" and record.header == p.LtdbHeader(7, 1, 0)


def test_a_packet_with_the_wrong_magic_is_refused() -> None:
    packet = bytearray(_packets(bytes.fromhex(_fixture("controls")["stream"]))[0])
    packet[4:8] = b"XXXX"
    with pytest.raises(p.CtdbProtocolError, match="magic"):
        p.Header.unpack(bytes(packet))


def test_requests_are_laid_out_as_ctdb_expects() -> None:
    packet = p.req_control(9, p.CTDB_CONTROL_CHECK_PID_SRVID, p.pid_srvid(42, 7), destnode=1)
    assert len(packet) == 32 + 28 + 12
    length, magic, version, _gen, op, dest, _src, reqid = p.HEADER.unpack_from(packet)
    assert (length, magic, version, op, dest, reqid) == (72, 0x43544442, 1, 7, 1, 9)
    assert p.REQ_CONTROL.unpack_from(packet, 32) == (151, 0, 0, 0, 0, 12)
    assert packet[60:] == (42).to_bytes(4, "little") + (7).to_bytes(8, "little")
    assert len(p.traverse_start_ext(1, 2, 3, True)) == 24
    assert len(p.traverse_start(1, 2, 3)) == 16


# -- the client, replaying ctdbd --------------------------------------------------------


def test_controls_replayed() -> None:
    fixture = _fixture("controls")
    want = fixture["expected"]
    with replay(bytes.fromhex(fixture["stream"])) as path, _client(path, fixture) as c:
        assert c.pnn() == want["pnn"]
        assert [[n.pnn, n.flags, n.address] for n in c.nodemap()] == want["nodes"]
        assert list(c.recovery_state()) == [want["recovery_mode"], want["generation"]]
        assert c.databases() == want["databases"]
        checked = [(vnn, pid, int(unique)) for vnn, pid, unique in want["checked"]]
        assert c.processes_exist(checked) == want["alive"] == [True, False]


def test_traverse_replayed() -> None:
    fixture = _fixture("traverse")
    want = fixture["expected"]
    got: list[p.TraverseRecord] = []
    with replay(bytes.fromhex(fixture["stream"])) as path, _client(path, fixture) as c:
        count = c.traverse(want["db_id"], got.append, srvid=fixture["srvid"])
    assert count == len(got) == len(want["records"])
    assert LAYOUT is not None
    assert [[r.key.hex(), r.header.dmaster, r.header.rsn, len(r.value),
             decode_session(r.value, LAYOUT).session_global_id]
            for r in got if r.header] == want["records"]
    # Both nodes sent their records (each the ones it is dmaster of).
    assert {r.header.dmaster for r in got if r.header} == {0, 1}


def test_a_stalled_traverse_ends_at_its_deadline() -> None:
    fixture = _fixture("traverse_stalled")
    got: list[p.TraverseRecord] = []
    with replay(bytes.fromhex(fixture["stream"])) as path, _client(path, fixture) as c:
        started = time.monotonic()
        with pytest.raises(ClusterTimeout, match="traverse"):
            c.traverse(fixture["expected"]["db_id"], got.append, timeout=1.0,
                       srvid=fixture["srvid"])
        took = time.monotonic() - started
    assert 0.9 <= took < 3
    assert len(got) == fixture["expected"]["records_before_stall"]


def test_a_generation_change_during_the_traverse_is_an_error_not_a_short_list() -> None:
    """The captured traverse with the generation of its last GETVNNMAP reply changed:
    a recovery happened while traversing, and ctdbd may have ended it early."""
    fixture = _fixture("traverse")
    packets = _packets(bytes.fromhex(fixture["stream"]))
    last = bytearray(packets[-1])
    reply = p.parse_reply_control(bytes(last))
    generation = p.parse_vnn_map(reply.data)[0]
    offset = p.HEADER.size + p.REPLY_CONTROL.size
    last[offset:offset + 4] = p.U32.pack(generation ^ 1)
    stream = b"".join(packets[:-1]) + bytes(last)
    with replay(stream) as path, _client(path, fixture) as c, \
            pytest.raises(ClusterUnavailable, match="recovering"):
        c.traverse(fixture["expected"]["db_id"], lambda r: None, srvid=fixture["srvid"])


def test_ctdbd_closing_the_connection_mid_traverse_is_an_error() -> None:
    fixture = _fixture("traverse_stalled")
    with replay(bytes.fromhex(fixture["stream"]), close_after=True) as path, \
            _client(path, fixture) as c, pytest.raises(ClusterUnavailable, match="stopped"):
        c.traverse(fixture["expected"]["db_id"], lambda r: None, timeout=5,
                   srvid=fixture["srvid"])


def test_an_absent_socket_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnavailable, match="does not exist") as info:
        CtdbClient(str(tmp_path / "ctdbd.socket"))
    assert info.value.reason == "absent"


def test_a_socket_nobody_listens_on_is_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "ctdbd.socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.close()  # the file stays, nothing listens: what a crashed ctdbd leaves
    with pytest.raises(ClusterUnavailable, match="refuses") as info:
        CtdbClient(path)
    assert info.value.reason == "refused"


def test_a_socket_that_never_answers_times_out() -> None:
    with replay(b"") as path, CtdbClient(path, timeout=0.5) as c:
        started = time.monotonic()
        with pytest.raises(ClusterTimeout):
            c.pnn()
        assert time.monotonic() - started < 2
