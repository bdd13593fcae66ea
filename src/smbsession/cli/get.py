"""``Get-SmbSession`` (also ``smbsession get``): its parameters and its run.

The command binds its parameters (:mod:`.binder`), reads pipeline input
(:mod:`.pipeline`), asks the public API for the sessions (:func:`smbsession.read_sessions`,
:class:`smbsession.SessionQuery`) and prints them (:mod:`.view`, :mod:`.formats`).
"""

from __future__ import annotations

import sys
import time

from .. import SessionQuery, read_sessions
from ..model import SMB_INSTANCES, SmbSession
from ..query import PROPERTY_OF
from . import pipeline, view
from .binder import Binder, wants_help
from .formats import FORMATS, batched, render
from .params import COMMON_PARAMS, Param
from .streams import Streams

TYPE_CHECKING = False  # typing itself costs a local listing 2 ms of start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

GET_PARAMS: tuple[Param, ...] = (
    Param("SessionId", "uint64", array=True, position=0, pipeline=True,
          help="Specifies the identifiers (IDs) that uniquely identify the sessions for which "
               "the information is retrieved. On Samba: the session's global id, which for "
               "SMB2 and later is the SessionId the client sees."),
    Param("ClientComputerName", array=True, position=1, pipeline=True,
          help="Specifies the client computer name from which the only sessions are returned. "
               "Matches the client's address as shown (192.168.1.5, [fe80::1]), an IPv6 "
               "address without brackets, and the client's NetBIOS name where Samba knows it "
               "(clients that connect to port 139 send one)."),
    Param("ClientUserName", array=True, position=2, pipeline=True,
          help="Specifies the name of the user whose sessions are retrieved: DOMAIN\\user, in "
               "any case (local accounts: the server's NetBIOS name as DOMAIN). A bare user "
               "name matches that user in any domain (an extension of smbsession)."),
    Param("ScopeName", array=True, position=3, pipeline=True,
          help="Specifies the scope of the sessions being retrieved. Samba has no scopes: the "
               "ScopeName of every session is *."),
    Param("ClusterNodeName", array=True, position=4, pipeline=True,
          help="Specifies, in the case of a share hosted by a cluster, the name of the server "
               "which is hosting the sessions. Empty on a Samba server that is not clustered "
               "(-ClusterNodeName '' matches it)."),
    Param("IncludeHidden", "switch",
          help="Indicates that sessions that are created and used internally are enumerated "
               "also. On Samba, hidden sessions are anonymous (null) sessions and sessions "
               "whose authentication has not completed yet."),
    Param("SmbInstance", "enum", choices=SMB_INSTANCES, pipeline=True, type_name="SmbInstance",
          help="Selects the SMB server instance. Samba has only Default; CSV, SBL and SR exist "
               "only on Windows and select nothing here, without an error."),
    Param("CimSession", array=True, aliases=("Session",), type_name="CimSession",
          help="Runs the cmdlet on these servers, asked at the same time: ssh://[user@]host"
               "[:port] (a Samba server over SSH; nothing to install there but Python 3; "
               "host keys verified as OpenSSH does; every property), smb://[DOMAIN\\user@]"
               "host[:port] (the server's srvsvc, MS-SRVS, as net session asks it: Windows "
               "or Samba, administrators only, fewer properties), localhost or . (this "
               "server), or a bare host name (the same as ssh://host). Every session carries "
               "PSComputerName: the host as the target names it (with the port where two "
               "targets share a host). Each target's sessions print as it answers; a target "
               "that fails is reported as <target>: <reason> and the others still print. "
               "Needs the remote extra: "
               "pip install 'smbsession[remote]'."),
    Param("Credential",
          help="The account smb:// targets log on as, DOMAIN\\user or user, when the target "
               "names none. The password is read from $SMBSESSION_PASSWORD, else asked on the "
               "terminal; never give it on the command line. With $KRB5CCNAME set and no "
               "password, Kerberos is used."),
    Param("ThrottleLimit", "int32", minimum=0,
          help="The most -CimSession targets asked at the same time; 0 or none: 32."),
    Param("OperationTimeoutSec", "int32", minimum=0,
          help="Seconds each -CimSession target may take; 0 or none: 60."),
    Param("AsJob", "switch",
          help="Runs the cmdlet as a background job: prints the job at once and runs on, even "
               "after the shell exits. See smbsession job list|wait|receive|remove."),
    Param("SmbConf",
          help="The smb.conf of the Samba server to read (default: $SMB_CONF_PATH, else "
               "Samba's own smb.conf). An extension of smbsession."),
    Param("Source", "enum", choices=("auto", "tdb", "smbstatus"),
          help="Where to read the sessions: tdb (Samba's databases, every property), "
               "smbstatus (Samba's smbstatus --json, fewer properties) or auto (the databases "
               "when this Samba release's layout is known, else smbstatus). An extension."),
    Param("Format", "enum", choices=FORMATS,
          help="Table (the default: SessionId, ClientComputerName, ClientUserName, NumOpens in "
               "columns 30 characters apart), List (Name : Value lines, every property), Json "
               "(an array of objects), NDJson (one object a line), Csv (a header row of "
               "property names). An extension: PowerShell formats with Format-Table, "
               "Format-List, ConvertTo-Json and ConvertTo-Csv."),
    Param("Json", "switch", help="The same as -Format Json."),
    Param("Property", array=True,
          help="The properties to show, as Select-Object -Property picks them: names in any "
               "case, wildcards ('Client*'), or '*' for all (quoted, so that the shell leaves "
               "them). Up to four properties are shown as a table, five or more as a list, "
               "unless -Format says otherwise."),
    Param("Help", "switch", aliases=("?",), help="Shows this help."),
    *COMMON_PARAMS,
)

