"""The collector: reads a server when Prometheus scrapes, and only then.

A :class:`SessionCollector` is registered in a registry of its own made with
``auto_describe=False`` and a :meth:`~SessionCollector.describe` that returns nothing,
so registering it reads nothing: a server is read at scrape time only, with no
background timer and no cache. A failed read is ``smbsession_up 0`` and a log line with
the reason; the next scrape reads again.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..model import SmbSession
from .metrics import Limits, TrafficLedger, session_families

__all__ = ["LocalReader", "Reader", "RemoteReader", "SessionCollector", "registry_for"]

log = logging.getLogger("smbsession.exporter")


class Reader(Protocol):
    """Something that reads one server's sessions: returns (sessions, warnings), raises
    on failure (the exception's text is the reason logged)."""

    def __call__(self) -> tuple[list[SmbSession], list[str]]: ...


@dataclasses.dataclass
class LocalReader:
    """Reads the local Samba server through :func:`smbsession.read_sessions`."""

    smb_conf: str | None = None

    def __call__(self) -> tuple[list[SmbSession], list[str]]:
        import smbsession

        result = smbsession.read_sessions(self.smb_conf)
        return result.sessions, list(result.warnings)


@dataclasses.dataclass
class RemoteReader:
    """Reads one ``-CimSession`` target (``ssh://host``...) through the public
    :func:`smbsession.stream_smb_session`; ``smb_conf`` applies on an ssh:// server."""

    target: str
    smb_conf: str | None = None
    timeout: int = 8

    def __call__(self) -> tuple[list[SmbSession], list[str]]:
        import smbsession

        sessions: list[SmbSession] = []
        warnings: list[str] = []
        for answer in smbsession.stream_smb_session(
                [self.target], self.smb_conf, operation_timeout_sec=self.timeout):
            if answer.error is not None:
                raise answer.error
            sessions.extend(answer.sessions)
            warnings.extend(answer.warnings)
        return sessions, warnings


class SessionCollector(Collector):
    """Reads one server at every scrape and yields its metric families.

    ``name`` names the server in log lines. Scrapes of one collector are serialised (its
    traffic ledger is updated by each), so two scrapers at once wait for each other.
    """

    def __init__(self, reader: Reader, limits: Limits | None = None, name: str = "localhost",
                 clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        self.limits = limits or Limits()
        self.ledger = TrafficLedger(top=self.limits.top)
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self._was_up: bool | None = None

    def describe(self) -> list[Metric]:
        """Nothing: registering the collector must not read the server."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read the server now and yield the metric families of what was read."""
        with self._lock:
            yield from self._collect()

    def _collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: list[Metric] = []
        warnings: list[str] = []
        try:
            sessions, warnings = self.reader()
            families = list(session_families(sessions, self.ledger, self.limits,
                                             self.clock()))
            up = 1
        except Exception as exc:  # a failed read is up 0, never a failed scrape
            up = 0
            log.warning("%s: reading the sessions failed: %s", self.name,
                        str(exc) or type(exc).__name__)
        if up and self._was_up is False:
            log.info("%s: reading the sessions again", self.name)
        self._was_up = bool(up)
        for warning in warnings:
            log.info("%s: %s", self.name, warning)
        yield _gauge("smbsession_up", "1 if the server's sessions were read at this scrape, "
                     "0 if not (the log says why).", up)
        yield from families
        yield _gauge("smbsession_read_warnings", "Warnings of this scrape's read (records "
                     "or facts that were skipped; the log names them).", len(warnings))
        yield _gauge("smbsession_scrape_duration_seconds", "Time this scrape took to read "
                     "the server and build the metrics.", time.perf_counter() - started)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class BuildInfo(Collector):
    """``smbsession_build_info``: the exporter's version and Python, value 1."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from .. import __version__

        family = GaugeMetricFamily("smbsession_build_info", "The exporter's version and "
                                   "Python, value 1.", labels=["version", "python"])
        family.add_metric([__version__, platform.python_version()], 1)
        yield family


def registry_for(collector: SessionCollector | None, process: bool = True) -> CollectorRegistry:
    """A registry with ``collector`` (if any), build info and, with ``process``, the
    exporter's own process metrics (``process_resident_memory_bytes``...). Nothing is read
    when it is made."""
    from prometheus_client import ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    if collector is not None:
        registry.register(collector)
    registry.register(BuildInfo())
    if process:
        ProcessCollector(registry=registry)
    return registry
