"""The entry points: ``Get-SmbSession`` and the umbrella ``smbsession get|lab``.

The commands only bind parameters, call the public API and print; every fact comes from
:mod:`smbsession`. ``Get-SmbSession`` itself lives in :mod:`.get`.
"""

from __future__ import annotations

import gc
import os
import sys

from .. import __version__
from ..errors import SmbSessionError
from .binder import Binder, wants_help
from .get import run_get
from .params import Param

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import TextIO

LAB_USAGE = """\
smbsession lab start [--dir D] [--port P]   set up and start a private Samba on loopback
smbsession lab stop [--dir D]               stop it (and its sample clients)
smbsession lab status [--dir D]             say whether it runs
smbsession lab clients [--dir D] [--seconds N]
                                            add 5 real sample sessions for N seconds (300)
                                            to those of clients already running
smbsession lab start|stop|status|clients --domain [--dir D]
                                            the same for an Active Directory domain in
                                            network namespaces (DC, member server, client)
smbsession lab start --cluster N [--dir D]  an N-node CTDB cluster in network namespaces;
                                            stop, status and clients take --cluster too
"""

LAB_PARAMS: tuple[Param, ...] = (
    Param("Dir", help="The lab's directory."),
    Param("Port", "int32", help="The SMB port (default: a free one)."),
    Param("Seconds", "int32", help="How long the sample clients stay connected."),
    Param("Domain", "switch", help="The Active Directory domain lab instead."),
    Param("Cluster", "int32", help="Nodes of a clustered (CTDB) lab."),
    Param("Help", "switch", aliases=("?",)),
)


def run_lab(argv: Sequence[str]) -> int:
    """Run ``smbsession lab ACTION ...``; return the exit code."""
    import time

    from ..lab import Lab

    if not argv or argv[0] == "help" or wants_help(argv):
        sys.stdout.write(LAB_USAGE)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    args = Binder(f"smbsession lab {action}", LAB_PARAMS).bind(rest)
    if args.get("domain"):
        from ..lab.domain import run_domain_lab

        domain_seconds = args.get("seconds", 300)
        return run_domain_lab(action, str(args["dir"]) if "dir" in args else None,
                              domain_seconds if isinstance(domain_seconds, int) else 300)
    if args.get("cluster") is not None:
        return _run_cluster_lab(action, args)
    lab = Lab(str(args["dir"]) if "dir" in args else None)
    port, seconds = args.get("port"), args.get("seconds", 300)
    if action == "start":
        conf = lab.start(port=port if isinstance(port, int) else None)
        print(conf)
        return 0
    if action == "stop":
        print("stopped" if lab.stop() else "the lab was not running")
        return 0
    if action == "status":
        pid = lab.pid()
        if pid is None:
            print(f"not running (lab directory {lab.directory}); start it with "
                  f"'smbsession lab start{lab.dir_option()}'")
            return 1
        print(f"running: smbd pid {pid}, port {lab.port}, smb.conf {lab.conf_path}")
        for other in lab.running_clients():
            print(f"sample clients: pid {other.pid}, {other.sessions} sessions, until "
                  f"{time.strftime('%H:%M:%S', time.localtime(other.until))}")
        return 0
    if action == "clients":
        seconds = seconds if isinstance(seconds, int) else 300
        before = lab.running_clients()
        added = lab.start_clients(seconds=seconds)
        print(f"sample clients connected (pid {added.pid}): {added.sessions} sessions, held "
              f"for {seconds} s")
        if before:
            total = sum(other.sessions for other in before) + added.sessions
            print(f"added to the sample clients already running ({total} sessions in all):")
            for other in before:
                print(f"  pid {other.pid}: {other.sessions} sessions, until "
                      f"{time.strftime('%H:%M:%S', time.localtime(other.until))}")
        return 0
    print(f"smbsession lab: unknown action '{action}'\n{LAB_USAGE}", file=sys.stderr)
    return 2


def _run_cluster_lab(action: str, args: dict[str, object]) -> int:
    """``smbsession lab ACTION --cluster N``: the clustered lab (:mod:`smbsession.lab.cluster`)."""
    from ..lab import default_lab_dir
    from ..lab.cluster import ClusterLab

    nodes = args["cluster"]
    assert isinstance(nodes, int)  # the binder made it an int32
    lab = ClusterLab(str(args["dir"]) if "dir" in args else default_lab_dir().with_name("cluster"),
                     nodes)
    if action == "start":
        for i, conf in enumerate(lab.start()):
            print(f"node {i}: ip netns exec {lab.netns(i)} Get-SmbSession -SmbConf {conf}")
        return 0
    if action == "stop":
        print("stopped" if lab.stop() else "the cluster lab was not running")
        return 0
    if action == "status":
        if not lab.running():
            print(f"not running (lab directory {lab.directory})")
            return 1
        held = ", ".join(f"{ip} on node {n}" for ip, n in sorted(lab.public_ips().items()))
        print(f"running: {lab.count} nodes ({lab.prefix}-*), public addresses {held}")
        return 0
    if action == "clients":
        seconds = args.get("seconds", 300)
        assert isinstance(seconds, int)
        pids = lab.start_clients(seconds=seconds)
        print(f"{len(pids)} sample clients connected over {lab.count} nodes, holding their "
              f"sessions for {seconds} s")
        return 0
    print(f"smbsession lab: unknown action '{action}'\n{LAB_USAGE}", file=sys.stderr)
    return 2