#: The remote parameters, which Close-SmbSession takes too.
REMOTE: tuple[str, ...] = ("CimSession", "Credential", "ThrottleLimit", "OperationTimeoutSec")


def queries_for(
    bound: dict[str, Any], inputs: list[pipeline.InputObject] | None, command: str,
    streams: Streams, params: Sequence[Param] = GET_PARAMS,
) -> list[SessionQuery]:
    """One query for the command line, or one per input object (bound by property name
    to ``params``)."""
    given: dict[str, Any] = {k: bound[k] for k in (*PROPERTY_OF, "smb_instance") if k in bound}
    include_hidden = bool(bound.get("include_hidden"))
    if inputs is None:
        return [SessionQuery(include_hidden=include_hidden, **given)]
    queries = []
    for obj in inputs:
        piped: dict[str, Any] = pipeline.bind_by_property_name(obj, params, given, command)
        streams.debug(f"Input object on line {obj.line} binds {piped}")
        queries.append(SessionQuery(include_hidden=include_hidden, **given, **piped))
    return queries


def not_found(prop: str, value: object) -> str:
    """PowerShell's message for a filter value that matched no session."""
    return (
        f"No MSFT_SmbSession objects found with property '{prop}' equal to '{value}'.  "
        "Verify the value of the property and retry."
    )


class Sessions:
    """The sessions read once, and what each query selects from them. A query with
    session ids looks them up by id (pipeline input runs one query per object)."""

    def __init__(self, sessions: list[SmbSession]) -> None:
        self.sessions = sessions
        self._by_id: dict[int, list[tuple[int, SmbSession]]] | None = None

    def select(self, query: SessionQuery) -> list[SmbSession]:
        if not query.session_id:
            return query.select(self.sessions)
        if self._by_id is None:
            self._by_id = {}
            for position, session in enumerate(self.sessions):
                self._by_id.setdefault(session.session_id, []).append((position, session))
        candidates = sorted(
            (entry for sid in set(query.session_id) for entry in self._by_id.get(sid, ())),
            key=lambda entry: entry[0],
        )
        return query.select(session for _, session in candidates)


def _selected(
    queries: Sequence[SessionQuery], sessions: Sessions, streams: Streams
) -> Iterator[SmbSession]:
    """Yield the sessions of each query in turn; report what a query did not find, and
    stop there when -ErrorAction Stop says so."""
    for query in queries:
        selected = sessions.select(query)
        streams.verbose(f"{query.describe()}: {len(selected)} session(s).")
        yield from selected
        for prop, value in query.unmatched(selected):
            if streams.error(not_found(prop, value)):
                return


def _read(bound: dict[str, Any], streams: Streams) -> list[SmbSession]:
    """Read the server's sessions once, reporting the source's warnings."""
    started = time.monotonic()
    result = read_sessions(bound.get("smb_conf"), bound.get("source", "auto"))
    for message in result.warnings:
        streams.warning(message)
    streams.verbose(
        f"Read {len(result.sessions)} session(s) from {result.source or 'Samba'} in "
        f"{(time.monotonic() - started) * 1000:.0f} ms."
    )
    return result.sessions


class Remote:
    """The -CimSession targets of one command and how smb:// ones log on (the password
    asked for here, once, when one of them needs it)."""

    def __init__(self, bound: dict[str, Any]) -> None:
        from .. import target_kinds

        self.targets: list[str] = list(bound["cim_session"])
        self.credential: str | None = bound.get("credential")
        self.kinds = target_kinds(self.targets, self.credential)
        self.password: str | None = None
        self.kerberos = False
        self.throttle = int(bound.get("throttle_limit") or 0)
        self.timeout = int(bound.get("operation_timeout_sec") or 60)
        self.smb_conf: str | None = bound.get("smb_conf")
        if "smb" in self.kinds:
            from .password import smb_password

            who = self.credential or next(
                (_user_of(t) for t, k in zip(self.targets, self.kinds, strict=True)
                 if k == "smb"), "smb")
            self.password, self.kerberos = smb_password(f"{who} ({len(self.targets)} "
                                                        "target(s))")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the public API that say how to reach the targets."""
        return {"cim_session": self.targets, "smb_conf": self.smb_conf,
                "credential": self.credential, "password": self.password,
                "kerberos": self.kerberos, "throttle_limit": self.throttle,
                "operation_timeout_sec": self.timeout}


def _user_of(target: str) -> str:
    """``DOMAIN\\user`` of an ``smb://DOMAIN\\user@host`` target, for the prompt."""
    rest = target.split("://", 1)[-1]
    return rest.rpartition("@")[0] or "smb"


