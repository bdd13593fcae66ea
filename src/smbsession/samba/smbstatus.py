"""Source: Samba's own ``smbstatus --json`` (Samba 4.17 and later), or the text that
smbstatus prints before 4.17 (which has no ``--json``, and ignores it).

The text (4.13: ``source3/utils/status.c``) lists sessions as PID, Username, Group,
Machine ``name (ipv4:addr:port)``, Protocol Version, Encryption and Signing; it has no
session id and no times, so from it SessionId, SecondsExists, SecondsIdle and
TransportName are unknown (None), said in one warning.

This is Samba's supported interface, and our fallback and test oracle. It knows less than
the databases themselves: before Samba 4.20 it gives no session creation time, it never
gives idle time or the local address, and it ties open files to a (smbd pid, uid) pair
rather than to a session. We count a session's opens the way Samba's own srvsvc does:
the opens of the same smbd process and the same uid. What it cannot tell stays ``None``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from ..errors import SambaNotInstalled, SourceError
from ..model import SmbSession, SourceResult, samba_dialect_name
from .config import SambaConfig
from .names import client_address, user_name
from .server import samba_command

_TIMEOUT = 120


def _run(config: SambaConfig, *flags: str) -> dict[str, Any]:
    cmd = samba_command(config, "smbstatus")
    if cmd[0] == "smbstatus":
        cmd[0] = shutil.which("smbstatus") or "/usr/bin/smbstatus"
    try:
        proc = subprocess.run(
            [*cmd, "--json", *flags],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise SambaNotInstalled(
            "smbstatus is not installed; install Samba (Debian/Ubuntu: apt-get install samba).",
            "smbstatus",
        ) from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"smbstatus did not answer within {_TIMEOUT} s.") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise SourceError(f"smbstatus {' '.join(flags)} failed: {reason}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        version = _TEXT_VERSION.search(proc.stdout)
        if version:  # a release before 4.17: no --json, its text table instead
            return {"_text": proc.stdout, "_version": version.group(1)}
        first = (proc.stdout.strip().splitlines() or [""])[0][:80]
        raise SourceError(f"smbstatus printed neither JSON nor its session table "
                          f"({exc}; it began: {first!r})") from None
    if not isinstance(data, dict):
        raise SourceError("smbstatus printed JSON that is not an object")
    return data


def _seconds_since(iso: str | None, now: datetime) -> int | None:
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0, int((now - then).total_seconds()))


def _pair(node: Any) -> tuple[str | None, str | None]:
    if not isinstance(node, dict):
        return None, None
    cipher = node.get("cipher")
    return (None if cipher in (None, "-") else cipher), node.get("degree")


def _open_counts(data: dict[str, Any]) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    for entry in (data.get("open_files") or {}).values():
        for op in (entry.get("opens") or {}).values():
            pid = str((op.get("server_id") or {}).get("pid"))
            counts[(pid, int(op.get("uid", -1)))] += 1
    return counts


def _shares(data: dict[str, Any]) -> dict[str, list[str]]:
    shares: dict[str, list[str]] = {}
    for tcon in (data.get("tcons") or {}).values():
        name = tcon.get("service")
        sid = str(tcon.get("session_id"))
        if name and name not in shares.setdefault(sid, []):
            shares[sid].append(name)
    return shares


#: How Windows names the user of an anonymous session.
ANONYMOUS = "NT AUTHORITY\\ANONYMOUS LOGON"


def _uid_of(account: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return None


_TEXT_VERSION = re.compile(r"^Samba version (\S+)", re.M)
_TEXT_SESSION = re.compile(
    r"^(\d+)\s+(\S+)\s+(\S+)\s+(.*?)\s*\((ip(?:v4|v6):.*?)\)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_TEXT_LOCK = re.compile(r"^(\d+)\s+(\d+)\s+DENY_\S+\s+0x[0-9a-f]+\s", re.M)
_TEXT_SHARE = re.compile(r"^(\S+)\s+(\d+)\s+\S+\s+\w{3} \w{3} [ \d]\d \d", re.M)


def _passwd(config: SambaConfig) -> dict[str, int]:
    """User name -> uid as the server's root sees them (its chroot's /etc/passwd)."""
    from .server import foreign_root, smbd_pid

    pid = smbd_pid(config)
    root = (foreign_root(pid) if pid else None) or "/"
    users: dict[str, int] = {}
    try:
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as fh:
            for line in fh:
                parts = line.split(":")
                if len(parts) > 2 and parts[2].isdigit():
                    users[parts[0]] = int(parts[2])
    except OSError:
        pass
    return users


def parse_text(text: str, config: SambaConfig) -> SourceResult:
    """Sessions from the text smbstatus prints before Samba 4.17 (see the module's notes).

    NumOpens counts the locked files of the session's smbd and user (as the JSON path
    does); Shares are the services of the session's smbd when it serves only that session.
    """
    version = _TEXT_VERSION.search(text)
    release = version.group(1) if version else "(unknown)"
    rows = []
    for line in text.splitlines():
        m = _TEXT_SESSION.match(line)
        if m:
            rows.append(m.groups())
    uids = _passwd(config)
    opens: Counter[tuple[str, int]] = Counter((m.group(1), int(m.group(2)))
                                              for m in _TEXT_LOCK.finditer(text))
    per_pid = Counter(r[0] for r in rows)
    services: dict[str, list[str]] = {}
    for m in _TEXT_SHARE.finditer(text):
        names = services.setdefault(m.group(2), [])
        if m.group(1) not in names:
            names.append(m.group(1))
    clustered = config.clustering
    sessions = []
    for pid, user, _group, machine, address, protocol, enc, sig in rows:
        host = client_address(address)
        uid = uids.get(user)
        sessions.append(SmbSession(
            session_id=None,  # type: ignore[arg-type]
            client_computer_name=host,
            client_user_name=user_name(user, config),
            cluster_node_name="" if not clustered else None,
            dialect=samba_dialect_name(protocol),
            num_opens=None if uid is None else opens.get((pid, uid), 0),
            scope_name="*" if not clustered else None,
            seconds_exists=None,
            seconds_idle=None,
            transport_name=None,
            client_netbios_name=machine if machine and machine != host else None,
            client_guid=None,
            encryption_cipher=None if enc == "-" else enc,
            encryption_degree=None,
            signing_cipher=None if sig in ("-", "partial(") else sig,
            signing_degree=None,
            shares=tuple(services.get(pid, ())) if per_pid[pid] == 1 else None,
            smbd_pid=int(pid),
            hidden=False,
        ))
    warning = (f"Samba {release}'s smbstatus has no --json and prints no session ids or "
               "times: SessionId, SecondsExists, SecondsIdle and TransportName are unknown")
    return SourceResult(sessions=sessions, warnings=[warning], source="smbstatus (text)")


def _cluster_nodes(config: SambaConfig, warnings: list[str]) -> Any:
    """The cluster's node names from the local ctdbd, or None (with a warning)."""
    from ..errors import ClusterUnavailable
    from .cluster_store import ClusterStore, ctdbd_socket

    store = ClusterStore(ctdbd_socket(config.path), config.lock_dir)
    try:
        return store.nodes
    except ClusterUnavailable as exc:
        warnings.append(f"ClusterNodeName is the node's PNN: {exc}")
        return None
    finally:
        store.close()


