"""The records of a clustered Samba server (``clustering = yes``), through the local ctdbd.

With clustering, smbd keeps its global databases (``smbXsrv_session_global.tdb`` and its
siblings) in ctdb's volatile directory as ``<name>.tdb.<pnn>``, each record behind a
24-byte ``ctdb_ltdb_header``, and a node's file also holds stale copies of records that
moved to another node. :class:`ClusterStore` therefore reads nothing from disk: it asks the
local ctdbd (the socket smb.conf's ``ctdbd socket`` names, else ctdb's default), as
smbstatus does (``source3/lib/ctdbd_conn.c``):

- records: a traverse of the whole cluster (each node sends the records it is dmaster
  of, so a migrated record comes once, from its current owner); the ltdb header is taken
  off and the value goes to the same decoders as a local server's;
- liveness, as Samba's ``serverid_exists()``: a process of this node by its pid and its
  ``msg.lock`` file, as on a server that is not clustered; a process of another node by
  CHECK_PID_SRVID (pid and unique id) sent to that node; a node that is disconnected has
  no live process;
- messages (the per-session close): to an smbd on this node through its messaging socket,
  to an smbd on another node through ctdbd, which delivers it to that node's smbd;
- node names: this host's name for the local PNN; for the other nodes, the name their
  private address resolves to (a lookup bounded to one second), else that address.

Only the standard library is used. Every call to ctdbd has a deadline: see
:mod:`smbsession.samba.ctdb.client`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

from ..errors import ClusterUnavailable
from .ctdb import protocol
from .ctdb.client import CONTROL_TIMEOUT, TRAVERSE_TIMEOUT, CtdbClient
from .liveness import UNIQUE_ID_NOT_TO_VERIFY, Liveness
from .smbxsrv import ServerId
from .tdb import TdbRecord

#: How long the lookup of one node address's name may take.
NAME_LOOKUP_TIMEOUT = 1.0


class ClusterScan:
    """The records of one database, read cluster-wide by one traverse."""

    def __init__(self, records: list[TdbRecord]) -> None:
        self.records = records
        self.skipped = 0
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[TdbRecord]:
        return iter(self.records)


def _lookup_name(address: str, timeout: float) -> str | None:
    """The host name ``address`` resolves to (its first label), or None; never blocks
    longer than ``timeout`` (the resolver may wait for DNS)."""
    answer: list[str] = []

    def ask() -> None:
        with contextlib.suppress(OSError, UnicodeError):
            answer.append(socket.gethostbyaddr(address)[0])

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(timeout)
    if not answer:
        return None
    name = answer[0]
    return name if _is_address(name) else name.split(".")[0]


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class ClusterNodes:
    """The nodes of a cluster as ctdbd knows them: ``pnn`` is this node's PNN, ``nodes``
    each node's flags and private address by PNN."""

    def __init__(self, pnn: int, nodes: list[protocol.Node]) -> None:
        self.pnn = pnn
        self.nodes = {n.pnn: n for n in nodes}
        self._names: dict[int, str] = {}

    def name(self, pnn: int) -> str:
        """ClusterNodeName of node ``pnn``: this host's name for the local node, else the
        name of the node's address, else the address (the PNN for a node ctdbd does not
        know)."""
        if pnn not in self._names:
            node = self.nodes.get(pnn)
            if pnn == self.pnn:
                name = os.uname().nodename.split(".")[0]
            elif node is None:
                name = str(pnn)
            else:
                name = _lookup_name(node.address, NAME_LOOKUP_TIMEOUT) or node.address
            self._names[pnn] = name
        return self._names[pnn]

    def keys(self, pnn: int) -> tuple[str, ...]:
        """Every spelling ``-ClusterNodeName`` accepts for node ``pnn``: its name, its
        PNN and its address."""
        node = self.nodes.get(pnn)
        return tuple(dict.fromkeys(
            k.lower() for k in (self.name(pnn), str(pnn), node.address if node else "") if k))


