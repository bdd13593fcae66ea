"""Source: Samba's own databases, read directly (read-only, no locks).

Reads ``smbXsrv_session_global.tdb`` (sessions and their channels),
``smbXsrv_tcon_global.tdb`` (tree connects: the shares of each session) and
``smbXsrv_open_global.tdb`` (open files) from the lock directory, keeps the records whose
smbd is alive, and joins them with the kernel's view of each TCP connection (idle time).

Where each property comes from:

- SessionId: ``session_wire_id`` (the id the client sees on the wire; for SMB2+ it is the
  global id).
- ClientComputerName / TransportName: the first channel's remote / local address.
- ClientUserName: ``domain_name\\account_name`` of the session's authentication.
- Dialect: ``connection_dialect`` in Windows' spelling.
- NumOpens: the session's open files. From Samba 4.23 an open record names its session:
  exact. Before, it names its smbd and its owner's SID, so opens are counted per group of
  sessions with the same (smbd, user SID); when a group has several sessions, the count
  is still exact where it can be known: a group with no opens gives 0 to each session; a
  session without a tree connect holds no open (0); when only one session of the group
  has tree connects, it holds all the group's opens; when the group's sessions have tree
  connects on shares with distinct directories, ``locking.tdb`` splits the opens by share
  (its share mode entries name each open's share path, smbd and uid; read only when a
  group needs it: :mod:`smbsession.samba.locking`), and a session alone on its shares
  gets their count. Otherwise None, never guessed (two sessions on one share path, counts
  that do not add up, a ``force user`` share, a cluster, ``locking.tdb`` unreadable).
  (locking.tdb cannot split opens within one share: its entries do not name the smbXsrv
  open: ``share_file_id`` is a per-process counter, ``fsp_set_gen_id`` in
  source3/smbd/files.c.)
- SecondsExists: now minus ``creation_time``.
- SecondsIdle: the kernel's time since the client last sent data on the session's TCP
  connection (``tcpi_last_data_recv``); sessions sharing a connection share it.
- BytesReceived / BytesSent / RttMicroseconds (extras): the same connection's
  ``tcpi_bytes_received``, ``tcpi_bytes_acked`` and ``tcpi_rtt``, shared likewise.
- ScopeName ``*`` and ClusterNodeName empty unless clustered; clustered (records read
  through ctdbd, :mod:`smbsession.samba.cluster_store`): ScopeName is the cluster's
  ``netbios name``, ClusterNodeName the serving node's name (``server_id.vnn`` is its PNN),
  and SecondsIdle is known only for the sessions this node serves (null for others').
"""

from __future__ import annotations

import os
import time

from ..errors import NamespaceError, SourceError
from ..model import DIALECT_NAMES, SmbSession, SourceResult, dialect_name
from . import crypto
from .config import SambaConfig
from .names import client_address
from .server import Server
from .smbxsrv import (
    ANONYMOUS_SID_RAW,
    Layout,
    NdrError,
    SessionGlobal,
    decode_open,
    decode_session,
    decode_tcon,
)
from .store import OPEN_DB, SESSION_DB, TCON_DB, Store
from .tdb import TdbFormatError

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .smbxsrv import Channel, OpenGlobal

#: NTTIME of the Unix epoch, and NTTIME ticks per second.
_NTTIME_EPOCH = 116444736000000000
_NTTIME_PER_SECOND = 10_000_000
#: Samba's vnn of a non-clustered server.
_NONCLUSTER_VNN = 0xFFFFFFFF


