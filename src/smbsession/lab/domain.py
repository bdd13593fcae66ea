"""An Active Directory domain for demos and tests: a DC, a member file server, a client.

``DomainLab(directory).start()`` builds, in network namespaces it creates (names beginning
with ``smbsad-``), the seed's world:

- ``dc1.contoso.test`` (198.18.0.1): a Samba AD DC, NetBIOS domain ``CONTOSO``, realm
  ``CONTOSO.TEST``, with the users ``Alice``, ``Bob``, ``Carol`` and ``Administrator``;
- ``fs1.contoso.test`` (198.18.0.2): a member file server (smbd and winbindd, joined with
  ``net ads join``) serving ``\\\\fs1\\share``;
- ``contoso-hv2.contoso.test`` (198.18.0.3): a client host joined as the computer account
  ``CONTOSO-HV2$``, from which the sample clients connect.

A fourth namespace holds the bridge that links them. Addresses come from 198.18.0.0/15
(and 2001:2::/48, the IPv6 benchmarking range) and exist only inside the namespaces.

Each host also has its own mount namespace, held by a small anchor process, in which
private directories are bind-mounted over ``/etc/samba``, ``/run/samba``,
``/var/lib/samba``, ``/var/cache/samba`` and ``/var/log/samba`` and private files over
``/etc/nsswitch.conf``, ``/etc/krb5.conf``, ``/etc/hosts`` and ``/etc/resolv.conf``: the
servers run at Samba's built-in paths (winbindd's socket must stay at
``/run/samba/winbindd``), as in a container, and the host's files are never written.
Everything the lab keeps lies under ``directory`` (``domain.json``, mode 0600, holds the
passwords).

Passwords never appear on a command line: ``samba-tool`` reads them from its standard
input (it falls back to stdin when it has no terminal), ``net`` and ``smbclient`` from the
``PASSWD`` environment variable or an authentication file, ``kinit`` from its standard
input. ``samba-tool domain provision`` chooses a random Administrator password when none is
given; the lab replaces it at once through stdin.

Starting needs root (namespaces, mounts, daemons).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from .standalone import default_lab_dir
from .statefile import read_state, write_state

#: The seed's names.
DOMAIN = "CONTOSO"
REALM = "CONTOSO.TEST"
DNS_DOMAIN = "contoso.test"
SHARE = "share"
#: The prefix of every network namespace this lab creates.
NETNS_PREFIX = "smbsad-"


@dataclass(frozen=True)
class Host:
    """One host of the domain: its role, NetBIOS name and addresses."""

    role: str  # "dc", "fs" or "client"
    netbios: str
    ipv4: str
    ipv6: str

    @property
    def fqdn(self) -> str:
        """The host's DNS name."""
        return f"{self.netbios.lower()}.{DNS_DOMAIN}"


HOSTS: tuple[Host, ...] = (
    Host("dc", "DC1", "198.18.0.1", "2001:2::1"),
    Host("fs", "FS1", "198.18.0.2", "2001:2::2"),
    Host("client", "CONTOSO-HV2", "198.18.0.3", "2001:2::3"),
)
#: The domain users the lab creates, as the directory spells them (no sample client is
#: Dave's: he is free for tests of their own).
DOMAIN_USERS: tuple[str, ...] = ("Alice", "Bob", "Carol", "Dave")

_PROGRAMS = ("samba", "samba-tool", "smbd", "winbindd", "net", "smbclient", "kinit", "ip",
             "nsenter")
_PACKAGES = "samba-ad-dc samba-ad-provision winbind libnss-winbind krb5-user"
_MOUNTED_DIRS = ("etc/samba", "run/samba", "var/lib/samba", "var/cache/samba",
                 "var/log/samba", "srv")
_MOUNTED_FILES = ("etc/nsswitch.conf", "etc/krb5.conf", "etc/hosts", "etc/resolv.conf")
_TIMEOUT = 60.0


def host(role: str) -> Host:
    """The lab host playing ``role`` (``dc``, ``fs`` or ``client``)."""
    for h in HOSTS:
        if h.role == role:
            return h
    raise LabError(f"the domain lab has no host '{role}'")


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}")
         if os.path.exists(p)), None)


def missing_programs() -> list[str]:
    """The programs the domain lab needs that are not installed."""
    return [name for name in _PROGRAMS if _which(name) is None]


