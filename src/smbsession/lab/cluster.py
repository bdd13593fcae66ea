"""A private clustered Samba (CTDB) for demos and tests: ``smbsession lab start --cluster N``.

:class:`ClusterLab` builds an N-node cluster on this machine without touching the host's
network: every node is a network namespace of its own (``smbsctdb-<random>-n<i>``), all
joined by a bridge in one more namespace (``smbsctdb-<random>-hub``) where the clients
run. Addresses come from 198.18.0.0/15 and exist only inside those namespaces: node ``i``
has the private address ``198.18.0.<i+1>``; the cluster serves the public addresses
``198.18.1.<i+1>``, which ctdb spreads over the nodes; clients are ``198.18.0.254``.

Each node runs its own ``ctdbd`` (``CTDB_TEST_MODE=yes``, its own ``CTDB_BASE`` holding
its configuration, run directory, socket and databases; started with stdin from
/dev/null, because ctdbd ends when a stdin pipe closes) and a clustered ``smbd``
(``clustering = yes``, the shared ``netbios name = CTDBFS``, its own lock, state and pid
directories, one share directory for all, as on a cluster file system). The event script
that takes the public addresses is idempotent (``ip addr replace``): in test mode ctdb
sends a takeover again for an address a node already holds. The host name a node's
processes see is ``ctdbfs-<i>`` (a UTS namespace of their own).

Everything lives under the lab directory; :meth:`ClusterLab.stop` ends exactly the
processes it started (by their pid files) and deletes its namespaces. Needs root and the
``ctdb`` package. Two nodes start in about 15 s and take about 0.5 GB.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .standalone import LAB_USERS, SHARE, WORKGROUP, LabError, samba_program
from .statefile import read_state, write_state

#: Prefix of every network namespace the cluster lab creates.
NETNS_PREFIX = "smbsctdb-"
#: The cluster's NetBIOS name (ScopeName), served by every node.
CLUSTER_NAME = "CTDBFS"
CLIENT_ADDRESS = "198.18.0.254"
_PREFIX_LEN = 16
_START_TIMEOUT = 90.0
_CTDB_TUNABLES = "MonitorInterval=2\n"

_EVENT_SCRIPT = """#!/bin/sh
# smbsession cluster lab: take and release public addresses, idempotently (test mode
# sends a takeover again for an address this node already holds).
case "$1" in
takeip|updateip) ip addr replace "$3/$4" dev "$2" ;;
releaseip) ip addr del "$3/$4" dev "$2" 2>/dev/null || true ;;
esac
exit 0
"""


def private_address(i: int) -> str:
    """Node ``i``'s private (ctdb) address."""
    return f"198.18.0.{i + 1}"


def public_address(i: int) -> str:
    """The ``i``-th public address the cluster serves."""
    return f"198.18.1.{i + 1}"


