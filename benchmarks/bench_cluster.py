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
import ctypes
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from smbsession.lab import SHARE  # noqa: E402
from smbsession.lab.clients import open_file  # noqa: E402
from smbsession.lab.cluster import ClusterLab  # noqa: E402

SESSIONS_PER_CONNECTION = 500
CLONE_NEWNET = 0x40000000


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def _hold(lab_dir: str, address: str, count: int, start: int, ready: mp.Queue,
          stop: mp.Event) -> None:
    """Worker (in the clients' namespace): open ``count`` sessions to ``address``."""
    lab = ClusterLab(lab_dir)
    _enter_netns(lab.hub)
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    users = [(u, p) for u, p in lab.users().items() if u.startswith("lab")]
    keep: list[object] = []
    conn = None
    opened = 0
    try:
        for i in range(count):
            if i % SESSIONS_PER_CONNECTION == 0:
                conn = Connection(uuid.uuid4(), address, 445)
                conn.connect()
                keep.append(conn)
            user, password = users[(start + i) % len(users)]
            session = Session(conn, user, password, require_encryption=False)
            session.connect()
            tree = TreeConnect(session, rf"\\{address}\{SHARE}")
            tree.connect()
            keep += [session, tree]
            if (start + i) % 10 == 0:
                keep.append(open_file(tree, f"bench-{start + i}.txt", write=False))
            opened += 1
    except Exception as exc:  # report how far we got
        ready.put(("error", opened, repr(exc)))
        stop.wait()
        return
    ready.put(("ok", opened, ""))
    stop.wait()


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
    stop = mp.Event()
    ready: mp.Queue = mp.Queue()
    workers: list[mp.Process] = []
    try:
        t0 = time.perf_counter()
        lab.start()
        print(f"2-node cluster up in {time.perf_counter() - t0:.1f} s", flush=True)
        half = [args.sessions // 2, args.sessions - args.sessions // 2]
        t0 = time.perf_counter()
        for node, count in enumerate(half):
            p = mp.Process(target=_hold, args=(str(base), lab.address_of(node), count,
                                               node * half[0], ready, stop))
            p.start()
            workers.append(p)
        for _ in workers:
            state, opened, error = ready.get(timeout=3600)
            if state != "ok":
                print(f"a worker stopped after {opened} sessions: {error}", flush=True)
        print(f"sessions opened in {time.perf_counter() - t0:.0f} s", flush=True)
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
        stop.set()
        for p in workers:
            p.join(30)
            if p.is_alive():
                p.kill()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
