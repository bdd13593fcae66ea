"""CTDB's client protocol on ctdbd's unix socket: each wire structure declared once.

Every structure is little-endian (host order on the machines Samba clusters run on) and
named after its C declaration in ``ctdb/protocol/protocol.h``; the byte layout is the one
``ctdb/protocol/protocol_*.c`` marshals (Samba 4.13 to 4.23 do not change it):

======================== ======================================================= =====
structure                fields (protocol.h; marshalled in)                      bytes
======================== ======================================================= =====
ctdb_req_header          length, ctdb_magic ``CTDB``, ctdb_version 1,            32
                         generation, operation, destnode, srcnode, reqid
                         (protocol_header.c)
ctdb_req_control         header, opcode, pad, srvid u64, client_id, flags,       60+
                         datalen, data (protocol_control.c)
ctdb_reply_control       header, status i32, datalen, errorlen, then data when   44+
                         status is 0, else the error string (protocol_control.c)
ctdb_req_message         header, srvid u64, datalen, data (protocol_message.c)   44+
ctdb_traverse_start      db_id, reqid, srvid u64 (protocol_types.c)              16
ctdb_traverse_start_ext  db_id, reqid, srvid u64, withemptyrecords u8, 7 pad     24
ctdb_rec_data            length, reqid, keylen, datalen, key, data              16+
                         (a traverse puts the record's ltdb header in data)
ctdb_ltdb_header         rsn u64, dmaster, reserved1, flags, 4 pad               24
ctdb_pid_srvid           pid i32, srvid u64 (no padding: 4 + 8)                  12
ctdb_node_map            num, then num x ctdb_node_and_flags: pnn, flags,        4+36n
                         ctdb_sock_addr (a 28-byte sockaddr union)
ctdb_dbid_map            num, then num x ctdb_dbid: db_id, flags u8, 3 pad       4+8n
ctdb_vnn_map             generation, size, then size x u32                       8+4n
======================== ======================================================= =====

ctdbd writes every packet padded with zeros to a multiple of 8 bytes
(``CTDB_DS_ALIGNMENT``, ``ctdb/common/ctdb_io.c``) and sets the header's length to the
padded size; the real size of a payload is its own ``datalen``. A client may send
unpadded packets (smbd does, ``source3/lib/ctdbd_conn.c``).

A traverse (control TRAVERSE_START) delivers each record as a REQ_MESSAGE to the srvid the
client registered; the record whose key and data are both empty ends it. ctdbd ends a
traverse that one node does not finish within its TraverseTimeout (20 s) with the same
empty record (``ctdb/server/ctdb_traverse.c``), so the end marker alone does not prove a
complete traverse: see :mod:`smbsession.samba.ctdb.client`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

CTDB_MAGIC = 0x43544442
CTDB_PROTOCOL = 1
#: destnode: the node the client is connected to.
CTDB_CURRENT_NODE = 0xF0000001
#: Padding of every packet ctdbd writes.
CTDB_DS_ALIGNMENT = 8

# enum ctdb_operation
CTDB_REQ_CALL = 0
CTDB_REPLY_CALL = 1
CTDB_REPLY_ERROR = 4
CTDB_REQ_MESSAGE = 5
CTDB_REQ_CONTROL = 7
CTDB_REPLY_CONTROL = 8
CTDB_REQ_KEEPALIVE = 9

# enum ctdb_controls
CTDB_CONTROL_PROCESS_EXISTS = 0
CTDB_CONTROL_GETVNNMAP = 5
CTDB_CONTROL_GET_DBMAP = 9
CTDB_CONTROL_GET_RECMODE = 15
CTDB_CONTROL_TRAVERSE_START = 20
CTDB_CONTROL_REGISTER_SRVID = 23
CTDB_CONTROL_DEREGISTER_SRVID = 24
CTDB_CONTROL_GET_DBNAME = 25
CTDB_CONTROL_GET_PNN = 35
CTDB_CONTROL_GET_NODEMAP = 91
CTDB_CONTROL_TRAVERSE_START_EXT = 131
CTDB_CONTROL_CHECK_PID_SRVID = 151

#: Recovery modes (GET_RECMODE's status).
CTDB_RECOVERY_NORMAL = 0
CTDB_RECOVERY_ACTIVE = 1

# Node flags (ctdb_node_and_flags.flags).
NODE_FLAGS_DISCONNECTED = 0x01
NODE_FLAGS_UNHEALTHY = 0x02
NODE_FLAGS_PERMANENTLY_DISABLED = 0x04
NODE_FLAGS_BANNED = 0x08
NODE_FLAGS_DELETED = 0x10
NODE_FLAGS_STOPPED = 0x20
NODE_FLAGS_INACTIVE = (NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED | NODE_FLAGS_BANNED
                       | NODE_FLAGS_STOPPED)

#: The srvid range ctdb sets aside for client programs (protocol.h).
CTDB_SRVID_CLIENT_RANGE = 0xBE00000000000000

HEADER = struct.Struct("<8I")
REQ_CONTROL = struct.Struct("<IIQIII")
REPLY_CONTROL = struct.Struct("<iII")
REQ_MESSAGE = struct.Struct("<QI")
TRAVERSE_START = struct.Struct("<IIQ")
TRAVERSE_START_EXT = struct.Struct("<IIQ?7x")
REC_DATA = struct.Struct("<4I")
LTDB_HEADER = struct.Struct("<QIII4x")
PID_SRVID = struct.Struct("<iQ")
NODE_AND_FLAGS = struct.Struct("<II28s")
DBID = struct.Struct("<IB3x")
U32 = struct.Struct("<I")
VNN_MAP = struct.Struct("<II")


class CtdbProtocolError(ValueError):
    """Bytes from ctdbd that do not form the structure they should (says which)."""


@dataclass(frozen=True)
class Header:
    """``struct ctdb_req_header``."""

    length: int
    operation: int
    destnode: int = CTDB_CURRENT_NODE
    srcnode: int = 0
    reqid: int = 0
    generation: int = 0

    def pack(self) -> bytes:
        return HEADER.pack(self.length, CTDB_MAGIC, CTDB_PROTOCOL, self.generation,
                           self.operation, self.destnode, self.srcnode, self.reqid)

    @classmethod
    def unpack(cls, packet: bytes | memoryview) -> Header:
        if len(packet) < HEADER.size:
            raise CtdbProtocolError(f"a packet of {len(packet)} bytes is shorter than the "
                                    f"{HEADER.size}-byte ctdb header")
        length, magic, version, generation, operation, dest, src, reqid = \
            HEADER.unpack_from(packet)
        if magic != CTDB_MAGIC:
            raise CtdbProtocolError(f"not a ctdb packet (magic 0x{magic:08x})")
        if version != CTDB_PROTOCOL:
            raise CtdbProtocolError(f"ctdb protocol version {version}, expected "
                                    f"{CTDB_PROTOCOL}")
        if length < HEADER.size or length > len(packet):
            raise CtdbProtocolError(f"header length {length} does not fit a packet of "
                                    f"{len(packet)} bytes")
        return cls(length, operation, dest, src, reqid, generation)


def padded(length: int) -> int:
    """``length`` rounded up to ctdbd's 8-byte packet alignment."""
    return (length + CTDB_DS_ALIGNMENT - 1) & ~(CTDB_DS_ALIGNMENT - 1)


