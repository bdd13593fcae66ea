"""Which smbd processes named in Samba's records are still alive.

A record of Samba's global databases names the smbd that owns it by ``server_id`` (pid and
a random 64-bit ``unique_id``). Records of a crashed smbd linger until cleaned up, and pids
are reused, so a record counts only when its pid exists and ``<lockdir>/msg.lock/<pid>``
(written by that smbd's messaging) holds the same unique id: the check smbstatus makes.
"""

from __future__ import annotations

import os

#: A unique id that asks not to be verified (Samba's SERVERID_UNIQUE_ID_NOT_TO_VERIFY).
UNIQUE_ID_NOT_TO_VERIFY = 2**64 - 1


class Liveness:
    """Answers "is this server_id alive?", reading each pid's lock file once."""

    def __init__(self, lock_dir: str) -> None:
        self._msg_lock = os.path.join(lock_dir, "msg.lock")
        self._unique: dict[int, int | None] = {}

    def _unique_of(self, pid: int) -> int | None:
        if pid not in self._unique:
            value: int | None = None
            if pid > 0 and os.path.exists(f"/proc/{pid}"):
                try:
                    with open(os.path.join(self._msg_lock, str(pid)), "rb") as fh:
                        value = int(fh.read(64).strip() or b"-1")
                except (OSError, ValueError):
                    value = None
            self._unique[pid] = value
        return self._unique[pid]

    def alive(self, pid: int, unique_id: int) -> bool:
        """True when smbd ``pid`` runs and is the one with ``unique_id``."""
        if unique_id == UNIQUE_ID_NOT_TO_VERIFY:
            return pid > 0 and os.path.exists(f"/proc/{pid}")
        known = self._unique_of(pid)
        return known is not None and known == unique_id
