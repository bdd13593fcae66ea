"""Benchmark: what asking the member's DC for a name's spelling adds to an smb:// listing.

Builds the domain lab (:class:`smbsession.lab.domain.DomainLab`) with its sample clients
and one more NTLM session (Dave), then times on the client host ``srvs.list_sessions``
of ``smb://fs1.contoso.test``, over NTLM and over Kerberos (a TGT-only cache), three
ways, alternating: without the DC (``controller_names`` replaced by a function that asks
nothing: the listing as it was), as shipped (the DC asked only when a name may come
from winbind's cache), and with the DC asked about every ``DOMAIN\\user`` (the cost of
the DC lookup itself: MS-DSSP on the member, the LDAP ping, the SMB logon, the LSA
lookups, the logoff). Medians of ``--runs`` rounds.

    sudo .venv/bin/python benchmarks/bench_dc_spelling.py --runs 15

This is a measurement, not a test: it asserts nothing. It prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from smbsession.lab import domain  # noqa: E402

#: Run on the client host: time three listings, alternating: without the DC
#: (``controller_names`` asks nothing: the listing as it was), as shipped (the DC asked
#: only if a name needs it), and with the DC asked about every DOMAIN\\user (as when
#: winbind's cache gave them all).
MEASURE = """
import json, os, sys, time
from smbsession.remote import srvs
runs, creds = int(sys.argv[1]), sys.argv[2]
real, real_cached = srvs.controller_names, srvs._may_be_cached
if creds == "ntlm":
    target, password, kerberos = "smb://CONTOSO\\\\Administrator@fs1.contoso.test", \\
        os.environ["SMBSESSION_PASSWORD"], False
else:
    target, password, kerberos = "smb://fs1.contoso.test", None, True
t = srvs.parse_smb_target(target)
kinds = ("without", "shipped", "forced")
times = {k: [] for k in kinds}
names = {}
for _ in range(runs):
    for kind in kinds:
        srvs.controller_names = real if kind != "without" else (lambda *a, **k: {})
        srvs._may_be_cached = real_cached if kind != "forced" else (
            lambda name, spelled: "\\\\" in name)
        t0 = time.perf_counter()
        rows = srvs.list_sessions(t, password, 30, kerberos)
        times[kind].append(time.perf_counter() - t0)
        names[kind] = sorted({s.client_user_name for s in rows if not s.hidden})
print(json.dumps({"times": times, "names": names}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--netns-prefix", default=domain.NETNS_PREFIX,
                        help="prefix of the lab's network namespaces")
    args = parser.parse_args()
    domain.NETNS_PREFIX = args.netns_prefix
    import statistics

    base = Path(tempfile.mkdtemp(prefix="smbsession-bench-dc-"))
    lab = domain.DomainLab(base)
    try:
        lab.start()
        clients = lab.start_clients()
        env = {"PYTHONPATH": str(ROOT / "src"),
               "SMBSESSION_PASSWORD": lab.password("Administrator")}
        dave = domain.DomainClients(lab, (domain.ClientSpec(
            "dave-bench", "ntlm", "Dave", "fs", domain.SHARE, "198.18.0.2", "SMB3_11",
            "3.1.1"),))
        dave.start()
        try:
            cache = lab.kinit("Administrator", "FILE:" + str(
                lab.root("client") / "ccache" / "bench.cc"))
            print("| logon | without the DC | as shipped | the DC asked about every "
                  "name | extra (every name) |")
            print("|---|---|---|---|---|")
            for creds in ("ntlm", "krb5"):
                done = lab.run("client", [sys.executable, "-c", MEASURE, str(args.runs),
                                          creds], env={**env, "KRB5CCNAME": cache},
                               timeout=600)
                out = json.loads(done.stdout)
                med = {k: statistics.median(v) * 1000 for k, v in out["times"].items()}
                print(f"| {creds} | {med['without']:.0f} ms | {med['shipped']:.0f} ms | "
                      f"{med['forced']:.0f} ms | {med['forced'] - med['without']:+.0f} ms |")
                print(f"{creds}: names without the DC: {', '.join(out['names']['without'])};"
                      f" with it: {', '.join(out['names']['forced'])}", file=sys.stderr)
        finally:
            dave.stop()
            clients.stop()
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