def _decode_all(store: Store, name: str, decode, layout: Layout, what: str,
                warnings: list[str]) -> list:
    """Decode every record of one database; a record that does not decode is read again
    once (smbd may have been rewriting it) before it is skipped and reported."""
    if not store.exists(name):
        return []
    scan = store.scan(name)
    out = []
    failed: dict[bytes, str] = {}
    try:
        for record in scan:
            try:
                out.append(decode(record.value, layout))
            except NdrError as exc:
                failed[record.key] = str(exc)
    except (TdbFormatError, OSError) as exc:
        if what == "session":
            raise SourceError(f"cannot read the sessions: {exc}") from None
        warnings.append(f"{name}: unreadable, {what}s are unknown ({exc})")
        return out
    if scan.skipped:
        warnings.append(
            f"{name}: {scan.skipped} hash chain(s) could not be read completely, their "
            f"records are missing ({'; '.join(scan.problems[:3])})"
        )
    if failed:
        try:
            again = store.reread(name)
        except (TdbFormatError, OSError):
            again = []
        for record in again:
            if record.key in failed:
                try:
                    out.append(decode(record.value, layout))
                    del failed[record.key]
                except NdrError as exc:
                    failed[record.key] = str(exc)
    if failed:
        warnings.append(
            f"{name}: skipped {len(failed)} {what} record(s) that do not decode with the "
            f"Samba {layout.name} layout (first: {next(iter(failed.values()))})"
        )
    return out


#: What the kernel says of one connection: (SecondsIdle, BytesReceived, BytesSent, RTT µs).
TcpFacts = tuple[int | None, int | None, int | None, int | None]


#: The TCP states of a session's connection while smbd still holds it: a client that has
#: just left (CLOSE_WAIT) still has its idle time until smbd removes the session.
_OPEN_STATES = ("ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK")


def _without_connection(sessions: list[SessionGlobal], idle: dict[tuple[str, str], TcpFacts],
                        warnings: list[str], queried: str | None = None,
                        ) -> list[SessionGlobal]:
    """Leave out the sessions whose TCP connection has ended: smbd is removing them (it
    closes the connection, then logs its sessions off). Their SecondsIdle cannot be known
    and the client can no longer use them. A connection the kernel cannot show because
    smbd runs in another network namespace is not an ended one: such a session is kept,
    with a warning that names the namespace. ``queried`` is the network namespace whose
    connections ``idle`` holds (default: ours)."""
    ours = queried or _net_namespace("self")
    kept, unseen = [], []
    for g in sessions:
        ch = g.channels[0]
        if (ch.local_address, ch.remote_address) in idle:
            kept.append(g)
            continue
        theirs = _net_namespace(str(ch.server_id.pid))
        if theirs is not None and theirs != ours:
            kept.append(g)
            unseen.append((g.session_global_id, theirs))
    if unseen:
        warnings.append(
            f"SecondsIdle is unknown for {len(unseen)} session(s) (first: "
            f"{', '.join(str(sid) for sid, _ in unseen[:3])}): their smbd runs in network "
            f"namespace {unseen[0][1]}, whose TCP connections this process cannot see")
    return kept