def _stream_remote(remote: Remote, query: SessionQuery, streams: Streams
                   ) -> Iterator[SmbSession]:
    """The sessions ``query`` selects on every target, as each target answers; each
    failed target is reported as an error when it fails. Output already made is written
    out before waiting for the next target."""
    from .. import stream_smb_session

    selected: list[SmbSession] = []
    answered = 0
    for answer in stream_smb_session(**remote.options()):
        if answer.error is not None:
            streams.error(str(answer.error))
        else:
            answered += 1
        for line in answer.warnings:
            streams.warning(f"{answer.target}: {line}")
        mine = query.select(answer.sessions)
        selected.extend(mine)
        yield from mine
        sys.stdout.flush()
    streams.verbose(f"{len(selected)} session(s) from {answered} of {len(remote.targets)} "
                    "target(s).")
    for prop, value in query.unmatched(selected):
        if streams.error(not_found(prop, value)):
            return


def read_remote(remote: Remote, streams: Streams) -> list[SmbSession]:
    """Every session of every target (for pipeline input, which runs many queries)."""
    return list(_stream_remote(remote, SessionQuery(include_hidden=True), streams))


def describe_bound(bound: dict[str, object], params: Sequence[Param]) -> str:
    """The bound parameters as a command line would give them, for -Debug:
    ``-SessionId 5,7 -Format Json -Verbose``."""
    parts = []
    for param in params:
        if param.key not in bound or param.name == "Credential":
            continue
        value = bound[param.key]
        if param.type == "switch":
            parts.append(f"-{param.name}" if value else f"-{param.name}:$false")
        elif isinstance(value, (list, tuple)):
            parts.append(f"-{param.name} " + ",".join(_quoted(v) for v in value))
        else:
            parts.append(f"-{param.name} {_quoted(value)}")
    return " ".join(parts) or "(none)"


def _quoted(value: object) -> str:
    text = str(value)
    return f"'{text}'" if not text or any(c in text for c in " ,'\"$") else text


def run_get(argv: Sequence[str], command: str = "Get-SmbSession", in_job: bool = False) -> int:
    """Run Get-SmbSession with ``argv``; return the exit code (0, 1 or 2, see the help).
    ``in_job`` is set by the job process that runs an ``-AsJob`` command."""
    if wants_help(argv):
        from . import helptext
        from .get_help import HELP

        sys.stdout.write(helptext.render(HELP, GET_PARAMS))
        return 0
    bound = Binder(command, GET_PARAMS).bind(argv)
    remote = Remote(bound) if bound.get("cim_session") else None
    if bound.get("as_job") and not in_job:
        from . import jobs

        row = jobs.start(" ".join([command, *argv]), list(argv),
                         remote.password if remote else None)
        sys.stdout.write(jobs.table([row]))
        return 0
    fmt, properties = view.choose_view(
        bound.get("format"), bool(bound.get("json")), bound.get("property"), command
    )
    streams = Streams(command, bool(bound.get("verbose")), bool(bound.get("debug")),
                      bound.get("error_action", "Continue"), flush_first=sys.stdout)
    streams.debug(f"Bound parameters: {describe_bound(bound, GET_PARAMS)}.")
    stdin = pipeline.read_stdin(command)
    inputs = stdin.objects
    streams.debug(f"Stdin is {stdin.why}: "
                  + ("pipeline input." if inputs is not None else "not pipeline input."))
    if inputs is not None:
        streams.verbose(f"Pipeline input: {len(inputs)} object(s) from stdin"
                        + ("." if inputs else ": the command runs zero times."))
    queries = queries_for(bound, inputs, command, streams)
    streaming = remote is not None and inputs is None
    if remote is not None and inputs is None:
        chosen: Iterable[SmbSession] = _stream_remote(remote, queries[0], streams)
    else:
        if not queries:
            found: list[SmbSession] = []
        elif remote is not None:
            found = read_remote(remote, streams)
        else:
            found = _read(bound, streams)
        chosen = _selected(queries, Sessions(found), streams)
    text = render(fmt, view.rows(chosen, properties), properties)
    sys.stdout.writelines(text if streaming else batched(text))
    return 1 if streams.errors or streams.warnings else 0