def ctdb_program(name: str) -> str:
    """The path of a CTDB program, or raise :class:`LabError` naming the package."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise LabError(f"'{name}' is not installed: the cluster lab needs CTDB "
                       "(Debian/Ubuntu: apt-get install ctdb; make cluster-deps)")
    return path


def _run(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          **kwargs)  # type: ignore[call-overload]
    if done.returncode:
        raise LabError(f"{what} failed: {(done.stderr or done.stdout).strip()}")
    return done


class ClusterLab:
    """An N-node CTDB cluster with clustered smbd, living in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], nodes: int = 2) -> None:
        self.directory = Path(directory).absolute()
        state = self._state()
        self.count = int(state.get("nodes", nodes))
        if not 1 <= self.count <= 8:
            raise LabError(f"--cluster {self.count}: a lab cluster has 1 to 8 nodes")

    # -- state ----------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.directory / "cluster.json"

    def _state(self) -> dict:
        return read_state(self.state_path)

    def _write_state(self, state: dict) -> None:
        write_state(self.state_path, state)

    @property
    def prefix(self) -> str | None:
        """The namespaces' common prefix (``smbsctdb-<random>``), None before a start."""
        return self._state().get("prefix")

    def netns(self, i: int) -> str:
        """The network namespace of node ``i``."""
        return f"{self.prefix}-n{i}"

    @property
    def hub(self) -> str:
        """The namespace of the bridge and the clients."""
        return f"{self.prefix}-hub"

    def node_dir(self, i: int) -> Path:
        """Node ``i``'s CTDB_BASE (ctdb's configuration, run dir, databases)."""
        return self.directory / f"node{i}"

    def conf_path(self, i: int) -> Path:
        """Node ``i``'s smb.conf: give it to ``-SmbConf`` inside that node."""
        return self.node_dir(i) / "samba" / "smb.conf"

    def socket_path(self, i: int) -> Path:
        """Node ``i``'s ctdbd socket."""
        return self.node_dir(i) / "run" / "ctdbd.socket"

    @property
    def share_path(self) -> Path:
        return self.directory / "share"

    @staticmethod
    def hostname(i: int) -> str:
        """The host name node ``i``'s processes see."""
        return f"ctdbfs-{i}"

    def users(self) -> dict[str, str]:
        """Lab user -> Samba password (from ``cluster.json``, mode 0600)."""
        return dict(self._state().get("users", {}))

    def auth_file(self, user: str) -> Path:
        """An smbclient authentication file for ``user`` (mode 0600)."""
        path = self.directory / "private" / f"{user}.auth"
        if not path.exists():
            password = self.users()[user]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"username = {user}\npassword = {password}\ndomain = {WORKGROUP}\n")
        return path

    # -- running things in a node ---------------------------------------------------

    def in_node(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run inside node ``i``: its network namespace and its host name."""
        return ["ip", "netns", "exec", self.netns(i), "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hostname(i), *argv]

    def in_hub(self, argv: list[str]) -> list[str]:
        """``argv`` run in the clients' namespace."""
        return ["ip", "netns", "exec", self.hub, *argv]

    def ctdb_env(self, i: int) -> dict[str, str]:
        """The environment ctdb's programs need for node ``i``."""
        return {**os.environ, "CTDB_TEST_MODE": "yes", "CTDB_BASE": str(self.node_dir(i))}

    def ctdb(self, i: int, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run the ``ctdb`` tool against node ``i`` (``ctdb(0, "status")``)."""
        return subprocess.run(self.in_node(i, [ctdb_program("ctdb"), *args]),
                              env=self.ctdb_env(i), capture_output=True, text=True,
                              timeout=timeout, check=False)

    # -- set-up ---------------------------------------------------------------------

    def running(self) -> bool:
        """True while every node's ctdbd and smbd run."""
        return self.prefix is not None and all(
            self._pid(self.node_dir(i) / "run" / "ctdbd.pid") is not None
            and self._pid(self.node_dir(i) / "samba" / "pid" / "smbd.pid") is not None
            for i in range(self.count))

    @staticmethod
    def _pid(path: Path) -> int | None:
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid > 0 and os.path.exists(f"/proc/{pid}") else None

    def start(self, timeout: float = _START_TIMEOUT) -> list[Path]:
        """Build and start the cluster (namespaces, ctdbd, smbd, users); return each
        node's smb.conf. Starting a running cluster does nothing. Raises
        :class:`LabError` (everything started so far is stopped again)."""
        if self.running():
            return [self.conf_path(i) for i in range(self.count)]
        if os.geteuid() != 0:
            raise LabError("the cluster lab creates network namespaces and runs ctdbd and "
                           "smbd: run it as root (sudo).")
        for program in ("ctdbd", "ctdb"):
            ctdb_program(program)
        samba_program("smbd")
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)
        state = self._state()
        if state.get("prefix"):
            self.stop()
        state = {"nodes": self.count, "users": state.get("users", {}),
                 "prefix": NETNS_PREFIX + secrets.token_hex(3)}
        for user in (*LAB_USERS, "root"):
            state["users"].setdefault(user, secrets.token_urlsafe(12))
        self._write_state(state)
        try:
            self._network()
            for i in range(self.count):
                self._configure(i)
            for i in range(self.count):
                self._start_ctdbd(i)
            deadline = time.monotonic() + timeout
            self._wait_healthy(deadline)
            self._ensure_users()
            for i in range(self.count):
                self._start_smbd(i)
            self._wait_serving(deadline)
        except BaseException:
            self.stop()
            raise
        return [self.conf_path(i) for i in range(self.count)]

    def _network(self) -> None:
        hub = self.hub
        _run(["ip", "netns", "add", hub], f"creating namespace {hub}")
        for argv in (["link", "add", "br0", "type", "bridge"], ["link", "set", "br0", "up"],
                     ["link", "set", "lo", "up"],
                     ["addr", "add", f"{CLIENT_ADDRESS}/16", "dev", "br0"]):
            _run(["ip", "-n", hub, *argv], f"ip -n {hub} {' '.join(argv)}")
        for i in range(self.count):
            ns = self.netns(i)
            _run(["ip", "netns", "add", ns], f"creating namespace {ns}")
            _run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
                  f"p{i}", "netns", hub], f"creating node {i}'s link")
            _run(["ip", "-n", hub, "link", "set", f"p{i}", "master", "br0", "up"],
                 f"bridging node {i}")
            for argv in (["link", "set", "lo", "up"],
                         ["addr", "add", f"{private_address(i)}/16", "dev", "eth0"],
                         ["link", "set", "eth0", "up"]):
                _run(["ip", "-n", ns, *argv], f"ip -n {ns} {' '.join(argv)}")

    def _configure(self, i: int) -> None:
        base = self.node_dir(i)
        samba = base / "samba"
        for sub in ("run", "var/volatile", "var/persistent", "var/state", "events/legacy",
                    "log", "samba/lock", "samba/state", "samba/cache", "samba/pid",
                    "samba/private", "samba/ncalrpc", "samba/log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "private").mkdir(mode=0o700, exist_ok=True)
        self.share_path.mkdir(exist_ok=True)
        os.chmod(self.share_path, 0o1777)
        (base / "nodes").write_text("".join(f"{private_address(n)}\n"
                                            for n in range(self.count)))
        (base / "public_addresses").write_text("".join(f"{public_address(n)}/16 eth0\n"
                                                       for n in range(self.count)))
        (base / "ctdb.tunables").write_text(_CTDB_TUNABLES)
        (base / "ctdb.conf").write_text(f"""# smbsession cluster lab, node {i}
[logging]
    location = file:{base}/log/ctdbd.log
    log level = NOTICE
[cluster]
    node address = {private_address(i)}
[database]
    volatile database directory = {base}/var/volatile
    persistent database directory = {base}/var/persistent
    state database directory = {base}/var/state
""")
        script = base / "events" / "legacy" / "10.interface.script"
        script.write_text(_EVENT_SCRIPT)
        script.chmod(0o755)
        (samba / "smb.conf").write_text(f"""# smbsession cluster lab, node {i}
[global]
  netbios name = {CLUSTER_NAME}
  workgroup = {WORKGROUP}
  server string = smbsession cluster lab
  server role = standalone server
  clustering = yes
  ctdbd socket = {self.socket_path(i)}
  smb ports = 445
  disable netbios = yes
  lock directory = {samba}/lock
  state directory = {samba}/state
  cache directory = {samba}/cache
  pid directory = {samba}/pid
  private dir = {samba}/private
  ncalrpc dir = {samba}/ncalrpc
  log file = {samba}/log/log.%m
  max log size = 1000
  log level = 1
  passdb backend = tdbsam
  server min protocol = NT1
  client min protocol = NT1
  ntlm auth = yes
  map to guest = never
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  deadtime = 0

[{SHARE}]
  path = {self.share_path}
  read only = no
  guest ok = no
""")

    def _start_ctdbd(self, i: int) -> None:
        log = open(self.node_dir(i) / "log" / "ctdbd.stdout", "ab")  # noqa: SIM115
        try:
            proc = subprocess.Popen(self.in_node(i, [ctdb_program("ctdbd")]),
                                    env=self.ctdb_env(i), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        if proc.wait(30):
            raise LabError(f"ctdbd of node {i} did not start; see "
                           f"{self.node_dir(i)}/log/ctdbd.log")

    def _wait_healthy(self, deadline: float) -> None:
        """Until every node is OK and every public address is held by one node, each
        node holding one (clients must connect only after the addresses settled)."""
        from ..samba.ctdb.client import CtdbClient

        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                with CtdbClient(str(self.socket_path(0)), timeout=2) as client:
                    flags = {n.pnn: n.flags for n in client.nodemap()}
                    mode = client.recovery_state()[0]
                holders = self.public_ips()
                if (all(f == 0 for f in flags.values()) and len(flags) == self.count
                        and mode == 0 and len(holders) == self.count
                        and set(holders.values()) == set(range(self.count))):
                    return
                last = f"node flags {flags}, recovery mode {mode}, addresses {holders}"
            except Exception as exc:  # ctdbd still starting: report the last state
                last = str(exc)
            time.sleep(0.5)
        raise LabError(f"the cluster did not become healthy: {last}; see "
                       f"{self.directory}/node*/log/ctdbd.log")

    def public_ips(self) -> dict[str, int]:
        """Public address -> the node that holds it now (from the nodes' interfaces)."""
        held: dict[str, int] = {}
        public = {public_address(n) for n in range(self.count)}
        for i in range(self.count):
            out = subprocess.run(["ip", "-n", self.netns(i), "-o", "-4", "addr", "show"],
                                 capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                parts = line.split()
                if "inet" in parts:
                    address = parts[parts.index("inet") + 1].split("/")[0]
                    if address in public:
                        held[address] = i
        return held

    def address_of(self, node: int) -> str:
        """A public address node ``node`` serves now."""
        for address, holder in sorted(self.public_ips().items()):
            if holder == node:
                return address
        raise LabError(f"node {node} holds no public address now")

    def _ensure_users(self) -> None:
        for name in LAB_USERS:
            if subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode:
                nologin = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin")
                                if os.path.exists(p)), "/bin/false")
                made = subprocess.run(["useradd", "--no-create-home", "--shell", nologin,
                                       name], capture_output=True, text=True, check=False)
                if made.returncode not in (0, 9):
                    raise LabError(f"cannot create the lab user {name}: {made.stderr.strip()}")
        # passdb is clustered (a persistent ctdb database): adding on node 0 is enough.
        smbpasswd = samba_program("smbpasswd")
        for name, password in self.users().items():
            _run(self.in_node(0, [smbpasswd, "-c", str(self.conf_path(0)), "-s", "-a", name]),
                 f"smbpasswd -a {name}", input=f"{password}\n{password}\n")

    def _start_smbd(self, i: int) -> None:
        _run(self.in_node(i, [samba_program("smbd"), "-D", "-s", str(self.conf_path(i))]),
             f"starting smbd on node {i}")

    def _wait_serving(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if all(self._listening(i) for i in range(self.count)):
                return
            time.sleep(0.2)
        tails = []
        for i in range(self.count):
            if not self._listening(i):
                log = self.node_dir(i) / "samba" / "log" / "log.smbd"
                try:
                    lines = log.read_text(errors="replace").strip().splitlines()[-4:]
                except OSError:
                    lines = ["(no log)"]
                tails.append(f"node {i}: " + " | ".join(line.strip() for line in lines))
        raise LabError("smbd does not listen on every node: " + "; ".join(tails))

    def _listening(self, i: int) -> bool:
        out = subprocess.run(["ip", "netns", "exec", self.netns(i), "ss", "-Hltn",
                              "sport", "=", ":445"], capture_output=True, text=True,
                             check=False).stdout
        return bool(out.strip()) and self._pid(
            self.node_dir(i) / "samba" / "pid" / "smbd.pid") is not None

    # -- clients --------------------------------------------------------------------

    def connect(self, user: str, node: int, protocol: str = "SMB3_11",
                files: tuple[str, ...] = (), seconds: float | None = None) -> subprocess.Popen:
        """Connect ``smbclient`` as ``user`` to a public address that node ``node``
        serves, from the clients' namespace, opening ``files``; the session lasts while
        the returned process runs (``seconds``: it ends by itself after that long)."""
        argv = self.in_hub([samba_program("smbclient"), f"//{self.address_of(node)}/{SHARE}",
                            "-s", str(self.client_conf()), "-A", str(self.auth_file(user)),
                            "-m", protocol])
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        assert proc.stdin is not None
        for name in files:
            path = self.share_path / name
            path.touch(exist_ok=True)
            path.chmod(0o666)
            proc.stdin.write(f"open {name}\n")
        proc.stdin.flush()
        if seconds is not None:
            self._remember_client(proc.pid)
        return proc

    def client_conf(self) -> Path:
        """The smb.conf of the lab's clients (SMB1 allowed, nothing of the host's)."""
        path = self.directory / "client.conf"
        if not path.exists():
            path.write_text(f"[global]\n  workgroup = {WORKGROUP}\n"
                            "  client min protocol = NT1\n  client max protocol = SMB3\n")
        return path

    def _remember_client(self, pid: int) -> None:
        state = self._state()
        state.setdefault("clients", []).append(pid)
        self._write_state(state)

    def start_clients(self, seconds: int = 300) -> list[int]:
        """Sample sessions spread over the nodes for ``seconds``: each lab user on each
        node, in SMB 3.1.1, 2.1 and SMB1 in turn; return the clients' pids."""
        protocols = ("SMB3_11", "SMB2_10", "NT1")
        pids = []
        for i in range(self.count):
            for k, user in enumerate(LAB_USERS):
                argv = self.in_hub([samba_program("smbclient"),
                                    f"//{self.address_of(i)}/{SHARE}",
                                    "-s", str(self.client_conf()), "-A",
                                    str(self.auth_file(user)), "-m", protocols[k]])
                cmd = f"sleep {int(seconds)} | exec \"$@\""
                proc = subprocess.Popen(["sh", "-c", cmd, "sh", *argv],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                self._remember_client(proc.pid)
                pids.append(proc.pid)
        return pids

    def stop_clients(self) -> None:
        """End the clients :meth:`start_clients` started."""
        state = self._state()
        for pid in state.pop("clients", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        if state:
            self._write_state(state)

    # -- failures and teardown ------------------------------------------------------

    def _node_pids(self, i: int) -> list[int]:
        """ctdbd of node ``i`` with its helpers, and its smbd (main first)."""
        pids = []
        for pidfile in (self.node_dir(i) / "run" / "ctdbd.pid",
                        self.node_dir(i) / "run" / "eventd.pid"):
            pid = self._pid(pidfile)
            if pid is not None:
                pids.append(pid)
                pids.extend(_children(pid))
        return pids

    def _smbd_group(self, i: int) -> int | None:
        pid = self._pid(self.node_dir(i) / "samba" / "pid" / "smbd.pid")
        if pid is None:
            return None
        try:
            return pid if os.getpgid(pid) == pid else None
        except ProcessLookupError:
            return None

    def kill_node(self, i: int) -> None:
        """Crash node ``i``: SIGKILL its smbd (all of them) and its ctdbd with helpers."""
        group = self._smbd_group(i)
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for pid in self._node_pids(i):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the clients, every node's smbd and ctdbd, and delete the namespaces;
        return True if a cluster was there."""
        prefix = self.prefix
        if prefix is None:
            return False
        self.stop_clients()
        for i in range(self.count):
            group = self._smbd_group(i)
            if group is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGTERM)
        leftovers = [pid for i in range(self.count) for pid in self._node_pids(i)]
        for i in range(self.count):
            pid = self._pid(self.node_dir(i) / "run" / "ctdbd.pid")
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(_alive(p) for p in leftovers):
            time.sleep(0.1)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for i in range(self.count):
            group = self._smbd_group(i)
            if group is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
        for ns in [f"{prefix}-n{i}" for i in range(self.count)] + [f"{prefix}-hub"]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        state = self._state()
        state.pop("prefix", None)
        self._write_state(state)
        return True


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