def _net_namespace(pid: str) -> str | None:
    """The network namespace of a process (``net:[4026531840]``), None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _idle_seconds(config: SambaConfig, pairs: set[tuple[str, str]],
                  warnings: list[str], pid: int | None = None,
                  ) -> dict[tuple[str, str], TcpFacts] | None:
    """The kernel's facts of each (local, remote) connection it shows (idle seconds and
    traffic, :data:`TcpFacts`), asked in the network namespace of smbd ``pid`` (entered
    when it is not ours); None (with a warning) when the kernel could not be asked or the
    namespace not entered."""
    if not pairs:
        return {}
    from .. import netns, sockdiag

    keys: dict[tuple[str, str], sockdiag.ConnectionKey] = {}
    for local, remote in pairs:
        try:
            keys[(local, remote)] = (sockdiag.normalize_address(local),
                                     sockdiag.normalize_address(remote))
        except ValueError:
            continue
    ports, wanted = config.smb_ports, list(keys.values())
    try:
        if pid is None:
            conns = sockdiag.tcp_connections(ports, _OPEN_STATES, only=wanted)
        else:
            conns = netns.call_in_netns(pid, sockdiag.tcp_connections, ports, _OPEN_STATES,
                                        only=wanted)
    except NamespaceError as exc:
        warnings.append(f"SecondsIdle is unknown: smbd {pid} lives in another network "
                        f"namespace, which cannot be entered ({exc.path}: {exc.reason})")
        return None
    except sockdiag.SockDiagError as exc:
        warnings.append(f"SecondsIdle is unknown: cannot read the kernel's TCP information ({exc})")
        return None
    idle: dict[tuple[str, str], TcpFacts] = {}
    for pair, key in keys.items():
        conn = conns.get(key)
        if conn is not None and conn.last_data_recv_ms is not None:
            idle[pair] = (conn.last_data_recv_ms // 1000, conn.bytes_received,
                          conn.bytes_acked, conn.rtt_us)
    return idle


_NO_TCP_FACTS: TcpFacts = (None, None, None, None)


def _transport(local_address: str) -> str | None:
    host = client_address(local_address)
    if not host:
        return None
    port = local_address.rsplit(":", 1)[-1]
    return f"tcp:{host}:{port}"


def live_sessions(server: Server, layout: Layout, warnings: list[str]) -> list[SessionGlobal]:
    """Return the session records of ``server`` whose smbd is alive, decoded with ``layout``.

    Records that do not decode are reported in ``warnings`` and skipped.
    """
    store = server.store
    live = []
    for g in _decode_all(store, SESSION_DB, decode_session, layout, "session", warnings):
        if g.channels and store.alive(g.channels[0].server_id):
            live.append(g)
    return live


def read_sessions(server: Server, now: float | None = None) -> SourceResult:
    """Return the live sessions of ``server``, from its databases.

    The server's release must have a known record layout (``server.layout``). Records
    that are half-written or damaged are skipped and reported in the result's warnings.
    Raises :class:`~smbsession.errors.SourceError` when the sessions cannot be read.
    """
    layout = server.layout
    if layout is None:
        raise SourceError(f"Samba {server.release or '(version unknown)'}: record layout "
                          "unknown")
    if not server.store.exists(SESSION_DB):
        raise SourceError(
            f"smbd {server.pid} is running, but {server.config.lock_dir} holds no "
            f"{SESSION_DB}: that is not where this smbd keeps its sessions (is -SmbConf "
            "the smb.conf it was started with?)"
        )
    return _read(server, layout, time.time() if now is None else now)


def _read(server: Server, layout: Layout, now: float) -> SourceResult:
    warnings: list[str] = []
    store = server.store
    sessions = live_sessions(server, layout, warnings)
    shares = _shares(store, layout, warnings)
    opens = _NumOpens(_decode_all(store, OPEN_DB, decode_open, layout, "open", warnings),
                      store, sessions, shares)
    opens.split_by_share(server, sessions)
    nodes = getattr(store, "nodes", None) if server.config.clustering else None
    sessions, idle = _tcp_facts(server, sessions, nodes, warnings)
    out = _records(server.config, sessions, shares, opens, idle, nodes, now)
    out.sort(key=lambda s: s.session_id)
    return SourceResult(sessions=out, warnings=warnings, source=f"tdb (Samba {layout.name} layout)")


def _shares(store: Store, layout: Layout, warnings: list[str]) -> dict[int, list[str]]:
    """The share names of each session's live tree connects, by session global id."""
    shares: dict[int, list[str]] = {}
    for t in _decode_all(store, TCON_DB, decode_tcon, layout, "tree connect", warnings):
        if store.alive(t.server_id):
            names = shares.setdefault(t.session_global_id, [])
            if t.share_name not in names:
                names.append(t.share_name)
    return shares


def _tcp_facts(server: Server, sessions: list[SessionGlobal], nodes: Any,
               warnings: list[str]) -> tuple[list[SessionGlobal], dict[tuple[str, str], tuple]]:
    """The kernel's facts (idle time, traffic) of each connection, and the sessions left
    once those whose connection has ended are taken out. On a cluster only this node's
    sessions are asked about: another node's connections are in its own kernel, so its
    sessions keep a null SecondsIdle and are never taken for ended ones."""
    local_vnn = nodes.pnn if nodes is not None else None
    here = sessions if local_vnn is None else [
        g for g in sessions if g.channels[0].server_id.vnn == local_vnn]
    pairs = {(g.channels[0].local_address, g.channels[0].remote_address) for g in here}
    known = _idle_seconds(server.config, pairs, warnings, server.pid)
    if known is None:
        return sessions, {}
    # The connections were read in smbd's own namespace: one missing there has ended.
    kept = _without_connection(here, known, warnings, _net_namespace(str(server.pid)))
    if local_vnn is None:
        return kept, known
    ended = {id(g) for g in here} - {id(g) for g in kept}
    return [g for g in sessions if id(g) not in ended], known