def _strong_password() -> str:
    # AD's default policy wants three character classes; token_urlsafe may lack some.
    return secrets.token_urlsafe(15) + "Aa1."


def default_domain_dir() -> Path:
    """The domain lab's default directory: ``domain`` beside the standalone lab's."""
    return default_lab_dir().parent / "domain"


class DomainLab:
    """The domain world living in ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory or default_domain_dir()).absolute()

    # -- state ----------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.directory / "domain.json"

    def _state(self) -> dict:
        return read_state(self.state_path)

    def _write_state(self, state: dict) -> None:
        write_state(self.state_path, state)

    def root(self, role: str) -> Path:
        """The directory that holds host ``role``'s private files (its ``/etc/samba``
        is ``root(role)/etc/samba`` and so on)."""
        return self.directory / role

    def netns(self, role: str) -> str:
        """The name of host ``role``'s network namespace (``ip netns``)."""
        names = self._state().get("netns", {})
        if role not in names:
            raise LabError("the domain lab is not running: start it with "
                           "'smbsession lab start --domain'.")
        return str(names[role])

    def anchor(self, role: str) -> int:
        """The pid of the process holding host ``role``'s mount and network namespaces."""
        pid = self._state().get("anchors", {}).get(role)
        if not pid or not _alive(int(pid)):
            raise LabError(f"the domain lab's {role} host is not running")
        return int(pid)

    def password(self, user: str) -> str:
        """The password of domain user ``user`` (``Administrator`` included)."""
        passwords = self._state().get("passwords", {})
        for name, value in passwords.items():
            if name.lower() == user.lower():
                return str(value)
        raise LabError(f"the domain lab has no user '{user}'")

    def smbd_pid(self, role: str = "fs") -> int | None:
        """The main smbd of host ``role`` (its pid file in the host's /run/samba)."""
        try:
            pid = int((self.root(role) / "run/samba/smbd.pid").read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and _alive(pid) else None

    def conf_path(self, role: str = "fs") -> str:
        """The smb.conf of host ``role`` as the host machine reaches it: through the
        root of its smbd (``/proc/<pid>/root/etc/samba/smb.conf``), which is what
        ``-SmbConf`` takes for an smbd in a container."""
        pid = self.smbd_pid(role)
        if pid is None:
            raise LabError(f"no smbd runs on the domain lab's {role} host")
        return f"/proc/{pid}/root/etc/samba/smb.conf"

    def running(self) -> bool:
        """True while every host's anchor and the file server's smbd run."""
        try:
            for h in HOSTS:
                self.anchor(h.role)
        except LabError:
            return False
        return self.smbd_pid("fs") is not None

    # -- running commands on a host ------------------------------------------------

    def command(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` as run on host ``role`` (in its mount and network namespaces)."""
        return [_which("nsenter") or "nsenter", "-t", str(self.anchor(role)), "-m", "-n",
                "--", *argv]

    def run(self, role: str, argv: list[str], *, input: str | None = None,
            env: dict[str, str] | None = None, timeout: float = _TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on host ``role`` and return its result; with ``check``, raise
        :class:`LabError` (with its output, never its input) when it fails."""
        done = subprocess.run(
            self.command(role, argv), input=input, capture_output=True, text=True,
            timeout=timeout, check=False, start_new_session=True,
            env={**os.environ, **self._env(role), **(env or {})},
        )
        if check and done.returncode:
            out = (done.stderr.strip() or done.stdout.strip())[-1500:]
            raise LabError(f"{role}: '{' '.join(argv[:3])}' failed ({done.returncode}): {out}")
        return done

    def popen(self, role: str, argv: list[str], *, env: dict[str, str] | None = None,
              **kwargs: object) -> subprocess.Popen:
        """Start ``argv`` on host ``role`` in the background (stdin a pipe)."""
        return subprocess.Popen(  # type: ignore[call-overload]
            self.command(role, argv), stdin=subprocess.PIPE, text=True, bufsize=1,
            env={**os.environ, **self._env(role), **(env or {})}, **kwargs)

    def _env(self, role: str) -> dict[str, str]:
        return {"KRB5_CONFIG": str(self.root(role) / "etc/krb5.conf")}

    # -- set-up ---------------------------------------------------------------------

    def start(self) -> str:
        """Build and start the domain (about 10 s); return the file server's smb.conf as
        the host reaches it (see :meth:`conf_path`). Starting a running lab does nothing.

        Raises :class:`LabError` when it cannot be built (not root, programs missing, a
        step failing: the message says which and shows its output). On failure, what was
        already made is taken down again.
        """
        if self.running():
            return self.conf_path("fs")
        if os.geteuid() != 0:
            raise LabError("the domain lab creates network namespaces and runs Samba: run "
                           "it as root (sudo).")
        missing = missing_programs()
        if missing:
            raise LabError(f"the domain lab needs {', '.join(missing)}: install "
                           f"'{_PACKAGES}' (make domain-deps).")
        self.stop()
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        os.chmod(self.directory, 0o755)
        suffix = secrets.token_hex(3)
        state: dict = {
            "netns": {role: f"{NETNS_PREFIX}{suffix}-{role}" for role in ("sw", "dc", "fs",
                                                                          "client")},
            "anchors": {},
            "passwords": {name: _strong_password() for name in ("Administrator",
                                                                 *DOMAIN_USERS)},
            "timings": {},
        }
        self._write_state(state)
        try:
            t0 = time.monotonic()
            self._network(state)
            for h in HOSTS:
                self._prepare_host(h)
                state["anchors"][h.role] = self._start_anchor(h, state["netns"][h.role])
                self._write_state(state)
            state["timings"]["network"] = round(time.monotonic() - t0, 2)
            t1 = time.monotonic()
            self._provision()
            state["timings"]["provision"] = round(time.monotonic() - t1, 2)
            t1 = time.monotonic()
            self._join("fs")
            self._join("client")
            state["timings"]["join"] = round(time.monotonic() - t1, 2)
            self._start_member()
            state["timings"]["total"] = round(time.monotonic() - t0, 2)
            self._write_state(state)
        except BaseException:
            self.stop()
            raise
        return self.conf_path("fs")

    def _network(self, state: dict) -> None:
        names = state["netns"]
        for name in names.values():
            _ip("netns", "add", name)
        sw = names["sw"]
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for h in HOSTS:
            ns = names[h.role]
            port = f"p-{h.role}"
            _ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", sw, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{h.ipv4}/24", "dev", "eth0")
            _ip("-n", ns, "-6", "addr", "add", f"{h.ipv6}/64", "dev", "eth0", "nodad",
                check=False)
            _ip("-n", ns, "link", "set", "eth0", "up")

    def _prepare_host(self, h: Host) -> None:
        root = self.root(h.role)
        for sub in _MOUNTED_DIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "srv" / SHARE).mkdir(exist_ok=True)
        os.chmod(root / "srv" / SHARE, 0o1777)
        (root / "ccache").mkdir(exist_ok=True)
        os.chmod(root / "ccache", 0o700)
        hosts = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
            f"{o.ipv4} {o.fqdn} {o.netbios.lower()}\n{o.ipv6} {o.fqdn} {o.netbios.lower()}\n"
            for o in HOSTS)
        # AD's DNS answers the domain's own name with its DCs' addresses (where the DC
        # locator looks first): so does the lab's hosts file.
        dc = host("dc")
        hosts += f"{dc.ipv4} {DNS_DOMAIN}\n{dc.ipv6} {DNS_DOMAIN}\n"
        (root / "etc/hosts").write_text(hosts)
        # Nothing answers DNS in the lab: a query is refused at once.
        (root / "etc/resolv.conf").write_text(f"nameserver 127.0.0.1\nsearch {DNS_DOMAIN}\n")
        winbind = " winbind" if h.role == "fs" else ""
        (root / "etc/nsswitch.conf").write_text(
            f"passwd: files{winbind}\ngroup: files{winbind}\nshadow: files\n"
            "hosts: files\nnetworks: files\nprotocols: files\nservices: files\n")
        (root / "etc/krb5.conf").write_text(
            f"[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_realm = false\n"
            "  dns_lookup_kdc = false\n  rdns = false\n\n"
            f"[realms]\n  {REALM} = {{\n    kdc = {dc.ipv4}\n    admin_server = {dc.ipv4}\n"
            f"  }}\n\n[domain_realm]\n  .{DNS_DOMAIN} = {REALM}\n  {DNS_DOMAIN} = {REALM}\n")
        if h.role != "dc":
            (root / "var/lib/samba/private").mkdir(mode=0o700, exist_ok=True)
            (root / "etc/samba/smb.conf").write_text(_member_conf(h))

    def _start_anchor(self, h: Host, netns: str) -> int:
        root = self.root(h.role)
        ready = root / "anchor.ready"
        lines = ["set -e", "mount --make-rslave /"]
        for sub in _MOUNTED_DIRS:
            lines.append(f"mkdir -p /{sub}")
            lines.append(f"mount --bind {root / sub} /{sub}")
        for name in _MOUNTED_FILES:
            # A file the host lacks (often /etc/krb5.conf) cannot be mounted over without
            # creating it on the host: KRB5_CONFIG (set for every command) names ours.
            lines.append(f"if [ -e /{name} ]; then mount --bind {root / name} /{name}; fi")
        lines.append(f"hostname {h.netbios.lower()} 2>/dev/null || true")
        lines.append(f": > {ready}")
        lines.append("exec sleep infinity")
        log = open(root / "anchor.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [_which("ip") or "ip", "netns", "exec", netns,
             _which("unshare") or "unshare", "--mount", "--uts", "--propagation", "slave",
             "sh", "-c", "\n".join(lines)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"{h.role}: its namespaces could not be set up: "
                               f"{(root / 'anchor.log').read_text()[-500:]}")
            time.sleep(0.02)
        # The anchor is the sleep that the shell became (same pid).
        return proc.pid

    def _samba_tool_password(self, role: str, user: str) -> None:
        password = self.password(user)
        self.run(role, ["samba-tool", "user", "setpassword", user],
                 input=f"{password}\n{password}\n")

    def _provision(self) -> None:
        dc = host("dc")
        self.run("dc", [
            "samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}",
            "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
            f"--host-name={dc.netbios.lower()}", f"--host-ip={dc.ipv4}",
            "--option=interfaces = lo eth0", "--option=bind interfaces only = yes",
            # No DNS: names come from each host's /etc/hosts.
            "--option=server services = -dns",
            "--option=server min protocol = NT1", "--option=ntlm auth = yes",
            "--option=log level = 1",
        ], timeout=120)
        self._samba_tool_password("dc", "Administrator")
        for user in DOMAIN_USERS:
            self.run("dc", ["samba-tool", "user", "add", user, "--random-password"])
            self._samba_tool_password("dc", user)
        self.run("dc", ["samba", "-D"])
        _wait_port(self, "dc", dc.ipv4, 88)
        _wait_port(self, "dc", dc.ipv4, 445)
        _wait_port(self, "dc", dc.ipv4, 389)

    def _join(self, role: str) -> None:
        self.run(role, ["net", "ads", "join", "--no-dns-updates", "-U", "Administrator",
                        "-S", host("dc").fqdn],
                 env={"PASSWD": self.password("Administrator")})

    def _start_member(self) -> None:
        fs = host("fs")
        self.run("fs", ["winbindd", "-D"])
        deadline = time.monotonic() + 20
        while True:
            ping = self.run("fs", ["wbinfo", "-P"], check=False)
            if ping.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LabError(f"fs: winbindd does not reach the DC: {ping.stdout}"
                               f"{ping.stderr}")
            time.sleep(0.2)
        self.run("fs", ["smbd", "-D"])
        _wait_port(self, "fs", fs.ipv4, 445)
        deadline = time.monotonic() + 10
        while self.smbd_pid("fs") is None:
            if time.monotonic() > deadline:
                raise LabError("fs: smbd wrote no pid file")
            time.sleep(0.05)

    # -- clients --------------------------------------------------------------------

    def auth_file(self, user: str, role: str = "client") -> Path:
        """An smbclient authentication file for domain user ``user`` (mode 0600), in
        host ``role``'s private directory."""
        path = self.root(role) / "ccache" / f"{user.lower()}.auth"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"username = {user}\npassword = {self.password(user)}\n"
                     f"domain = {DOMAIN}\n")
        return path

    def kinit(self, user: str, ccache: str | None = None, role: str = "client") -> str:
        """Get a TGT for ``user`` on host ``role`` (password through stdin); return the
        cache as ``FILE:path`` (default: a file in the host's private directory)."""
        cc = ccache or f"FILE:{self.root(role) / 'ccache' / (user.lower() + '.cc')}"
        self.run(role, ["kinit", "-c", cc, f"{user}@{REALM}"],
                 input=self.password(user) + "\n")
        return cc

    def start_clients(self) -> DomainClients:
        """Start the sample clients (see :class:`DomainClients`) and return them once
        every one is connected."""
        clients = DomainClients(self)
        clients.start()
        return clients

    # -- tear-down ------------------------------------------------------------------

    def stop(self) -> bool:
        """End every process of the lab (they all run in its network namespaces) and
        delete its namespaces; return True if anything was running."""
        state = self._state()
        names = state.get("netns", {})
        anything = False
        for name in names.values():
            for pid in _netns_pids(name):
                anything = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for name in names.values():
            while _netns_pids(name) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in _netns_pids(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for pid in state.get("anchors", {}).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for name in names.values():
            if subprocess.run(["ip", "netns", "delete", name], capture_output=True,
                              check=False).returncode == 0:
                anything = True
        if state:
            state["anchors"] = {}
            with contextlib.suppress(OSError):
                self._write_state(state)
        return anything


def _member_conf(h: Host) -> str:
    idmap = ("  idmap config * : backend = tdb\n  idmap config * : range = 3000-7999\n"
             f"  idmap config {DOMAIN} : backend = rid\n"
             f"  idmap config {DOMAIN} : range = 10000-999999\n")
    text = f"""# smbsession domain lab: {h.fqdn}, written by 'smbsession lab start --domain'.
[global]
  netbios name = {h.netbios}
  workgroup = {DOMAIN}
  realm = {REALM}
  security = ads
  interfaces = lo eth0
  bind interfaces only = yes
  disable netbios = yes
  kerberos method = secrets only
{idmap}  winbind use default domain = no
  template shell = /bin/false
  template homedir = /tmp
  server min protocol = NT1
  client min protocol = NT1
  ntlm auth = yes
  map to guest = never
  restrict anonymous = 0
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  log level = 1
"""
    if h.role == "fs":
        text += f"""
[{SHARE}]
  path = /srv/{SHARE}
  read only = no
"""
    return text


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run([_which("ip") or "ip", *args], capture_output=True, text=True,
                          check=False)
    if check and done.returncode:
        raise LabError(f"'ip {' '.join(args)}' failed: {done.stderr.strip()}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _netns_pids(name: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                          check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _wait_port(lab: DomainLab, role: str, address: str, port: int,
               timeout: float = 30.0) -> None:
    """Wait until ``address:port`` accepts connections inside host ``role``'s namespace."""
    from ..netns import NetNamespace

    ns = NetNamespace(lab.anchor(role))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ns.call(_accepts, address, port):
            return
        time.sleep(0.1)
    raise LabError(f"{role}: nothing accepts connections on {address}:{port} after "
                   f"{timeout:g} s")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False



@dataclass(frozen=True)
class ClientSpec:
    """One sample client: what it is, as the client knows it (the tests' ground truth).

    ``auth`` is ``ntlm`` (an authentication file), ``krb5`` (a TGT from ``kinit``),
    ``machine`` (``smbclient -P``: the client host's computer account) or ``anonymous``.
    ``user`` is the account as the directory spells it (None when anonymous); ``server``
    the role of the host it connects to; ``address`` where it connects; ``protocol``
    smbclient's ``-m``; ``dialect`` the dialect that negotiates; ``files`` what it opens.
    """

    name: str
    auth: str
    user: str | None
    server: str
    share: str
    address: str
    protocol: str
    dialect: str
    files: tuple[str, ...] = ()
    encrypt: bool = False


#: The sample clients, all running on the joined client host.
CLIENT_SPECS: tuple[ClientSpec, ...] = (
    ClientSpec("bob-ntlm", "ntlm", "Bob", "fs", SHARE, "198.18.0.2", "SMB3_11", "3.1.1",
               ("bob-report.txt",)),
    ClientSpec("alice-krb5", "krb5", "Alice", "fs", SHARE, "198.18.0.2", "SMB3_11", "3.1.1",
               ("alice-1.txt", "alice-2.txt")),
    ClientSpec("hv2-machine-1", "machine", "CONTOSO-HV2$", "fs", SHARE, "198.18.0.2",
               "SMB3_11", "3.1.1", ("vm1.vhdx",)),
    ClientSpec("hv2-machine-2", "machine", "CONTOSO-HV2$", "fs", SHARE, "198.18.0.2",
               "SMB3_02", "3.02", ("vm2.vhdx", "vm2.avhdx", "vm2.vmcx")),
    ClientSpec("admin-encrypted", "ntlm", "Administrator", "fs", SHARE, "198.18.0.2",
               "SMB3_11", "3.1.1", (), encrypt=True),
    ClientSpec("carol-smb1", "ntlm", "Carol", "fs", SHARE, "198.18.0.2", "NT1", "1.50",
               ("carol-notes.txt",)),
    ClientSpec("anonymous", "anonymous", None, "fs", "IPC$", "198.18.0.2", "SMB3_11",
               "3.1.1"),
    ClientSpec("bob-ipv6", "ntlm", "Bob", "fs", SHARE, "2001:2::2", "SMB2_10", "2.10"),
    ClientSpec("bob-dc-netlogon", "ntlm", "Bob", "dc", "netlogon", "198.18.0.1", "SMB3_11",
               "3.1.1"),
    ClientSpec("hv2-dc-sysvol", "machine", "CONTOSO-HV2$", "dc", "sysvol", "198.18.0.1",
               "SMB3_11", "3.1.1"),
)


class RunningClient:
    """A sample client that runs: its spec, its smbclient process and TCP endpoint."""

    def __init__(self, spec: ClientSpec, proc: subprocess.Popen, output: Path) -> None:
        self.spec = spec
        self.proc = proc
        self.output = output
        #: (client address, client port) of its TCP connection, from the client's side.
        self.local: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"RunningClient({self.spec.name}, pid={self.proc.pid}, local={self.local})"


class DomainClients:
    """The sample clients of a :class:`DomainLab`, each an ``smbclient`` on the client
    host holding its session (and its files open) until :meth:`stop`."""

    def __init__(self, lab: DomainLab, specs: tuple[ClientSpec, ...] = CLIENT_SPECS) -> None:
        self.lab = lab
        self.specs = specs
        self.running: list[RunningClient] = []

    def __iter__(self) -> Iterator[RunningClient]:
        return iter(self.running)

    def get(self, name: str) -> RunningClient:
        """The running client called ``name``."""
        for c in self.running:
            if c.spec.name == name:
                return c
        raise LabError(f"no sample client '{name}'")

    def _argv(self, spec: ClientSpec) -> tuple[list[str], dict[str, str]]:
        target = host(spec.server)
        argv = ["smbclient", f"//{target.fqdn}/{spec.share}", "-I", spec.address,
                "-m", spec.protocol]
        env: dict[str, str] = {}
        if spec.auth == "ntlm":
            assert spec.user is not None
            argv += ["-A", str(self.lab.auth_file(spec.user)), "--use-kerberos=off"]
        elif spec.auth == "krb5":
            assert spec.user is not None
            env["KRB5CCNAME"] = self.lab.kinit(spec.user)
            argv += ["--use-kerberos=required", "-N"]
        elif spec.auth == "machine":
            argv += ["-P", "--use-kerberos=off"]
        else:
            argv += ["-N"]
        if spec.encrypt:
            argv += ["--client-protection=encrypt"]
        return argv, env

    def start(self, timeout: float = 30.0) -> None:
        """Start every client and wait until each has its session and files open."""
        for spec in self.specs:
            share = self.lab.root(spec.server) / "srv" / SHARE
            for name in spec.files:
                path = share / name
                path.touch(exist_ok=True)
                path.chmod(0o666)
        logs = self.lab.root("client") / "clients"
        logs.mkdir(exist_ok=True)
        try:
            for spec in self.specs:
                argv, env = self._argv(spec)
                out = open(logs / f"{spec.name}.out", "w+b")  # noqa: SIM115
                proc = self.lab.popen("client", argv, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
                out.close()
                assert proc.stdin is not None
                for name in spec.files:
                    proc.stdin.write(f"open {name}\n")
                proc.stdin.flush()
                self.running.append(RunningClient(spec, proc, logs / f"{spec.name}.out"))
            deadline = time.monotonic() + timeout
            for client in self.running:
                _wait_ready(client, deadline)
                client.local = tcp_endpoint(client.proc.pid)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Log every client off and end it."""
        for client in self.running:
            proc = client.proc
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                    proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
                    proc.wait(5)
        self.running = []


def _wait_ready(client: RunningClient, deadline: float) -> None:
    """Wait until ``client`` has run its commands (its files are open).

    smbclient reads its standard input through stdio but polls the descriptor: of the
    lines that arrive together it runs one per wake-up and leaves the rest in its buffer.
    So a marker line is sent again and again until it comes back: every command before
    it has run by then."""
    proc = client.proc
    assert proc.stdin is not None
    while True:
        text = client.output.read_text(errors="replace")
        if "smbsession-ready" in text:
            return
        if proc.poll() is not None:
            raise LabError(f"sample client {client.spec.name} ended: {text[-500:]}")
        if time.monotonic() > deadline:
            raise LabError(f"sample client {client.spec.name} did not connect: "
                           f"{text[-500:]}")
        with contextlib.suppress(OSError):
            proc.stdin.write("!echo smbsession-ready\n")
            proc.stdin.flush()
        time.sleep(0.1)


def tcp_endpoint(pid: int, remote: bool = False) -> tuple[str, int] | None:
    """The local (or, with ``remote``, the peer's) (address, port) of process ``pid``'s
    first established TCP connection, read from its own network namespace's
    ``/proc/<pid>/net/tcp{,6}``; None when it has none."""
    import ipaddress

    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for table, width in (("tcp", 4), ("tcp6", 16)):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] != "01" or cols[9] not in inodes:  # ESTABLISHED, ours
                continue
            addr_hex, port_hex = cols[2 if remote else 1].split(":")
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(packed[:width])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            return (str(ip), int(port_hex, 16))
    return None


def run_domain_lab(action: str, directory: str | None, seconds: int = 300) -> int:
    """``smbsession lab ACTION --domain``: start, stop, status or clients; the exit code."""
    import sys

    lab = DomainLab(directory)
    if action == "start":
        conf = lab.start()
        timings = lab._state().get("timings", {})
        print(conf)
        print(f"domain {DOMAIN} (realm {REALM}) built in {timings.get('total', '?')} s: "
              f"DC {host('dc').fqdn}, file server {host('fs').fqdn}, client "
              f"{host('client').netbios}$; network namespaces "
              f"{', '.join(lab._state()['netns'].values())}", file=sys.stderr)
        return 0
    if action == "stop":
        stop_background_clients(lab)
        print("stopped" if lab.stop() else "the domain lab was not running")
        return 0
    if action == "status":
        if not lab.running():
            print(f"not running (domain lab directory {lab.directory})")
            return 1
        print(f"running: file server smbd pid {lab.smbd_pid('fs')}, smb.conf "
              f"{lab.conf_path('fs')}; DC smbd pid {lab.smbd_pid('dc')}, smb.conf "
              f"{lab.conf_path('dc')}")
        return 0
    if action == "clients":
        pid = start_background_clients(lab, seconds)
        print(f"sample domain clients connected (pid {pid}), holding their sessions for "
              f"{seconds} s")
        return 0
    print(f"smbsession lab: unknown action '{action}'", file=sys.stderr)
    return 2


def start_background_clients(lab: DomainLab, seconds: int, wait: float = 60.0) -> int:
    """Run the sample clients in a background process for ``seconds``; return its pid
    once they are connected."""
    import sys

    if not lab.running():
        raise LabError("the domain lab is not running: start it with "
                       "'smbsession lab start --domain'.")
    stop_background_clients(lab)
    ready = lab.directory / "clients.ready"
    ready.unlink(missing_ok=True)
    log = open(lab.directory / "clients.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "smbsession.lab.domain", "clients", str(lab.directory),
         str(seconds)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    log.close()
    (lab.directory / "clients.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc.poll() is None and not ready.exists():
        time.sleep(0.1)
    if not ready.exists():
        raise LabError(f"the sample domain clients did not connect; see "
                       f"{lab.directory}/clients.log")
    return proc.pid


def stop_background_clients(lab: DomainLab) -> None:
    """End the clients of :func:`start_background_clients`, if they run."""
    try:
        pid = int((lab.directory / "clients.pid").read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (lab.directory / "clients.pid").unlink(missing_ok=True)


def _hold_clients(directory: str, seconds: float) -> int:
    import threading

    lab = DomainLab(directory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    clients = lab.start_clients()
    try:
        (lab.directory / "clients.ready").write_text(str(time.time()))
        print(f"clients connected; holding for {seconds:g} s", flush=True)
        stop.wait(seconds)
    finally:
        clients.stop()
        (lab.directory / "clients.ready").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "clients":
        sys.exit(_hold_clients(sys.argv[2], float(sys.argv[3])))
    print("usage: python -m smbsession.lab.domain clients DIR SECONDS", file=sys.stderr)
    sys.exit(2)
