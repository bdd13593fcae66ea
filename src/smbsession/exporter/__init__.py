"""``smbsession exporter``: the SMB sessions of a Samba server as Prometheus metrics.

Needs the exporter extra: ``pip install 'smbsession[exporter]'`` (prometheus_client, and
PyYAML and bcrypt for the web-config file). The server is read at each scrape
(:mod:`.collector`), the metrics are built by :mod:`.metrics`, served by :mod:`.server`
(TLS and basic auth from :mod:`.webconfig`); started as root, the reading stays in a
root child and the HTTP front drops to an unprivileged user (:mod:`.privsep`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import target_kinds
from ..errors import InvalidParameter

if TYPE_CHECKING:
    from ..cli.params import Param

__all__ = ["DEFAULT_LISTEN", "DEFAULT_PORT", "main", "parse_listen"]

#: Not 9922, which both Samba exporters in use take (imker25/samba_exporter, smbmetrics).
DEFAULT_PORT = 9445
#: Loopback: the metrics name users and client addresses. Serving them to the network
#: is a decision to make explicitly (``--listen :9445``), ideally with TLS and a password.
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"

USAGE = f"""\
smbsession exporter [--listen ADDR:PORT] [-SmbConf PATH] [-CimSession TARGET,...]
                    [--web-config-file FILE] [--user USER] [--top N]
                    [--per-session] [--max-sessions N] [--log-level LEVEL]

