"""Which Samba server to read: the smb.conf, and the few settings we need from it.

Samba's own parser (``lib/param``) is large; we need a handful of ``[global]`` settings, so
this module reads the file the way Samba does for those: section headers, ``name = value``
lines, ``#``/``;`` comments, backslash continuation, case- and space-insensitive names,
and ``include =``. Directories not set in the file come from smbd's compiled-in defaults
(``smbd -b``), asked only when needed.
"""

from __future__ import annotations

import os

from ..errors import AccessDenied, ConfigNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

#: Where Debian's and most distributions' Samba looks when nothing else is said.
FALLBACK_CONFIGFILE = "/etc/samba/smb.conf"

# Samba accepts several spellings of some parameters; we normalise to one.
_SYNONYMS = {"lockdir": "lockdirectory"}

_MAX_INCLUDE_DEPTH = 10


class SambaConfig:
    """The settings of one Samba server that smbsession uses.

    ``path`` is the smb.conf that was read; ``lock_dir`` holds the session databases
    (``smbXsrv_*.tdb``), ``msg.lock`` and ``msg.sock``; ``pid_dir`` holds ``smbd.pid``.
    ``netbios_name`` is the name Windows-style user names use for local accounts.
    ``root`` is ``/proc/<pid>/root`` when the smb.conf was named through the root of a
    process in other namespaces (an smbd in a container): ``lock_dir`` and ``pid_dir``
    then lie under it too; otherwise None.
    """

    __slots__ = (
        "clustering",
        "guest_account",
        "lock_dir",
        "netbios_name",
        "path",
        "pid_dir",
        "root",
        "smb_ports",
        "winbind_separator",
        "workgroup",
    )

    def __init__(
        self,
        path: str,
        lock_dir: str,
        pid_dir: str,
        netbios_name: str,
        workgroup: str,
        clustering: bool,
        smb_ports: tuple[int, ...],
        winbind_separator: str,
        guest_account: str = "nobody",
        root: str | None = None,
    ) -> None:
        self.path = path
        self.lock_dir = lock_dir
        self.pid_dir = pid_dir
        self.netbios_name = netbios_name
        self.workgroup = workgroup
        self.clustering = clustering
        self.smb_ports = smb_ports
        self.winbind_separator = winbind_separator
        self.guest_account = guest_account
        self.root = root

    def __repr__(self) -> str:
        return f"SambaConfig(path={self.path!r}, lock_dir={self.lock_dir!r})"


def default_config_path() -> str:
    """Return the smb.conf to use when none is named: ``$SMB_CONF_PATH``, else Samba's own."""
    env = os.environ.get("SMB_CONF_PATH")
    if env:
        return env
    return compiled_defaults().get("CONFIGFILE", FALLBACK_CONFIGFILE)


_COMPILED: dict[str, str] | None = None


def compiled_defaults() -> dict[str, str]:
    """Return smbd's compiled-in paths (``smbd -b``: LOCKDIR, PIDDIR, CONFIGFILE, ...).

    Asked once per process; an empty dict when smbd is not installed or does not answer.
    """
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = _ask_smbd()
    return _COMPILED


