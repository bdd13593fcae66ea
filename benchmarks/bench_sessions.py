"""Benchmark: Get-SmbSession against smbstatus on the same live server, side by side.

Starts a private lab smbd, opens N real SMB sessions with smbprotocol (many sessions per TCP
connection, so smbd processes stay few; each session has a tree connect, every tenth one a
file open), then times, alternating and repeated:

- ``Get-SmbSession -Format Json`` (each source given with --sources),
- ``smbstatus -b`` (Samba's C tool, sessions only),
- ``smbstatus --json`` (while N is at most --json-limit: its memory grows quadratically),

and prints medians, ratios to ``smbstatus -b`` and peak RSS of each command. Results are
written as a Markdown table to benchmarks/results/sessions.md.

    sudo .venv/bin/python benchmarks/bench_sessions.py --sizes 10,1000,10000,20000
    sudo .venv/bin/python benchmarks/bench_sessions.py --chroot /var/tmp/smbsession-sid

(``--chroot``: the Samba release of that root, its own smbstatus as the yardstick.)

This is a measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from smbsession.lab import SHARE, Lab  # noqa: E402
from smbsession.lab.clients import open_file  # noqa: E402

SESSIONS_PER_CONNECTION = 500
_SCRIPT = Path(sys.executable).with_name("Get-SmbSession")
#: The installed console script when there is one (as users run it), else the module.
GET_SMBSESSION = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "smbsession",
                                                           "get"]


def _hold(lab_dir: str, count: int, start: int, ready: mp.Queue, stop: mp.Event) -> None:
    """Worker: open ``count`` sessions, report, and hold them until ``stop`` is set."""
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    lab = Lab(lab_dir)
    users = [u for u in lab.users() if u.name.startswith("lab")]
    keep: list[object] = []
    conn = None
    opened = 0
    try:
        for i in range(count):
            if i % SESSIONS_PER_CONNECTION == 0:
                conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
                conn.connect()
                keep.append(conn)
            user = users[(start + i) % len(users)]
            session = Session(conn, user.name, user.password, require_encryption=False)
            session.connect()
            tree = TreeConnect(session, rf"\\127.0.0.1\{SHARE}")
            tree.connect()
            keep += [session, tree]
            if (start + i) % 10 == 0:
                keep.append(open_file(tree, f"bench-{start + i}.txt", write=False))
            opened += 1
    except Exception as exc:  # report how far we got; the benchmark prints it
        ready.put(("error", opened, repr(exc)))
        stop.wait()
        return
    ready.put(("ok", opened, ""))
    stop.wait()


@dataclass
class Sample:
    seconds: float
    peak_rss_kib: int
    ok: bool


def _measure(cmd: list[str], env: dict[str, str]) -> Sample:
    """Run ``cmd`` once under GNU time: wall time, and the peak RSS of that command alone
    (the child is forked from ``time``, not from this large process)."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, check=False)
        elapsed = time.perf_counter() - start
        lines = report.read().split()
    rss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return Sample(elapsed, rss, proc.returncode == 0)


def _smbstatus(lab: Lab) -> list[str]:
    """smbstatus of the lab's own Samba release (inside its chroot, if any)."""
    if lab.chroot is None:
        return ["smbstatus", "-s", str(lab.conf_path)]
    inside = "/" + str(lab.server_conf_path.relative_to(lab.chroot))
    return ["chroot", str(lab.chroot), "smbstatus", "-s", inside]


def _count_sessions(lab: Lab) -> int:
    out = subprocess.run([*_smbstatus(lab), "-b"], capture_output=True,
                         text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line[:1].isdigit())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000,20000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json-limit", type=int, default=6000,
                        help="largest N for which smbstatus --json is run")
    parser.add_argument("--sources", default="auto", help="Get-SmbSession sources to time")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sessions.md"))
    parser.add_argument("--chroot", default=None, help="run the Samba release of this root")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    chroot = Path(args.chroot) if args.chroot else None
    base = Path(tempfile.mkdtemp(prefix="smbsession-bench-",
                                 dir=str(chroot / "tmp") if chroot else "/tmp"))
    base.chmod(0o755)
    lab = Lab(base, chroot=chroot)
    lab.start()
    stop = mp.Event()
    ready: mp.Queue = mp.Queue()
    workers: list[mp.Process] = []
    held = 0
    rows: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # As after a pip install: byte-compiled, whatever PYTHONDONTWRITEBYTECODE says.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
                   stdout=subprocess.DEVNULL, check=False)
    try:
        version = subprocess.run([*(["chroot", str(chroot)] if chroot else []), "smbd",
                                  "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        print(f"{version}; {os.cpu_count()} cores; sessions held by smbprotocol, "
              f"{SESSIONS_PER_CONNECTION} per TCP connection", flush=True)
        for size in sizes:
            need = size - held
            per = [need // args.workers + (1 if i < need % args.workers else 0)
                   for i in range(args.workers)]
            t0 = time.perf_counter()
            for n in per:
                if n <= 0:
                    continue
                p = mp.Process(target=_hold, args=(str(lab.directory), n, held, ready, stop))
                p.start()
                workers.append(p)
                held += n
            for n in per:
                if n > 0:
                    state, opened, error = ready.get(timeout=3600)
                    if state != "ok":
                        print(f"a worker stopped after {opened} sessions: {error}", flush=True)
            live = _count_sessions(lab)
            print(f"\nN={size}: {live} live sessions (opened in "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)
            commands: dict[str, list[str]] = {}
            for source in args.sources.split(","):
                commands[f"Get-SmbSession -Source {source}"] = [
                    *GET_SMBSESSION, "-SmbConf", str(lab.conf_path), "-Format", "Json",
                    "-Source", source,
                ]
            commands["smbstatus -b"] = [*_smbstatus(lab), "-b"]
            if size <= args.json_limit:
                commands["smbstatus --json"] = [*_smbstatus(lab), "--json"]
            samples: dict[str, list[Sample]] = {k: [] for k in commands}
            for _ in range(args.repeat):
                for name, cmd in commands.items():
                    samples[name].append(_measure(cmd, env))
            base_median = statistics.median(s.seconds for s in samples["smbstatus -b"])
            for name, got in samples.items():
                med = statistics.median(s.seconds for s in got)
                rss = max(s.peak_rss_kib for s in got) / 1024
                ok = all(s.ok for s in got)
                line = (f"| {size} | {live} | {name} | {med * 1000:.1f} ms | "
                        f"{med / base_median:.2f} | {rss:.1f} MiB | {'ok' if ok else 'FAILED'} |")
                print(line, flush=True)
                rows.append(line)
    finally:
        stop.set()
        for p in workers:
            p.join(30)
            if p.is_alive():
                p.kill()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ("| N | live | command | median wall | ratio to smbstatus -b | peak RSS | exit |\n"
              "|---|---|---|---|---|---|---|\n")
    out.write_text(f"{version}, {os.cpu_count()} cores, {args.repeat} runs each, "
                   f"alternating.\n\n{header}" + "\n".join(rows) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