def req_control(reqid: int, opcode: int, data: bytes = b"", destnode: int = CTDB_CURRENT_NODE,
                srvid: int = 0, flags: int = 0) -> bytes:
    """A REQ_CONTROL packet (unpadded, as smbd sends them)."""
    length = HEADER.size + REQ_CONTROL.size + len(data)
    return (Header(length, CTDB_REQ_CONTROL, destnode, reqid=reqid).pack()
            + REQ_CONTROL.pack(opcode, 0, srvid, 0, flags, len(data)) + data)


def req_message(srvid: int, data: bytes, destnode: int, srcnode: int) -> bytes:
    """A REQ_MESSAGE packet carrying ``data`` to ``srvid`` on node ``destnode``."""
    length = HEADER.size + REQ_MESSAGE.size + len(data)
    return (Header(length, CTDB_REQ_MESSAGE, destnode, srcnode, generation=1).pack()
            + REQ_MESSAGE.pack(srvid, len(data)) + data)


@dataclass(frozen=True)
class ReplyControl:
    """``struct ctdb_reply_control``: ``status`` and, when it is 0, ``data``; else
    ``error`` (ctdbd's message, often empty)."""

    reqid: int
    status: int
    data: bytes
    error: str


def parse_reply_control(packet: bytes | memoryview) -> ReplyControl:
    """Decode a REPLY_CONTROL packet (``packet`` is the whole, possibly padded, packet)."""
    header = Header.unpack(packet)
    if header.operation != CTDB_REPLY_CONTROL:
        raise CtdbProtocolError(f"operation {header.operation} is not REPLY_CONTROL")
    end = header.length
    if end < HEADER.size + REPLY_CONTROL.size:
        raise CtdbProtocolError(f"a control reply of {end} bytes is too short")
    status, datalen, errorlen = REPLY_CONTROL.unpack_from(packet, HEADER.size)
    start = HEADER.size + REPLY_CONTROL.size
    if start + datalen + errorlen > end:
        raise CtdbProtocolError(f"a control reply claims {datalen} + {errorlen} bytes, "
                                f"{end - start} are there")
    data = bytes(packet[start:start + datalen])
    error = bytes(packet[start + datalen:start + datalen + errorlen])
    return ReplyControl(header.reqid, status, data,
                        error.split(b"\0", 1)[0].decode("utf-8", "replace"))