def _ask_smbd() -> dict[str, str]:
    import shutil
    import subprocess

    smbd = shutil.which("smbd") or next(
        (p for p in ("/usr/sbin/smbd", "/usr/local/samba/sbin/smbd") if os.path.exists(p)), None
    )
    if smbd is None:
        return {}
    try:
        out = subprocess.run(
            [smbd, "-b"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    import re

    found: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"\s+([A-Z_]+):\s+(\S.*)$", line)
        if m:
            found.setdefault(m.group(1), m.group(2).strip())
    return found


def _norm(name: str) -> str:
    key = "".join(name.lower().split())
    return _SYNONYMS.get(key, key)


def proc_root(path: str) -> str | None:
    """Return ``/proc/<pid>/root`` when ``path`` lies under it, else None."""
    parts = path.split("/", 4)
    if (len(parts) == 5 and parts[0] == "" and parts[1] == "proc" and parts[2].isdecimal()
            and parts[2].isascii() and parts[3] == "root"):
        return f"/proc/{parts[2]}/root"
    return None


#: What :func:`entries` gives as the name of a section header (no parameter is so named).
SECTION = "["


def entries(text: str) -> Iterator[tuple[str, str]]:
    """The lines of smb.conf text that matter, in order: ``(SECTION, name)`` for a section
    header (the name lower-cased), ``(name, value)`` for a parameter (the name as
    :func:`_norm` makes it, the value stripped). Continued lines (a trailing backslash)
    are joined; comments, blank lines and lines without ``=`` are skipped."""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            yield SECTION, line[1 : line.find("]") if "]" in line else None].strip().lower()
        elif "=" in line:
            name, value = line.split("=", 1)
            yield _norm(name), value.strip()


def parse_globals(path: str | os.PathLike[str], _depth: int = 0,
                  root: str | None = None) -> dict[str, str]:
    """Return the ``[global]`` settings of an smb.conf as ``{normalised name: value}``.

    Names are lower-cased with white space removed (``lock directory`` -> ``lockdirectory``).
    Files named by ``include =`` inside ``[global]`` are read in place, as Samba does.
    With ``root`` (``/proc/<pid>/root``), included paths are that process's paths.
    Raises :class:`ConfigNotFound` when the file cannot be read.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except PermissionError:
        raise AccessDenied(
            f"permission denied reading {path}: run the command with sudo.", str(path)
        ) from None
    except OSError as exc:
        raise ConfigNotFound(
            f"cannot read '{path}': {exc.strerror or exc}. "
            "Name an existing smb.conf (for the lab: smbsession lab status).", str(path)
        ) from None
    values: dict[str, str] = {}
    section = "global"
    for key, value in entries(text):
        if key == SECTION:
            section = value
            continue
        if section != "global":
            continue
        if key == "include" and _depth < _MAX_INCLUDE_DEPTH:
            target = value.replace("%m", "").strip()
            if target and root and target.startswith("/"):
                target = root + target
            if target and os.path.exists(target):
                values.update(parse_globals(target, _depth + 1, root))
            continue
        values[key] = value
    return values


def load_config(path: str | os.PathLike[str] | None = None) -> SambaConfig:
    """Read the smb.conf at ``path`` (default: :func:`default_config_path`).

    A path through the root of another process (``/proc/<pid>/root/etc/samba/smb.conf``:
    an smbd in a container, or in a mount namespace of its own) is read as that process
    sees it: its lock and pid directories are taken under the same root (Samba's
    compiled-in defaults are this host's, ``smbd -b``).
    Raises :class:`ConfigNotFound` when the file does not exist.
    """
    conf_path = os.fspath(path) if path is not None else default_config_path()
    try:
        os.stat(conf_path)
    except FileNotFoundError:
        raise ConfigNotFound(
            f"the file '{conf_path}' does not exist. "
            "Name the smb.conf of the Samba server to read.", conf_path
        ) from None
    except PermissionError:
        raise AccessDenied(
            f"permission denied reading {conf_path}: Samba's configuration and state are "
            "readable by root only. Run the command with sudo."
        ) from None
    root = proc_root(os.path.abspath(conf_path))
    g = parse_globals(conf_path, root=root)
    needs_defaults = "lockdirectory" not in g or "piddirectory" not in g
    defaults = compiled_defaults() if needs_defaults else {}
    lock_dir = g.get("lockdirectory") or defaults.get("LOCKDIR", "/run/samba")
    pid_dir = g.get("piddirectory") or defaults.get("PIDDIR", lock_dir)
    if root:
        lock_dir, pid_dir = root + lock_dir, root + pid_dir
    netbios = g.get("netbiosname") or os.uname().nodename.split(".")[0]
    ports = tuple(int(p) for p in g.get("smbports", "445 139").replace(",", " ").split()
                  if p.isdigit())
    return SambaConfig(
        path=os.path.abspath(conf_path),
        lock_dir=lock_dir,
        pid_dir=pid_dir,
        netbios_name=netbios.upper()[:15],
        workgroup=g.get("workgroup", "WORKGROUP").upper(),
        clustering=g.get("clustering", "no").lower() in ("yes", "true", "1", "on"),
        smb_ports=ports or (445, 139),
        winbind_separator=(g.get("winbindseparator") or "\\")[:1],
        guest_account=g.get("guestaccount") or "nobody",
        root=root,
    )
