"""The seed's world: an Active Directory domain built in network namespaces.

One domain (a Samba AD DC, a member file server, a joined client host) is built once for
this module, with sample clients of every kind (domain users over NTLM and Kerberos, the
client's computer account, an encrypting Administrator, SMB1, anonymous, IPv6), and torn
down at the end. The member's smbd runs in network and mount namespaces of its own, so
every listing here is made from the host's namespaces, as for an smbd in a container.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smbsession
from conftest import SRC, run_cli, wait_for
from smbsession import SessionQuery, close_smb_session
from smbsession.errors import NamespaceError
from smbsession.lab.domain import (
    CLIENT_SPECS,
    DOMAIN,
    SHARE,
    ClientSpec,
    DomainClients,
    DomainLab,
    RunningClient,
    missing_programs,
    tcp_endpoint,
)
from smbsession.netns import NetNamespace, call_in_netns, same_netns

PY = str(Path(sys.executable))
HOST_FILES = ("/etc/nsswitch.conf", "/etc/krb5.conf", "/etc/hosts", "/etc/krb5.keytab",
              "/etc/resolv.conf")


def _fingerprint() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for path in HOST_FILES:
        try:
            out[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except FileNotFoundError:
            out[path] = None
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=False)
    out["ip addr"] = hashlib.sha256(addrs.stdout.encode()).hexdigest()
    return out


class World:
    """The running domain, its clients and what was measured while building it."""

    def __init__(self, lab: DomainLab, clients: DomainClients, started: float,
                 before: dict[str, str | None]) -> None:
        self.lab = lab
        self.clients = clients
        self.started = started
        self.before = before

    @property
    def fs_conf(self) -> str:
        return self.lab.conf_path("fs")

    @property
    def dc_conf(self) -> str:
        return self.lab.conf_path("dc")

    def on(self, role: str) -> list[RunningClient]:
        return [c for c in self.clients if c.spec.server == role]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.fail("the domain lab needs root (make test runs as root)")
    missing = missing_programs()
    if missing:
        pytest.fail(f"the domain lab needs {missing}: run 'make domain-deps'")
    before = _fingerprint()
    base = Path(tempfile.mkdtemp(prefix="smbsession-domain-"))
    lab = DomainLab(base)
    try:
        lab.start()
        started = time.time()
        clients = lab.start_clients()
        yield World(lab, clients, started, before)
        clients.stop()
    finally:
        names = dict(lab._state().get("netns", {}))
        lab.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not [n for n in names.values() if n in left], left


def _session_of(sessions: list[smbsession.SmbSession], client: RunningClient,
                ) -> smbsession.SmbSession:
    """The session of ``client``: the one whose smbd's TCP peer is the client's socket."""
    assert client.local is not None, f"{client.spec.name} has no TCP connection"
    found = [s for s in sessions
             if s.smbd_pid and tcp_endpoint(s.smbd_pid, remote=True) == client.local]
    assert len(found) == 1, (client, [(s.session_id, s.smbd_pid) for s in sessions])
    return found[0]


def _ss_idle(lab: DomainLab, role: str, client: RunningClient) -> float:
    """The kernel's lastrcv (seconds) of ``client``'s connection, from ``ss -ti`` run in
    the server's own network namespace."""
    assert client.local is not None
    addr, port = client.local
    peer = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    out = lab.run(role, ["ss", "-tinH", "dst", peer]).stdout
    m = re.search(r"lastrcv:(\d+)", out)
    assert m, out
    return int(m.group(1)) / 1000


def _expected_user(spec: ClientSpec) -> str:
    return f"{DOMAIN}\\{spec.user}" if spec.user else "NT AUTHORITY\\ANONYMOUS LOGON"