@dataclass(frozen=True)
class Message:
    """``struct ctdb_req_message``: ``data`` for ``srvid``."""

    srvid: int
    srcnode: int
    data: bytes


def parse_message(packet: bytes | memoryview) -> Message:
    """Decode a REQ_MESSAGE packet."""
    header = Header.unpack(packet)
    if header.operation != CTDB_REQ_MESSAGE:
        raise CtdbProtocolError(f"operation {header.operation} is not REQ_MESSAGE")
    if header.length < HEADER.size + REQ_MESSAGE.size:
        raise CtdbProtocolError(f"a message of {header.length} bytes is too short")
    srvid, datalen = REQ_MESSAGE.unpack_from(packet, HEADER.size)
    start = HEADER.size + REQ_MESSAGE.size
    if start + datalen > header.length:
        raise CtdbProtocolError(f"a message claims {datalen} bytes, "
                                f"{header.length - start} are there")
    return Message(srvid, header.srcnode, bytes(packet[start:start + datalen]))


@dataclass(frozen=True)
class LtdbHeader:
    """``struct ctdb_ltdb_header``: the 24 bytes ctdb puts before every record's value."""

    rsn: int
    dmaster: int
    flags: int


def parse_ltdb_header(data: bytes | memoryview) -> LtdbHeader:
    if len(data) < LTDB_HEADER.size:
        raise CtdbProtocolError(f"a record of {len(data)} bytes has no "
                                f"{LTDB_HEADER.size}-byte ltdb header")
    rsn, dmaster, _reserved, flags = LTDB_HEADER.unpack_from(data)
    return LtdbHeader(rsn, dmaster, flags)


@dataclass(frozen=True)
class TraverseRecord:
    """One ``ctdb_rec_data`` of a traverse: the key, the ltdb header, the value after it.

    ``end`` is True for the empty record that ends a traverse."""

    reqid: int
    key: bytes
    header: LtdbHeader | None
    value: bytes

    @property
    def end(self) -> bool:
        return self.header is None and not self.key


