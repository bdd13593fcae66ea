"""From session records to Prometheus metric families (pure, apart from the traffic ledger).

Everything here works on :class:`~smbsession.SmbSession` records already read; reading
is :mod:`.collector`'s job. The names follow Prometheus' rules: the ``smbsession_``
prefix, base units (seconds, bytes), ``_total`` only on counters, timestamps rather than
ages for per-session series.

Cardinality is bounded by construction:

- ``smbsession_sessions`` is labelled by dialect (six values), encryption cipher and
  signing cipher (a handful each, or ``none``) and cluster node (the cluster's size);
- user and client labels are capped at ``top`` values each, the rest summed as
  ``other``; ``top=0`` drops the names entirely (everything is ``other``);
- per-session series exist only with ``per_session`` and are capped (the rest are
  counted in ``smbsession_session_series_dropped``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from ..model import SmbSession

__all__ = [
    "IDLE_BUCKETS",
    "OTHER",
    "Limits",
    "TrafficLedger",
    "connection_key",
    "session_families",
]

#: The label value of everything beyond the top N (users, clients, shares).
OTHER = "other"
#: Upper bounds of the idle-time histogram, in seconds (a second to a day).
IDLE_BUCKETS: tuple[float, ...] = (1, 10, 60, 300, 900, 3600, 14400, 86400)

ConnectionKey = tuple[str, int | None, str, str]


@dataclass(frozen=True)
class Limits:
    """The caps on label values: ``top`` users, clients and shares by name (0: no names,
    only ``other``); ``per_session`` series (0: none) of at most ``max_sessions``
    sessions."""

    top: int = 10
    per_session: bool = False
    max_sessions: int = 1000


def connection_key(s: SmbSession) -> ConnectionKey:
    """The TCP connection a session rides on, as far as its record tells: the target,
    the smbd serving it (one smbd serves one client connection; multichannel's extra
    channels join it), the client and the server address. Sessions sharing a connection
    share its traffic."""
    return (s.ps_computer_name or "", s.smbd_pid if s.smbd_pid is not None else -s.session_id,
            s.client_computer_name or "", s.transport_name or "")


def _top(counts: Counter[str], top: int) -> dict[str, str]:
    """name -> label: the ``top`` most frequent names keep theirs, the others ``other``."""
    keep = {name for name, _ in counts.most_common(top)} if top > 0 else set()
    return {name: (name if name in keep else OTHER) for name in counts}


def _capped(counts: Counter[str], top: int) -> Counter[str]:
    labels = _top(counts, top)
    out: Counter[str] = Counter()
    for name, count in counts.items():
        out[labels[name]] += count
    return out


@dataclass
class TrafficLedger:
    """Per-client byte counters that never go backwards.

    tcp_info counts bytes per TCP connection, from its opening; a connection that ends
    takes its counts with it. The ledger remembers each connection's last counts; when a
    connection is no longer seen, its last counts move to its client's ``ended`` total.
    A client's counter is ``ended`` plus its live connections' counts: it only goes up.
    (What a connection moved between its last scrape and its end is not seen.)

    Client labels are given first come, first served, up to ``top`` names, and kept for
    the exporter's lifetime, so that a counter never changes label; later clients are
    counted as ``other``.
    """

    top: int = 10
    labels: dict[str, str] = field(default_factory=dict)
    last: dict[ConnectionKey, tuple[str, int, int]] = field(default_factory=dict)
    ended: dict[str, list[int]] = field(default_factory=dict)

    def label(self, client: str) -> str:
        """The label of ``client``: its name while fewer than ``top`` have one."""
        found = self.labels.get(client)
        if found is None:
            found = client if len(self.labels) < self.top else OTHER
            if found != OTHER:
                self.labels[client] = found
        return found

    def update(self, sessions: Iterable[SmbSession]) -> dict[str, tuple[int, int]]:
        """Take a new reading; return ``{client label: (received, sent)}``, in bytes."""
        now: dict[ConnectionKey, tuple[str, int, int]] = {}
        for s in sessions:
            if s.bytes_received is None or s.bytes_sent is None:
                continue
            key = connection_key(s)
            if key not in now:
                now[key] = (self.label(s.client_computer_name or ""), s.bytes_received,
                            s.bytes_sent)
        for key, (label, received, sent) in self.last.items():
            current = now.get(key)
            # Gone, or counting from zero again (a new connection under the same key).
            if current is None or current[1] < received or current[2] < sent:
                total = self.ended.setdefault(label, [0, 0])
                total[0] += received
                total[1] += sent
        self.last = now
        out: dict[str, list[int]] = {label: list(v) for label, v in self.ended.items()}
        for label, received, sent in now.values():
            total = out.setdefault(label, [0, 0])
            total[0] += received
            total[1] += sent
        return {label: (v[0], v[1]) for label, v in out.items()}


def _histogram(values: Sequence[int]) -> tuple[list[tuple[str, float]], float]:
    ordered = sorted(values)
    buckets = []
    at = 0
    for bound in IDLE_BUCKETS:
        while at < len(ordered) and ordered[at] <= bound:
            at += 1
        buckets.append((f"{bound:g}", float(at)))
    buckets.append(("+Inf", float(len(ordered))))
    return buckets, float(sum(ordered))


def session_families(sessions: Sequence[SmbSession], ledger: TrafficLedger, limits: Limits,
                     now: float | None = None) -> Iterator[Metric]:
    """The metric families of one reading of a server's sessions (see the module's
    docstring for the caps). ``ledger`` carries the byte counters from one reading to the
    next; ``now`` is the time of the reading (per-session timestamps)."""
    now = time.time() if now is None else now
    by_kind: Counter[tuple[str, str, str, str]] = Counter()
    users: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    tcons: Counter[str] = Counter()
    opens: Counter[str] = Counter()
    unknown_opens = 0
    connections: set[ConnectionKey] = set()
    idle: list[int] = []
    idle_seen: set[ConnectionKey] = set()
    for s in sessions:
        by_kind[(s.dialect or "unknown", s.encryption_cipher or "none",
                 s.signing_cipher or "none", s.cluster_node_name or "")] += 1
        users[s.client_user_name or ""] += 1
        clients[s.client_computer_name or ""] += 1
        for share in s.shares or ():
            tcons[share] += 1
        key = connection_key(s)
        connections.add(key)
        if s.seconds_idle is not None and key not in idle_seen:
            idle_seen.add(key)
            idle.append(s.seconds_idle)
        if s.num_opens is None:
            unknown_opens += 1
        elif s.num_opens:
            share_names = s.shares or ()
            opens[share_names[0] if len(share_names) == 1 else "(several)"] += s.num_opens

    family = GaugeMetricFamily(
        "smbsession_sessions", "SMB sessions, by dialect, encryption and signing cipher "
        "and cluster node (empty when not clustered).",
        labels=["dialect", "encryption", "signing", "cluster_node"])
    for labels, count in sorted(by_kind.items()):
        family.add_metric(list(labels), count)
    yield family

    for name, label, counts, what in (
            ("smbsession_user_sessions", "user", users, "user (DOMAIN\\name)"),
            ("smbsession_client_sessions", "client", clients, "client address")):
        family = GaugeMetricFamily(
            name, f"SMB sessions per {what}: the {limits.top} with most sessions by name, "
            f"the rest as '{OTHER}'.", labels=[label])
        for value, count in sorted(_capped(counts, limits.top).items()):
            family.add_metric([value], count)
        yield family

    family = GaugeMetricFamily(
        "smbsession_connections", "TCP connections carrying the sessions (sessions on one "
        "connection share its traffic).")
    family.add_metric([], len(connections))
    yield family

    family = GaugeMetricFamily(
        "smbsession_tree_connects", f"Tree connects per share (the top {limits.top} shares "
        f"by name, the rest as '{OTHER}').", labels=["share"])
    for value, count in sorted(_capped(tcons, limits.top).items()):
        family.add_metric([value], count)
    yield family

    family = GaugeMetricFamily(
        "smbsession_open_files", "Open files per share, counted per session: a session "
        "connected to several shares counts as share '(several)'; sessions whose open "
        "count is unknown (smbsession_open_files_unknown_sessions) are not counted.",
        labels=["share"])
    for value, count in sorted(_capped(opens, limits.top).items()):
        family.add_metric([value], count)
    yield family

    family = GaugeMetricFamily(
        "smbsession_open_files_unknown_sessions", "Sessions whose open files cannot be "
        "counted (before Samba 4.23, an smbd holding several sessions of one user).")
    family.add_metric([], unknown_opens)
    yield family

    buckets, total = _histogram(idle)
    gauge_histogram = GaugeHistogramMetricFamily(
        "smbsession_connection_idle_seconds", "Time since each connection last received "
        "data from its client (tcp_info last_data_recv; SMB echoes count as data).",
        buckets=buckets, gsum_value=total)
    yield gauge_histogram

    traffic = ledger.update(sessions)
    for name, index, what in (("smbsession_client_received_bytes_total", 0,
                               "received from"),
                              ("smbsession_client_sent_bytes_total", 1,
                               "sent to (and acknowledged by)")):
        counter = CounterMetricFamily(
            name.removesuffix("_total"), f"Bytes {what} each client over its SMB "
            "connections, from tcp_info; connections that ended keep their last count. "
            f"The first {ledger.top} clients seen by name, later ones as '{OTHER}'.",
            labels=["client"])
        for label, values in sorted(traffic.items()):
            counter.add_metric([label], values[index])
        yield counter

    if limits.per_session:
        yield from _per_session(sessions, limits, now)


def _per_session(sessions: Sequence[SmbSession], limits: Limits, now: float) -> Iterator[Metric]:
    chosen = sorted(sessions, key=lambda s: s.session_id)[:limits.max_sessions]
    info = GaugeMetricFamily(
        "smbsession_session_info", "One series per session (--per-session), value 1, its "
        "labels the session's facts.",
        labels=["session_id", "user", "client", "dialect", "encryption", "signing", "shares"])
    created = GaugeMetricFamily("smbsession_session_creation_timestamp_seconds",
                                "When the session was set up, Unix time.",
                                labels=["session_id"])
    receive = GaugeMetricFamily("smbsession_session_last_receive_timestamp_seconds",
                                "When the session's connection last received data, Unix "
                                "time (whole seconds).", labels=["session_id"])
    opens = GaugeMetricFamily("smbsession_session_open_files", "Open files of the session.",
                              labels=["session_id"])
    rtt = GaugeMetricFamily("smbsession_session_rtt_seconds", "Smoothed round-trip time of "
                            "the session's connection (tcp_info rtt).", labels=["session_id"])
    for s in chosen:
        sid = str(s.session_id)
        info.add_metric([sid, s.client_user_name or "", s.client_computer_name or "",
                         s.dialect or "", s.encryption_cipher or "none",
                         s.signing_cipher or "none", ",".join(s.shares or ())], 1)
        if s.seconds_exists is not None:
            created.add_metric([sid], float(int(now) - s.seconds_exists))
        if s.seconds_idle is not None:
            receive.add_metric([sid], float(int(now) - s.seconds_idle))
        if s.num_opens is not None:
            opens.add_metric([sid], s.num_opens)
        if s.rtt_microseconds is not None:
            rtt.add_metric([sid], s.rtt_microseconds / 1e6)
    yield from (info, created, receive, opens, rtt)
    dropped = GaugeMetricFamily("smbsession_session_series_dropped", "Sessions beyond "
                                "--max-sessions that have no per-session series.")
    dropped.add_metric([], len(sessions) - len(chosen))
    yield dropped
