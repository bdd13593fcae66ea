"""What ``smbsession top`` shows: pure functions from session records to screen lines.

Nothing here touches a terminal or a server: :func:`traffic` turns two readings into
per-connection rates, :func:`sort_sessions` orders the rows, :func:`render` makes the
lines of one screen. The curses loop (:mod:`.app`) only draws those lines.

Traffic is per TCP connection (tcp_info counts bytes per socket): sessions that share a
connection show the same rates, marked ``*`` after their SessionId, and the footer says
so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..model import SmbSession

__all__ = [
    "MIN_HEIGHT",
    "MIN_WIDTH",
    "SORT_KEYS",
    "Rates",
    "Sample",
    "View",
    "connection_key",
    "human_bytes",
    "human_seconds",
    "render",
    "sample",
    "sort_sessions",
    "traffic",
]

#: The smallest terminal the table fits in.
MIN_WIDTH, MIN_HEIGHT = 76, 6
#: Sort orders: key on the keyboard -> (name, description).
SORT_KEYS: dict[str, str] = {"t": "traffic", "i": "idle", "o": "opens", "a": "age"}

ConnectionKey = tuple[str, object, str, str]
#: Per connection: (bytes received, bytes sent) at one reading.
Sample = dict[ConnectionKey, tuple[int, int]]
#: Per connection: (bytes/s in, bytes/s out) between two readings.
Rates = dict[ConnectionKey, tuple[float, float]]


def connection_key(s: SmbSession) -> ConnectionKey:
    """The TCP connection a session rides on, as far as its record tells (target, smbd,
    client, server address): sessions with the same key share their traffic."""
    return (s.ps_computer_name or "", s.smbd_pid if s.smbd_pid is not None else
            ("session", s.session_id), s.client_computer_name or "", s.transport_name or "")


def sample(sessions: Sequence[SmbSession]) -> Sample:
    """The byte counts of each connection in one reading (sessions without traffic facts
    are left out)."""
    out: Sample = {}
    for s in sessions:
        if s.bytes_received is not None and s.bytes_sent is not None:
            out.setdefault(connection_key(s), (s.bytes_received, s.bytes_sent))
    return out


def traffic(before: Sample, after: Sample, seconds: float) -> Rates:
    """Bytes per second of each connection between two readings ``seconds`` apart.
    A connection new since ``before``, or counting from zero again, has no rate yet."""
    rates: Rates = {}
    if seconds <= 0:
        return rates
    for key, (received, sent) in after.items():
        old = before.get(key)
        if old is not None and received >= old[0] and sent >= old[1]:
            rates[key] = ((received - old[0]) / seconds, (sent - old[1]) / seconds)
    return rates


def human_bytes(rate: float | None) -> str:
    """``1.5M``, ``320K``, ``12``: a byte rate in at most five characters; ``-`` unknown."""
    if rate is None:
        return "-"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if rate >= size:
            number = rate / size
            return f"{number:.1f}{unit}" if number < 100 else f"{number:.0f}{unit}"
    return f"{rate:.0f}"


def human_seconds(seconds: int | None) -> str:
    """``42s``, ``7m05s``, ``3h12m``, ``2d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def sort_sessions(sessions: Sequence[SmbSession], rates: Mapping[ConnectionKey, tuple],
                  order: str) -> list[SmbSession]:
    """The rows in ``order`` (``traffic``: busiest first; ``idle``: most idle first;
    ``opens``: most open files first; ``age``: oldest first); ties by SessionId."""
    def busy(s: SmbSession) -> float:
        rate = rates.get(connection_key(s))
        return -(rate[0] + rate[1]) if rate else 0.0

    keys = {
        "traffic": busy,
        "idle": lambda s: -(s.seconds_idle if s.seconds_idle is not None else -1),
        "opens": lambda s: -(s.num_opens if s.num_opens is not None else -1),
        "age": lambda s: -(s.seconds_exists if s.seconds_exists is not None else -1),
    }
    key = keys[order]
    return sorted(sessions, key=lambda s: (key(s), s.session_id))


@dataclass
class View:
    """What the screen shows besides the records: the sort order, the selected row (by
    SessionId, so it follows its session), the refresh interval, the target, a status or
    error line and a question being asked."""

    order: str = "traffic"
    selected: int | None = None
    interval: float = 2.0
    target: str = "localhost"
    filters: str = ""
    status: str = ""
    error: str = ""
    question: str = ""
    remote: bool = False
    clock: str = ""
    offset: int = field(default=0)


