"""``Close-SmbSession`` (also ``smbsession close``): its parameters, prompts and run.

The query (parameters and pipeline input, as for Get-SmbSession) is resolved in full
first; then each session is confirmed (``-Force`` skips that, ``-WhatIf`` only says what
would happen) and closed through :func:`smbsession.close_smb_session`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import ConfirmationRequired, InvalidParameter, SessionQuery, read_sessions
from ..closing import NO, NO_TO_ALL, YES, YES_TO_ALL, CloseResult, close_smb_session, target
from ..model import SmbSession
from ..query import PROPERTY_OF
from . import pipeline, view
from .binder import Binder, wants_help
from .formats import FORMATS, render
from .get import (
    GET_PARAMS,
    REMOTE,
    Remote,
    Sessions,
    describe_bound,
    not_found,
    queries_for,
    read_remote,
)
from .helptext import Example, HelpPage
from .params import COMMON_PARAMS, Param
from .password import open_terminal
from .streams import Streams

_SHARED = {p.name: p for p in GET_PARAMS}

CLOSE_PARAMS: tuple[Param, ...] = (
    *(_SHARED[name] for name in ("SessionId", "ClientComputerName", "ClientUserName",
                                 "ScopeName", "ClusterNodeName", "SmbInstance")),
    *(_SHARED[name] for name in REMOTE),
    Param("Force", "switch",
          help="Closes without asking. Without it, each session is confirmed on the terminal; "
               "with no terminal, nothing is closed."),
    Param("Confirm", "switch", help="Asks before closing each session (the default)."),
    Param("WhatIf", "switch", help="Shows what would be closed and closes nothing."),
    Param("PassThru", "switch", help="Prints the sessions that were closed, in -Format."),
    Param("CloseConnection", "switch",
          help="Ends the whole TCP connection of each session (and every other session on "
               "it) instead of logging off just the session. Needs -Force. An extension."),
    _SHARED["SmbConf"],
    Param("Format", "enum", choices=FORMATS, help="How -PassThru prints the sessions."),
    Param("Help", "switch", aliases=("?",), help="Shows this help."),
    *COMMON_PARAMS,
)

HELP = HelpPage(
    name="Close-SmbSession (also: smbsession close)",
    synopsis="Ends forcibly the SMB sessions chosen by the query, on the local Samba server "
             "or on the -CimSession targets.",
    syntax="""
Close-SmbSession [[-SessionId] <UInt64[]>] [[-ClientComputerName] <String[]>]
 [[-ClientUserName] <String[]>] [[-ScopeName] <String[]>] [[-ClusterNodeName] <String[]>]
 [-SmbInstance <SmbInstance>] [-CimSession <CimSession[]>] [-ThrottleLimit <Int32>]
 [-Force] [-PassThru] [-WhatIf] [-Confirm] [<CommonParameters>]

smbsession's additions: [-CloseConnection] [-SmbConf <String>] [-Format <Table|List|Json|...>]
 [-Credential <String>] [-OperationTimeoutSec <Int32>]
