"""Churn: clients come and go while Get-SmbSession runs back to back."""

from __future__ import annotations

import threading
import time

from conftest import churn_client, row_problems, run_cli, smbprotocol_sessions
from smbsession.lab import Lab


def test_listings_stay_whole_under_churn(lab: Lab) -> None:
    stop = threading.Event()
    errors: list[str] = []
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as steady:
        steady_ids = {s.session_id for s in steady}
        threads = [threading.Thread(target=churn_client, args=(lab, stop, errors, i), daemon=True)
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
                assert row_problems(rows, steady_ids) == []
                # A client that has just left keeps its idle time until smbd removes its
                # session (its connection is then in CLOSE_WAIT): never a null, no warning.
                assert out.stderr == ""
                assert [r["SessionId"] for r in rows if not isinstance(r["SecondsIdle"], int)
                        ] == []
        finally:
            stop.set()
            for t in threads:
                t.join(10)
    assert listings >= 5
    assert len(sizes) > 1, "the churn did not change the number of sessions"
