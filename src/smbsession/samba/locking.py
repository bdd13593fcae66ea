"""NumOpens before Samba 4.23, split by share: the share mode entries of ``locking.tdb``.

Before 4.23 an smbXsrv open record names its smbd and its owner's SID, not its session,
so :mod:`smbsession.samba.tdb_source` counts opens per group of sessions with the same
(smbd, user SID). ``locking.tdb`` says more: each open file has a record whose share mode
data names the path of the share it was opened through (``servicepath``), and one share
mode entry per open, which names its smbd (``server_id``) and the opener's uid. When the
sessions of a group have tree connects on shares with distinct, non-nested paths, every
open of the group lies on exactly one session's shares, and :func:`split_opens` gives
each such session its exact count. It gives nothing (the old rules stay) where that is
not certain: two sessions of the group on one share path (or nested ones), a session
whose share has no path in smb.conf, another user's sessions with the same uid in that
smbd, a ``force user`` share anywhere, entries that do not add up with the group's open
records, a clustered server (its ``locking.tdb`` is a ctdb database, not read here), or
a ``locking.tdb`` that cannot be read.

The servicepath is the path of the share the *first* opener of the file used, so nested
share paths cannot be told apart; shares are matched by the identity of their directory
(``st_dev``, ``st_ino``), seen through ``/proc/<smbd>/root`` (chroots and containers),
never by spelling.

The record format, declared once per release series (:data:`FORMATS`). A
``locking.tdb`` value is three wrappers around the share mode data, all little-endian:

1. ``dbwrap_watch`` (source3/lib/dbwrap/dbwrap_watch.c, ``dbwrap_watch_rec_parse``):
   u32 watcher count, then per watcher a server_id (24 bytes) and a u64 instance; an
   empty value is a fresh record.
2. ``g_lock`` (source3/lib/g_lock.c, ``g_lock_parse``): the exclusive holder
   (server_id, 24 bytes: u64 pid, u32 task_id, u32 vnn, u64 unique_id, as
   ``server_id_put`` in lib/util/server_id.c writes it), u64 ``unique_data_epoch``
   (4.13 to 4.16; from samba-4.17.0 preceded by u64 ``unique_lock_epoch``), u32 count of
   shared holders and their server_ids; the rest is the data. A value shorter than this
   header holds no data.
3. ``locking_tdb_data`` (source3/locking/share_mode_lock.c, ``locking_tdb_data_get``):
   u32 length of the NDR ``share_mode_data``, that NDR, then the share mode entries, a
   sorted array of fixed-size NDR ``share_mode_entry`` blobs (``share_mode_entry_buf``:
   132 bytes from 4.13 to 4.22, 124 from 4.23).

``share_mode_data`` and ``share_mode_entry`` are in source3/librpc/idl/open_files.idl:
:data:`SHARE_MODE_DATA`, :data:`DELETE_TOKEN` and :data:`SHARE_MODE_ENTRY` below, with
the tags that changed them. pidl quirk, seen in every 4.13..4.22 record: ``timeval`` is
not a pidl type, so pidl calls ``ndr_push_timeval`` again in the structure's buffers part,
and it marshals the time a second time after the scalars (132 = 120 + 12 bytes).
"""

from __future__ import annotations

import os
import struct
from collections import Counter, defaultdict

from . import layouts
from .ndr import NdrError, string, text
from .tdb import TdbFormatError

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .server import Server
    from .smbxsrv import SessionGlobal

LOCKING_DB = "locking.tdb"

