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
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from holders import SESSIONS_PER_CONNECTION, Holders  # noqa: E402

from smbsession.lab import SHARE, Lab  # noqa: E402

_SCRIPT = Path(sys.executable).with_name("Get-SmbSession")
#: The installed console script when there is one (as users run it), else the module.
GET_SMBSESSION = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "smbsession",
                                                           "get"]


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
    parser.add_argument("--per-connection", type=int, default=SESSIONS_PER_CONNECTION,
                        help="sessions on one TCP connection (Samba 4.25 sets up a "
                             "session in time that grows with the connection's sessions)")
    parser.add_argument("--table", action="store_true",
                        help="also time Get-SmbSession's default table, the form of "
                             "smbstatus -b's output")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    chroot = Path(args.chroot) if args.chroot else None
    base = Path(tempfile.mkdtemp(prefix="smbsession-bench-",
                                 dir=str(chroot / "tmp") if chroot else "/tmp"))
    base.chmod(0o755)
    lab = Lab(base, chroot=chroot)
    lab.start()
    users = [(u.name, u.password) for u in lab.users() if u.name.startswith("lab")]
    holders = Holders(SHARE, users, args.per_connection)
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
              f"{args.per_connection} per TCP connection", flush=True)
        for size in sizes:
            took = holders.grow("127.0.0.1", lab.port, size, args.workers)
            live = _count_sessions(lab)
            print(f"\nN={size}: {live} live sessions (opened in {took:.0f} s)", flush=True)
            commands: dict[str, list[str]] = {}
            for source in args.sources.split(","):
                commands[f"Get-SmbSession -Source {source}"] = [
                    *GET_SMBSESSION, "-SmbConf", str(lab.conf_path), "-Format", "Json",
                    "-Source", source,
                ]
            if args.table:
                commands["Get-SmbSession (table)"] = [*GET_SMBSESSION, "-SmbConf",
                                                      str(lab.conf_path)]
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
        holders.close()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ("| N | live | command | median wall | ratio to smbstatus -b | peak RSS | exit |\n"
              "|---|---|---|---|---|---|---|\n")
    out.write_text(f"{version}, {os.cpu_count()} cores, {args.repeat} runs each, "
                   f"alternating, {args.per_connection} sessions per TCP connection.\n\n"
                   f"{header}" + "\n".join(rows) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
