"""Fuzz the readers of untrusted bytes for a while: nothing may raise but their own error.

    python benchmarks/fuzz/fuzz_readers.py [--seconds-per-target 120] [--target NAME]

Targets (each seeded with real bytes from tests/fixtures, then mutated by hypothesis):

- ``tdb``: :func:`read_tdb` and :func:`stream_tdb` on mutated database files
  (allowed: :class:`TdbFormatError`; anything else, or a hang, is a finding);
- ``session``, ``tcon``, ``open``: the smbXsrv decoders on mutated records
  (allowed: :class:`NdrError`);
- ``sock_diag``: :func:`parse_inet_diag_messages` on mutated netlink replies
  (allowed: :class:`SockDiagError`);
- ``messaging``: the close-message encoder on arbitrary integers (allowed: ValueError);
- ``srvs``: MS-SRVS ``NetrSessionEnum`` answers (a real one of Samba 4.17, mutated) through
  :func:`decode_page` (allowed: ``RemoteLimit``) and every decoded entry through
  :func:`session_from_entry` at every level (allowed: nothing).

A finding is printed with the failing input; keep it as a regression test in
tests/unit/test_robustness.py. This is a tool, not a test: it asserts nothing by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smbsession.samba.messaging import encode_session_close  # noqa: E402
from smbsession.samba.smbxsrv import (  # noqa: E402
    NdrError,
    decode_open,
    decode_session,
    decode_tcon,
    layout_for_version,
)
from smbsession.samba.tdb import TdbFormatError, read_tdb, stream_tdb  # noqa: E402
from smbsession.sockdiag import SockDiagError, parse_inet_diag_messages  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
_BATCH = 300


def _records() -> dict[str, list[tuple[bytes, str]]]:
    """Real record values with the release that wrote them, per kind."""
    out: dict[str, list[tuple[bytes, str]]] = {"session": [], "tcon": [], "open": []}
    for release in sorted(FIXTURES.glob("samba-*")):
        version = json.loads((release / "expected.json").read_text())["samba_version"]
        for kind, pairs in json.loads((release / "records.json").read_text()).items():
            out[kind] += [(bytes.fromhex(v), version) for _, v in pairs]
    return out


def _netlink_reply() -> bytes:
    """A real sock_diag reply (IPv4 and IPv6 dumps) captured by tests/fixtures/sockdiag."""
    folder = ROOT / "tests" / "fixtures" / "sockdiag"
    return (folder / "ipv4.bin").read_bytes() + (folder / "ipv6.bin").read_bytes()


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Bytes derived from ``seed``: flipped bytes, cuts, insertions, or plain noise."""
    flips = st.lists(st.tuples(st.integers(0, max(len(seed) - 1, 0)), st.integers(0, 255)),
                     max_size=16)

    def apply(changes: list[tuple[int, int]], cut: int, noise: bytes) -> bytes:
        data = bytearray(seed)
        for at, value in changes:
            if data:
                data[at] = value
        return bytes(data[:cut]) + noise

    return st.one_of(
        st.builds(apply, flips, st.integers(0, len(seed)), st.binary(max_size=8)),
        st.binary(max_size=len(seed) + 64),
    )


def run(target: str, seconds: float) -> int:
    """Fuzz one target for about ``seconds``; return the number of examples tried."""
    count = 0
    deadline = time.monotonic() + seconds
    config = settings(max_examples=_BATCH, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))

    if target in ("session", "tcon", "open"):
        decode = {"session": decode_session, "tcon": decode_tcon, "open": decode_open}[target]
        seeds = _records()[target]

        @config
        @given(st.sampled_from(seeds).flatmap(
            lambda s: st.tuples(mutated(s[0]), st.just(s[1]))))
        def check(case: tuple[bytes, str]) -> None:
            nonlocal count
            count += 1
            with contextlib.suppress(NdrError):
                decode(case[0], layout_for_version(case[1]))
    elif target == "tdb":
        seed = (FIXTURES / "samba-4.17" / "smbXsrv_tcon_global.tdb").read_bytes()
        workdir = tempfile.mkdtemp(prefix="fuzz-tdb-")
        path = os.path.join(workdir, "fuzz.tdb")

        @config
        @given(mutated(seed))
        def check(data: bytes) -> None:
            nonlocal count
            count += 1
            with open(path, "wb") as fh:
                fh.write(data)
            for reader in (lambda: read_tdb(path).records, lambda: list(stream_tdb(path))):
                with contextlib.suppress(TdbFormatError):
                    reader()
    elif target == "sock_diag":
        seed = _netlink_reply()

        @config
        @given(mutated(seed))
        def check(data: bytes) -> None:
            nonlocal count
            count += 1
            with contextlib.suppress(SockDiagError):
                parse_inet_diag_messages(data)
    elif target == "messaging":

        @config
        @given(st.integers(-2**70, 2**70), st.integers(-2**70, 2**70),
               st.integers(-2**70, 2**70))
        def check(gid: int, wire: int, ctime: int) -> None:
            nonlocal count
            count += 1
            try:
                blob = encode_session_close(gid, wire, ctime)
            except ValueError:
                return
            assert struct.unpack_from("<I4xQQ", blob, 16) == (gid, wire, ctime)
    elif target == "srvs":
        from smbsession.remote.srvs import RemoteLimit, decode_page, session_from_entry

        seed = (FIXTURES / "srvs" / "level1.bin").read_bytes()

        @config
        @given(mutated(seed), st.sampled_from((0, 1, 10, 502)))
        def check(data: bytes, level: int) -> None:
            nonlocal count
            count += 1
            try:
                entries, _resume = decode_page(data, level)
            except RemoteLimit:
                return
            for entry in entries:
                session_from_entry(entry, level, True, "smb://fuzz").to_dict()
    else:
        raise SystemExit(f"unknown target {target!r}")
    while time.monotonic() < deadline:
        check()  # a new random batch each time; a finding raises with its shrunk input
    return count


TARGETS = ("tdb", "session", "tcon", "open", "sock_diag", "messaging", "srvs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-target", type=float, default=120)
    parser.add_argument("--target", choices=TARGETS, action="append")
    args = parser.parse_args()
    for target in args.target or TARGETS:
        start = time.monotonic()
        n = run(target, args.seconds_per_target)
        print(f"{target}: {n} inputs in {time.monotonic() - start:.0f} s, no finding",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