_TITLES = ("SESSIONID", "USER", "CLIENT", "SMB", "OPENS", "IDLE", "AGE", "IN/s", "OUT/s")
#: Widths of the fixed columns (all but USER and CLIENT, which share what is left).
_FIXED = {"SESSIONID": 12, "SMB": 5, "OPENS": 5, "IDLE": 6, "AGE": 6, "IN/s": 6,
          "OUT/s": 6}


def _widths(width: int) -> list[int]:
    spare = width - sum(_FIXED.values()) - (len(_TITLES) - 1)
    user = min(30, max(8, spare * 11 // 20))
    client = min(40, max(8, spare - user))
    return [_FIXED.get(title, user if title == "USER" else client) for title in _TITLES]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "~"


def _row(values: Sequence[str], widths: Sequence[int], width: int) -> str:
    cells = [_cut(text, size).ljust(size) for size, text in zip(widths, values, strict=True)]
    return _cut(" ".join(cells).rstrip(), width)


def render(sessions: Sequence[SmbSession], rates: Mapping[ConnectionKey, tuple[float, float]],
           view: View, width: int, height: int) -> list[str]:
    """The lines of one screen of ``width`` x ``height``: a header, the column titles,
    one row per session (sorted by ``view.order``, scrolled to keep the selected one in
    sight, which is marked ``>``), and the keys at the bottom.

    A terminal smaller than :data:`MIN_WIDTH` x :data:`MIN_HEIGHT` gets one line saying
    so. Every line is at most ``width`` characters."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return [_cut(f"terminal too small ({width}x{height}); smbsession top needs "
                     f"{MIN_WIDTH}x{MIN_HEIGHT}", width)][:max(1, height)]
    rows = sort_sessions(sessions, rates, view.order)
    shared = Counter(connection_key(s) for s in sessions)
    total_in = sum(r[0] for r in rates.values())
    total_out = sum(r[1] for r in rates.values())
    users = len({s.client_user_name for s in sessions})
    header = (f"smbsession top  {view.target}{' ' + view.filters if view.filters else ''}"
              f"  {len(sessions)} sessions {users} users {len(shared)} conns  in "
              f"{human_bytes(total_in)}/s out {human_bytes(total_out)}/s  every "
              f"{view.interval:g}s  sort:{view.order}")
    if view.clock and len(header) + len(view.clock) + 2 <= width:
        header += f"  {view.clock}"
    lines = [_cut(header, width)]
    note = ("* after a SessionId: it shares its TCP connection, and so its traffic, with "
            "another session" if any(n > 1 for n in shared.values()) else "")
    lines.append(_cut(view.error or view.status or note, width))
    widths = _widths(width)
    lines.append(_row(_TITLES, widths, width))
    body = height - len(lines) - 1
    ids = [s.session_id for s in rows]
    index = ids.index(view.selected) if view.selected in ids else None
    offset = min(view.offset, max(0, len(rows) - body))
    if index is not None:
        if index < offset:
            offset = index
        elif index >= offset + body:
            offset = index - body + 1
    view.offset = offset
    for s in rows[offset:offset + body]:
        key = connection_key(s)
        rate = rates.get(key)
        mark = ">" if s.session_id == view.selected else " "
        sid = f"{mark}{s.session_id}{'*' if shared[key] > 1 else ''}"
        opens = "?" if s.num_opens is None else str(s.num_opens)
        client = s.client_computer_name or ""
        if view.remote and s.ps_computer_name:
            client = f"{s.ps_computer_name}:{client}"
        lines.append(_row([sid, s.client_user_name or "", client, s.dialect or "-", opens,
                           human_seconds(s.seconds_idle), human_seconds(s.seconds_exists),
                           human_bytes(rate[0] if rate else None),
                           human_bytes(rate[1] if rate else None)], widths, width))
    if not rows:
        lines.append("(no sessions match)" if not view.error else "(no reading)")
    while len(lines) < height - 1:
        lines.append("")
    if view.question:
        footer = view.question
    else:
        footer = ("sort: t traffic i idle o opens a age | arrows select | c close | "
                  "+/- interval | q quit")
    lines.append(_cut(footer, width))
    return lines[:height]
