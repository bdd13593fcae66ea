"""``smbsession top``: a live view of the SMB sessions and their traffic, in a terminal.

One row a session (user, client, dialect, opens, idle, age, bytes/s in and out), read
again every interval; the rates are the differences of the kernel's tcp_info byte
counts between two readings. Filters are Get-SmbSession's own parameters; ``-CimSession
ssh://host`` watches another server. The screen is drawn by :mod:`.render` (pure
functions); this module owns the curses loop and the keys.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter, RemoteError, SmbSessionError
from ..model import SmbSession
from ..query import SessionQuery
from .render import SORT_KEYS, Rates, Sample, View, render, sample, traffic

if TYPE_CHECKING:
    from ..cli.params import Param

__all__ = ["main", "reader_for"]

USAGE = """\
smbsession top [-SessionId ID,...] [-ClientComputerName C,...] [-ClientUserName U,...]
               [-ScopeName S,...] [-ClusterNodeName N,...] [-IncludeHidden]
               [-SmbConf PATH] [-CimSession ssh://host] [--interval SECONDS]
               [--sort traffic|idle|opens|age]

A live view of the SMB sessions: one row a session, its traffic in bytes/s from the
kernel's tcp_info (sessions sharing a TCP connection share its traffic: marked *).

Keys: t i o a sort by traffic, idle, opens, age; up/down (or j/k) select a session;
c close the selected session (asks first; root only); + and - change the interval;
q (or Ctrl-C) quits.
"""

#: The interval's bounds, in seconds.
MIN_INTERVAL, MAX_INTERVAL = 0.5, 60.0

Reading = tuple[list[SmbSession], str]
Reader = Callable[[], list[SmbSession]]


def _params() -> tuple[Param, ...]:
    from ..cli.get import GET_PARAMS

    wanted = {"SessionId", "ClientComputerName", "ClientUserName", "ScopeName",
              "ClusterNodeName", "IncludeHidden", "SmbInstance", "CimSession", "SmbConf"}
    from ..cli.params import Param

    return (*(p for p in GET_PARAMS if p.name in wanted), Param("Interval"),
            Param("Sort", "enum", choices=tuple(SORT_KEYS.values())),
            Param("Help", "switch", aliases=("?",)))


def reader_for(targets: Sequence[str], smb_conf: str | None) -> Reader:
    """A function reading every session of the local server (no ``targets``) or of the
    ``-CimSession`` targets; it raises :class:`~smbsession.SmbSessionError` when nothing
    could be read (a target that fails among several is skipped)."""
    if not targets:
        def local() -> list[SmbSession]:
            import smbsession

            return smbsession.read_sessions(smb_conf).sessions
        return local
    import smbsession

    smbsession.target_kinds(list(targets))  # bad targets fail now, naming the first

    def remote() -> list[SmbSession]:
        import smbsession

        sessions: list[SmbSession] = []
        errors: list[str] = []
        for answer in smbsession.stream_smb_session(list(targets), smb_conf,
                                                    operation_timeout_sec=15):
            if answer.error is not None:
                errors.append(str(answer.error))
            sessions.extend(answer.sessions)
        if errors and not sessions:
            raise RemoteError("", "; ".join(errors))  # each error names its target
        return sessions
    return remote


def _closer(targets: Sequence[str], smb_conf: str | None) -> Callable[[SmbSession], str]:
    def close(session: SmbSession) -> str:
        if not targets:
            import smbsession

            if os.geteuid() != 0:
                return "closing a session needs root"
            results = smbsession.close_smb_session(
                SessionQuery(session_id=(session.session_id,), include_hidden=True),
                smb_conf, force=True)
        else:
            import smbsession

            errors: list[str] = []
            results = smbsession.close_smb_session(
                input_object=[session], cim_session=list(targets), smb_conf=smb_conf,
                force=True, on_error=lambda error: errors.append(str(error)),
                on_warning=lambda _line: None)
            if errors:
                return "; ".join(errors)
        return "; ".join(f"{r.session.session_id}: {r.message}" for r in results)
    return close


class _App:
    def __init__(self, read: Reader, query: SessionQuery, view: View,
                 close: Callable[[SmbSession], str], may_close: bool) -> None:
        self.read = read
        self.query = query
        self.view = view
        self.close = close
        self.may_close = may_close
        self.sessions: list[SmbSession] = []
        self.rates: Rates = {}
        self.before: Sample | None = None
        self.before_time = 0.0
        self.pending: SmbSession | None = None

    def refresh(self) -> None:
        try:
            sessions = self.query.select(self.read())
        except SmbSessionError as exc:
            self.view.error = f"cannot read the sessions: {exc} (showing the last reading)"
            self.before = None
            self.rates = {}
            return
        except OSError as exc:
            self.view.error = f"cannot read the sessions: {exc} (showing the last reading)"
            self.before = None
            self.rates = {}
            return
        now = time.monotonic()
        after = sample(sessions)
        if self.before is not None:
            self.rates = traffic(self.before, after, now - self.before_time)
        self.before, self.before_time = after, now
        self.sessions = sessions
        self.view.error = ""
        self.view.clock = time.strftime("%H:%M:%S")
        ids = [s.session_id for s in sessions]
        if self.view.selected not in ids:
            self.view.selected = None

    def ordered_ids(self) -> list[int]:
        from .render import sort_sessions

        return [s.session_id for s in sort_sessions(self.sessions, self.rates, self.view.order)]

    def key(self, key: int | str) -> bool:
        """Handle one key; return False to quit."""
        view = self.view
        char = key if isinstance(key, str) else (chr(key) if 0 <= key < 256 else "")
        if self.pending is not None:
            session, self.pending = self.pending, None
            view.question = ""
            if char in ("y", "Y"):
                view.status = self.close(session)
                self.refresh()
            else:
                view.status = "not closed"
            return True
        if char in ("q", "Q"):
            return False
        if char in SORT_KEYS:
            view.order = SORT_KEYS[char]
        elif char in ("+", "="):
            view.interval = min(MAX_INTERVAL, view.interval * 2)
        elif char in ("-", "_"):
            view.interval = max(MIN_INTERVAL, view.interval / 2)
        elif char in ("j", "k") or key in (_KEY_DOWN, _KEY_UP):
            ids = self.ordered_ids()
            if ids:
                step = 1 if (char == "j" or key == _KEY_DOWN) else -1
                at = ids.index(view.selected) if view.selected in ids else -step
                view.selected = ids[max(0, min(len(ids) - 1, at + step))]
        elif char == "c":
            chosen = next((s for s in self.sessions if s.session_id == view.selected), None)
            if chosen is None:
                view.status = "select a session first (up/down)"
            elif not self.may_close:
                view.status = "closing a session needs root"
            else:
                self.pending = chosen
                view.question = (f"Close session {chosen.session_id} of "
                                 f"{chosen.client_user_name} from {chosen.client_computer_name}"
                                 " (its open files are closed)? y/N")
        return True


_KEY_UP = _KEY_DOWN = -2  # set from curses when it is loaded


def _draw(screen: Any, lines: list[str]) -> None:
    import curses

    screen.erase()
    height, width = screen.getmaxyx()
    for y, line in enumerate(lines[:height]):
        with contextlib.suppress(curses.error):  # the bottom-right cell raises
            screen.addstr(y, 0, line[:width], curses.A_REVERSE if y in (0,) or (
                line.startswith(">")) else curses.A_NORMAL)
    screen.refresh()


def _loop(screen: Any, app: _App) -> None:
    import curses

    global _KEY_UP, _KEY_DOWN
    _KEY_UP, _KEY_DOWN = curses.KEY_UP, curses.KEY_DOWN
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    screen.keypad(True)
    app.refresh()
    next_read = time.monotonic() + app.view.interval
    while True:
        height, width = screen.getmaxyx()
        _draw(screen, render(app.sessions, app.rates, app.view, width, height))
        wait = max(0.05, next_read - time.monotonic())
        screen.timeout(int(wait * 1000))
        key = screen.getch()
        if key == curses.KEY_RESIZE:
            with contextlib.suppress(curses.error):
                curses.update_lines_cols()
            continue
        if key != -1:
            if not app.key(key):
                return
            continue
        if time.monotonic() >= next_read:
            app.refresh()
            next_read = time.monotonic() + app.view.interval


def main(argv: Sequence[str]) -> int:
    """Run ``smbsession top``; return the exit code."""
    from ..cli.binder import Binder, wants_help

    if wants_help(argv):
        sys.stdout.write(USAGE)
        return 0
    args: dict[str, Any] = Binder("smbsession top", _params()).bind(argv)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("smbsession top: needs a terminal (stdin and stdout); for a listing run "
              "Get-SmbSession", file=sys.stderr)
        return 1
    try:
        interval = float(args.get("interval", 2))
    except ValueError:
        raise InvalidParameter(f"--interval: '{args['interval']}' is not a number of "
                               "seconds") from None
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidParameter(f"--interval: {interval:g} is not between {MIN_INTERVAL:g} and "
                               f"{MAX_INTERVAL:g} seconds")
    query = SessionQuery(
        session_id=tuple(args.get("session_id", ())),
        client_computer_name=tuple(args.get("client_computer_name", ())),
        client_user_name=tuple(args.get("client_user_name", ())),
        scope_name=tuple(args.get("scope_name", ())),
        cluster_node_name=tuple(args.get("cluster_node_name", ())),
        include_hidden=bool(args.get("include_hidden")),
        smb_instance=args.get("smb_instance", "Default"),
    )
    targets = [str(t) for t in args.get("cim_session", [])]
    smb_conf = args.get("smb_conf")
    read = reader_for(targets, smb_conf)
    filters = " ".join(f"{name}={','.join(map(str, args[key]))}" for name, key in (
        ("SessionId", "session_id"), ("Client", "client_computer_name"),
        ("User", "client_user_name")) if args.get(key))
    view = View(order=str(args.get("sort", "traffic")).lower(), interval=interval,
                target=", ".join(targets) or "localhost", filters=filters,
                remote=len(targets) > 1)
    may_close = bool(targets) or os.geteuid() == 0
    app = _App(read, query, view, _closer(targets, smb_conf), may_close)
    import curses

    try:
        curses.wrapper(_loop, app)
    except KeyboardInterrupt:
        return 0
    except curses.error as exc:
        print(f"smbsession top: the terminal cannot be used ({exc})", file=sys.stderr)
        return 1
    return 0
