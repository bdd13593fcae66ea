"""Benchmark: a scrape of ``smbsession exporter`` against the plain listing, and its memory.

Starts a private lab smbd and holds N real sessions (as bench_sessions.py does: smbprotocol,
500 sessions per TCP connection, a tree connect each, a file open every tenth), then
times, alternating and repeated:

- ``GET /metrics`` of a running exporter, started as root (a root reader and an HTTP
  front as nobody: the sessions cross a socket pair as JSON) and with ``--user root``
  (one process);
- ``Get-SmbSession -Format Json`` (the command users run: a whole process);
- ``smbsession.read_sessions()`` in this process (the listing without start-up).

Then the soak: the exporter scraped every second for ``--soak`` seconds, the RSS of its
processes sampled every ``--sample`` seconds. Results go to benchmarks/results/exporter.md.

    sudo .venv/bin/python benchmarks/bench_exporter.py --sizes 10000 --soak 3600

A measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_sessions import GET_SMBSESSION, _count_sessions  # noqa: E402
from holders import Holders  # noqa: E402

import smbsession  # noqa: E402
from smbsession.lab import SHARE, Lab, free_port  # noqa: E402


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Exporter:
    def __init__(self, lab: Lab, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smbsession", "exporter", "--listen",
             f"127.0.0.1:{self.port}", "-SmbConf", str(lab.conf_path), "--log-level",
             "warning", *args], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the exporter did not start")

    def scrape(self) -> tuple[float, bytes]:
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                    timeout=60) as answer:
            body = answer.read()
        return time.perf_counter() - start, body

    def rss(self) -> dict[str, int]:
        out = {"front": _rss_kib(self.proc.pid)}
        for child in _children(self.proc.pid):
            out["reader"] = _rss_kib(child)
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--soak", type=float, default=3600, help="seconds of 1 s scrapes (0: none)")
    parser.add_argument("--soak-sessions", type=int, default=0,
                        help="sessions held during the soak (0: the last of --sizes)")
    parser.add_argument("--sample", type=float, default=60)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "exporter.md"))
    args = parser.parse_args()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # run the clean-up below (lab, holders, exporters)

    signal.signal(signal.SIGTERM, interrupted)
    sizes = [int(s) for s in args.sizes.split(",")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
                   stdout=subprocess.DEVNULL, check=False)
    base = Path(tempfile.mkdtemp(prefix="smbsession-bench-exporter-", dir="/tmp"))
    base.chmod(0o755)
    lab = Lab(base)
    lab.start()
    users = [(u.name, u.password) for u in lab.users() if u.name.startswith("lab")]
    holders = Holders(SHARE, users)
    lines: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        version = subprocess.run(["smbd", "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        say(f"{version}, {os.cpu_count()} cores, {args.repeat} runs each, alternating.\n")
        say("| N | live | what | median | ratio to read_sessions() | ratio to "
            "Get-SmbSession |")
        say("|---|---|---|---|---|---|")
        for size in sizes:
            holders.grow("127.0.0.1", lab.port, size, args.workers)
            live = _count_sessions(lab)
            split, single = Exporter(lab), Exporter(lab, "--user", "root")
            try:
                times: dict[str, list[float]] = {k: [] for k in (
                    "read_sessions() in process", "Get-SmbSession -Format Json",
                    "scrape, root reader + front", "scrape, one root process")}
                for exporter in (split, single):
                    exporter.scrape()  # warm
                for _ in range(args.repeat):
                    times["read_sessions() in process"].append(
                        _timed(lambda: smbsession.read_sessions(str(lab.conf_path))))
                    times["Get-SmbSession -Format Json"].append(_timed(lambda: subprocess.run(
                        [*GET_SMBSESSION, "-SmbConf", str(lab.conf_path), "-Format", "Json"],
                        stdout=subprocess.DEVNULL, env=env, check=False)))
                    times["scrape, root reader + front"].append(split.scrape()[0])
                    times["scrape, one root process"].append(single.scrape()[0])
                medians = {k: statistics.median(v) for k, v in times.items()}
                for name, med in medians.items():
                    say(f"| {size} | {live} | {name} | {med * 1000:.1f} ms | "
                        f"{med / medians['read_sessions() in process']:.2f} | "
                        f"{med / medians['Get-SmbSession -Format Json']:.2f} |")
                body = split.scrape()[1]
                say(f"\nexposition at N={size}: {len(body)} bytes, "
                    f"{sum(1 for x in body.splitlines() if x and not x.startswith(b'#'))} "
                    "samples\n")
            finally:
                split.stop()
                single.stop()
        if args.soak > 0:
            soak_size = args.soak_sessions or sizes[-1]
            exporter = Exporter(lab)
            try:
                say(f"Soak: {args.soak:.0f} s of scrapes every 1 s, {holders.held} sessions held "
                    f"(asked: {soak_size}); RSS in MiB\n")
                say("| after | scrapes | front RSS | reader RSS | scrape median |")
                say("|---|---|---|---|---|")
                start = time.monotonic()
                next_sample = start
                scrapes = 0
                recent: list[float] = []
                while time.monotonic() - start < args.soak:
                    tick = time.monotonic()
                    recent.append(exporter.scrape()[0])
                    scrapes += 1
                    if tick >= next_sample:
                        rss = exporter.rss()
                        say(f"| {tick - start:.0f} s | {scrapes} | "
                            f"{rss.get('front', 0) / 1024:.1f} | "
                            f"{rss.get('reader', 0) / 1024:.1f} | "
                            f"{statistics.median(recent) * 1000:.0f} ms |")
                        recent = []
                        next_sample += args.sample
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
                rss = exporter.rss()
                say(f"| {time.monotonic() - start:.0f} s | {scrapes} | "
                    f"{rss.get('front', 0) / 1024:.1f} | {rss.get('reader', 0) / 1024:.1f} | "
                    f"{statistics.median(recent or [0]) * 1000:.0f} ms |")
            finally:
                exporter.stop()
    finally:
        holders.close()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