def _connection(ch: Channel, clustered: bool, nodes: Any,
                idle: dict[tuple[str, str], tuple]) -> tuple:
    """What a session takes from its connection: client address, NetBIOS name, cluster
    node name, transport, the kernel's facts and the node's other names."""
    address = client_address(ch.remote_address)
    netbios = ch.remote_name if ch.remote_name not in ("", address) else None
    vnn = ch.server_id.vnn
    if nodes is not None:
        node, node_keys = nodes.name(vnn), nodes.keys(vnn)
    else:
        node = str(vnn) if clustered and vnn != _NONCLUSTER_VNN else ""
        node_keys = ()
    return (address, netbios, node, _transport(ch.local_address),
            idle.get((ch.local_address, ch.remote_address), _NO_TCP_FACTS), node_keys)


def _records(config: SambaConfig, sessions: list[SessionGlobal],
             shares: dict[int, list[str]], opens: _NumOpens,
             idle: dict[tuple[str, str], tuple], nodes: Any, now: float) -> list[SmbSession]:
    """The SmbSession records of the live sessions (see the module's notes)."""
    clustered = config.clustering
    scope = config.netbios_name if clustered else "*"
    dialects = DIALECT_NAMES
    # Tens of thousands of sessions share a few connections and a few security settings.
    per_connection: dict[tuple[str, str], tuple] = {}
    per_crypto: dict[tuple[int, int, int, int], tuple] = {}
    out = []
    for g in sessions:
        ch = g.channels[0]
        conn = per_connection.get((ch.local_address, ch.remote_address))
        if conn is None:
            conn = _connection(ch, clustered, nodes, idle)
            per_connection[(ch.local_address, ch.remote_address)] = conn
        crypto_key = (g.encryption_flags, ch.encryption_cipher, g.signing_flags, ch.signing_algo)
        secure = per_crypto.get(crypto_key)
        if secure is None:
            secure = crypto.encryption(*crypto_key[:2]) + crypto.signing(*crypto_key[2:])
            per_crypto[crypto_key] = secure
        created = g.creation_time
        authenticated = g.account_name is not None
        tcp = conn[4]
        out.append(SmbSession._from_fields({
            "session_id": g.session_global_id,
            "client_computer_name": conn[0],
            "client_user_name": f"{g.domain_name}\\{g.account_name}" if authenticated else "",
            "cluster_node_name": conn[2],
            "dialect": dialects.get(g.connection_dialect) or dialect_name(g.connection_dialect),
            "num_opens": opens.of(g, ch),
            "scope_name": scope,
            "seconds_exists": max(0, int(now - (created - _NTTIME_EPOCH) / _NTTIME_PER_SECOND))
            if created else None,
            "seconds_idle": tcp[0],
            "transport_name": conn[3],
            "smb_instance": "Default",
            "client_netbios_name": conn[1],
            "client_guid": g.client_guid,
            "encryption_cipher": secure[0],
            "encryption_degree": secure[1],
            "signing_cipher": secure[2],
            "signing_degree": secure[3],
            "shares": tuple(shares.get(g.session_global_id, ())),
            "smbd_pid": ch.server_id.pid,
            "bytes_received": tcp[1],
            "bytes_sent": tcp[2],
            "rtt_microseconds": tcp[3],
            "hidden": not authenticated or g.user_sid_raw == ANONYMOUS_SID_RAW,
            "ps_computer_name": None,
            "cluster_node_keys": conn[5],
        }))
    return out


#: A group of sessions whose opens are counted together: (node, smbd pid, user SID).
Owner = tuple[int, int, "bytes | None"]