def test_every_property_against_the_clients(world: World) -> None:
    result = smbsession.read_sessions(world.fs_conf)
    assert result.warnings == []
    assert result.source.startswith("tdb")
    for client in world.on("fs"):
        spec = client.spec
        s = _session_of(result.sessions, client)
        addr = client.local[0] if client.local else ""
        assert s.client_computer_name == (f"[{addr}]" if ":" in addr else addr), spec
        assert s.client_user_name == _expected_user(spec), spec
        assert s.dialect == spec.dialect, spec
        assert s.num_opens == len(spec.files), spec
        server = f"[{spec.address}]" if ":" in spec.address else spec.address
        assert s.transport_name == f"tcp:{server}:445", spec
        assert s.shares == (spec.share,), spec
        assert (s.encryption_cipher is not None) == spec.encrypt, spec
        assert s.hidden == (spec.auth == "anonymous"), spec
        assert s.scope_name == "*" and s.cluster_node_name == ""
        assert s.seconds_exists is not None
        assert 0 <= s.seconds_exists <= time.time() - world.started + 2, spec
        assert s.seconds_idle is not None, spec
        assert abs(s.seconds_idle - _ss_idle(world.lab, "fs", client)) <= 2, spec


def test_user_names_as_windows_shows_them(world: World) -> None:
    names = {s.client_user_name for s in smbsession.get_smb_session(smb_conf=world.fs_conf)}
    assert names == {"CONTOSO\\Alice", "CONTOSO\\Bob", "CONTOSO\\Carol",
                     "CONTOSO\\Administrator", "CONTOSO\\CONTOSO-HV2$"}


@pytest.mark.parametrize(("name", "expected"), [
    ("CONTOSO\\Bob", 2), ("contoso\\bob", 2), ("Contoso\\BOB", 2),
    ("CONTOSO\\CONTOSO-HV2$", 2), ("contoso\\contoso-hv2$", 2), ("Contoso-HV2$", 2),
    ("bob", 2), ("Administrator", 1), ("CONTOSO\\alice", 1), ("OTHER\\Bob", 0),
])
def test_client_user_name_filter(world: World, name: str, expected: int) -> None:
    found = smbsession.get_smb_session(client_user_name=name, smb_conf=world.fs_conf)
    assert len(found) == expected, [s.client_user_name for s in found]


def test_seed_examples_from_the_cli(world: World) -> None:
    listing = run_cli("get", "-SmbConf", world.fs_conf)
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr == ""
    assert "CONTOSO\\CONTOSO-HV2$" in listing.stdout
    assert "ANONYMOUS" not in listing.stdout
    one = run_cli("get", "-SmbConf", world.fs_conf, "-ClientUserName", "Contoso\\Contoso-HV2$",
                  "-Format", "Json")
    assert one.returncode == 0, one.stderr
    rows = one.json()
    assert len(rows) == 2 and {r["ClientUserName"] for r in rows} == {"CONTOSO\\CONTOSO-HV2$"}
    assert sorted(r["NumOpens"] for r in rows) == [1, 3]
    assert all(r["SecondsIdle"] is not None for r in rows)


def test_the_dcs_own_file_server(world: World) -> None:
    result = smbsession.read_sessions(world.dc_conf)
    assert result.warnings == []
    for client in world.on("dc"):
        s = _session_of(result.sessions, client)
        assert s.client_user_name == _expected_user(client.spec)
        assert s.shares == (client.spec.share,)
        assert s.dialect == client.spec.dialect
        assert s.seconds_idle is not None


def test_smbstatus_in_the_servers_namespaces(world: World) -> None:
    tdb = smbsession.read_sessions(world.fs_conf)
    status = smbsession.read_sessions(world.fs_conf, source="smbstatus")
    assert {s.session_id for s in status.sessions} == {s.session_id for s in tdb.sessions}
    by_id = {s.session_id: s for s in tdb.sessions}
    for s in status.sessions:
        assert s.client_user_name.lower() == by_id[s.session_id].client_user_name.lower()
        assert s.dialect == by_id[s.session_id].dialect