def parse_rec_data(data: bytes | memoryview) -> TraverseRecord:
    """Decode a traverse message's payload (``ctdb_rec_data`` whose data starts with the
    record's ltdb header)."""
    if len(data) < REC_DATA.size:
        raise CtdbProtocolError(f"traverse data of {len(data)} bytes is too short")
    length, reqid, keylen, datalen = REC_DATA.unpack_from(data)
    if length != len(data) or REC_DATA.size + keylen + datalen > length:
        raise CtdbProtocolError(f"traverse record length {length} (key {keylen}, data "
                                f"{datalen}) does not match its {len(data)} bytes")
    key = bytes(data[REC_DATA.size:REC_DATA.size + keylen])
    value = data[REC_DATA.size + keylen:REC_DATA.size + keylen + datalen]
    if keylen == 0 and datalen == 0:
        return TraverseRecord(reqid, b"", None, b"")
    header = parse_ltdb_header(value)
    return TraverseRecord(reqid, key, header, bytes(value[LTDB_HEADER.size:]))


def traverse_start(db_id: int, reqid: int, srvid: int) -> bytes:
    """``struct ctdb_traverse_start``."""
    return TRAVERSE_START.pack(db_id, reqid, srvid)


def traverse_start_ext(db_id: int, reqid: int, srvid: int, with_empty: bool) -> bytes:
    """``struct ctdb_traverse_start_ext``."""
    return TRAVERSE_START_EXT.pack(db_id, reqid, srvid, with_empty)


def pid_srvid(pid: int, srvid: int) -> bytes:
    """``struct ctdb_pid_srvid`` as CHECK_PID_SRVID takes it."""
    return PID_SRVID.pack(pid, srvid)


@dataclass(frozen=True)
class Node:
    """One entry of the node map: PNN, flags and the node's private address."""

    pnn: int
    flags: int
    address: str

    @property
    def connected(self) -> bool:
        return not self.flags & (NODE_FLAGS_DISCONNECTED | NODE_FLAGS_DELETED)


def _sock_addr(raw: bytes) -> str:
    family = struct.unpack_from("<H", raw)[0]
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(raw[4:8]))
    if family == socket.AF_INET6:
        return str(ipaddress.IPv6Address(raw[8:24]))
    return f"(address family {family})"


def parse_node_map(data: bytes) -> list[Node]:
    """Decode GET_NODEMAP's ``struct ctdb_node_map``."""
    num = _count(data, NODE_AND_FLAGS.size, "node map")
    nodes = []
    for i in range(num):
        pnn, flags, addr = NODE_AND_FLAGS.unpack_from(data, U32.size + i * NODE_AND_FLAGS.size)
        nodes.append(Node(pnn, flags, _sock_addr(addr)))
    return nodes


def parse_dbid_map(data: bytes) -> list[tuple[int, int]]:
    """Decode GET_DBMAP's ``struct ctdb_dbid_map``: (db_id, flags) pairs."""
    num = _count(data, DBID.size, "database map")
    return [DBID.unpack_from(data, U32.size + i * DBID.size) for i in range(num)]


def parse_vnn_map(data: bytes) -> tuple[int, list[int]]:
    """Decode GETVNNMAP's ``struct ctdb_vnn_map``: the generation and the lmaster map."""
    if len(data) < VNN_MAP.size:
        raise CtdbProtocolError(f"a vnn map of {len(data)} bytes is too short")
    generation, size = VNN_MAP.unpack_from(data)
    if VNN_MAP.size + 4 * size > len(data):
        raise CtdbProtocolError(f"a vnn map claims {size} entries in {len(data)} bytes")
    return generation, list(struct.unpack_from(f"<{size}I", data, VNN_MAP.size))


def _count(data: bytes, entry: int, what: str) -> int:
    if len(data) < U32.size:
        raise CtdbProtocolError(f"a {what} of {len(data)} bytes is too short")
    num = U32.unpack_from(data)[0]
    if U32.size + num * entry > len(data):
        raise CtdbProtocolError(f"a {what} claims {num} entries in {len(data)} bytes")
    return num
