"""Benchmark: one Get-SmbSession asking many targets, -ThrottleLimit 1 against N.

    sudo .venv/bin/python benchmarks/bench_fleet.py [--targets 32] [--repeat 3] [--kind ssh]

Starts a private lab smbd with a few sessions and a private sshd on loopback, then runs
``Get-SmbSession -CimSession <the same server, N times> -Format Json`` with
``-ThrottleLimit 1`` and ``-ThrottleLimit N``, alternating, and prints the medians and the
speedup. An ssh target is a real SSH connection that runs the reader on the server; an
smb target a real SMB logon that asks the server's srvsvc (MS-SRVS) for its sessions.
With ``--latency-ms D`` every connection goes through a relay that holds each chunk D ms
in each direction, as a server across a WAN would answer (on loopback, all targets are
this machine, and the work of 32 servers on 2 cores hides what asking at once is for).
This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import smbprotocol_sessions  # noqa: E402
from helpers.sshd import LabSshd  # noqa: E402
from smbsession.lab import Lab  # noqa: E402


class DelayRelay:
    """A TCP relay on 127.0.0.1 to ``upstream`` (a local port) that holds every chunk
    ``delay`` seconds in each direction; ``port`` is where it listens."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kind", choices=("ssh", "smb"), action="append")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="hold each chunk this long in each direction (default 0)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="smbsession-fleet-", dir="/tmp"))
    base.chmod(0o755)
    (base / "lab").mkdir()
    (base / "ssh").mkdir()
    lab = Lab(base / "lab")
    lab.start()
    sshd = LabSshd(base / "ssh")
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    ports = {"ssh": sshd.port, "smb": int(lab.port or 0)}
    if args.latency_ms > 0:
        ports = {kind: DelayRelay(port, args.latency_ms / 1000).port
                 for kind, port in ports.items()}
    host_key = (sshd.base / "known_hosts").read_text().split(" ", 1)[1]
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{ports['ssh']} {host_key}")
    shutil.copyfile(sshd.base / "client_key", home / ".ssh" / "id_ed25519")
    env = {**os.environ, "HOME": str(home), "SSH_AUTH_SOCK": "", "PYTHONPATH": str(ROOT / "src"),
           "SMBSESSION_PASSWORD": lab.user("root").password}
    try:
        with smbprotocol_sessions(lab, ["labalice", "labbob", "labcarol"]):
            for kind in args.kind or ("ssh", "smb"):
                measure(kind, args.targets, args.repeat, lab, ports[kind], env,
                        args.latency_ms)
    finally:
        sshd.stop()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


def measure(kind: str, count: int, repeat: int, lab: Lab, port: int, env: dict[str, str],
            latency_ms: float) -> None:
    """Time one kind of target, both limits alternating; print the medians."""
    one_target = (f"ssh://root@127.0.0.1:{port}" if kind == "ssh"
                  else f"smb://LAB\\root@127.0.0.1:{port}")
    targets = ",".join([one_target] * count)
    times: dict[int, list[float]] = {1: [], count: []}
    for _ in range(repeat):
        for limit in times:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "smbsession", "get", "-CimSession", targets,
                 "-ThrottleLimit", str(limit), "-SmbConf", str(lab.conf_path),
                 "-Format", "Json"], env=env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, check=False)
            times[limit].append(time.perf_counter() - start)
            if out.returncode:
                print(f"ThrottleLimit {limit}: exit {out.returncode}: {out.stderr[-300:]}")
    one, many = (statistics.median(times[k]) for k in (1, count))
    print(f"{count} {kind} targets, 3 sessions each, {latency_ms:g} ms added each way, "
          f"{os.cpu_count()} cores, {repeat} runs "
          f"each: -ThrottleLimit 1: {one:.2f} s, -ThrottleLimit {count}: {many:.2f} s, "
          f"speedup {one / many:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