def test_close_a_machine_account_session(world: World) -> None:
    spec = ClientSpec("hv2-machine-close", "machine", "CONTOSO-HV2$", "fs", "share",
                      "198.18.0.2", "SMB3_11", "3.1.1", ("close-me.txt",))
    extra = DomainClients(world.lab, (spec,))
    extra.start()
    try:
        client = extra.running[0]
        before = smbsession.read_sessions(world.fs_conf).sessions
        mine = _session_of(before, client)
        others = {s.session_id for s in before} - {mine.session_id}
        results = close_smb_session(SessionQuery(session_id=(mine.session_id,)),
                                    smb_conf=world.fs_conf, force=True)
        assert [(r.session.session_id, r.closed) for r in results] == [(mine.session_id, True)]

        def gone() -> bool:
            ids = {s.session_id for s in smbsession.read_sessions(world.fs_conf).sessions}
            return mine.session_id not in ids and others <= ids

        assert wait_for(gone)
        # The client's next command finds its session gone (smbclient runs what is left
        # of its input, and flushes its output, when the input ends).
        assert client.proc.stdin is not None
        client.proc.stdin.write("ls\n")
        client.proc.stdin.close()
        client.proc.wait(20)
        assert "NT_STATUS_USER_SESSION_DELETED" in client.output.read_text(errors="replace")
    finally:
        extra.stop()


def test_namespace_module(world: World) -> None:
    anchor = world.lab.anchor("fs")
    ours = os.readlink("/proc/thread-self/ns/net")
    assert same_netns(os.getpid())
    assert not same_netns(anchor)
    inside = NetNamespace(anchor).call(os.readlink, "/proc/thread-self/ns/net")
    assert inside == os.readlink(f"/proc/{anchor}/ns/net") != ours
    assert os.readlink("/proc/thread-self/ns/net") == ours
    # An exception inside comes out unchanged.
    with pytest.raises(ZeroDivisionError):
        call_in_netns(anchor, lambda: 1 / 0)


def test_namespace_that_cannot_be_entered_is_named(world: World) -> None:
    anchor = world.lab.anchor("fs")
    code = (f"from smbsession.netns import NetNamespace\n"
            f"import os\n"
            f"try:\n    NetNamespace({anchor}).call(os.getpid)\n"
            f"except Exception as e:\n    print(type(e).__name__, e)\n")
    from conftest import as_user

    cmd, env = as_user("nobody", "-c", code)  # the checkout may be closed to nobody
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd="/")
    assert done.stdout.startswith("NamespaceError"), done
    assert f"/proc/{anchor}/ns/net" in done.stdout
    # The reader turns it into a warning, never a silent null.
    from smbsession.samba import tdb_source
    from smbsession.samba.config import load_config

    warnings: list[str] = []
    dead = subprocess.Popen(["true"])
    dead.wait()
    idle = tdb_source._idle_seconds(load_config(world.fs_conf), {("a", "b")}, warnings,
                                    dead.pid)
    assert idle is None and len(warnings) == 1
    assert f"/proc/{dead.pid}/ns/net" in warnings[0] and "SecondsIdle" in warnings[0]
    with pytest.raises(NamespaceError):
        NetNamespace(dead.pid).call(os.getpid)


def test_without_cap_sys_admin_the_cli_warns_and_exits_1(world: World) -> None:
    """Root without CAP_SYS_ADMIN still reads the databases through /proc/<pid>/root but
    cannot enter smbd's network namespace: the rows print, SecondsIdle is empty, and a
    WARNING names the namespace (exit 1)."""
    import json

    pid = world.lab.smbd_pid("fs")
    done = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", PY, "-m",
         "smbsession", "get", "-SmbConf", world.fs_conf, "-Format", "Json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC},
        stdin=subprocess.DEVNULL, check=False, timeout=120)
    assert done.returncode == 1, done
    rows = json.loads(done.stdout)
    assert rows and all(r["SecondsIdle"] is None for r in rows)
    assert f"/proc/{pid}/ns/net" in done.stderr and "CAP_SYS_ADMIN" in done.stderr
    assert done.stderr.startswith("WARNING:")


def test_the_host_is_unchanged(world: World) -> None:
    assert _fingerprint() == world.before
    own = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "198.18." not in own and "2001:2::" not in own
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert world.lab.netns("fs") in names
    assert all(spec.server in ("fs", "dc") for spec in CLIENT_SPECS)


