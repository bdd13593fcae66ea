"""Soak: Get-SmbSession back to back while clients connect, open files and disconnect.

    sudo .venv/bin/python benchmarks/soak_churn.py [--minutes 10] [--clients 12]

Starts a private lab smbd, holds two sessions steadily, starts --clients threads that
each connect (smbprotocol), open a file and disconnect in a loop, and meanwhile runs
``Get-SmbSession -Format Json`` over and over for --minutes. Every listing is checked as
the churn test checks one (exit 0, JSON, complete well-typed rows, the steady sessions
present); the soak prints how many listings ran, how many were not whole and why, the
range of session counts seen, the slowest listing and the largest peak RSS.

The longer sibling of tests/test_churn.py; a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import churn_client, row_problems, smbprotocol_sessions  # noqa: E402
from smbsession.lab import Lab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=12)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="smbsession-soak-", dir="/tmp"))
    base.chmod(0o755)
    lab = Lab(base)
    lab.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rss_file = base / "rss"
    # GNU time gives the peak RSS of the listing alone (not of this process, forked).
    command = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), sys.executable, "-m",
               "smbsession", "get", "-SmbConf", str(lab.conf_path), "-Format", "Json"]
    stop = threading.Event()
    client_errors: list[str] = []
    problems: Counter[str] = Counter()
    counts: list[int] = []
    slowest = 0.0
    peak_kib = 0
    listings = broken = 0
    try:
        with smbprotocol_sessions(lab, ["labalice", "labbob"]) as steady:
            steady_ids = {s.session_id for s in steady}
            threads = [threading.Thread(target=churn_client,
                                        args=(lab, stop, client_errors, i), daemon=True)
                       for i in range(args.clients)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + args.minutes * 60
            while time.monotonic() < deadline:
                started = time.monotonic()
                out = subprocess.run(command, capture_output=True, text=True, env=env,
                                     stdin=subprocess.DEVNULL, check=False)
                slowest = max(slowest, time.monotonic() - started)
                listings += 1
                with contextlib.suppress(OSError, ValueError, IndexError):
                    peak_kib = max(peak_kib, int(rss_file.read_text().split()[-1]))
                try:
                    rows = json.loads(out.stdout) if out.returncode == 0 else None
                except ValueError:
                    rows = None
                found = (row_problems(rows, steady_ids) if rows is not None else
                         [f"exit {out.returncode}: {out.stderr.strip()[-200:]}"
                          if out.returncode else "output is not JSON"])
                broken += bool(found)
                problems.update(found)
                counts.append(len(rows or ()))
            stop.set()
            for t in threads:
                t.join(10)
    finally:
        stop.set()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    rss = peak_kib / 1024
    print(f"{args.minutes:g} min, {args.clients} churning clients: {listings} listings, "
          f"{listings - broken} whole; sessions per listing "
          f"{min(counts, default=0)}..{max(counts, default=0)}; "
          f"slowest {slowest * 1000:.0f} ms; largest peak RSS {rss:.1f} MiB; "
          f"{len(client_errors)} client connections refused or failed")
    for problem, n in problems.most_common(20):
        print(f"  {n} x {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
