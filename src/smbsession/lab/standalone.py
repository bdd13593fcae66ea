"""A private Samba server on loopback, for demos and tests.

``Lab(directory).start()`` writes an smb.conf whose every state directory lives under
``directory``, creates the lab users (Unix accounts without a login shell, each with a
random Samba password kept in ``lab.json``, mode 0600), maps root to
BUILTIN\\Administrators, starts ``smbd`` on a free loopback port and waits until it
accepts connections. ``stop()`` ends exactly that smbd (by its pid file). Nothing outside
``directory`` is touched except the Unix accounts. Starting needs root, as smbd does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError, SambaNotInstalled
from .statefile import read_state, write_state

#: The lab's Unix/Samba users (no login shell, no Unix password).
LAB_USERS: tuple[str, ...] = ("labalice", "labbob", "labcarol")
#: The lab server's NetBIOS name and workgroup: users show as ``LABSRV\\labalice``.
NETBIOS_NAME = "LABSRV"
WORKGROUP = "LAB"
SHARE = "share"
#: A second share, on a directory of its own (NumOpens split by share, before 4.23), and
#: another name for the first share's directory.
SHARE2 = "share2"
SHARE_ALIAS = "sharealias"

_SUBDIRS = ("lock", "state", "cache", "pid", "private", "ncalrpc", "log", "share", "share2")
_START_TIMEOUT = 30.0


def default_lab_dir() -> Path:
    """Return the lab's default directory, in the user's state directory:
    ``$XDG_STATE_HOME/smbsession/lab`` when XDG_STATE_HOME is set, else for root (who
    runs the lab) ``/var/lib/smbsession/lab``, else ``~/.local/state/smbsession/lab``.

    The lab users must be able to reach the share inside it, so root's home (mode 0700)
    is not used."""
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "smbsession" / "lab"
    if os.geteuid() == 0:
        return Path("/var/lib/smbsession/lab")
    return Path.home() / ".local" / "state" / "smbsession" / "lab"


def _closed_ancestor(path: Path) -> Path | None:
    """Return the first ancestor of ``path`` that other users cannot enter, if any."""
    for parent in reversed(path.parents):
        try:
            if not parent.stat().st_mode & 0o001:
                return parent
        except OSError:
            return parent
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ipv6_loopback_available() -> bool:
    """Return True when this machine can listen on ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def samba_program(name: str) -> str:
    """Return the path of a Samba program, or raise :class:`SambaNotInstalled` saying
    which distribution package provides it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        package = "smbclient" if name == "smbclient" else "samba"
        raise SambaNotInstalled(
            f"'{name}' is not installed. Install Samba from your distribution: "
            f"Debian/Ubuntu 'apt-get install {package}', Fedora/RHEL 'dnf install samba"
            f"{'-client' if package == 'smbclient' else ''}'.", name
        )
    return path


@dataclass(frozen=True)
class LabUser:
    """A lab account: its name and its Samba password (never put on a command line)."""

    name: str
    password: str

    def auth_file(self, lab: Lab) -> Path:
        """Return an smbclient authentication file for this user (mode 0600)."""
        path = lab.directory / "private" / f"{self.name}.auth"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"username = {self.name}\npassword = {self.password}\n")
                fh.write(f"domain = {WORKGROUP}\n")
        return path


class Lab:
    """One private Samba instance living in ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        chroot: str | os.PathLike[str] | None = None,
    ) -> None:
        """``directory`` holds everything of this lab. With ``chroot``, the lab runs the
        Samba installed in that root directory (for example another Samba release from
        debootstrap); ``directory`` must then lie inside it."""
        self.directory = (Path(directory) if directory else default_lab_dir()).absolute()
        self.chroot = Path(chroot).absolute() if chroot else None
        if self.chroot is not None and not self.directory.is_relative_to(self.chroot):
            raise LabError(f"the lab directory {self.directory} is not inside {self.chroot}")

    def _inside(self, path: Path) -> Path:
        """``path`` as the lab's smbd sees it (inside its chroot)."""
        if self.chroot is None:
            return path
        return Path("/") / path.relative_to(self.chroot)

    def _program(self, name: str) -> list[str]:
        if self.chroot is None:
            return [samba_program(name)]
        for where in ("usr/sbin", "usr/bin"):
            if (self.chroot / where / name).exists():
                return ["chroot", str(self.chroot), f"/{where}/{name}"]
        raise SambaNotInstalled(f"'{name}' is not installed in {self.chroot}")

    def _mount_chroot(self) -> None:
        """Bind-mount /proc and /dev into the chroot (smbd needs both), once."""
        assert self.chroot is not None
        for name in ("proc", "dev"):
            target = self.chroot / name
            if not os.path.ismount(target):
                target.mkdir(exist_ok=True)
                done = subprocess.run(["mount", "--bind", f"/{name}", str(target)],
                                      capture_output=True, text=True, check=False)
                if done.returncode:
                    raise LabError(f"cannot mount /{name} into {self.chroot}: {done.stderr}")
        _name_this_host(self.chroot / "etc" / "hosts")

    def _unmount_chroot(self) -> None:
        """Undo :meth:`_mount_chroot` once no process runs inside the chroot any more."""
        assert self.chroot is not None
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == str(self.chroot):
                        return
                except OSError:
                    continue
        for name in ("dev", "proc"):
            target = self.chroot / name
            if os.path.ismount(target):
                subprocess.run(["umount", str(target)], capture_output=True, check=False)

    @property
    def conf_path(self) -> Path:
        """The lab's smb.conf as this host sees it: give it to ``-SmbConf``."""
        return self.directory / "smb.conf"

    @property
    def server_conf_path(self) -> Path:
        """The smb.conf the lab's smbd reads (another file only under a chroot, where
        its paths are those inside the chroot)."""
        if self.chroot is None:
            return self.conf_path
        return self.directory / "smb.server.conf"

    @property
    def state_path(self) -> Path:
        return self.directory / "lab.json"

    @property
    def share_path(self) -> Path:
        """The directory served as ``\\\\127.0.0.1\\share``."""
        return self.directory / "share"

    def _state(self) -> dict:
        return read_state(self.state_path)

    @property
    def port(self) -> int | None:
        """The lab's SMB port, or None before the first start."""
        port = self._state().get("port")
        return int(port) if port else None

    @property
    def ipv6(self) -> bool:
        """Whether the lab also listens on ``::1``."""
        return bool(self._state().get("ipv6"))

    def users(self) -> list[LabUser]:
        """The lab users with their passwords (read from ``lab.json``)."""
        return [LabUser(n, p) for n, p in self._state().get("users", {}).items()]

    def user(self, name: str) -> LabUser:
        """The lab user called ``name``."""
        for u in self.users():
            if u.name == name:
                return u
        raise LabError(f"the lab has no user '{name}'")

    def pid(self) -> int | None:
        """The pid of the lab's running smbd, or None."""
        try:
            pid = int((self.directory / "pid" / "smbd.pid").read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0 or not os.path.exists(f"/proc/{pid}"):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if any(b"smbd" in part for part in cmdline[:1]) else None

    def running(self) -> bool:
        """True while the lab's smbd runs."""
        return self.pid() is not None

    # -- set-up ---------------------------------------------------------------------

    def _write_state(self, state: dict) -> None:
        write_state(self.state_path, state)

    def _write_config(self, port: int, ipv6: bool) -> None:
        self.conf_path.write_text(self._config_text(self.directory, port, ipv6))
        if self.chroot is not None:
            text = self._config_text(self._inside(self.directory), port, ipv6)
            self.server_conf_path.write_text(text)

    @staticmethod
    def _config_text(d: Path, port: int, ipv6: bool) -> str:
        interfaces = "127.0.0.1 ::1" if ipv6 else "127.0.0.1"
        text = f"""# smbsession lab: a private Samba on loopback, written by 'smbsession lab start'.
[global]
  netbios name = {NETBIOS_NAME}
  workgroup = {WORKGROUP}
  server string = smbsession lab
  server role = standalone server
  interfaces = {interfaces}
  bind interfaces only = yes
  smb ports = {port}
  disable netbios = yes
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  pid directory = {d}/pid
  private dir = {d}/private
  ncalrpc dir = {d}/ncalrpc
  log file = {d}/log/log.%m
  max log size = 1000
  log level = 1
  passdb backend = tdbsam:{d}/private/passdb.tdb
  server min protocol = NT1
  client min protocol = NT1
  ntlm auth = yes
  map to guest = never
  restrict anonymous = 0
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  deadtime = 0

[{SHARE}]
  path = {d}/share
  read only = no
  guest ok = no

[{SHARE2}]
  path = {d}/share2
  read only = no
  guest ok = no

[{SHARE_ALIAS}]
  path = {d}/share
  read only = no
  guest ok = no
"""
        return text

    def _ensure_users(self, state: dict) -> None:
        smbpasswd = self._program("smbpasswd")
        wrap = ["chroot", str(self.chroot)] if self.chroot else []
        users = state.setdefault("users", {})
        for name in LAB_USERS:
            exists = subprocess.run([*wrap, "id", "-u", name], capture_output=True, check=False)
            if exists.returncode:
                root = self.chroot or Path("/")
                nologin = next(
                    (p for p in ("/usr/sbin/nologin", "/sbin/nologin") if (root / p[1:]).exists()),
                    "/bin/false",
                )
                made = subprocess.run(
                    [*wrap, "useradd", "--no-create-home", "--shell", nologin, name],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if made.returncode not in (0, 9):
                    raise LabError(f"cannot create the lab user {name}: {made.stderr.strip()}")
            users.setdefault(name, secrets.token_urlsafe(12))
        users.setdefault("root", secrets.token_urlsafe(12))
        for name, password in users.items():
            added = subprocess.run(
                [*smbpasswd, "-c", str(self._inside(self.server_conf_path)), "-s", "-a", name],
                input=f"{password}\n{password}\n",
                capture_output=True,
                text=True,
                check=False,
            )
            if added.returncode:
                raise LabError(f"smbpasswd could not add {name}: {added.stderr.strip()}")

    def _ensure_groupmap(self) -> None:
        net = [*self._program("net"), "-s", str(self._inside(self.server_conf_path))]
        listed = subprocess.run(
            [*net, "groupmap", "list"],
            capture_output=True,
            text=True,
            check=False,
        )
        if "S-1-5-32-544" in listed.stdout:
            return
        subprocess.run(
            [
                *net, "groupmap", "add", "sid=S-1-5-32-544",
                "unixgroup=root", "type=builtin", "ntgroup=Administrators",
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, port: int | None = None) -> Path:
        """Set up (once) and start the lab; return the smb.conf path.

        Reuses the port of an earlier start unless ``port`` is given or that port is now
        taken. Starting a running lab does nothing. Raises :class:`LabError` or
        :class:`SambaNotInstalled`.
        """
        smbd = self._program("smbd")
        if self.running():
            return self.conf_path
        if os.geteuid() != 0:
            raise LabError("the lab runs smbd and creates Unix accounts: run it as root (sudo).")
        if self.chroot is not None:
            self._mount_chroot()
        for sub in _SUBDIRS:
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        closed = _closed_ancestor(self.share_path)
        if closed is not None:
            raise LabError(
                f"the lab users cannot reach {self.share_path}: {closed} is closed to other "
                "users. Choose a lab directory they can enter (--dir /var/lib/smbsession/lab)."
            )
        os.chmod(self.directory, 0o755)
        os.chmod(self.directory / "private", 0o700)
        os.chmod(self.share_path, 0o1777)
        os.chmod(self.directory / "share2", 0o1777)
        state = self._state()
        port = port or state.get("port")
        if not port or not _port_free(int(port)):
            port = free_port()
        ipv6 = ipv6_loopback_available()
        state.update(port=int(port), ipv6=ipv6)
        self._write_config(int(port), ipv6)
        self._ensure_users(state)
        self._write_state(state)
        self._ensure_groupmap()
        started = subprocess.run(
            [*smbd, "-D", "-s", str(self._inside(self.server_conf_path))],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode:
            raise LabError(f"smbd did not start: {started.stderr.strip() or started.returncode}")
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.running() and _accepts("127.0.0.1", int(port)):
                return self.conf_path
            time.sleep(0.05)
        log = self.directory / "log" / "log.smbd"
        raise LabError(f"smbd did not accept connections on port {port}; see {log}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the lab's smbd (with the processes of its group: per-client smbds and
        helpers) and its sample clients; return True if the lab was running."""
        self.stop_clients()
        pid = self.pid()
        if pid is not None:
            group = os.getpgid(pid) == pid
            _signal(pid, signal.SIGTERM, group)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _group_alive(pid, group):
                time.sleep(0.05)
            if _group_alive(pid, group):
                _signal(pid, signal.SIGKILL, group)
        self._stop_rpc_helpers()
        if self.chroot is not None:
            self._unmount_chroot()
        return pid is not None

    def _stop_rpc_helpers(self) -> None:
        """End the samba-dcerpcd (and its rpcd_* workers) that smbd started on demand
        for an RPC client such as srvsvc: it runs in a process group of its own and
        outlives smbd. Only the one whose command line names this lab's smb.conf."""
        try:
            pid = int((self.directory / "pid" / "samba-dcerpcd.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if str(self._inside(self.server_conf_path)).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                _signal(pid, signal.SIGTERM, os.getpgid(pid) == pid)

    # -- sample clients -------------------------------------------------------------

    @property
    def clients_dir(self) -> Path:
        """Where each running set of sample clients keeps its record, ``<pid>.json``."""
        return self.directory / "pid" / "clients"

    def dir_option(self) -> str:
        """`` --dir DIR`` for a command that must name this lab, or nothing when this is
        the default lab directory."""
        if self.directory.resolve() == default_lab_dir().resolve():
            return ""
        return f" --dir {shlex.quote(str(self.directory))}"

    def running_clients(self) -> list[ClientSet]:
        """The sets of sample clients running now, oldest first (records of sets that
        have ended are removed)."""
        sets = []
        paths = sorted(self.clients_dir.glob("*.json")) if self.clients_dir.is_dir() else []
        for path in paths:
            try:
                record = ClientSet(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if _is_clients_process(record.pid, self.directory):
                sets.append(record)
            else:
                path.unlink(missing_ok=True)
        return sorted(sets, key=lambda record: record.started)

    def start_clients(self, seconds: int = 300, wait: float = 30.0) -> ClientSet:
        """Start one more set of sample clients in the background for ``seconds``; wait
        (at most ``wait`` seconds) until they have connected, so that a listing right
        after this call sees their sessions, and return the set.

        Sets already running are kept: their sessions and the new set's add up
        (:meth:`running_clients` lists them, :meth:`stop_clients` ends them all).
        Raises :class:`LabError` when the lab is not running, when smbprotocol (the
        ``[lab]`` extra, which makes 2 of a set's 5 sessions) is not installed, and when
        fewer sessions connected than a set makes.
        """
        import importlib.util

        if importlib.util.find_spec("smbprotocol") is None:
            raise LabError(
                "the sample clients need smbprotocol, which makes 2 of their 5 sessions: "
                "pip install 'smbsession[lab]' (make demo installs it)."
            )
        if not self.running():
            raise LabError(
                f"the lab is not running: start it with 'smbsession lab start{self.dir_option()}'."
            )
        self.clients_dir.mkdir(parents=True, exist_ok=True)
        ready = self.clients_dir / f"ready-{secrets.token_hex(4)}"
        log_path = self.directory / "log" / "clients.log"
        log = open(log_path, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "smbsession.lab.clients", str(self.directory), str(seconds),
             str(ready)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _package_root()},
        )
        log.close()
        started = time.time()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and proc.poll() is None and not ready.exists():
            time.sleep(0.1)
        if not ready.exists():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            lines = log_path.read_text(errors="replace").strip().splitlines()
            raise LabError(
                "the sample clients did not connect"
                + (f" ({lines[-1]})" if lines else "") + f"; see {log_path}"
            )
        report = json.loads(ready.read_text())
        ready.unlink()
        record = ClientSet(pid=proc.pid, sessions=int(report["sessions"]),
                           expected=int(report["expected"]), started=started,
                           until=started + seconds)
        (self.clients_dir / f"{proc.pid}.json").write_text(json.dumps(record.__dict__))
        if record.sessions < record.expected:
            raise LabError(
                f"only {record.sessions} of the {record.expected} sample sessions connected "
                f"(pid {record.pid} holds them); see {log_path}"
            )
        return record

    def stop_clients(self, timeout: float = 10.0) -> list[ClientSet]:
        """End every set of sample clients started by :meth:`start_clients`; wait (at most
        ``timeout`` seconds) until they have logged off; return the sets ended."""
        legacy = self.directory / "pid" / "clients.pid"  # written by smbsession 0.1.0
        with contextlib.suppress(OSError, ValueError, ProcessLookupError, PermissionError):
            os.killpg(int(legacy.read_text().strip()), signal.SIGTERM)
        legacy.unlink(missing_ok=True)
        sets = self.running_clients()
        for record in sets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for record in sets:
            while time.monotonic() < deadline and _is_clients_process(record.pid,
                                                                      self.directory):
                time.sleep(0.05)
            (self.clients_dir / f"{record.pid}.json").unlink(missing_ok=True)
        return sets


@dataclass
class ClientSet:
    """One set of sample clients (``smbsession lab clients``): its process, the sessions
    it connected of those it makes, and when it started and will log off (epoch
    seconds)."""

    pid: int
    sessions: int
    expected: int
    started: float
    until: float


def _is_clients_process(pid: int, directory: Path) -> bool:
    """True while ``pid`` is a live sample-clients process of the lab in ``directory``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"smbsession.lab.clients" not in argv or _is_zombie(pid):
        return False
    target = directory.resolve()
    return any(arg.startswith(b"/") and Path(os.fsdecode(arg)).resolve() == target
               for arg in argv)


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _signal(pid: int, signum: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def _group_alive(pgid: int, group: bool) -> bool:
    """True while process ``pgid`` (or, with ``group``, any process of its group) lives."""
    if not group:
        return os.path.exists(f"/proc/{pgid}") and not _is_zombie(pgid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _name_this_host(hosts: Path) -> None:
    """Give the machine's host name an address in a chroot's hosts file (the chroot's
    own file: the host's is never touched).

    smbd looks up its own name for every session setup (Samba 4.25: twice, A and AAAA);
    a debootstrap chroot's hosts file lacks it, and the lookups then go to DNS, where a
    sandbox's resolver may take its 5-second timeout: seen here as sessions set up
    three a second instead of hundreds."""
    name = socket.gethostname()
    try:
        text = hosts.read_text()
    except OSError:
        return
    if any(name in line.split()[1:] for line in text.splitlines()
           if line.strip() and not line.lstrip().startswith("#")):
        return
    # (a read-only chroot: smbd's lookups then go to DNS, slower but right)
    with contextlib.suppress(OSError):
        hosts.write_text(text + ("" if text.endswith("\n") or not text else "\n") +
                         f"127.0.1.1\t{name}\n")
