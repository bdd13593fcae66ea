"""Benchmark: Get-SmbSession on a 2-node CTDB cluster against smbstatus -b on that node.

Builds a 2-node lab cluster (:class:`smbsession.lab.cluster.ClusterLab`), opens N real SMB
sessions spread evenly over both nodes with smbprotocol (500 per TCP connection, each with
a tree connect, every tenth with an open file) from the clients' namespace, then times on
node 0, alternating and repeated, ``Get-SmbSession -Format Json`` (the whole cluster,
through ctdbd: three traverses and a liveness check per smbd) and ``smbstatus -b`` (Samba's
C tool, sessions only, the same traverse), each under GNU time for its peak RSS.

    sudo .venv/bin/python benchmarks/bench_cluster.py --sessions 10000

This is a measurement, not a test: it asserts nothing. Results go to
benchmarks/results/cluster.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from holders import Holders  # noqa: E402

from smbsession.lab import SHARE  # noqa: E402
from smbsession.lab.cluster import ClusterLab  # noqa: E402


def _measure(lab: ClusterLab, cmd: list[str]) -> tuple[float, int, bool, str]:
    with tempfile.NamedTemporaryFile("r") as report:
        argv = lab.in_node(0, ["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd])
        start = time.perf_counter()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                              check=False)
        elapsed = time.perf_counter() - start
        lines = report.read().split()
    rss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return elapsed, rss, proc.returncode == 0, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cluster.md"))
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
                   stdout=subprocess.DEVNULL, check=False)
    script = Path(sys.executable).with_name("Get-SmbSession")
    get = [str(script)] if script.exists() else [sys.executable, "-m", "smbsession", "get"]

    base = Path(tempfile.mkdtemp(prefix="smbsession-bench-cluster-", dir="/tmp"))
    base.chmod(0o755)
    lab = ClusterLab(base, 2)
    holders: Holders | None = None
    try:
        t0 = time.perf_counter()
        lab.start()
        print(f"2-node cluster up in {time.perf_counter() - t0:.1f} s", flush=True)
        users = [(u, p) for u, p in lab.users().items() if u.startswith("lab")]
        holders = Holders(SHARE, users, netns=lab.hub)
        half = [args.sessions // 2, args.sessions - args.sessions // 2]
        took = holders.add([(lab.address_of(node), 445, count)
                            for node, count in enumerate(half)])
        print(f"sessions opened in {took:.0f} s", flush=True)
        conf = str(lab.conf_path(0))
        commands = {"Get-SmbSession (node 0, whole cluster)": [*get, "-SmbConf", conf,
                                                               "-Format", "Json"],
                    "smbstatus -b (node 0)": ["smbstatus", "-b", "-s", conf]}
        samples: dict[str, list[tuple[float, int, bool, str]]] = {k: [] for k in commands}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                samples[name].append(_measure(lab, cmd))
        import json

        listed = len(json.loads(samples[next(iter(commands))][-1][3] or "[]"))
        status_out = samples["smbstatus -b (node 0)"][-1][3]
        counted = sum(1 for line in status_out.splitlines() if line[:1].isdigit())
        base_median = statistics.median(s[0] for s in samples["smbstatus -b (node 0)"])
        version = subprocess.run(["smbd", "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        rows = []
        for name, got in samples.items():
            med = statistics.median(s[0] for s in got)
            rss = max(s[1] for s in got) / 1024
            rows.append(f"| {args.sessions} | {name} | {med * 1000:.1f} ms | "
                        f"{med / base_median:.2f} | {rss:.1f} MiB | "
                        f"{'ok' if all(s[2] for s in got) else 'FAILED'} |")
        text = (f"{version}, 2 nodes, {os.cpu_count()} cores, {args.repeat} runs each, "
                f"alternating; Get-SmbSession listed {listed} sessions, smbstatus -b "
                f"{counted}.\n\n| N | command | median wall | ratio to smbstatus -b | "
                "peak RSS | exit |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
        print(text, flush=True)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    finally:
        if holders is not None:
            holders.close()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