class ClusterStore:
    """A clustered server's records, liveness and messaging through the local ctdbd.

    ``socket_path`` is ctdbd's socket, ``lock_dir`` the server's lock directory (its
    local messaging sockets). ``timeout`` bounds each control, ``traverse_timeout`` each
    traverse. Connecting happens on first use; failures raise
    :class:`~smbsession.errors.ClusterUnavailable` or
    :class:`~smbsession.errors.ClusterTimeout`.
    """

    def __init__(self, socket_path: str, lock_dir: str, timeout: float = CONTROL_TIMEOUT,
                 traverse_timeout: float = TRAVERSE_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.lock_dir = lock_dir
        self.timeout = timeout
        self.traverse_timeout = traverse_timeout
        self._client: CtdbClient | None = None
        self._databases: dict[str, int] | None = None
        self._nodes: ClusterNodes | None = None
        self._alive: dict[tuple[int, int, int], bool] = {}
        self._local = Liveness(lock_dir)

    @property
    def client(self) -> CtdbClient:
        if self._client is None:
            self._client = CtdbClient(self.socket_path, self.timeout)
        return self._client

    def close(self) -> None:
        """Close the connection to ctdbd (a new call opens another)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def nodes(self) -> ClusterNodes:
        """This node's PNN and the node map, asked once."""
        if self._nodes is None:
            self._nodes = ClusterNodes(self.client.pnn(), self.client.nodemap())
        return self._nodes

    def _db_id(self, db: str) -> int | None:
        if self._databases is None:
            self._databases = self.client.databases()
        return self._databases.get(db)

    def exists(self, db: str) -> bool:
        """True when ctdbd has database ``db`` attached (smbd attaches it on start)."""
        return self._db_id(db) is not None

    def scan(self, db: str) -> ClusterScan:
        """Every record of ``db`` in the cluster, from one traverse; a key that comes
        twice (a record moving while traversed) keeps its newest copy (highest rsn)."""
        db_id = self._db_id(db)
        if db_id is None:
            return ClusterScan([])
        newest: dict[bytes, tuple[int, bytes]] = {}

        def keep(record: protocol.TraverseRecord) -> None:
            assert record.header is not None
            seen = newest.get(record.key)
            if seen is None or record.header.rsn > seen[0]:
                newest[record.key] = (record.header.rsn, record.value)

        self.client.traverse(db_id, keep, self.traverse_timeout)
        return ClusterScan([TdbRecord(key, value) for key, (_rsn, value) in newest.items()])

    def reread(self, db: str) -> list[TdbRecord]:
        """Traverse ``db`` once more (for records that were being rewritten)."""
        return self.scan(db).records

    def alive(self, server_id: ServerId) -> bool:
        """True when the process ``server_id`` names runs on its node with its unique id
        (this node: pid and msg.lock; another: CHECK_PID_SRVID there, once per process);
        False for a disconnected node."""
        key = (server_id.vnn, server_id.pid, server_id.unique_id)
        known = self._alive.get(key)
        if known is None:
            node = self.nodes.nodes.get(server_id.vnn)
            if server_id.vnn == self.nodes.pnn:
                # This node's processes as Samba's serverid_exists() checks them: the pid
                # and its msg.lock file (source3/lib/serverid.c).
                known = self._local.alive(server_id.pid, server_id.unique_id)
            elif node is None or not node.connected or server_id.pid <= 0:
                known = False
            elif server_id.unique_id == UNIQUE_ID_NOT_TO_VERIFY:
                reply = self.client.control(protocol.CTDB_CONTROL_PROCESS_EXISTS,
                                            protocol.U32.pack(server_id.pid), server_id.vnn)
                known = reply.status == 0
            else:
                known = self.client.processes_exist(
                    [(server_id.vnn, server_id.pid, server_id.unique_id)])[0]
            self._alive[key] = known
        return known

    def send(self, server_id: ServerId, msg_type: int, payload: bytes) -> None:
        """Send one Samba message to the smbd ``server_id`` names, on whichever node.

        On this node through its messaging socket; on another node through ctdbd, to
        the srvid that smbd registered (its pid), with Samba's message header
        (``source3/lib/messages_util.c``: destination, source, type)."""
        from .messaging import MessagingError, encode_message, send

        nodes = self.nodes
        if server_id.vnn == nodes.pnn:
            send(self.lock_dir, server_id, msg_type, payload)
            return
        node = nodes.nodes.get(server_id.vnn)
        if node is None or not node.connected:
            raise MessagingError(f"cluster node {server_id.vnn} is not connected")
        source = ServerId(os.getpid(), 0, nodes.pnn, 0)
        datagram = encode_message(msg_type, server_id, source, payload)
        try:
            self.client.send_message(server_id.vnn, server_id.pid, datagram[8:])
        except ClusterUnavailable as exc:
            raise MessagingError(str(exc)) from None


def ctdbd_socket(config_path: str) -> str:
    """The ctdbd socket smb.conf names (``ctdbd socket``), else ctdb's default."""
    from .config import parse_globals
    from .ctdb.client import DEFAULT_SOCKET

    return parse_globals(config_path).get("ctdbdsocket") or DEFAULT_SOCKET