#: ``share_mode_data`` (open_files.idl), the scalars up to the first deferred string, as
#: (name, NDR type, since, until). ``S[*n]``: a conformant array that is not the last
#: member, so its u32 size is marshalled in place, before its elements.
SHARE_MODE_DATA = (
    ("unique_content_epoch", "hyper", "4.13", None),
    ("flags", "uint16", "4.13", None),  # share_mode_flags, bitmap16bit
    ("servicepath", "ustring", "4.13", None),
    ("base_name", "ustring", "4.13", None),
    ("stream_name", "ustring", "4.13", None),
    ("num_delete_tokens", "uint32", "4.13", None),
    ("delete_tokens", "delete_token[*num_delete_tokens]", "4.13", None),
    ("old_write_time", "NTTIME", "4.13", "4.23"),
    ("changed_write_time", "NTTIME", "4.13", "4.23"),
    ("id", "file_id", "4.13", None),  # [ignore] in the IDL, yet marshalled: the record's key
)
#: ``delete_token`` (open_files.idl): its scalars (two unique pointers follow the key).
DELETE_TOKEN = (
    ("name_hash", "uint32", "4.13", None),
    ("parent_lease_key", "hyper[2]", "4.22", None),  # smb2_lease_key
    ("delete_nt_token", "pointer", "4.13", None),
    ("delete_token", "pointer", "4.13", None),
)
#: ``share_mode_entry`` (open_files.idl), every member (the structure has no pointers).
SHARE_MODE_ENTRY = (
    ("pid", "server_id", "4.13", None),
    ("op_mid", "hyper", "4.13", None),
    ("op_type", "uint16", "4.13", None),  # an enum16bit from 4.22
    ("client_guid", "GUID", "4.13", None),
    ("lease_key", "hyper[2]", "4.13", None),
    ("access_mask", "uint32", "4.13", None),
    ("share_access", "uint32", "4.13", None),
    ("private_options", "uint32", "4.13", "4.23"),
    ("time", "timeval", "4.13", None),
    ("share_file_id", "udlong", "4.13", None),
    ("uid", "uint32", "4.13", None),
    ("flags", "uint16", "4.13", None),  # share_entry_flags, bitmap16bit from 4.23
    ("name_hash", "uint32", "4.13", None),
)
#: (size, alignment) of each NDR type above; ``timeval`` is ndr_push_timeval's hyper
#: seconds and u32 microseconds.
_TYPES = {
    "uint16": (2, 2), "uint32": (4, 4), "pointer": (4, 4), "ustring": (4, 4),
    "hyper": (8, 8), "NTTIME": (8, 4), "udlong": (8, 4), "GUID": (16, 4),
    "hyper[2]": (16, 8), "server_id": (24, 8), "file_id": (24, 4), "timeval": (12, 8),
}


class LockingFormat:
    """The ``locking.tdb`` format of one range of releases (see the module's notes):
    ``g_lock_epochs`` u64 epochs in the g_lock header, ``entry_size`` the fixed size of a
    share mode entry (``share_mode_entry_buf`` in share_mode_lock.c), ``tag`` where it
    was read."""

    __slots__ = ("entry_size", "g_lock_epochs", "name", "tag")

    def __init__(self, name: str, tag: str, g_lock_epochs: int, entry_size: int) -> None:
        self.name = name
        self.tag = tag
        self.g_lock_epochs = g_lock_epochs
        self.entry_size = entry_size


#: Every format, oldest first; a release uses the newest one whose name is not after it.
#: Read at each tag in between too (samba-4.13.0 .. samba-4.22.x): no point release
#: changed them. From 4.23 opens name their session, so nothing here is needed.
FORMATS = (
    LockingFormat("4.13", "samba-4.13.0", g_lock_epochs=1, entry_size=132),
    LockingFormat("4.17", "samba-4.17.0", g_lock_epochs=2, entry_size=132),  # lock epoch
    LockingFormat("4.22", "samba-4.22.0", g_lock_epochs=2, entry_size=132),  # lease key
)


def _series(name: str) -> tuple[int, int]:
    return layouts._point(name)[:2]


def _alive(since: str, until: str | None, at: tuple[int, int]) -> bool:
    return _series(since) <= at and (until is None or at < _series(until))


def _layout(fields: tuple, at: tuple[int, int]) -> tuple[dict[str, int], int, int]:
    """The offsets of a structure's members at release ``at`` (NDR: every member aligned
    to its type, the whole to the largest alignment), its size and alignment."""
    members = [(n, t) for n, t, since, until in fields if _alive(since, until, at)]
    align = max(_TYPES[t][1] for _, t in members)
    offsets, pos = {}, 0
    for name, ndr in members:
        size, a = _TYPES[ndr]
        pos = (pos + a - 1) & ~(a - 1)
        offsets[name] = pos
        pos += size
    return offsets, (pos + align - 1) & ~(align - 1), align


