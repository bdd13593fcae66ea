"""One Samba server, resolved once: smb.conf, its running smbd, release, record layout.

:func:`resolve` is the one place that decides how a server is read and closed: reading
(:mod:`smbsession.samba.tdb_source`, :mod:`smbsession.samba.smbstatus`) and closing
(:mod:`smbsession.samba.logoff`) all start from the :class:`Server` it returns.
"""

from __future__ import annotations

import os

from ..errors import AccessDenied, ServerNotRunning
from .config import SambaConfig
from .smbxsrv import Layout
from .store import SESSION_DB, LocalStore, Store


class Server:
    """A running Samba server as smbsession reads it.

    ``config`` is its smb.conf; ``pid`` its main smbd; ``release`` the Samba version that
    smbd reports (None when it cannot be told); ``layout`` the record layout of that
    release (None when smbsession does not know it); ``store`` where its records live.
    """

    __slots__ = ("config", "layout", "pid", "release", "store")

    def __init__(self, config: SambaConfig, pid: int, release: str | None,
                 layout: Layout | None, store: Store) -> None:
        self.config = config
        self.pid = pid
        self.release = release
        self.layout = layout
        self.store = store

    def __repr__(self) -> str:
        return (f"Server(config={self.config.path!r}, pid={self.pid}, "
                f"release={self.release!r}, layout={self.layout.name if self.layout else None})")


def resolve(smb_conf: str | os.PathLike[str] | None = None) -> Server:
    """Find the server of ``smb_conf`` (default: ``$SMB_CONF_PATH``, else Samba's own).

    The layout: the declared one of the smbd's release (:mod:`.layouts`). Where that
    release may write two layouts (a distribution's backport), the one every record
    decodes exactly with. For a release newer than every declared one, the newest
    declared layout, only when every record decodes exactly with it; else ``layout`` is
    None (the caller falls back to smbstatus and says why).

    Raises :class:`~smbsession.errors.ConfigNotFound`, :class:`ServerNotRunning` or
    :class:`AccessDenied` (see :func:`check_readable`) when it cannot be read at all.
    """
    from . import layouts, smbxsrv, version
    from .config import load_config

    config = load_config(smb_conf)
    pid = check_readable(config)
    release = version.smbd_version(pid)
    store: Store
    if config.clustering:
        from .cluster_store import ClusterStore, ctdbd_socket

        store = ClusterStore(ctdbd_socket(config.path), config.lock_dir)
    else:
        store = LocalStore(config.lock_dir)
    candidates: list[Layout] = []
    probe = False
    if layouts.is_newer_than_known(release):
        candidates, probe = [smbxsrv.layout_named(layouts.newest().name)], True
    elif smbxsrv.layout_for_version(release) is not None:
        candidates = smbxsrv.layout_candidates(release or "")
        probe = len(candidates) > 1
    layout = candidates[0] if candidates else None
    if probe:
        # a known release whose records are all being rewritten at this instant keeps
        # its most likely layout (the reader then reports what does not decode)
        layout = _probe(store, candidates, need_evidence=len(candidates) == 1) or (
            None if len(candidates) == 1 else layout)
    return Server(config, pid, release, layout, store)


def _probe(store: Store, candidates: list[Layout], need_evidence: bool = False) -> Layout | None:
    """The first of ``candidates`` that decodes every record of ``store`` exactly; with
    ``need_evidence`` (a release newer than every known one), only when there is at least
    one session record to judge by."""
    from . import smbxsrv
    from .store import OPEN_DB, TCON_DB
    from .tdb import TdbFormatError

    records: dict[str, list] = {}
    try:
        for kind, name in (("session", SESSION_DB), ("tcon", TCON_DB), ("open", OPEN_DB)):
            records[kind] = list(store.scan(name)) if store.exists(name) else []
    except (OSError, TdbFormatError):
        return None
    if need_evidence and not records["session"]:
        return None
    for layout in candidates:
        if smbxsrv.decodes_exactly(records, layout):
            return layout
    return None


def smbd_pid(config: SambaConfig) -> int | None:
    """Return the pid of the running main smbd of ``config``, or None if none runs.

    smbd writes ``smbd.pid`` (``smbd-<conf>.pid`` for a non-default smb.conf on some
    builds) into the pid directory; the pid counts only while that process exists.
    """
    try:
        names = sorted(n for n in os.listdir(config.pid_dir) if n.startswith("smbd"))
    except OSError:
        return None
    for name in names:
        if not name.endswith(".pid"):
            continue
        try:
            with open(os.path.join(config.pid_dir, name), encoding="ascii") as fh:
                pid = int(fh.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 0 and os.path.exists(f"/proc/{pid}"):
            return pid
    return None


def check_readable(config: SambaConfig) -> int:
    """Return the pid of the server's smbd, or raise a clear error unless the server is
    running and its state is readable.

    :class:`ServerNotRunning` when no smbd runs for this smb.conf (says how to start one);
    :class:`AccessDenied` when the session database exists but is root-only.
    """
    pid = smbd_pid(config)
    if pid is None:
        lab = os.path.dirname(config.path)
        hint = (f"it is a lab's: start it with 'smbsession lab start --dir {lab}'"
                if os.path.exists(os.path.join(lab, "lab.json"))
                else f"start it with 'smbd -s {config.path}' (or 'systemctl start smbd'), or "
                     "start the lab with 'smbsession lab start'")
        raise ServerNotRunning(
            f"no smbd is running for {config.path} ({config.pid_dir} has no live smbd.pid); "
            f"{hint}.", config.path
        )
    db = os.path.join(config.lock_dir, SESSION_DB)
    if os.path.exists(db) and not os.access(db, os.R_OK):
        raise AccessDenied(
            f"permission denied reading {db}: Samba's session state is readable by root only. "
            "Run the command with sudo.", db
        )
    return pid


def foreign_root(pid: int) -> str | None:
    """Return the root directory of process ``pid`` when it is not ours (a chroot or a
    container sharing our pid namespace), else None."""
    root = f"/proc/{pid}/root"
    try:
        theirs, ours = os.stat(root), os.stat("/")
    except OSError:
        return None
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        return None
    return root


def config_argument(pid: int) -> str | None:
    """Return the smb.conf that process ``pid`` was started with (``-s``/``--configfile``),
    as that process sees it, or None if it used its default."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode() for a in fh.read().split(b"\0")]
    except (OSError, UnicodeDecodeError):
        return None
    for i, arg in enumerate(argv):
        if arg in ("-s", "--configfile") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--configfile="):
            return arg.split("=", 1)[1]
        if arg.startswith("-s") and len(arg) > 2:
            return arg[2:]
    return None


def samba_command(config: SambaConfig, program: str) -> list[str]:
    """Return the argv prefix that runs Samba tool ``program`` for the server of ``config``:
    the host's tool, or, when that smbd runs in another root, the tool inside that root
    with the smb.conf the smbd itself was started with."""
    pid = smbd_pid(config)
    if pid and config.root:
        # An smbd in other namespaces: run the tool in its mount namespace, on its paths.
        inside = config.path[len(config.root):]
        return ["nsenter", "-t", str(pid), "-m", "--", program, "-s", inside]
    root = foreign_root(pid) if pid else None
    if root is None:
        return [program, "-s", config.path]
    conf = config_argument(pid) if pid else None
    return ["chroot", root, program, *(["-s", conf] if conf else [])]
