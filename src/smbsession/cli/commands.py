"""The entry points: ``Get-SmbSession`` and the umbrella ``smbsession get|lab``.

The commands only bind parameters, call the public API and print; every fact comes from
:mod:`smbsession`. ``Get-SmbSession`` itself lives in :mod:`.get`.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import SmbSessionError
from .binder import Binder, wants_help
from .get import run_get
from .params import Param

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

    if not argv or argv[0] == "help" or wants_help(argv):
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
smbsession get [Get-SmbSession parameters]     list sessions (same as Get-SmbSession)
smbsession close [Close-SmbSession parameters] close sessions (same as Close-SmbSession)
smbsession lab start|stop|status|clients        a private Samba server for demos and tests
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
        # The reader went away (| head): Python must not complain when it flushes stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _short_lived() -> None:
    # A command runs for a fraction of a second and makes no reference cycles worth
    # collecting; the cyclic GC would only rescan the tens of thousands of records.
    gc.disable()


def get_smb_session_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``Get-SmbSession`` command."""
    _short_lived()
    return _guard(run_get, list(sys.argv[1:] if argv is None else argv))


def close_smb_session_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``Close-SmbSession`` command."""
    from .close import run_close

    _short_lived()
    return _guard(run_close, list(sys.argv[1:] if argv is None else argv))


def _umbrella(argv: list[str]) -> int:
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
    print(f"smbsession: unknown command '{argv[0]}'\n{UMBRELLA_USAGE}", file=sys.stderr)
    return 2


def smbsession_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smbsession`` umbrella command."""
    _short_lived()
    return _guard(_umbrella, list(sys.argv[1:] if argv is None else argv))
