"""The HTTP side: ``/metrics``, ``/probe?target=``, TLS and basic auth.

- ``/metrics``: the local server's sessions (unless the exporter serves only probe
  targets), the exporter's build info and its own process metrics;
- ``/probe?target=T``: the sessions of target ``T``, read at that request, as the
  blackbox and SNMP exporters do it. Only targets given by configuration
  (``--probe-target``/``-CimSession``) are read; any other is refused with 400, so the
  exporter cannot be made to connect anywhere a scraper asks.
- ``/``: a short page linking both.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from .collector import Reader, RemoteReader, SessionCollector, registry_for
from .metrics import Limits
from .webconfig import WebConfig

__all__ = ["ExporterServer", "Probes"]

log = logging.getLogger("smbsession.exporter")


class Probes:
    """The allowed probe targets, each with its collector (made at its first probe, so
    its traffic counters carry over from one probe to the next)."""

    def __init__(self, targets: Sequence[str], limits: Limits,
                 reader: Callable[[str], Reader] | None = None) -> None:
        self.allowed = list(dict.fromkeys(targets))
        self.limits = limits
        self.reader: Callable[[str], Reader] = reader or RemoteReader
        self._registries: dict[str, CollectorRegistry] = {}
        self._lock = threading.Lock()

    def registry(self, target: str) -> CollectorRegistry | None:
        """The registry that reads ``target``, or None if it is not allowed."""
        if target not in self.allowed:
            return None
        with self._lock:
            found = self._registries.get(target)
            if found is None:
                collector = SessionCollector(self.reader(target), self.limits, name=target)
                found = self._registries[target] = registry_for(collector, process=False)
            return found


_INDEX = """<html><head><title>smbsession exporter</title></head><body>
<h1>smbsession exporter</h1><p><a href="/metrics">/metrics</a> (this server's SMB
sessions)</p><p>/probe?target=... for the targets configured: {targets}</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        config = self.server.web_config
        if not config.authorized(self.headers.get("Authorization")):
            self._send(401, b"Unauthorized\n",
                       headers={"WWW-Authenticate": 'Basic realm="smbsession exporter"'})
            return
        url = urlsplit(self.path)
        if url.path == "/metrics":
            self._expose(self.server.registry)
        elif url.path == "/probe":
            targets = parse_qs(url.query).get("target", [])
            if len(targets) != 1:
                self._send(400, b"give one target: /probe?target=ssh://host\n")
                return
            registry = self.server.probes.registry(targets[0])
            if registry is None:
                self._send(400, f"target {targets[0]!r} is not one of the configured probe "
                                "targets\n".encode())
                return
            self._expose(registry)
        elif url.path == "/":
            allowed = ", ".join(self.server.probes.allowed) or "(none)"
            self._send(200, _INDEX.format(targets=allowed).encode(),
                       "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n")

    def _expose(self, registry: CollectorRegistry) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(registry)
        except Exception as exc:  # never a dead connection: say what broke
            log.error("building the exposition failed: %s", exc)
            self._send(500, f"building the metrics failed: {exc}\n".encode())
            return
        self._send(200, body, content_type)


class ExporterServer(ThreadingHTTPServer):
    """A threading HTTP(S) server of the exporter's endpoints. ``registry`` is what
    ``/metrics`` serves; ``probes`` the allowed ``/probe`` targets; ``web_config`` TLS and
    users. The socket is bound when it is made (before privileges are dropped)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, probes: Probes,
                 web_config: WebConfig) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.probes = probes
        self.web_config = web_config
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        context = self.web_config.ssl_context
        if context is not None:
            sock.settimeout(10)
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.web_config.ssl_context is not None:
            try:
                request.do_handshake()
            except (OSError, ValueError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address, exc)
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.info("request from %s failed", client_address, exc_info=True)
