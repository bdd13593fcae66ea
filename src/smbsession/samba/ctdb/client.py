"""A client of the local ctdbd, on its unix socket, with a deadline on every call.

:class:`CtdbClient` speaks the protocol of :mod:`smbsession.samba.ctdb.protocol` the way
smbd and smbstatus do (``source3/lib/ctdbd_conn.c``): controls to the local node or, via
it, to another node; a traverse of a volatile database over the whole cluster; a message
to a process on any node. Only the standard library is used.

Every call ends by its deadline: a control that gets no reply, a traverse that stalls
(during a recovery ctdbd holds it back; a node that stopped answering holds it until its
TraverseTimeout), a socket that accepts and never answers, all raise
:class:`~smbsession.errors.ClusterTimeout`; an absent or refusing socket raises
:class:`~smbsession.errors.ClusterUnavailable`. A traverse is accepted as complete only
when the cluster was in normal mode, with the same generation, before and after it: ctdbd
ends a traverse that times out inside the cluster with the same end marker as a complete
one, so the end marker alone would turn a stalled cluster into a short listing.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import time
from collections.abc import Callable, Iterable

from ...errors import ClusterTimeout, ClusterUnavailable
from . import protocol as p

#: Where ctdbd listens when smb.conf has no ``ctdbd socket`` (Debian's and upstream's
#: CTDB_SOCKET: ``/run/ctdb/ctdbd.socket``, reached through /var/run on older systems).
DEFAULT_SOCKET = "/run/ctdb/ctdbd.socket"
#: Seconds a single control may take.
CONTROL_TIMEOUT = 5.0
#: Seconds a whole traverse may take (shorter than ctdbd's own TraverseTimeout, 20 s).
TRAVERSE_TIMEOUT = 15.0


class CtdbClient:
    """One connection to a ctdbd.

    ``socket_path`` is ctdbd's unix socket; ``timeout`` the default deadline of a call in
    seconds. ``capture``, when given, receives every packet read from ctdbd (for tests).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = CONTROL_TIMEOUT,
                 capture: list[bytes] | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.capture = capture
        self._reqid = secrets.randbelow(2**31) + 1
        self._pending: list[bytes] = []
        self._buffer = bytearray()
        self._pnn: int | None = None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        try:
            self._connect(timeout)
        except BaseException:
            self._sock.close()
            raise

    def _connect(self, timeout: float) -> None:
        path = self.socket_path
        try:
            self._sock.connect(path)
        except BlockingIOError:
            _, ready, _ = select.select([], [self._sock], [], timeout)
            if not ready:
                raise ClusterTimeout(f"ctdbd's socket {path} did not accept a connection "
                                     f"within {timeout:g} s", path, timeout) from None
            err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise self._unavailable(OSError(err, os.strerror(err))) from None
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: OSError) -> ClusterUnavailable:
        path = self.socket_path
        if isinstance(exc, FileNotFoundError):
            why = "absent"
            text = (f"smb.conf says 'clustering = yes', but ctdbd's socket {path} does not "
                    "exist: is ctdbd running (ctdb status)? Set 'ctdbd socket' in smb.conf "
                    "if it listens elsewhere")
        elif isinstance(exc, ConnectionRefusedError):
            why = "refused"
            text = (f"ctdbd's socket {path} refuses connections: ctdbd is not running "
                    "(ctdb status)")
        elif isinstance(exc, PermissionError):
            why = "denied"
            text = f"permission denied connecting to ctdbd's socket {path}: run as root"
        else:
            why = exc.strerror or str(exc)
            text = f"cannot connect to ctdbd's socket {path}: {why}"
        return ClusterUnavailable(text, path, why)

    def close(self) -> None:
        """Close the connection (ctdbd forgets its srvids and stops its traverses)."""
        self._sock.close()

    def __enter__(self) -> CtdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- packets --------------------------------------------------------------------

    def _next_reqid(self) -> int:
        self._reqid = self._reqid + 1 if self._reqid < 0xFFFFFFF0 else 1
        return self._reqid

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _send(self, packet: bytes, deadline: float) -> None:
        view = memoryview(packet)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout("accept a request", deadline)
            _, ready, _ = select.select([], [self._sock], [], remaining)
            if not ready:
                continue
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ClusterUnavailable(f"ctdbd's socket {self.socket_path} failed: "
                                         f"{exc.strerror or exc}", self.socket_path,
                                         "closed") from None
            view = view[sent:]

    def _timeout(self, what: str, deadline: float) -> ClusterTimeout:
        return ClusterTimeout(f"ctdbd ({self.socket_path}) did not {what} by the deadline "
                              f"({self.timeout:g} s)", self.socket_path, self.timeout)

    def _read_packet(self, deadline: float, what: str) -> bytes:
        """Read one whole packet (as ctdbd padded it)."""
        buf = self._buffer
        while True:
            if len(buf) >= 4:
                length = p.U32.unpack_from(buf)[0]
                if length < p.HEADER.size or length > 256 * 1024 * 1024:
                    raise ClusterUnavailable(f"ctdbd ({self.socket_path}) sent a packet "
                                             f"of impossible length {length}",
                                             self.socket_path, "protocol")
                if len(buf) >= length:
                    packet = bytes(buf[:length])
                    del buf[:length]
                    if self.capture is not None:
                        self.capture.append(packet)
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(what, deadline)
            ready, _, _ = select.select([self._sock], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = self._sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError as exc:
                chunk = b""
                reason = exc.strerror or str(exc)
            else:
                reason = "it closed the connection"
            if not chunk:
                raise ClusterUnavailable(f"ctdbd ({self.socket_path}) stopped answering: "
                                         f"{reason}", self.socket_path, "closed")
            buf += chunk

    def _protocol_error(self, exc: Exception) -> ClusterUnavailable:
        return ClusterUnavailable(f"ctdbd ({self.socket_path}) sent a malformed packet: "
                                  f"{exc}", self.socket_path, "protocol")

    # -- controls -------------------------------------------------------------------

    def controls(self, requests: Iterable[tuple[int, int, bytes, int]],
                 timeout: float | None = None) -> list[p.ReplyControl]:
        """Send several controls at once, ``(opcode, destnode, data, srvid)`` each, and
        return their replies in the same order (one deadline for all)."""
        deadline = self._deadline(timeout)
        order: list[int] = []
        packets = []
        for opcode, destnode, data, srvid in requests:
            reqid = self._next_reqid()
            order.append(reqid)
            packets.append(p.req_control(reqid, opcode, data, destnode, srvid))
        if not packets:
            return []
        self._send(b"".join(packets), deadline)
        replies: dict[int, p.ReplyControl] = {}
        wanted = set(order)
        while wanted:
            packet = self._read_packet(deadline, "answer a control")
            try:
                header = p.Header.unpack(packet)
                if header.operation == p.CTDB_REQ_MESSAGE:
                    self._pending.append(packet)
                    continue
                if header.operation != p.CTDB_REPLY_CONTROL:
                    continue
                reply = p.parse_reply_control(packet)
            except p.CtdbProtocolError as exc:
                raise self._protocol_error(exc) from None
            if reply.reqid in wanted:
                wanted.discard(reply.reqid)
                replies[reply.reqid] = reply
        return [replies[r] for r in order]

    def control(self, opcode: int, data: bytes = b"", destnode: int = p.CTDB_CURRENT_NODE,
                srvid: int = 0, timeout: float | None = None) -> p.ReplyControl:
        """Send one control and return its reply (status, data, error)."""
        return self.controls([(opcode, destnode, data, srvid)], timeout)[0]

    def _ok(self, reply: p.ReplyControl, what: str) -> bytes:
        if reply.status != 0:
            raise ClusterUnavailable(
                f"ctdbd ({self.socket_path}) refused {what} (status {reply.status}"
                f"{': ' + reply.error if reply.error else ''})", self.socket_path, "refused")
        return reply.data

    def pnn(self) -> int:
        """This node's PNN (GET_PNN)."""
        if self._pnn is None:
            reply = self.control(p.CTDB_CONTROL_GET_PNN)
            if reply.status < 0:
                self._ok(reply, "GET_PNN")
            self._pnn = reply.status
        return self._pnn

    def nodemap(self) -> list[p.Node]:
        """Every node of the cluster: PNN, flags, private address (GET_NODEMAP)."""
        data = self._ok(self.control(p.CTDB_CONTROL_GET_NODEMAP), "GET_NODEMAP")
        try:
            return p.parse_node_map(data)
        except p.CtdbProtocolError as exc:
            raise self._protocol_error(exc) from None

    def recovery_state(self) -> tuple[int, int]:
        """``(recovery mode, generation)`` of this node (GET_RECMODE, GETVNNMAP)."""
        mode, vnnmap = self.controls([(p.CTDB_CONTROL_GET_RECMODE, p.CTDB_CURRENT_NODE, b"", 0),
                                      (p.CTDB_CONTROL_GETVNNMAP, p.CTDB_CURRENT_NODE, b"", 0)])
        try:
            generation = p.parse_vnn_map(self._ok(vnnmap, "GETVNNMAP"))[0]
        except p.CtdbProtocolError as exc:
            raise self._protocol_error(exc) from None
        return mode.status, generation

    def databases(self) -> dict[str, int]:
        """The attached databases by name (GET_DBMAP, then GET_DBNAME for each)."""
        try:
            ids = [db for db, _flags in
                   p.parse_dbid_map(self._ok(self.control(p.CTDB_CONTROL_GET_DBMAP),
                                             "GET_DBMAP"))]
        except p.CtdbProtocolError as exc:
            raise self._protocol_error(exc) from None
        replies = self.controls([(p.CTDB_CONTROL_GET_DBNAME, p.CTDB_CURRENT_NODE,
                                  p.U32.pack(db), 0) for db in ids])
        names = {}
        for db, reply in zip(ids, replies, strict=True):
            if reply.status == 0:
                names[reply.data.split(b"\0", 1)[0].decode("utf-8", "replace")] = db
        return names

    def processes_exist(self, processes: Iterable[tuple[int, int, int]],
                        timeout: float | None = None) -> list[bool]:
        """For each ``(pnn, pid, unique_id)``: does that process run there and hold that
        id (CHECK_PID_SRVID on the owning node, as smbd's ``ctdbd_process_exists``)?"""
        requests = [(p.CTDB_CONTROL_CHECK_PID_SRVID, pnn, p.pid_srvid(pid, unique), 0)
                    for pnn, pid, unique in processes]
        return [reply.status == 0 for reply in self.controls(requests, timeout)]

    # -- traverse -------------------------------------------------------------------

    def traverse(self, db_id: int, on_record: Callable[[p.TraverseRecord], None],
                 timeout: float = TRAVERSE_TIMEOUT, srvid: int | None = None) -> int:
        """Traverse database ``db_id`` over the whole cluster; call ``on_record`` for each
        record (each node sends those it is dmaster of, without empty records); return how
        many. ``srvid`` is where the records come (default: a random one of the client
        range). Raises :class:`ClusterTimeout` when it does not end within ``timeout``
        seconds, :class:`ClusterUnavailable` when the cluster was recovering (then a
        traverse can end early without saying so)."""
        deadline = time.monotonic() + timeout
        before = self.recovery_state()
        if before[0] != p.CTDB_RECOVERY_NORMAL:
            raise self._recovering()
        if srvid is None:
            srvid = p.CTDB_SRVID_CLIENT_RANGE | secrets.randbits(48) << 8
        self._ok(self.control(p.CTDB_CONTROL_REGISTER_SRVID, srvid=srvid), "REGISTER_SRVID")
        reqid = self._next_reqid()
        start = p.traverse_start(db_id, reqid, srvid)
        self._ok(self.control(p.CTDB_CONTROL_TRAVERSE_START, start, srvid=srvid,
                              timeout=max(0.0, deadline - time.monotonic())),
                 "TRAVERSE_START")
        count = 0
        while True:
            if self._pending:
                packet = self._pending.pop(0)
            else:
                packet = self._read_packet(deadline, f"end the traverse of database "
                                                     f"0x{db_id:08x} ({count} records so far)")
            try:
                header = p.Header.unpack(packet)
                if header.operation != p.CTDB_REQ_MESSAGE:
                    continue
                message = p.parse_message(packet)
                if message.srvid != srvid:
                    continue
                record = p.parse_rec_data(message.data)
            except p.CtdbProtocolError as exc:
                raise self._protocol_error(exc) from None
            if record.end:
                break
            count += 1
            on_record(record)
        after = self.recovery_state()
        if after != before:
            raise self._recovering()
        return count

    def _recovering(self) -> ClusterUnavailable:
        return ClusterUnavailable(
            f"the cluster is recovering (ctdbd {self.socket_path}): its databases cannot be "
            "read completely now; try again in a few seconds", self.socket_path, "recovery")

    # -- messages -------------------------------------------------------------------

    def send_message(self, pnn: int, srvid: int, data: bytes,
                     timeout: float | None = None) -> None:
        """Send ``data`` to ``srvid`` on node ``pnn`` (no reply: ctdbd routes it)."""
        self._send(p.req_message(srvid, data, pnn, self.pnn()), self._deadline(timeout))
