"""The exporter's pure parts: label caps, the traffic ledger, the registry, the options."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.exposition import generate_latest

from smbsession.errors import InvalidParameter
from smbsession.exporter import parse_listen
from smbsession.exporter.collector import SessionCollector, registry_for
from smbsession.exporter.metrics import OTHER, Limits, TrafficLedger, session_families
from smbsession.exporter.webconfig import load_web_config
from smbsession.model import SmbSession


def _s(sid: int, pid: int, client: str = "192.0.2.1", user: str = "LAB\\u", rx: int = 0,
       tx: int = 0) -> SmbSession:
    return SmbSession(sid, client_computer_name=client, client_user_name=user, smbd_pid=pid,
                      transport_name="tcp:192.0.2.9:445", dialect="3.1.1",
                      bytes_received=rx, bytes_sent=tx, seconds_idle=3, num_opens=1,
                      shares=("share",))


def test_a_connection_that_ends_keeps_its_bytes_and_labels_never_move() -> None:
    ledger = TrafficLedger(top=1)
    assert ledger.update([_s(1, 10, rx=100, tx=10), _s(2, 10, rx=100, tx=10)]) == {
        "192.0.2.1": (100, 10)}  # two sessions, one connection: counted once
    assert ledger.update([_s(3, 11, client="192.0.2.2", rx=5, tx=5)]) == {
        "192.0.2.1": (100, 10), OTHER: (5, 5)}  # the first connection ended: kept
    # a new connection under the same key counts from zero: the old one is kept too
    assert ledger.update([_s(4, 11, client="192.0.2.2", rx=1, tx=1)]) == {
        "192.0.2.1": (100, 10), OTHER: (6, 6)}
    assert ledger.update([]) == {"192.0.2.1": (100, 10), OTHER: (6, 6)}


def test_top_zero_names_no_one() -> None:
    sessions = [_s(i, i, client=f"192.0.2.{i}", user=f"LAB\\u{i}") for i in range(5)]
    text = _exposition(sessions, Limits(top=0))
    assert 'user="LAB' not in text and 'client="192.0.2' not in text
    assert 'smbsession_user_sessions{user="other"} 5.0' in text


def test_top_n_keeps_the_biggest_names() -> None:
    sessions = [_s(i, i, user="LAB\\big") for i in range(3)] + [
        _s(10 + i, 10 + i, user=f"LAB\\small{i}") for i in range(4)]
    text = _exposition(sessions, Limits(top=1))
    assert 'smbsession_user_sessions{user="LAB\\\\big"} 3.0' in text
    assert 'smbsession_user_sessions{user="other"} 4.0' in text


def _exposition(sessions: list[SmbSession], limits: Limits) -> str:
    class Families:
        def collect(self):
            return session_families(sessions, TrafficLedger(top=limits.top), limits, 1e9)

    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_the_registry_reads_nothing_until_a_scrape_and_a_failure_is_up_0() -> None:
    calls: list[int] = []

    def reader():
        calls.append(1)
        if len(calls) == 2:
            raise OSError("the server went away")
        return [_s(1, 1)], []

    registry = registry_for(SessionCollector(reader), process=False)
    assert calls == []
    first, second, third = (generate_latest(registry).decode() for _ in range(3))
    assert len(calls) == 3
    assert "smbsession_up 1.0" in first and "smbsession_up 0.0" in second
    assert "smbsession_sessions" not in second and "smbsession_up 1.0" in third


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9445", ("127.0.0.1", 9445)), (":9445", ("0.0.0.0", 9445)),
    ("[::1]:9445", ("::1", 9445))])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9445", "host:", "host:0", "host:70000", "host:port"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(InvalidParameter, match="--listen"):
        parse_listen(text)


@pytest.mark.parametrize(("content", "problem"), [
    ("tls_server_config:\n  cert_file: a\n", "cert_file and key_file"),
    ("basic_auth_users:\n  alice: plain\n", "not a bcrypt hash"),
    ("basic_auth_user:\n  alice: x\n", "unknown key"),
    ("tls_server_config:\n  cert: a\n", "unknown tls_server_config key"),
    ("- a\n", "not a mapping")])
def test_web_config_mistakes_are_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(content)
    with pytest.raises(InvalidParameter, match=problem):
        load_web_config(str(path))