Serves the SMB sessions of this Samba server as Prometheus metrics on /metrics, read at
each scrape, and those of the -CimSession targets (ssh://host...) on /probe?target=T.

  --listen ADDR:PORT      where to listen (default {DEFAULT_LISTEN}; ':{DEFAULT_PORT}' for every
                          interface, '[::1]:{DEFAULT_PORT}' for IPv6)
  -SmbConf PATH           the smb.conf of the local server, and of ssh:// targets on
                          theirs (default: Samba's own)
  -CimSession T,...       the targets /probe may read (and only those); with it, /metrics
                          reads no local server unless --local is given too
  --local                 serve the local server on /metrics even with -CimSession
  --web-config-file FILE  TLS and basic auth, as Prometheus' exporters read them
  --user USER             started as root, the HTTP side runs as USER (default nobody);
                          a root child does the reading. '--user root': one process
  --top N                 user, client and share labels: the N biggest by name, the
                          rest as 'other' (default 10; 0: no names at all)
  --per-session           one series per session (smbsession_session_*), capped
  --max-sessions N        the cap of --per-session (default 1000)
  --log-level LEVEL       debug, info, warning (default info)
"""


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT`` or ``:PORT`` (every interface) -> (host, port).
    Raises :class:`InvalidParameter` naming the value."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidParameter(f"--listen: '{text}' is not ADDR:PORT (for example "
                               f"{DEFAULT_LISTEN}, :{DEFAULT_PORT} or [::1]:{DEFAULT_PORT})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


def _params() -> tuple[Param, ...]:
    from ..cli.params import Param

    return (
        Param("Listen"), Param("SmbConf"), Param("CimSession", array=True),
        Param("Local", "switch"), Param("WebConfigFile"), Param("User"),
        Param("Top", "int32", minimum=0), Param("PerSession", "switch"),
        Param("MaxSessions", "int32", minimum=0), Param("LogLevel"),
        Param("Help", "switch", aliases=("?", "h")),
    )


def _preload(web_config: object) -> None:
    """Import now what serving imports lazily: after the privileges are dropped, the
    Python installation may not be readable any more (a root-only prefix)."""
    import base64  # noqa: F401
    import hashlib  # noqa: F401
    import heapq  # noqa: F401
    import json  # noqa: F401
    import urllib.parse  # noqa: F401

    from prometheus_client import exposition, openmetrics  # noqa: F401
    from prometheus_client.openmetrics import exposition as om

    from .collector import BuildInfo, registry_for
    from .metrics import Limits, TrafficLedger, session_families

    registry = registry_for(None)
    exposition.generate_latest(registry)
    om.generate_latest(registry)
    list(session_families([], TrafficLedger(), Limits(per_session=True)))
    BuildInfo()
    if getattr(web_config, "users", None):
        import bcrypt  # noqa: F401


def main(argv: Sequence[str]) -> int:
    """Run the exporter until SIGTERM or Ctrl-C; return the exit code."""
    from ..cli.binder import Binder, wants_help

    if wants_help(argv) or "--help" in argv or "-h" in argv:
        sys.stdout.write(USAGE)
        return 0
    args: dict[str, Any] = Binder("smbsession exporter", _params()).bind(argv)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        print("smbsession exporter needs prometheus_client: pip install "
              "'smbsession[exporter]'", file=sys.stderr)
        return 1
    from .collector import LocalReader, Reader, RemoteReader, SessionCollector, registry_for
    from .metrics import Limits
    from .privsep import drop_privileges, fork_reader
    from .server import ExporterServer, Probes
    from .webconfig import load_web_config

    level = str(args.get("log_level", "info")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise InvalidParameter(f"--log-level: '{args['log_level']}' is not debug, info, "
                               "warning or error")
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("smbsession.exporter")
    host, port = parse_listen(str(args.get("listen", DEFAULT_LISTEN)))
    limits = Limits(top=int(args.get("top", 10)), per_session=bool(args.get("per_session")),
                    max_sessions=int(args.get("max_sessions", 1000)))
    smb_conf = args.get("smb_conf")
    targets = [str(t) for t in args.get("cim_session", [])]
    kinds = dict(zip(targets, target_kinds(targets), strict=True)) if targets else {}
    local = not targets or bool(args.get("local"))
    web_config = load_web_config(args.get("web_config_file"))
    user = str(args.get("user", "nobody"))
    local_probes = "local" in kinds.values()
    reader_pid = None
    reader: Reader = LocalReader(smb_conf)
    if (local or local_probes) and os.geteuid() == 0 and user != "root":
        reader_pid, reader = fork_reader(smb_conf)
    collector = SessionCollector(reader, limits, name="localhost") if local else None

    def probe_reader(target: str) -> Reader:
        if kinds.get(target) == "local":
            return reader
        return RemoteReader(target, smb_conf)

    try:
        server = ExporterServer((host, port), registry_for(collector),
                                Probes(targets, limits, probe_reader), web_config)
    except OSError as exc:
        raise InvalidParameter(f"--listen: cannot listen on {host}:{port} "
                               f"({exc.strerror or exc})") from None
    if os.geteuid() == 0 and user != "root":
        _preload(web_config)
        drop_privileges(user)
    scheme = "https" if web_config.ssl_context else "http"
    shown = host if ":" not in host else f"[{host}]"
    split = f" (root reader pid {reader_pid}, HTTP as {user})" if reader_pid else ""
    probes = f"; probe targets: {', '.join(targets)}" if targets else ""
    log.info("listening on %s://%s:%d/metrics%s%s", scheme, shown, port, split, probes)

    return _serve(server, reader_pid, log)


def _serve(server: Any, reader_pid: int | None, log: logging.Logger) -> int:
    """Serve until SIGTERM or Ctrl-C, or until the root reader is gone; return the exit
    code (1 when the reader went away)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    code = 0
    while not stop.wait(1.0):
        if reader_pid is not None:
            done, _ = os.waitpid(reader_pid, os.WNOHANG)
            if done:
                log.error("the root reader (pid %d) has exited; stopping", reader_pid)
                code = 1
                break
    server.shutdown()
    server.server_close()
    if reader_pid is not None and code == 0:
        import contextlib

        with contextlib.suppress(OSError):
            os.kill(reader_pid, signal.SIGTERM)
            os.waitpid(reader_pid, 0)
    return code
