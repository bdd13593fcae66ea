"""Where a Samba server keeps its global records, and how to reach the smbd owning one.

A *store* gives the sources three things: the records of one global database
(``smbXsrv_session_global.tdb`` and its siblings), whether the smbd named by a record's
``server_id`` is alive, and a way to send that smbd a message. :class:`LocalStore` is a
server that is not clustered: the databases, ``msg.lock`` and ``msg.sock`` sit in its lock
directory. A clustered server reaches the same things through its local ctdbd.
"""

from __future__ import annotations

import os

from .liveness import Liveness
from .tdb import TdbRecord, read_tdb, stream_tdb

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    from .smbxsrv import ServerId
else:
    Protocol = object

SESSION_DB = "smbXsrv_session_global.tdb"
TCON_DB = "smbXsrv_tcon_global.tdb"
OPEN_DB = "smbXsrv_open_global.tdb"


class RecordScan(Protocol):
    """An iteration over one database's records that counts what it had to skip."""

    skipped: int
    problems: list[str]

    def __iter__(self) -> Iterator[TdbRecord]: ...


class Store(Protocol):
    """What the sources need of a server's record storage (see the module docstring)."""

    def exists(self, db: str) -> bool: ...

    def scan(self, db: str) -> RecordScan: ...

    def reread(self, db: str) -> list[TdbRecord]: ...

    def alive(self, server_id: ServerId) -> bool: ...

    def send(self, server_id: ServerId, msg_type: int, payload: bytes) -> None: ...


class LocalStore:
    """The databases in the lock directory of a server that is not clustered.

    Files are opened read-only, without locks (see :mod:`smbsession.samba.tdb`).
    """

    def __init__(self, lock_dir: str) -> None:
        self.lock_dir = lock_dir
        self._live = Liveness(lock_dir)

    def path(self, db: str) -> str:
        """The file of database ``db``."""
        return os.path.join(self.lock_dir, db)

    def exists(self, db: str) -> bool:
        """True when database ``db`` exists (an smbd that never had a client has none)."""
        return os.path.exists(self.path(db))

    def scan(self, db: str) -> RecordScan:
        """Stream the records of ``db``; chains that cannot be read are counted, not fatal."""
        return stream_tdb(self.path(db))

    def reread(self, db: str) -> list[TdbRecord]:
        """Read ``db`` once more, whole (for records that were being rewritten)."""
        return read_tdb(self.path(db)).records

    def alive(self, server_id: ServerId) -> bool:
        """True when the smbd ``server_id`` names runs (pid and unique id both match)."""
        return self._live.alive(server_id.pid, server_id.unique_id)

    def send(self, server_id: ServerId, msg_type: int, payload: bytes) -> None:
        """Send one Samba message to the smbd ``server_id`` names."""
        from .messaging import send

        send(self.lock_dir, server_id, msg_type, payload)
