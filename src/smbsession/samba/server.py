"""Is the Samba server of an smb.conf running, and may we read its state?"""

from __future__ import annotations

import glob
import os

from ..errors import AccessDenied, ServerNotRunning
from .config import SambaConfig

#: The database that lists sessions; reading it needs root on a real server (mode 0600).
SESSION_DB = "smbXsrv_session_global.tdb"


def smbd_pid(config: SambaConfig) -> int | None:
    """Return the pid of the running main smbd of ``config``, or None if none runs.

    smbd writes ``smbd.pid`` (``smbd-<conf>.pid`` for a non-default smb.conf on some
    builds) into the pid directory; the pid counts only while that process exists.
    """
    for pidfile in sorted(glob.glob(os.path.join(config.pid_dir, "smbd*.pid"))):
        try:
            with open(pidfile, encoding="ascii") as fh:
                pid = int(fh.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 0 and os.path.exists(f"/proc/{pid}"):
            return pid
    return None


def check_readable(config: SambaConfig) -> None:
    """Raise a clear error unless the server is running and its state is readable.

    :class:`ServerNotRunning` when no smbd runs for this smb.conf (says how to start one);
    :class:`AccessDenied` when the session database exists but is root-only.
    """
    if smbd_pid(config) is None:
        raise ServerNotRunning(
            f"no smbd is running for {config.path} ({config.pid_dir} has no live smbd.pid). "
            f"Start it with 'smbd -s {config.path}' (or 'systemctl start smbd'), "
            "or start the lab with 'smbsession lab start'."
        )
    db = os.path.join(config.lock_dir, SESSION_DB)
    if os.path.exists(db) and not os.access(db, os.R_OK):
        raise AccessDenied(
            f"permission denied reading {db}: Samba's session state is readable by root only. "
            "Run the command with sudo."
        )