def _group_share(sessions: int, sessions_with_tcons: int, opens: int,
                 has_tcons: bool) -> int | None:
    """NumOpens of one session of a group of ``sessions`` sessions of one user in one smbd
    (before Samba 4.23), which together hold ``opens`` open files; None when it cannot be
    known (see the module's notes)."""
    if sessions == 1 or opens == 0:
        return opens
    if not has_tcons:
        return 0
    if sessions_with_tcons == 1:
        return opens
    return None


def _counts(keys: Iterable[Owner]) -> dict[Owner, int]:
    """How many times each key occurs (collections.Counter, whose import costs a small
    listing more than the counting)."""
    counts: dict[Owner, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts


class _NumOpens:
    """NumOpens of each session, from the live open records. From Samba 4.23 an open
    names its session; before, only its smbd and owner, so opens are counted per (node,
    smbd, user) and given to a session only where that is exact (:func:`_group_share`)."""

    def __init__(self, opens: Iterable[OpenGlobal], store: Store,
                 sessions: list[SessionGlobal], shares: dict[int, list[str]]) -> None:
        self.by_session: dict[int, int] = {}
        self.by_owner: dict[tuple[int, int, bytes | None], int] = {}
        self.by_session_known = False
        for o in opens:
            if not store.alive(o.server_id):
                continue
            session = getattr(o, "session_global_id", None)
            if session is not None:
                self.by_session_known = True
                self.by_session[session] = self.by_session.get(session, 0) + 1
            owner = (o.server_id.vnn, o.server_id.pid, o.open_owner_raw)
            self.by_owner[owner] = self.by_owner.get(owner, 0) + 1
        self.shares = shares
        self.owners = _counts(self._owner(g, g.channels[0]) for g in sessions)
        self.with_tcons = _counts(self._owner(g, g.channels[0]) for g in sessions
                                  if g.session_global_id in shares)
        self.split: dict[int, int] = {}

    def split_by_share(self, server: Server, sessions: list[SessionGlobal]) -> None:
        """Where several sessions of a group have tree connects, split the group's opens
        by the share of each open file, from locking.tdb (:mod:`.locking`), which is
        read only when such a group holds opens."""
        if self.by_session_known:
            return
        wanted = {o for o, n in self.with_tcons.items() if n > 1 and self.by_owner.get(o)}
        if not wanted:
            return
        shares = self.shares
        values = iter(shares.values())
        one = next(values, None)
        if all(v == one for v in values):
            return  # every session's tree connects are on the same shares
        members: dict[tuple, list[SessionGlobal]] = {o: [] for o in wanted}
        used: dict[tuple, dict[str, int]] = {o: {} for o in wanted}  # tcons per share
        of = shares.get
        for g in sessions:
            names = of(g.session_global_id)
            if names is not None:
                owner = self._owner(g, g.channels[0])
                group = members.get(owner)
                if group is not None:
                    group.append(g)
                    count = used[owner]
                    for name in names:
                        count[name] = count.get(name, 0) + 1
        # A session can get a count only if one of its shares is its own in the group (a
        # tree connect's share name is smb.conf's section name: one spelling).
        alone = [o for o in wanted if 1 in used[o].values()]
        if alone:
            from .locking import split_opens

            self.split = split_opens(server, [(members[o], self.by_owner[o]) for o in alone],
                                     shares, sessions)

    @staticmethod
    def _owner(g: SessionGlobal, ch: Channel) -> tuple[int, int, bytes | None]:
        return (ch.server_id.vnn, ch.server_id.pid, g.user_sid_raw)

    def of(self, g: SessionGlobal, ch: Channel) -> int | None:
        """The open files of session ``g`` (``ch`` its first channel), or None."""
        if g.session_global_id in self.by_session:
            return self.by_session[g.session_global_id]
        if self.by_session_known:
            return 0
        owner = self._owner(g, ch)
        count = _group_share(self.owners.get(owner, 0), self.with_tcons.get(owner, 0),
                             self.by_owner.get(owner, 0), g.session_global_id in self.shares)
        return self.split.get(g.session_global_id) if count is None else count
