"""Benchmark: what a listing spends on imports (``python -X importtime``).

Runs ``Get-SmbSession -SmbConf CONF`` (and ``-Format Json``) N times with the package from
``--src`` (default: this checkout's), sums the time of the top-level imports each run makes
(the interpreter's own start-up modules left out) and prints the median and the minimum,
with the modules outside the package that a listing imports.

    sudo .venv/bin/python benchmarks/import_time.py -SmbConf /var/lib/smbsession/lab/smb.conf
    sudo .venv/bin/python benchmarks/import_time.py --src /tmp/old/src -SmbConf ...

This is a measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the interpreter imports before any code of ours runs.
STARTUP = {"site", "encodings", "zipimport", "_frozen_importlib_external", "io", "_signal",
           "abc", "codecs", "marshal", "posix", "_io", "time", "_codecs"}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")
_RUN = ("import sys; sys.argv = ['Get-SmbSession', *sys.argv[1:]]; "
        "from smbsession.cli.commands import get_smb_session_main as main; main()")


def once(src: str, args: list[str], code: str = _RUN) -> tuple[float, set[str]]:
    """One listing: (ms of its top-level imports, the modules outside smbsession)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args],
                          env={"PYTHONPATH": src, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          check=False)
    total, modules = 0, set()
    for line in done.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        name = m.group(4)
        if not m.group(3) and name not in STARTUP:
            total += int(m.group(2))
        if not name.startswith("smbsession") and name.split(".")[0] not in STARTUP:
            modules.add(name)
    return total / 1000, modules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=15)
    args, listing = parser.parse_known_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", args.src],
                   stdout=subprocess.DEVNULL, check=False)
    _, baseline = once(args.src, [], "pass")
    for extra in ([], ["-Format", "Json"]):
        times: list[float] = []
        modules: set[str] = set()
        for _ in range(args.runs):
            ms, seen = once(args.src, [*listing, *extra])
            times.append(ms)
            modules |= seen
        print(f"{' '.join(extra) or 'table'}: median {statistics.median(times):.1f} ms, "
              f"min {min(times):.1f} ms of imports; outside the package: "
              f"{', '.join(sorted(modules - baseline)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
