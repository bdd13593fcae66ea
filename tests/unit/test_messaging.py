"""Samba messaging: the bytes we send, checked against Samba's own NDR encoder."""

from __future__ import annotations

import socket
import struct

import pytest

from smbsession.samba.messaging import (
    MSG_SMBXSRV_SESSION_CLOSE,
    MessagingError,
    ServerId,
    encode_message,
    encode_session_close,
    send,
)

# ndr_pack(smbXsrv.session_closeB) from Samba 4.22's Python bindings, with
# old_session_global_id=0x11223344, old_session_wire_id=0x5566778899,
# old_creation_time=0x01D0AABBCCDDEEFF, new_session_wire_id=0.
SAMBA_CLOSE_B = bytes.fromhex(
    "00000000000000000000000000000200443322110000000099887766550000"
    "00ffeeddccbbaad0010000000000000000"
)


# ndr_pack(smbXsrv.session_closeB(version=1)) from Samba 4.25.1's bindings (sid), same
# values. Bytes 12..15 are alignment padding ([ref] info pointer: no referent id), which
# Samba's encoder leaves as whatever was in memory (here f1aef1ae); we send zeros.
SAMBA_425_CLOSE_B = bytes.fromhex(
    "010000000000000001000000f1aef1ae4433221100000000998877665500000"
    "0ffeeddccbbaad0010000000000000000"
)


def test_session_close_matches_samba_ndr() -> None:
    assert encode_session_close(0x11223344, 0x5566778899, 0x01D0AABBCCDDEEFF) == SAMBA_CLOSE_B


def test_session_close_version_1_matches_samba_425_ndr() -> None:
    mine = encode_session_close(0x11223344, 0x5566778899, 0x01D0AABBCCDDEEFF, version=1)
    assert len(mine) == len(SAMBA_425_CLOSE_B)
    assert mine[:12] == SAMBA_425_CLOSE_B[:12] and mine[12:16] == bytes(4)
    assert mine[16:] == SAMBA_425_CLOSE_B[16:]


def test_session_close_version_is_0_or_1() -> None:
    with pytest.raises(ValueError, match="version 2"):
        encode_session_close(1, 1, 1, version=2)


@pytest.mark.parametrize(("gid", "wire", "ctime"), [(-1, 1, 1), (2**32, 1, 1), (1, 2**64, 1)])
def test_session_close_rejects_values_that_do_not_fit(gid: int, wire: int, ctime: int) -> None:
    with pytest.raises(ValueError):
        encode_session_close(gid, wire, ctime)


def test_message_header_layout() -> None:
    dst = ServerId(pid=1234, task_id=0, vnn=0xFFFFFFFF, unique_id=0x0102030405060708)
    src = ServerId(pid=99)
    msg = encode_message(MSG_SMBXSRV_SESSION_CLOSE, dst, src, b"xyz")
    cookie, = struct.unpack_from("=Q", msg, 0)
    assert cookie == 0
    assert struct.unpack_from("<QIIQ", msg, 8) == (1234, 0, 0xFFFFFFFF, 0x0102030405060708)
    assert struct.unpack_from("<Q", msg, 32)[0] == 99
    assert struct.unpack_from("<I", msg, 56)[0] == 0x0600
    assert msg[60:] == b"xyz"


def test_send_delivers_one_datagram(tmp_path) -> None:
    (tmp_path / "msg.sock").mkdir()
    path = tmp_path / "msg.sock" / "4242"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        send(str(tmp_path), ServerId(4242), MSG_SMBXSRV_SESSION_CLOSE, b"payload")
        data = receiver.recv(4096)
    assert data.endswith(b"payload") and struct.unpack_from("<I", data, 56)[0] == 0x0600


def test_send_to_a_gone_process_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "msg.sock").mkdir()
    with pytest.raises(MessagingError, match="no messaging socket"):
        send(str(tmp_path), ServerId(999999), MSG_SMBXSRV_SESSION_CLOSE, b"")