""",
    description="Closing a session closes every file it has open: unsaved client data may be "
                "lost. So each session is confirmed on the terminal unless -Force is given; "
                "-WhatIf only says what would be done. Samba closes just that session (its "
                "other sessions on the same connection keep working); a session is reported "
                "closed only once it is gone. Needs root. Pipeline input: the JSON or NDJSON "
                "of Get-SmbSession -Format Json|NDJson. With -CimSession, every target is "
                "listed, the sessions are confirmed here, then closed on their target: "
                "ssh:// and localhost by session id; smb:// through NetrSessionDel, which "
                "ends every session of the user from the client (and, on Samba, the whole "
                "smbd serving it), said in a warning before anything is asked.",
    examples=(
        Example("Close a session", "Close-SmbSession -SessionId 4415226380377 -Force",
                "Closes the session 4415226380377 without asking."),
        Example("Close the sessions of a user, asking for each",
                "Close-SmbSession -ClientUserName 'LAB\\bob'",
                "Asks for each of bob's sessions, then closes those confirmed."),
        Example("See what would be closed",
                "Get-SmbSession -ClientComputerName 10.0.0.7 -Format Json | "
                "Close-SmbSession -WhatIf", "Closes nothing; prints one What if line each."),
    ),
    sections=(("EXIT CODES", "0  every chosen session was closed (or -WhatIf)\n"
                             "1  nothing matched, a session could not be closed, or closing "
                             "was not confirmed\n2  a parameter or the pipeline input was wrong"),),
)

_PROMPT = ("[Y] Yes  [A] Yes to All  [N] No  [L] No to All  [?] Help (default is \"Y\"): ")
_PROMPT_HELP = ("Y - Continue with only the next step of the operation.\n"
                "A - Continue with all the steps of the operation.\n"
                "N - Skip this operation and proceed with the next operation.\n"
                "L - Skip this operation and all subsequent operations.\n")
_ANSWERS = {"": YES, "y": YES, "a": YES_TO_ALL, "n": NO, "l": NO_TO_ALL}


def _operation(what: str) -> str:
    return f"Performing operation 'Close-Session' on Target '{what}'."


class _TerminalPrompt:
    """Asks on the controlling terminal (stdin may carry pipeline input)."""

    def __init__(self, command: str) -> None:
        tty = open_terminal()
        if tty is None:
            raise ConfirmationRequired(
                f"{command}: nothing was closed: there is no terminal to confirm on. Closing "
                "a session closes its open files; add -Force to close without asking."
            )
        self.tty = tty

    def close(self) -> None:
        os.close(self.tty)

    def _say(self, text: str) -> None:
        os.write(self.tty, text.encode())

    def _line(self) -> str:
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(self.tty, 1)
            if not chunk:
                return "l"  # the terminal went away: answer "no to all"
            data += chunk
        return data.decode(errors="replace").strip().lower()

    def __call__(self, session: SmbSession | str) -> str:
        what = session if isinstance(session, str) else target(session)
        self._say(f"\nConfirm\nAre you sure you want to perform this action?\n"
                  f"{_operation(what)}\n")
        while True:
            self._say(_PROMPT)
            answer = self._line()
            if answer in _ANSWERS:
                return _ANSWERS[answer]
            self._say(_PROMPT_HELP)


def _chosen(bound: dict, queries: list[SessionQuery], remote: Remote | None,
            streams: Streams) -> list[SmbSession]:
    """Every session the queries choose, each once, in order; what a query does not
    find is reported as PowerShell reports it."""
    if remote is not None:
        sessions = read_remote(remote, streams)
    else:
        sessions = read_sessions(bound.get("smb_conf"), "tdb").sessions
    every = Sessions(sessions)
    chosen: dict[tuple[str | None, int, str | None, str | None], SmbSession] = {}
    for query in queries:
        if query.session_id:  # a session asked for by id is closed even if hidden
            query = query.replace(include_hidden=True)
        selected = every.select(query)
        for s in selected:
            chosen.setdefault((s.ps_computer_name, s.session_id, s.client_computer_name,
                               s.client_user_name), s)
        for prop, value in query.unmatched(selected):
            streams.error(not_found(prop, value))
    return list(chosen.values())


def _what_if_line(result: CloseResult) -> str:
    extra = result.message.partition(": ")[2]
    return (f"What if: {_operation(target(result.session))}"
            + (f" ({extra[0].upper()}{extra[1:]}.)" if extra else ""))


def _inputs(bound: dict, command: str, streams: Streams) -> list[pipeline.InputObject] | None:
    """The pipeline input. Without a filter, stdin that is not input must not mean "close
    every session": it is waited for, an empty one is nothing to close, and text that is
    not JSON is refused."""
    filtered = any(key in bound for key in PROPERTY_OF)
    stdin = pipeline.read_stdin(command, patient=not filtered)
    inputs = stdin.objects
    if inputs is None and not filtered and stdin.why.startswith("an empty"):
        inputs = []
    if inputs is None and not filtered and "JSON" in stdin.why:
        raise InvalidParameter(
            f"{command}: pipeline input: stdin holds something that is not JSON, and no "
            "parameter says which sessions to close; nothing was closed. "
            + pipeline.HINT)
    streams.debug(f"Stdin is {stdin.why}: "
                  + ("pipeline input." if inputs is not None else "not pipeline input."))
    return inputs


def run_close(argv: Sequence[str], command: str = "Close-SmbSession") -> int:
    """Run Close-SmbSession with ``argv``; return the exit code (0, 1 or 2)."""
    if wants_help(argv):
        from . import helptext

        sys.stdout.write(helptext.render(HELP, CLOSE_PARAMS))
        return 0
    bound: dict = Binder(command, CLOSE_PARAMS).bind(argv)
    streams = Streams(command, bool(bound.get("verbose")), bool(bound.get("debug")),
                      bound.get("error_action", "Continue"), flush_first=sys.stdout)
    streams.debug(f"Bound parameters: {describe_bound(bound, CLOSE_PARAMS)}.")
    remote = Remote(bound) if bound.get("cim_session") else None
    queries = queries_for(bound, _inputs(bound, command, streams), command, streams,
                          CLOSE_PARAMS)
    chosen = _chosen(bound, queries, remote, streams) if queries else []
    if not chosen:
        streams.verbose("Nothing to close.")
        return 1 if streams.errors else 0
    force = bool(bound.get("force")) and not bound.get("confirm")
    options: dict = remote.options() if remote else {"smb_conf": bound.get("smb_conf")}
    options.update(
        input_object=chosen, close_connection=bool(bound.get("close_connection")),
        on_error=lambda error: streams.error(str(error)), on_warning=streams.warning)
    if bound.get("what_if"):
        for result in close_smb_session(what_if=True, **options):
            print(_what_if_line(result))
        return 1 if streams.errors else 0
    if options["close_connection"] and not force:
        raise ConfirmationRequired(
            f"{command}: -CloseConnection ends every session on the connection; it needs "
            "-Force as well (-WhatIf shows which sessions it would take down)."
        )
    prompt = None if force else _TerminalPrompt(command)
    try:
        results = close_smb_session(force=force, confirm=prompt, **options)
    finally:
        if prompt is not None:
            prompt.close()
    closed = []
    for result in results:
        if result.closed:
            streams.verbose(f"{target(result.session)}: {result.message}.")
            closed.append(result.session)
        elif result.message != "declined":
            streams.error(f"{target(result.session)}: {result.message}")
    _pass_thru(bound, command, closed)
    declined = sum(1 for r in results if r.message == "declined")
    if declined:
        streams.verbose(f"{declined} session(s) left open as answered.")
    return 1 if streams.errors else 0


def _pass_thru(bound: dict, command: str, closed: list[SmbSession]) -> None:
    if bound.get("pass_thru") and closed:
        fmt = bound.get("format") or "Table"
        properties = view.choose_view(fmt, False, None, command)[1]
        sys.stdout.writelines(render(fmt, view.rows(closed, properties), properties))