# --- smb:// (MS-SRVS) with Kerberos, from the joined client -------------------------------


def _remote(world: World, target: str, ccache: str | None, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``smbsession get -CimSession TARGET`` on the client host (its namespaces, its
    /etc/hosts and krb5.conf) with KRB5CCNAME=ccache."""
    full = {"PYTHONPATH": SRC, **(env or {})}
    if ccache is not None:
        full["KRB5CCNAME"] = ccache
    return world.lab.run("client", [PY, "-m", "smbsession", "get", "-CimSession", target,
                                    *args], env=full, check=False, timeout=120)


def _listing(world: World, tgt_only: str, creds: str, *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``smbsession get -CimSession smb://...fs1.contoso.test`` from the client host as
    Administrator, over Kerberos (``krb5``: the TGT-only cache) or NTLM (``ntlm``: the
    password through SMBSESSION_PASSWORD, never argv)."""
    if creds == "krb5":
        return _remote(world, "smb://fs1.contoso.test", tgt_only, *args, env=env)
    secret = {"SMBSESSION_PASSWORD": world.lab.password("Administrator"), **(env or {})}
    return _remote(world, "smb://CONTOSO\\Administrator@fs1.contoso.test", None, *args,
                   env=secret)


@pytest.fixture(scope="module")
def tgt_only(world: World) -> str:
    """A file cache holding only Administrator's TGT (a plain kinit)."""
    cache = world.lab.kinit("Administrator",
                            f"FILE:{world.lab.root('client') / 'ccache' / 'tgt-only.cc'}")
    listed = world.lab.run("client", ["klist", "-c", cache]).stdout
    assert "krbtgt/CONTOSO.TEST@CONTOSO.TEST" in listed and "cifs/" not in listed
    return cache


def _rows(done: subprocess.CompletedProcess[str]) -> list[dict]:
    import json

    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _local_rows(world: World, fold: bool = False) -> list[tuple[str, str, int | None]]:
    return sorted((s.client_computer_name or "", _case(s.client_user_name or "", fold),
                   s.num_opens) for s in smbsession.get_smb_session(smb_conf=world.fs_conf))


def _case(name: str, fold: bool) -> str:
    return name.lower() if fold else name


def _agrees_with_local(world: World, rows: list[dict], fold: bool = False) -> None:
    """srvsvc's rows are the local reader's, ClientUserName spelled exactly as it spells
    it (``fold``: the same accounts, case aside), plus the listing's own session."""
    local = _local_rows(world, fold)
    remote = sorted((r["ClientComputerName"], _case(r["ClientUserName"], fold),
                     r["NumOpens"]) for r in rows)
    # The listing's own session (Administrator from the client) is the only extra row.
    extra = list(remote)
    for row in local:
        assert row in extra, (row, remote)
        extra.remove(row)
    # (from the client's IPv4 or IPv6 address: fs1.contoso.test has both)
    assert [u for _, u, _ in extra] == [_case("CONTOSO\\Administrator", fold)]
    assert extra[0][0] in ("198.18.0.3", "[2001:2::3]")


@pytest.mark.parametrize("user", [
    "", "CONTOSO\\Administrator", "contoso\\administrator", "CONTOSO.TEST\\Administrator",
    "Administrator@CONTOSO.TEST", "administrator",
])
def test_smb_kerberos_user_forms(world: World, tgt_only: str, user: str) -> None:
    target = f"smb://{user + '@' if user else ''}fs1.contoso.test"
    _agrees_with_local(world, _rows(_remote(world, target, tgt_only, "-Format", "Json")))


@pytest.mark.parametrize("spelling", ["FILE", "bare", "DIR", "DIR::"])
def test_smb_kerberos_ccache_spellings(world: World, spelling: str) -> None:
    base = world.lab.root("client") / "ccache"
    if spelling in ("FILE", "bare"):
        path = base / f"spelling-{spelling}.cc"
        cache = world.lab.kinit("Administrator", f"FILE:{path}")
        name = cache if spelling == "FILE" else str(path)
    else:
        collection = base / f"collection-{spelling.strip(':')}"
        collection.mkdir(mode=0o700, exist_ok=True)
        world.lab.kinit("Administrator", f"DIR:{collection}")
        primary = (collection / "primary").read_text().strip()
        name = f"DIR:{collection}" if spelling == "DIR" else f"DIR::{collection / primary}"
    rows = _rows(_remote(world, "smb://CONTOSO\\Administrator@fs1.contoso.test", name,
                         "-Format", "Json"))
    _agrees_with_local(world, rows)


@pytest.mark.parametrize("creds", ["krb5", "ntlm"])
def test_srvsvc_rows_spelled_as_the_local_reader(world: World, tgt_only: str,
                                                 creds: str) -> None:
    rows = _rows(_listing(world, tgt_only, creds, "-Format", "Json"))
    names = {r["ClientUserName"] for r in rows}
    local = {s.client_user_name for s in smbsession.get_smb_session(smb_conf=world.fs_conf)}
    # Every name exactly as the local reader spells it: Kerberos and machine logons, and
    # the NTLM ones (Bob, Carol, Administrator), whose spelling the member's winbind cache
    # may hold in lower case (see the next test) and the DC gives in the directory's.
    assert names == local
    assert {"CONTOSO\\Bob", "CONTOSO\\Carol", "CONTOSO\\Administrator"} <= names
    _agrees_with_local(world, rows)
    hidden = _rows(_listing(world, tgt_only, creds, "-Format", "Json", "-IncludeHidden"))
    assert "nobody" in {r["ClientUserName"] for r in hidden}


#: fs1's srvsvc names as the member's own LSA spells them, the DC not asked (the
#: premise of the test below).
_MEMBER_ONLY = (
    "import json, os\n"
    "from smbsession.remote import srvs\n"
    "srvs.controller_names = lambda *a, **k: {}\n"
    "t = srvs.parse_smb_target('smb://CONTOSO\\\\Administrator@fs1.contoso.test')\n"
    "rows = srvs.list_sessions(t, os.environ['SMBSESSION_PASSWORD'], 30)\n"
    "print(json.dumps(sorted({s.client_user_name or '' for s in rows})))\n"
)


@pytest.mark.parametrize("creds", ["ntlm", "krb5"])
def test_an_ntlm_logon_is_spelled_as_the_directory(world: World, tgt_only: str,
                                                   creds: str) -> None:
    """Dave logs on over NTLM (no PAC puts his spelling in the member's winbind cache)
    and is then looked up on the member by name as srvsvc spells him, 'CONTOSO\\dave'
    (the member-only listing does that first): winbind keeps that spelling, and the
    member's LSA answers it. The listing asks the domain's DC and shows 'CONTOSO\\Dave',
    as the local reader does, whether it logs on with NTLM or Kerberos."""
    import json

    spec = ClientSpec(f"dave-ntlm-{creds}", "ntlm", "Dave", "fs", SHARE, "198.18.0.2",
                      "SMB3_11", "3.1.1", (f"dave-{creds}.txt",))
    extra = DomainClients(world.lab, (spec,))
    extra.start()
    try:
        mine = _session_of(smbsession.read_sessions(world.fs_conf).sessions,
                           extra.running[0])
        assert mine.client_user_name == "CONTOSO\\Dave"
        member = world.lab.run("client", [PY, "-c", _MEMBER_ONLY], env={
            "PYTHONPATH": SRC, "SMBSESSION_PASSWORD": world.lab.password("Administrator")})
        # The premise: without the DC, the member's answer is winbind's cached spelling.
        assert "CONTOSO\\dave" in json.loads(member.stdout), member.stdout
        rows = _rows(_listing(world, tgt_only, creds, "-Format", "Json"))
        daves = [r for r in rows if r["ClientUserName"].lower() == "contoso\\dave"]
        assert [(r["ClientUserName"], r["NumOpens"]) for r in daves] == [
            ("CONTOSO\\Dave", 1)]
        _agrees_with_local(world, rows)
    finally:
        extra.stop()


@pytest.mark.parametrize(("way", "creds"), [("refused", "ntlm"), ("silent", "ntlm"),
                                            ("silent", "krb5")])
def test_a_dc_out_of_reach_keeps_the_members_spelling(world: World, way: str,
                                                      creds: str) -> None:
    """With the DC out of the client's reach (its packets refused at once, or dropped
    unanswered), the listing still ends at once with every row, the member's spelling
    kept (the same accounts, case aside), exit 0 and nothing on stderr. (Kerberos: the
    cache holds the ticket for cifs/fs1 already, as the DC is also the lab's KDC.)"""
    cache = ""
    if creds == "krb5":
        cache = world.lab.kinit("Administrator", "FILE:" + str(
            world.lab.root("client") / "ccache" / "out-of-reach.cc"))
        world.lab.run("client", ["kvno", "-c", cache, "cifs/fs1.contoso.test"])
    ns = world.lab.netns("client")
    routes = [("-4", "198.18.0.1/32"), ("-6", "2001:2::1/128")]
    via = {"-4": "198.18.0.9", "-6": "2001:2::9"}  # nobody: no neighbour answers
    for family, prefix in routes:
        extra = ["blackhole", prefix] if way == "refused" else [prefix, "via", via[family]]
        subprocess.run(["ip", "-n", ns, family, "route", "add", *extra], check=True)
    try:
        started = time.monotonic()
        done = _listing(world, cache, creds, "-Format", "Json", "-OperationTimeoutSec", "30")
        elapsed = time.monotonic() - started
    finally:
        for family, prefix in routes:
            subprocess.run(["ip", "-n", ns, family, "route", "del", prefix], check=False)
    rows = _rows(done)
    assert done.stderr == ""
    _agrees_with_local(world, rows, fold=True)
    # The LDAP ping waits at most a second; nothing waits for the 30 s timeout.
    assert elapsed < 15, elapsed


def _one_line_failure(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_smb_kerberos_failures_are_one_line(world: World, tgt_only: str) -> None:
    target = "smb://fs1.contoso.test"
    base = world.lab.root("client") / "ccache"
    _one_line_failure(_remote(world, target, f"FILE:{base / 'missing.cc'}"),
                      "no credential cache", "kinit")
    _one_line_failure(_remote(world, "smb://OTHER.TEST\\Administrator@fs1.contoso.test",
                              tgt_only), "wrong realm", "OTHER.TEST")
    _one_line_failure(_remote(world, "smb://CONTOSO\\Bob@fs1.contoso.test", tgt_only),
                      "Administrator@CONTOSO.TEST", "not of Bob")
    _one_line_failure(_remote(world, target, "KEYRING:persistent:0"), "KEYRING", "FILE:")
    _one_line_failure(_remote(world, target, "KCM:"), "KCM")
    # A KDC that does not answer (nothing listens where krb5.conf says it is).
    conf = world.lab.root("client") / "etc" / "krb5-dead.conf"
    conf.write_text("[realms]\n  CONTOSO.TEST = {\n    kdc = 198.18.0.3:8\n  }\n")
    _one_line_failure(_remote(world, target, tgt_only, env={"KRB5_CONFIG": str(conf)}),
                      "KDC of CONTOSO.TEST does not answer")
    # An expired TGT.
    expiring = world.lab.run("client", ["kinit", "-l", "2s", "-c",
                                        f"FILE:{base / 'expiring.cc'}",
                                        "Administrator@CONTOSO.TEST"],
                             input=world.lab.password("Administrator") + "\n")
    assert expiring.returncode == 0
    time.sleep(3)
    _one_line_failure(_remote(world, target, f"FILE:{base / 'expiring.cc'}"),
                      "expired", "kinit")


def test_tgs_req_carries_the_body_checksum(world: World, tgt_only: str) -> None:
    """Samba's KDC (Heimdal) refuses a TGS-REQ whose authenticator lacks the checksum of
    the request body (KRB_AP_ERR_INAPP_CKSUM), which impacket's getKerberosTGS omits: ours
    carries it, keyed with the TGT session key, and it verifies."""
    from impacket.krb5.asn1 import AP_REQ, TGS_REQ, Authenticator
    from impacket.krb5.ccache import CCache
    from impacket.krb5.crypto import _get_checksum_profile
    from pyasn1.codec.der import decoder, encoder

    from smbsession.remote import kerberos

    cc = CCache.loadFile(tgt_only[5:])
    tgt = cc.getCredential("krbtgt/CONTOSO.TEST@CONTOSO.TEST").toTGT()
    data, key = kerberos.tgs_req(tgt, "Administrator", "CONTOSO.TEST", "cifs/fs1.contoso.test")
    req = decoder.decode(data, asn1Spec=TGS_REQ())[0]
    ap = decoder.decode(req["padata"][0]["padata-value"], asn1Spec=AP_REQ())[0]
    plain = tgt["cipher"].decrypt(key, kerberos.KU_TGS_REQ_AUTH,
                                  ap["authenticator"]["cipher"].asOctets())
    auth = decoder.decode(plain, asn1Spec=Authenticator())[0]
    body = kerberos._untag(encoder.encode(req["req-body"]))
    profile = _get_checksum_profile(int(auth["cksum"]["cksumtype"]))
    profile.verify(key, kerberos.KU_TGS_REQ_AUTH_CKSUM, body,
                   auth["cksum"]["checksum"].asOctets())


def test_foreign_error_codes_format_safely() -> None:
    """The message of impacket's own errors, with the ASN.1 Int32 codes impacket gives
    (``'{:#010x}'.format(Int32(..))`` raises TypeError)."""
    from impacket.krb5.asn1 import Int32
    from impacket.krb5.kerberosv5 import KerberosError as ImpacketKerberosError
    from impacket.smbconnection import SessionError

    from smbsession.remote import srvs

    target = srvs.parse_smb_target("smb://fs1.contoso.test")
    with pytest.raises(TypeError):
        format(Int32(41), "#010x")
    krb = srvs._reason(ImpacketKerberosError(error=Int32(41)), target, 30, None)
    assert krb == "the KDC answered KRB_AP_ERR_MODIFIED"
    odd = srvs._reason(ImpacketKerberosError(error=Int32(12345)), target, 30, None)
    assert "12345" in odd
    # NTSTATUS in a signed ASN.1 integer, as impacket's Kerberos paths carry it.
    smb = srvs._reason(SessionError(Int32(0xC000006D - 2**32)), target, 30, None)
    assert "STATUS_LOGON_FAILURE" in smb
    unknown = srvs._reason(SessionError(Int32(0xC0FFEE01 - 2**32)), target, 30, None)
    assert "0xc0ffee01" in unknown


def test_no_password_on_any_command_line_or_in_output(world: World) -> None:
    secrets = [world.lab.password(u) for u in ("Administrator", "Alice", "Bob", "Carol", "Dave")]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            assert not any(p in argv for p in secrets), entry.name
    logs = [*world.lab.directory.glob("*/var/log/samba/*"),
            *world.lab.directory.glob("client/clients/*.out"),
            *world.lab.directory.glob("*/anchor.log")]
    assert logs
    for log in logs:
        if log.is_file():
            text = log.read_text(errors="replace")
            assert not any(p in text for p in secrets), log


def test_every_source_agrees_on_the_domain(world: World, tgt_only: str) -> None:
    """tdb, smbstatus, fleet-local, ssh:// (to this host, reading the namespaced smbd)
    and smb:// (from the client, with Kerberos) list the same sessions, spelled alike
    wherever each knows a value; what a source cannot know is None."""
    pytest.importorskip("asyncssh")
    import json

    from helpers.sshd import running_sshd
    from smbsession.remote.ssh import list_sessions as ssh_list
    from smbsession.remote.ssh import parse_ssh_target

    tdb = smbsession.read_sessions(world.fs_conf, source="tdb").sessions
    key = {s.session_id: s for s in tdb}
    status = smbsession.read_sessions(world.fs_conf, source="smbstatus").sessions
    fleet = run_cli("get", "-CimSession", "localhost", "-SmbConf", world.fs_conf,
                    "-IncludeHidden", "-Format", "Json")
    assert fleet.returncode == 0, fleet.stderr
    with running_sshd() as sshd:
        target = parse_ssh_target(f"ssh://root@127.0.0.1:{sshd.port}")
        over_ssh = ssh_list(target, world.fs_conf, **sshd.options())
    by_source = {
        "smbstatus": {s.session_id: s.client_user_name for s in status},
        "fleet-local": {r["SessionId"]: r["ClientUserName"] for r in json.loads(fleet.stdout)},
        "ssh": {s.session_id: s.client_user_name for s in over_ssh},
    }
    for name, rows in by_source.items():
        assert set(rows) == set(key), name
        for sid, user in rows.items():
            if name == "smbstatus":  # smbstatus prints the Unix (lowercase) name
                assert (user or "").lower() == (key[sid].client_user_name or "").lower()
            else:
                assert user == key[sid].client_user_name, (name, sid)
    assert all(s.seconds_idle is not None for s in over_ssh)
    # smb:// has no session ids: the same rows by (client, user), checked above in
    # _agrees_with_local; its SessionId and Dialect are unknown, so None/0.
    rows = _rows(_remote(world, "smb://fs1.contoso.test", tgt_only, "-Format", "Json"))
    _agrees_with_local(world, rows)
    assert all(r["Dialect"] is None and r["SessionId"] == 0 for r in rows)


def test_a_cached_service_ticket_is_used_and_a_tgt_alone_is_enough(world: World,
                                                                      tgt_only: str) -> None:
    code = ("from smbsession.remote.kerberos import service_ticket\n"
            "t = service_ticket('fs1.contoso.test', None, None, 'smb://fs1.contoso.test')\n"
            "print(t.user, t.realm, t.from_cache)\n")
    base = world.lab.root("client") / "ccache"
    with_cifs = world.lab.kinit("Administrator", f"FILE:{base / 'with-cifs.cc'}")
    world.lab.run("client", ["kvno", "-c", with_cifs, "cifs/fs1.contoso.test"])
    for cache, expected in ((with_cifs, "True"), (tgt_only, "False")):
        done = world.lab.run("client", [PY, "-c", code],
                             env={"KRB5CCNAME": cache, "PYTHONPATH": SRC})
        assert done.stdout.split() == ["Administrator", "CONTOSO.TEST", expected], done
    rows = _rows(_remote(world, "smb://fs1.contoso.test", with_cifs, "-Format", "Json"))
    _agrees_with_local(world, rows)


def test_close_over_smb_with_kerberos(world: World, tgt_only: str) -> None:
    """Close-SmbSession -CimSession smb:// (NetrSessionDel: every session of that user
    from that client) with the directory's spelling of the user, from the client."""
    spec = ClientSpec("dave-close", "ntlm", "Dave", "fs", "share", "198.18.0.2", "SMB3_11",
                      "3.1.1")
    extra = DomainClients(world.lab, (spec,))
    extra.start()
    try:
        client = extra.running[0]
        mine = _session_of(smbsession.read_sessions(world.fs_conf).sessions, client)
        others = {s.session_id for s in smbsession.get_smb_session(smb_conf=world.fs_conf)}
        others.discard(mine.session_id)
        done = world.lab.run("client", [
            PY, "-m", "smbsession", "close", "-CimSession", "smb://fs1.contoso.test",
            "-ClientUserName", "CONTOSO\\Dave", "-Force"],
            env={"KRB5CCNAME": tgt_only, "PYTHONPATH": SRC}, check=False, timeout=120)
        assert done.returncode == 0, done

        def gone() -> bool:
            ids = {s.session_id for s in smbsession.get_smb_session(smb_conf=world.fs_conf)}
            return mine.session_id not in ids and others <= ids

        assert wait_for(gone)
    finally:
        extra.stop()
