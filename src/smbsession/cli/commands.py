"""The commands: ``Get-SmbSession`` and ``smbsession get|lab``.

The commands only bind parameters, call the public API and print; every fact comes from
:mod:`smbsession`.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable, Sequence

from .. import SmbSessionError, SmbSessionWarning, get_smb_session
from ..model import EXTRA_PROPERTIES, MSFT_PROPERTIES, SMB_INSTANCES, TABLE_PROPERTIES
from .formats import FORMATS, render
from .params import Binder, Param

GET_PARAMS: tuple[Param, ...] = (
    Param("SessionId", "uint64", array=True, position=0,
          help="Only the sessions with these ids."),
    Param("ClientComputerName", array=True, position=1,
          help="Only sessions from these clients (IP address, [IPv6] or NetBIOS name)."),
    Param("ClientUserName", array=True, position=2,
          help="Only sessions of these users (DOMAIN\\user; a bare user matches any domain)."),
    Param("ScopeName", array=True, position=3, help="Only sessions in these scopes ('*')."),
    Param("ClusterNodeName", array=True, position=4, help="Only sessions served by these nodes."),
    Param("IncludeHidden", "switch", help="Also anonymous and unauthenticated sessions."),
    Param("SmbInstance", "enum", choices=SMB_INSTANCES, help="Default (Samba's only instance)."),
    Param("SmbConf", help="The smb.conf of the Samba server to read."),
    Param("Format", "enum", choices=FORMATS, help="Table (default), List, Json, NDJson, Csv."),
    Param("Json", "switch", help="Same as -Format Json."),
    Param("Source", "enum", choices=("auto", "tdb", "smbstatus"),
          help="Where to read sessions from: auto (default), tdb, smbstatus."),
    Param("Help", "switch", aliases=("?",), help="Show this help."),
)

GET_USAGE = """\
Get-SmbSession [[-SessionId] <UInt64[]>] [[-ClientComputerName] <String[]>]
               [[-ClientUserName] <String[]>] [[-ScopeName] <String[]>]
               [[-ClusterNodeName] <String[]>] [-IncludeHidden] [-SmbInstance <SmbInstance>]
               [-SmbConf <path>] [-Format Table|List|Json|NDJson|Csv] [-Json]

Retrieves the SMB sessions currently established between the local Samba server and its
clients. Parameter names are case-insensitive and may be shortened; GNU spellings work too
(--session-id 5, --format json).
"""


def _help(usage: str, params: Sequence[Param]) -> str:
    lines = [usage, "Parameters:"]
    for p in params:
        lines.append(f"  -{p.name:<20} {p.help}")
    return "\n".join(lines) + "\n"


def _print_warnings(caught: list[warnings.WarningMessage], command: str) -> None:
    for w in caught:
        if issubclass(w.category, SmbSessionWarning):
            print(f"WARNING: {w.message}", file=sys.stderr)


def run_get(argv: Sequence[str], command: str = "Get-SmbSession") -> int:
    """Run Get-SmbSession with ``argv``; return the exit code."""
    args: dict[str, object] = Binder(command, GET_PARAMS).bind(argv)
    if args.get("help"):
        sys.stdout.write(_help(GET_USAGE, GET_PARAMS))
        return 0
    fmt = "Json" if args.get("json") else args.get("format", "Table")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sessions = get_smb_session(
            session_id=args.get("session_id"),
            client_computer_name=args.get("client_computer_name"),
            client_user_name=args.get("client_user_name"),
            scope_name=args.get("scope_name"),
            cluster_node_name=args.get("cluster_node_name"),
            include_hidden=bool(args.get("include_hidden")),
            smb_instance=args.get("smb_instance"),
            smb_conf=args.get("smb_conf"),
            source=args.get("source", "auto"),
        )
    _print_warnings(caught, command)
    columns = TABLE_PROPERTIES if fmt == "Table" else MSFT_PROPERTIES + EXTRA_PROPERTIES
    rows = (s.to_dict(columns) for s in sessions)
    sys.stdout.writelines(render(fmt, rows, columns))
    return 1 if caught else 0


LAB_USAGE = """\
smbsession lab start [--dir D] [--port P]   set up and start a private Samba on loopback
smbsession lab stop [--dir D]               stop it (and its sample clients)
smbsession lab status [--dir D]             say whether it runs
smbsession lab clients [--dir D] [--seconds N]
                                            hold real sample sessions for N seconds (300)
"""

LAB_PARAMS: tuple[Param, ...] = (
    Param("Dir", help="The lab's directory."),
    Param("Port", "int32", help="The SMB port (default: a free one)."),
    Param("Seconds", "int32", help="How long the sample clients stay connected."),
    Param("Help", "switch", aliases=("?",)),
)


def run_lab(argv: Sequence[str]) -> int:
    """Run ``smbsession lab ACTION ...``; return the exit code."""
    from ..lab import Lab

    if not argv or argv[0] in ("-h", "--help", "-Help", "help"):
        sys.stdout.write(LAB_USAGE)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    args = Binder(f"smbsession lab {action}", LAB_PARAMS).bind(rest)
    lab = Lab(args.get("dir"))
    if action == "start":
        conf = lab.start(port=args.get("port"))
        print(conf)
        return 0
    if action == "stop":
        print("stopped" if lab.stop() else "the lab was not running")
        return 0
    if action == "status":
        pid = lab.pid()
        if pid is None:
            print(f"not running (lab directory {lab.directory})")
            return 1
        print(f"running: smbd pid {pid}, port {lab.port}, smb.conf {lab.conf_path}")
        return 0
    if action == "clients":
        seconds = args.get("seconds", 300)
        pid = lab.start_clients(seconds=seconds)
        print(f"sample clients connected (pid {pid}), holding their sessions for {seconds} s")
        return 0
    print(f"smbsession lab: unknown action '{action}'\n{LAB_USAGE}", file=sys.stderr)
    return 2


UMBRELLA_USAGE = """\
smbsession get [Get-SmbSession parameters]   list sessions (same as Get-SmbSession)
smbsession lab start|stop|status|clients      a private Samba server for demos and tests
"""


def _guard(func: Callable[..., int], *args: object) -> int:
    try:
        return int(func(*args))
    except SmbSessionError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _short_lived() -> None:
    # A command runs for a fraction of a second and makes no reference cycles worth
    # collecting; the cyclic GC would only rescan the tens of thousands of records.
    gc.disable()


def get_smb_session_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``Get-SmbSession`` command."""
    _short_lived()
    return _guard(run_get, list(sys.argv[1:] if argv is None else argv))


def _umbrella(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "-Help", "help"):
        sys.stdout.write(UMBRELLA_USAGE)
        return 0 if argv else 2
    if argv[0] == "get":
        return run_get(argv[1:], "smbsession get")
    if argv[0] == "lab":
        return run_lab(argv[1:])
    print(f"smbsession: unknown command '{argv[0]}'\n{UMBRELLA_USAGE}", file=sys.stderr)
    return 2


def smbsession_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smbsession`` umbrella command."""
    _short_lived()
    return _guard(_umbrella, list(sys.argv[1:] if argv is None else argv))