class _Decoder:
    """The decoder of one release's ``locking.tdb`` values."""

    def __init__(self, release: str) -> None:
        at = _series(release)
        if not _series("4.13") <= at < _series("4.23"):
            raise KeyError(release)
        fmt = [f for f in FORMATS if _series(f.name) <= at][-1]
        self.format = fmt
        self.g_lock_head = 24 + 8 * fmt.g_lock_epochs + 4
        entry, size, _ = _layout(SHARE_MODE_ENTRY, at)
        if size + _TYPES["timeval"][0] != fmt.entry_size:  # the second time (see above)
            raise AssertionError(f"share_mode_entry of {release}: {size} + 12 bytes, "
                                 f"{fmt.name} stores {fmt.entry_size}")
        self.uid_at = entry["uid"]
        self.entry = struct.Struct(f"<QIIQ{self.uid_at - 24}xI").unpack_from
        smd = [(n, t) for n, t, since, until in SHARE_MODE_DATA if _alive(since, until, at)]
        self.smd = smd
        _, self.token_size, self.token_align = _layout(DELETE_TOKEN, at)

    def entries(self, key: bytes, value: bytes) -> tuple[str, list[tuple]]:
        """The servicepath and the entries ((pid, task_id, vnn, unique_id, uid), ...) of
        one record. Raises :class:`NdrError` when it does not decode exactly."""
        u32 = struct.unpack_from
        try:
            if not value:
                return "", []
            watchers = u32("<I", value, 0)[0]
            p = 4 + 32 * watchers
            if p > len(value):
                raise NdrError(f"{watchers} watchers do not fit in {len(value)} bytes")
            if len(value) - p < self.g_lock_head:
                return "", []
            p += self.g_lock_head
            shared = u32("<I", value, p - 4)[0]
            p += 24 * shared
            if p > len(value):
                raise NdrError(f"{shared} shared holders do not fit")
            if p == len(value):
                return "", []
            smd_len = u32("<I", value, p)[0]
            start = p + 4
            smd = value[start:start + smd_len]
            rest = len(value) - start - smd_len
            size = self.format.entry_size
            if rest < 0 or rest % size:
                raise NdrError(f"share mode entries of {rest} bytes ({size} each)")
            if not rest:
                return "", []
            path = self._servicepath(smd, key)
            base = start + smd_len
            return path, [self.entry(value, base + i * size)
                          for i in range(rest // size)]
        except struct.error as exc:
            raise NdrError(f"short record: {exc}") from None

    def _servicepath(self, d: bytes, key: bytes) -> str:
        """The share path of one ``share_mode_data``, checked against the record's key
        (the structure's own file_id)."""
        u32 = struct.unpack_from
        p, path_ref, count, file_id = 0, 0, 0, b""
        for name, ndr in self.smd:
            if ndr.startswith("delete_token["):
                p = (p + 3) & ~3
                if u32("<I", d, p)[0] != count:
                    raise NdrError("delete token array size differs from its count")
                p += 4
                if count:
                    a = self.token_align
                    p = ((p + a - 1) & ~(a - 1)) + count * self.token_size
                continue
            size, a = _TYPES[ndr]
            p = (p + a - 1) & ~(a - 1)
            if name == "servicepath":
                path_ref = u32("<I", d, p)[0]
            elif name == "num_delete_tokens":
                count = u32("<I", d, p)[0]
            elif name == "id":
                file_id = d[p:p + size]
            p += size
        if file_id != key:
            raise NdrError(f"file id {file_id.hex()} differs from the key {key.hex()}")
        if not path_ref:
            return ""
        raw, _ = string(d, (p + 7) & ~7)
        return text(raw)


def _decoder(release: str | None) -> _Decoder | None:
    try:
        return _Decoder(release or "")
    except (KeyError, ValueError):
        return None


def read_entries(server: Server) -> dict[tuple[int, int, int], Counter[str]] | None:
    """The share mode entries of ``server``'s ``locking.tdb``, counted by (smbd pid,
    unique id, uid) and servicepath; None when it cannot be read (nothing is reported:
    the old rules stay)."""
    from .store import LocalStore

    store = server.store
    decoder = _decoder(server.release)
    if decoder is None or not isinstance(store, LocalStore) or not store.exists(LOCKING_DB):
        return None
    from .tdb import read_tdb

    for attempt in (1, 2):  # smbd may be rewriting a record: read the file once more
        try:
            scan = read_tdb(store.path(LOCKING_DB))
            if scan.skipped:
                raise TdbFormatError("; ".join(scan.problems[:1]))
            out: dict[tuple[int, int, int], Counter[str]] = defaultdict(Counter)
            for record in scan.records:
                path, entries = decoder.entries(record.key, record.value)
                for pid, _task, _vnn, unique_id, uid in entries:
                    out[(pid, unique_id, uid)][path] += 1
            return out
        except (NdrError, TdbFormatError, OSError):
            if attempt == 2:
                return None
    return None


def _section_paths(path: str, root: str | None, depth: int = 0,
                   out: dict[str, dict[str, str]] | None = None,
                   section: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``{share name (lower case): {"path": ..., "forceuser": ...}}`` of an smb.conf,
    following ``include =`` as Samba does (in any section)."""
    from .config import SECTION, entries

    out = {} if out is None else out
    section = ["global"] if section is None else section
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    for key, value in entries(text):
        if key == SECTION:
            section[0] = value
            out.setdefault(value, {})
            continue
        if key == "include" and depth < 10:
            target = value.strip()
            if "%" in target:
                out.setdefault(section[0], {})["include%"] = target
                continue
            if root and target.startswith("/"):
                target = root + target
            if os.path.exists(target):
                _section_paths(target, root, depth + 1, out, section)
            continue
        out.setdefault(section[0], {})[key] = value
    return out


class _Shares:
    """Where each share's directory is (its identity), from the smb.conf the reader
    parsed; a share whose path cannot be known (none, %-substitutions, not there) has no
    identity."""

    def __init__(self, server: Server) -> None:
        config = server.config
        self.root = config.root
        try:
            self.sections = _section_paths(config.path, config.root)
        except OSError:
            self.sections = {}
        self.usable = bool(self.sections) and not any(
            "forceuser" in s or "include%" in s for s in self.sections.values())
        self.known: dict[str, tuple[tuple[int, int], str] | None] = {}

    def of(self, share: str) -> tuple[tuple[int, int], str] | None:
        """(identity, real path) of ``share``'s directory, or None."""
        name = share.lower()
        if name not in self.known:
            self.known[name] = None
            if name == "ipc$":  # named pipes: no directory, no share mode entries
                self.known[name] = ((-1, -1), "")
                return self.known[name]
            path = self.sections.get(name, {}).get("path", "") if name != "global" else ""
            if path.startswith("/") and "%" not in path:
                seen = (self.root or "") + path
                try:
                    st = os.stat(seen)
                    self.known[name] = ((st.st_dev, st.st_ino), os.path.realpath(seen))
                except OSError:
                    pass
        return self.known[name]


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def split_opens(server: Server, groups: Iterable[tuple[list[SessionGlobal], int]],
                shares: dict[int, list[str]], sessions: list[SessionGlobal],
                ) -> dict[int, int]:
    """Exact NumOpens of sessions of groups that the open records cannot split.

    ``groups``: (the group's sessions with tree connects, the group's open count), for
    groups of two or more sessions with tree connects, at least one open, and a session
    alone in the group on one of its shares (the caller's cheap test, by share name);
    ``shares`` the share names of each session's tree connects; ``sessions`` every live
    session. Returns ``{session global id: count}`` for the sessions whose count is
    certain (see the module's notes); ``locking.tdb`` is read only when some group may
    be split.
    """
    if server.config.clustering:
        return {}
    todo = list(groups)
    if not todo:
        return {}
    where = _Shares(server)
    if not where.usable:
        return {}
    candidates = []
    for members, count in todo:
        dirs = {g.session_global_id: [where.of(s) for s in shares[g.session_global_id]]
                for g in members}
        uids = {g.uid for g in members}
        uid = uids.pop() if len(uids) == 1 else None
        if uid is None or any(d is None for ds in dirs.values() for d in ds):
            continue
        candidates.append((members, count, dirs, uid))
    if not candidates:
        return {}
    entries = read_entries(server)
    if entries is None:
        return {}
    sids_of_uid: dict[tuple[int, int], set] = defaultdict(set)
    for g in sessions:
        sids_of_uid[(g.channels[0].server_id.pid, -1 if g.uid is None else g.uid)].add(
            g.user_sid_raw)
    identities: dict[tuple[int, str], tuple[int, int] | None] = {}
    out: dict[int, int] = {}
    for members, count, dirs, uid in candidates:
        sid = members[0].channels[0].server_id
        if len(sids_of_uid[(sid.pid, uid)]) != 1:
            continue  # another SID with this uid in the same smbd: its entries mix in
        found = entries.get((sid.pid, sid.unique_id, uid), Counter())
        if sum(found.values()) != count:
            continue  # entries and open records do not add up
        by_dir: Counter[tuple[int, int]] = Counter()
        for path, n in found.items():
            ident = _identity(identities, sid.pid, path)
            if ident is None:
                break
            by_dir[ident] += n
        else:
            mine = {gid: {d[0] for d in ds if d and d[1]} for gid, ds in dirs.items()}
            real = {gid: [d[1] for d in ds if d and d[1]] for gid, ds in dirs.items()}
            if not set(by_dir) <= set().union(*mine.values()):
                continue  # an open on a path none of the group's shares has
            for gid in mine:
                others = [p for o in real if o != gid for p in real[o]]
                if any(_nested(p, q) for p in real[gid] for q in others) or any(
                        mine[gid] & mine[o] for o in mine if o != gid):
                    continue  # one directory (bind mounts too), or nested: not told apart
                out[gid] = sum(by_dir[d] for d in mine[gid])
    return out


def _identity(cache: dict[tuple[int, str], tuple[int, int] | None], pid: int,
              path: str) -> tuple[int, int] | None:
    """The identity of directory ``path`` as smbd ``pid`` sees it."""
    key = (pid, path)
    if key not in cache:
        cache[key] = None
        if path.startswith("/"):
            try:
                st = os.stat(f"/proc/{pid}/root{path}")
                cache[key] = (st.st_dev, st.st_ino)
            except OSError:
                pass
    return cache[key]