def read_sessions(config: SambaConfig, now: datetime | None = None) -> SourceResult:
    """Return the live sessions of the Samba server ``config`` describes, via smbstatus.

    Runs ``smbstatus --json`` once (sessions, tree connects and open files). When that
    aborts (Samba 4.17 does on some oplock states), it retries with ``--json -b``
    (sessions only) and reports NumOpens and Shares as unknown, with a warning.
    Raises :class:`~smbsession.errors.SourceError` when smbstatus cannot be used at all.
    """
    now = now or datetime.now(timezone.utc)
    warnings: list[str] = []
    try:
        data = _run(config)
        if "_text" in data:
            return parse_text(data["_text"], config)
        full = True
    except SourceError as exc:
        warnings.append(f"{exc}; NumOpens and Shares are unknown for this listing")
        data = _run(config, "-b")
        full = False
    opens = _open_counts(data) if full else None
    shares = _shares(data) if full else None
    clustered = config.clustering
    nodes = _cluster_nodes(config, warnings) if clustered else None
    scope = config.netbios_name if clustered else "*"
    guest_uid = _uid_of(config.guest_account)
    sessions = []
    for raw in (data.get("sessions") or {}).values():
        try:
            server_id = raw.get("server_id") or {}
            pid = str(server_id.get("pid"))
            uid = int(raw.get("uid", -1))
            sid = str(raw["session_id"])
            vnn = int(server_id.get("vnn", 0xFFFFFFFF))
            enc_cipher, enc_degree = _pair(raw.get("encryption"))
            sig_cipher, sig_degree = _pair(raw.get("signing"))
            username = raw.get("username") or ""
            # smbstatus shows an anonymous session as the guest account's Unix user;
            # it cannot tell it from a guest login, so both count as anonymous here.
            anonymous = uid == guest_uid
            if anonymous:
                username = ""
            address = client_address(raw.get("hostname") or "")
            netbios = raw.get("remote_machine") or None
            sessions.append(
                SmbSession(
                    session_id=int(sid),
                    client_computer_name=address,
                    client_user_name=user_name(username, config) if username
                    else ANONYMOUS if anonymous else "",
                    cluster_node_name=(nodes.name(vnn) if nodes is not None else str(vnn))
                    if clustered and vnn != 0xFFFFFFFF else "",
                    cluster_node_keys=nodes.keys(vnn) if nodes is not None else (),
                    dialect=samba_dialect_name(raw.get("session_dialect")),
                    num_opens=None if opens is None else opens.get((pid, uid), 0),
                    scope_name=scope,
                    seconds_exists=_seconds_since(raw.get("creation_time"), now),
                    seconds_idle=None,
                    transport_name=None,
                    client_netbios_name=netbios if netbios != address else None,
                    client_guid=raw.get("client_guid") or None,
                    encryption_cipher=enc_cipher,
                    encryption_degree=enc_degree,
                    signing_cipher=sig_cipher,
                    signing_degree=sig_degree,
                    shares=None if shares is None else tuple(shares.get(sid, ())),
                    smbd_pid=int(pid),
                    hidden=not username,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            warnings.append(f"smbstatus: skipped a session record it could not read ({exc!r})")
    sessions.sort(key=lambda s: s.session_id)
    return SourceResult(sessions=sessions, warnings=warnings, source="smbstatus")
