"""Churn: clients come and go while Get-SmbSession runs back to back."""

from __future__ import annotations

import threading
import time

from conftest import run_cli, smbprotocol_sessions
from smbsession.lab import Lab

PROPERTIES = {
    "SessionId": int, "ClientComputerName": str, "ClientUserName": str, "Dialect": str,
    "ScopeName": str, "SmbInstance": str, "SecondsExists": int, "TransportName": str,
}


def _churn(lab: Lab, stop: threading.Event, errors: list[str], index: int) -> None:
    users = ["labalice", "labbob", "labcarol"]
    while not stop.is_set():
        try:
            files = {users[index % 3]: [f"churn-{index}.txt"]}
            with smbprotocol_sessions(lab, [users[index % 3]], files=files):
                time.sleep(0.05)
        except Exception as exc:  # the server may refuse under load; count, don't fail
            errors.append(repr(exc))


def test_listings_stay_whole_under_churn(lab: Lab) -> None:
    stop = threading.Event()
    errors: list[str] = []
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as steady:
        steady_ids = {s.session_id for s in steady}
        threads = [threading.Thread(target=_churn, args=(lab, stop, errors, i), daemon=True)
                   for i in range(12)]
        for t in threads:
            t.start()
        listings = 0
        sizes = set()
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline:
                out = run_cli("get", "-SmbConf", str(lab.conf_path), "-Format", "Json")
                assert out.returncode == 0, out.stderr
                rows = out.json()
                listings += 1
                sizes.add(len(rows))
                assert steady_ids <= {r["SessionId"] for r in rows}
                for row in rows:
                    for prop, kind in PROPERTIES.items():
                        assert isinstance(row[prop], kind), (prop, row)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
    assert listings >= 5
    assert len(sizes) > 1, "the churn did not change the number of sessions"