JOB_USAGE = """\
smbsession job list                          the jobs, as PowerShell's Get-Job shows them
smbsession job wait ID [--timeout S]         wait until job ID has finished
smbsession job receive ID [--format F]       its sessions (Table, List, Json, NDJson, Csv)
smbsession job remove ID                     delete it (stopping it if it still runs)
"""

JOB_PARAMS: tuple[Param, ...] = (
    Param("Id", "int32", position=0, help="The job's Id."),
    Param("Timeout", "int32", help="Seconds to wait at most (wait; default 3600)."),
    Param("Format", "enum", choices=("Table", "List", "Json", "NDJson", "Csv")),
    Param("Help", "switch", aliases=("?",)),
)


def run_job(argv: Sequence[str]) -> int:
    """Run ``smbsession job ACTION ...``; return the exit code."""
    from . import jobs
    from .formats import render
    from .view import choose_view

    if not argv or argv[0] == "help" or wants_help(argv):
        sys.stdout.write(JOB_USAGE)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    args = Binder(f"smbsession job {action}", JOB_PARAMS).bind(rest)
    if action == "list":
        sys.stdout.write(jobs.table(jobs.list_jobs()))
        return 0
    if "id" not in args:
        print(f"smbsession job {action}: give the job's Id (smbsession job list shows them)",
              file=sys.stderr)
        return 2
    if action == "wait":
        row = jobs.wait(args["id"], float(args.get("timeout", 3600)))
        sys.stdout.write(jobs.table([row]))
        return 0 if row["state"] != "Running" else 1
    if action == "receive":
        rows, errors, row = jobs.receive(args["id"])
        fmt, properties = choose_view(args.get("format"), False, None, "smbsession job")
        if rows and properties and set(properties) - set(rows[0]):
            properties = tuple(rows[0])
        sys.stdout.writelines(render(fmt, rows, properties))
        for line in errors:
            print(line, file=sys.stderr)
        return 1 if errors or row["state"] == "Failed" else 0
    if action == "remove":
        jobs.remove(args["id"])
        return 0
    print(f"smbsession job: unknown action '{action}'\n{JOB_USAGE}", file=sys.stderr)
    return 2


UMBRELLA_USAGE = """\
smbsession get [Get-SmbSession parameters]     list sessions (same as Get-SmbSession)
smbsession close [Close-SmbSession parameters] close sessions (same as Close-SmbSession)
smbsession lab start|stop|status|clients        a private Samba server for demos and tests
smbsession job list|wait|receive|remove [ID]    background jobs started with -AsJob
smbsession completion bash|zsh                  print a shell completion script
smbsession --version                            print the version
smbsession exporter [--listen ADDR:PORT] ...    the sessions as Prometheus metrics
smbsession top [Get-SmbSession filters]         a live view of the sessions and their traffic
"""


class _PipeSafeStdout:
    """stdout that stops writing, without failing, once its reader has gone (``| head``):
    the command runs on and ends with the exit code it would have had."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def _gone(self) -> None:
        self.closed_by_reader = True
        # Python must not complain when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _guard(command: str, func: Callable[..., int], *args: object) -> int:
    """Run one command: its errors become PowerShell's messages and exit codes, and a
    reader that goes away early costs the command its output, not its exit code."""
    from .errors import exit_code, message

    if not isinstance(sys.stdout, _PipeSafeStdout):
        sys.stdout = _PipeSafeStdout(sys.stdout)
    try:
        code = int(func(*args))
    except SmbSessionError as exc:
        sys.stdout.flush()
        print(message(exc, command), file=sys.stderr)
        code = exit_code(exc)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return code


def _asks_version(argv: Sequence[str]) -> bool:
    """True when ``--version`` stands among the arguments (before ``--``)."""
    return "--version" in (argv[: list(argv).index("--")] if "--" in argv else argv)


def _print_version() -> int:
    print(f"smbsession {__version__}")
    return 0


def _short_lived() -> None:
    # A command runs for a fraction of a second and makes no reference cycles worth
    # collecting; the cyclic GC would only rescan the tens of thousands of records.
    gc.disable()


def get_smb_session_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``Get-SmbSession`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(args):
        return _print_version()
    _short_lived()
    return _guard("Get-SmbSession", run_get, args)


def close_smb_session_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``Close-SmbSession`` command."""
    from .close import run_close

    args = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(args):
        return _print_version()
    _short_lived()
    return _guard("Close-SmbSession", run_close, args)


def _umbrella(argv: list[str]) -> int:
    if _asks_version(argv):
        return _print_version()
    if not argv or argv[0] in ("-h", "--help", "-Help", "help"):
        sys.stdout.write(UMBRELLA_USAGE)
        return 0 if argv else 2
    if argv[0] == "get":
        return run_get(argv[1:], "smbsession get")
    if argv[0] == "close":
        from .close import run_close

        return run_close(argv[1:], "smbsession close")
    if argv[0] == "lab":
        return run_lab(argv[1:])
    if argv[0] == "job":
        return run_job(argv[1:])
    if argv[0] == "completion":
        from .completion import run_completion

        return run_completion(argv[1:])
    if argv[0] == "exporter":
        from ..exporter import main as run_exporter

        return run_exporter(argv[1:])
    if argv[0] == "top":
        from ..top import main as run_top

        return run_top(argv[1:])
    print(f"smbsession: unknown command '{argv[0]}'\n{UMBRELLA_USAGE}", file=sys.stderr)
    return 2


def _command_name(argv: Sequence[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return f"smbsession {args[0]}" if args and not args[0].startswith("-") else "smbsession"


def smbsession_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smbsession`` umbrella command."""
    _short_lived()
    return _guard(_command_name(argv), _umbrella, list(sys.argv[1:] if argv is None else argv))
