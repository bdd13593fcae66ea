"""Remote SMB servers through MS-SRVS: ``-CimSession smb://[DOMAIN\\user@]host[:port]``.

The server's own srvsvc RPC interface (MS-SRVS ``NetrSessionEnum``, opnum 12) is asked
for its session list over the ``\\srvsvc`` named pipe, as ``net session`` on Windows
does. It works against Windows and Samba servers alike and needs nothing on the server;
the client side is impacket (the optional extra ``smbsession[remote]``), imported only
when a listing is made.

**Who may ask.** Since Windows 10 1607 and Windows Server 2019, ``NetrSessionEnum`` is
restricted to Administrators (and operators) by default; older releases answer levels 0
and 10 to any authenticated user and levels 1, 2 and 502 to Administrators and
operators only. Samba answers only members of ``BUILTIN\\Administrators`` (root, or an
account mapped into that group with ``net groupmap``). Anyone else gets
:class:`RemoteAccessDenied`.

**Levels.** The information levels 502, 10, 1 and 0 are tried in that order; a level the
server refuses (invalid level, or access denied) moves on to the next. Windows answers
502 to administrators. Samba answers only levels 0 and 1 (checked on 4.17).

**Properties.** Each ``SESSION_INFO_*`` entry becomes an :class:`SmbSession`:

============================  =========================================================
ClientComputerName            ``sesiX_cname`` without its leading ``\\\\``; an IPv6
                              address in brackets, an IPv4-mapped one as IPv4
ClientUserName                ``sesiX_username`` as the server gives it (Windows and
                              Samba give the bare account, ``alice``; a ``DOMAIN\\user``
                              is kept); levels 1, 10, 502
NumOpens                      ``sesiX_num_opens`` (levels 1, 502). Samba counts the
                              opens of the session's smbd and user, so two sessions of
                              one user on one connection may each show both's opens
SecondsExists                 ``sesiX_time`` (levels 1, 10, 502); a value above 2**31
                              is a negative difference wrapped to 32 bits (Samba gives
                              4294967295 for a session made this second): None
SecondsIdle                   ``sesiX_idle_time`` (levels 10, 502; level 1 only from a
                              server that also knows level 10). Samba's level 1 always
                              reports 0, so from Samba it is None, not 0
TransportName                 ``sesi502_transport`` (level 502 only)
SessionId                     :data:`NO_SESSION_ID` (0), see below
Dialect, ScopeName,           None: MS-SRVS does not report them
ClusterNodeName, extras
SmbInstance                   ``Default``
PSComputerName                the target as the user wrote it
============================  =========================================================

A property the answering level does not carry is None. A session without a user name
(an anonymous one) is marked hidden, as the local Samba source hides anonymous sessions.
The listing includes the session this module itself opens to ask the server.

**SessionId.** MS-SRVS has no session identifier: no ``SESSION_INFO_*`` level carries the
id the SMB server uses, and nothing else in srvsvc maps a session to one. These records
carry :data:`NO_SESSION_ID`, 0, which no SMB2/3 server gives a session (0 is the id a
client sends *before* it has a session), so it can never be confused with a real id;
a ``-SessionId`` filter therefore selects none of these sessions. It is not a counter or
a hash: those would look like ids and change from one listing to the next.

**Spelling.** Each ``DOMAIN\\user`` is respelled as the directory spells it through the
server's LSA (:func:`directory_names`). On a domain member whose winbind cache may have
given a name's spelling (lower case, as srvsvc wrote it), the domain's DC is asked too
(:func:`controller_names`): one more SMB connection, only when needed; if it fails the
member's spelling is kept.

**Bounds.** Every network operation has a timeout, and the whole listing a deadline of
``timeout`` seconds. A listing stops with :class:`RemoteError` after
:data:`MAX_PAGES` pages, :data:`MAX_ENTRIES` sessions or :data:`MAX_BYTES` bytes of RPC
answers, so a hostile server can make it neither loop nor grow forever.

**Errors.** Every failure is a :class:`RemoteError` whose message is
``<target>: <reason>``; the password is never part of a message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import ExtraMissing, InvalidParameter, KerberosError, RemoteAccessDenied, RemoteError
from ..model import NO_SESSION_ID, SmbSession
from ..samba.names import windows_host

#: The SessionId of every record from this source: MS-SRVS reports no session id, and 0
#: is never the id of an established SMB2/3 session.

#: Information levels tried, best first.
LEVELS: tuple[int, ...] = (502, 10, 1, 0)

#: Limits on one listing (see the module docstring, "Bounds").
MAX_PAGES = 10_000
MAX_ENTRIES = 500_000
MAX_BYTES = 256 * 1024 * 1024
#: ``PreferedMaximumLength`` asked for each page (servers may return more or less).
PAGE_BYTES = 256 * 1024

# Win32 error codes (MS-ERREF 2.2) a NetrSessionEnum answer can carry.
_ERROR_SUCCESS = 0
_ERROR_ACCESS_DENIED = 5
_ERROR_NOT_SUPPORTED = 50
_ERROR_INVALID_LEVEL = 124
_ERROR_MORE_DATA = 234
_NERR_NAMES = {
    5: "ERROR_ACCESS_DENIED",
    8: "ERROR_NOT_ENOUGH_MEMORY",
    50: "ERROR_NOT_SUPPORTED",
    87: "ERROR_INVALID_PARAMETER",
    124: "ERROR_INVALID_LEVEL",
    2221: "NERR_UserNotFound",
    2312: "NERR_ClientNameNotFound",
}

#: User names a Samba srvsvc gives anonymous sessions (its default guest account).
_GUEST_NAMES = frozenset({"nobody"})

_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_NO_PASSWORD = (
    "-CimSession: an smb:// target must not carry a password (user:password@): it would "
    "show in messages, process lists and PSComputerName; write smb://[DOMAIN\\user@]host[:port]"
    " and give the password separately."
)



@dataclass(frozen=True)
class SmbTarget:
    """An ``smb://[DOMAIN\\user@]host[:port]`` target.

    ``host`` is a name or an address (IPv6 without brackets), ``user`` and ``domain``
    are None when the target names none, ``raw`` is the target as the user wrote it
    (what messages and PSComputerName show; empty: the canonical form is used).
    """

    host: str
    port: int = 445
    user: str | None = None
    domain: str | None = None
    raw: str = ""

    def __str__(self) -> str:
        if self.raw:
            return self.raw
        host = f"[{self.host}]" if ":" in self.host else self.host
        who = self.user or ""
        if self.domain:
            who = f"{self.domain}\\{who}"
        return f"smb://{who + '@' if who else ''}{host}" + (
            f":{self.port}" if self.port != 445 else ""
        )


def _bad_target(text: str, why: str) -> InvalidParameter:
    return InvalidParameter(
        f"-CimSession: '{text}' is not an SMB target ({why}); write "
        "smb://[DOMAIN\\user@]host[:port]."
    )


def parse_smb_target(text: str) -> SmbTarget:
    """Parse ``smb://[DOMAIN\\user@]host[:port]`` into an :class:`SmbTarget`.

    The scheme is case-insensitive and a trailing ``/`` is allowed. ``host`` is a DNS or
    NetBIOS name, an IPv4 address, or an IPv6 address in brackets
    (``smb://[fe80::1%eth0]:4445``); ``port`` defaults to 445. The user is written
    ``DOMAIN\\user``, ``DOMAIN;user`` (the smb: URL spelling) or ``user`` (also
    ``user@dns.domain``). A password in the target (``user:secret@``) is refused, and the
    message then does not repeat the target.

    Raises :class:`~smbsession.errors.InvalidParameter` naming the value otherwise.
    """
    rest = text.strip()
    if rest[:6].lower() != "smb://":
        raise _bad_target(text, "it does not start with smb://")
    rest = rest[6:]
    if rest.endswith("/"):
        rest = rest[:-1]
    userinfo, at, hostport = rest.rpartition("@")
    user = domain = None
    if at:
        if ":" in userinfo:
            raise InvalidParameter(_NO_PASSWORD)
        sep = "\\" if "\\" in userinfo else (";" if ";" in userinfo else None)
        if sep is None:
            user = userinfo
        else:
            domain, _, user = userinfo.partition(sep)
            if not domain:
                raise _bad_target(text, "an empty domain before the user")
        if not user or any(c in user for c in "\\;/ \t"):
            raise _bad_target(text, "no valid user name before '@'")
    if hostport.startswith("["):
        inner, bracket, after = hostport[1:].partition("]")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise _bad_target(text, f"'{inner}' in brackets is not an IPv6 address") from None
        if not bracket or (after and not after.startswith(":")):
            raise _bad_target(text, "only ':port' may follow the bracketed address")
        host, port_text = inner, after[1:] if after else None
    else:
        if hostport.count(":") > 1:
            raise _bad_target(text, "an IPv6 address must be written in brackets")
        host, colon, port_text = hostport.partition(":")
        port_text = port_text if colon else None
        if not _HOST_NAME.match(host):
            raise _bad_target(text, f"'{host}' is not a host name or address"
                              if host else "no host")
    port = 445
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise _bad_target(text, f"'{port_text}' is not a port from 1 to 65535")
        port = int(port_text)
    return SmbTarget(host=host, port=port, user=user, domain=domain, raw=text)


# --- mapping -----------------------------------------------------------------------------

def _text(value: object) -> str | None:
    """An NDR string from impacket (``'abc\\x00'``; a NULL pointer reads as ``b''``) as
    str, or None when it is NULL or empty."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    return value.split("\x00", 1)[0] or None


def _string(entry: object, key: str) -> str | None:
    """The string field ``key`` of an entry. impacket decodes UTF-16 only when a field is
    read, and fails on text that is not UTF-16 (a lone surrogate): such a field is read
    from its bytes with the bad units replaced, so one odd name costs no session."""
    try:
        return _text(entry[key])  # type: ignore[index]
    except UnicodeDecodeError:
        try:
            units = entry.fields[key].fields["Data"].fields["Data"]  # type: ignore[attr-defined]
            return _text(bytes(units).decode("utf-16-le", errors="replace"))
        except (AttributeError, KeyError, TypeError):
            return None


def client_computer_name(cname: str | None) -> str | None:
    """Turn ``sesiX_cname`` into Windows' ClientComputerName spelling: the leading
    ``\\\\`` dropped, an address spelled by :func:`~smbsession.samba.names.windows_host`
    (``\\\\fe80::1`` gives ``[fe80::1]``), a name kept as it is; empty gives None."""
    name = (cname or "").lstrip("\\").strip()
    return windows_host(name) if name else None


def _u32(entry: object, key: str) -> int | None:
    try:
        value = entry[key]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return None
    return int(value) if isinstance(value, int) else None


def _seconds(entry: object, key: str) -> int | None:
    """A duration field. A negative difference wrapped to 32 bits is a session made in
    the current second (Samba reports 4294967295 then): 0 seconds."""
    value = _u32(entry, key)
    if value is None:
        return None
    return 0 if value > 0x7FFFFFFF else value


def session_from_entry(entry: object, level: int, idle_trusted: bool, raw: str) -> SmbSession:
    """One ``SESSION_INFO_<level>`` entry as an :class:`SmbSession` (see the module's
    table); ``idle_trusted`` says whether the level's idle time is believed."""
    p = f"sesi{level}_"
    user = _string(entry, p + "username") if level != 0 else None
    idle = _seconds(entry, p + "idle_time") if level != 0 and idle_trusted else None
    return SmbSession(
        session_id=NO_SESSION_ID,
        client_computer_name=client_computer_name(_string(entry, p + "cname")),
        client_user_name=user,
        num_opens=_u32(entry, p + "num_opens") if level in (1, 502) else None,
        seconds_exists=_seconds(entry, p + "time") if level != 0 else None,
        seconds_idle=idle,
        transport_name=_string(entry, p + "transport") if level == 502 else None,
        smb_instance="Default",
        # Samba names an anonymous session by its guest account, 'nobody': hidden, as
        # the local reader hides ANONYMOUS LOGON.
        hidden=level != 0 and (user is None or user.lower() in _GUEST_NAMES),
        ps_computer_name=raw,
    )


# --- the RPC conversation ----------------------------------------------------------------

class _Refused(Exception):
    """A level the server would not answer: ``denied`` (access) or not (unknown level)."""

    def __init__(self, level: int, denied: bool, reason: str) -> None:
        super().__init__(reason)
        self.level = level
        self.denied = denied


class _Budget:
    """Enforces the listing's deadline and counts the bytes read from the pipe.

    Before each network step the connection's timeout is cut to the time left, so the
    listing as a whole ends within ``timeout`` however the server paces its answers.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.bytes = 0
        self.conn: object = None

    def check(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        if self.bytes > MAX_BYTES:
            raise RemoteLimit(f"the server sent more than {MAX_BYTES} bytes of session list")
        if self.conn is not None:
            self.conn.setTimeout(left)  # type: ignore[attr-defined]

    def wrap(self, recv: Callable[..., bytes]) -> Callable[..., bytes]:
        def counted(*args: object, **kwargs: object) -> bytes:
            self.check()
            data = recv(*args, **kwargs)
            self.bytes += len(data or b"")
            self.check()
            return data

        return counted


class RemoteLimit(Exception):
    """A bound of the listing was exceeded (turned into a RemoteError)."""


def _entries(answer: object, level: int) -> tuple[list[object], int | None]:
    container = answer["InfoStruct"]["SessionInfo"][f"Level{level}"]  # type: ignore[index]
    handle = answer["ResumeHandle"]  # type: ignore[index]
    resume = int(handle) if isinstance(handle, int) else None
    buffer = container["Buffer"]
    try:
        items = list(buffer) if buffer else []
    except TypeError:
        items = []
    return items, resume


def decode_page(data: bytes, level: int) -> tuple[list[object], int | None]:
    """Decode one ``NetrSessionEnum`` answer (its RPC stub data) at ``level``: its
    ``SESSION_INFO_<level>`` entries and the resume handle. Raises :class:`RemoteLimit`
    when the bytes are not such an answer (impacket's decoder fails fast on counts that
    the data cannot hold)."""
    from impacket.dcerpc.v5 import srvs

    try:
        answer = srvs.NetrSessionEnumResponse(data)
        return _entries(answer, level)
    except Exception as exc:
        raise RemoteLimit(f"the server's NetrSessionEnum answer at level {level} does not "
                          f"decode ({type(exc).__name__})") from None


def _pages(dce: object, level: int, budget: _Budget) -> Iterator[list[object]]:
    """Yield the entries of each page of NetrSessionEnum at ``level``."""
    from impacket.dcerpc.v5 import srvs
    from impacket.dcerpc.v5.dtypes import NULL

    resume = 0
    total = 0
    seen_handles: set[int] = set()
    for _page in range(MAX_PAGES):
        budget.check()
        request = srvs.NetrSessionEnum()
        request["ServerName"] = NULL
        request["ClientName"] = NULL
        request["UserName"] = NULL
        request["InfoStruct"]["Level"] = level
        request["InfoStruct"]["SessionInfo"]["tag"] = level
        request["InfoStruct"]["SessionInfo"][f"Level{level}"]["Buffer"] = NULL
        request["PreferedMaximumLength"] = PAGE_BYTES
        request["ResumeHandle"] = resume
        dce.call(request.opnum, request)  # type: ignore[attr-defined]
        data = dce.recv()  # type: ignore[attr-defined]
        if len(data) < 4:
            raise RemoteLimit("the server's NetrSessionEnum answer is truncated")
        code = struct.unpack("<L", data[-4:])[0]
        if code == _ERROR_ACCESS_DENIED:
            raise _Refused(level, True, "access denied")
        if code in (_ERROR_INVALID_LEVEL, _ERROR_NOT_SUPPORTED):
            raise _Refused(level, False, _NERR_NAMES[code])
        if code not in (_ERROR_SUCCESS, _ERROR_MORE_DATA):
            name = _NERR_NAMES.get(code, f"error {code:#x}")
            raise RemoteLimit(f"NetrSessionEnum at level {level} failed: {name}")
        items, next_resume = decode_page(data, level)
        total += len(items)
        if total > MAX_ENTRIES:
            raise RemoteLimit(f"the server listed more than {MAX_ENTRIES} sessions")
        yield items
        if code == _ERROR_SUCCESS:
            return
        # ERROR_MORE_DATA: go on from the handle the server gave, which must be new.
        if next_resume is None or next_resume in seen_handles or (
            not items and next_resume == resume
        ):
            raise RemoteLimit("the server says there are more sessions but does not move on")
        seen_handles.add(next_resume)
        resume = next_resume
    raise RemoteLimit(f"the server's session list did not end within {MAX_PAGES} pages")


def _enumerate(dce: object, budget: _Budget, raw: str) -> tuple[int, list[SmbSession]]:
    """Try each level in turn; return the level answered and its sessions."""
    from impacket.dcerpc.v5.rpcrt import DCERPCException

    refused: list[_Refused] = []
    for level in LEVELS:
        entries: list[object] = []
        try:
            for page in _pages(dce, level, budget):
                entries.extend(page)
        except _Refused as exc:
            refused.append(exc)
            continue
        except DCERPCException as exc:
            # An RPC fault instead of a Win32 error: access denied, or a level the
            # server's stubs cannot even decode.
            text = str(exc)
            if "access_denied" in text.lower():
                refused.append(_Refused(level, True, text))
                continue
            if any(k in text for k in ("nca_s_invalid_tag", "rpc_x_bad_stub_data",
                                       "nca_s_unsupported_type")):
                refused.append(_Refused(level, False, text))
                continue
            raise
        unknown = {r.level for r in refused if not r.denied}
        # Idle time from level 1 is only believed when the server knows level 10, the
        # level made for it (Samba answers only 0 and 1 and reports idle 0 at level 1).
        idle_trusted = level in (10, 502) or 10 not in unknown
        return level, [session_from_entry(e, level, idle_trusted, raw) for e in entries]
    if any(r.denied for r in refused):
        raise RemoteAccessDenied(
            raw, "the server refused to list its sessions (NetrSessionEnum: access "
            f"denied at levels {', '.join(str(r.level) for r in refused if r.denied)}). "
            "Listing sessions needs administrator rights on the server: since Windows 10 "
            "1607 and Windows Server 2019 only Administrators (and operators) may call "
            "NetrSessionEnum; Samba allows only members of BUILTIN\\Administrators "
            "(root, or a group mapped with 'net groupmap add sid=S-1-5-32-544 ...'), and "
            "answers only levels 0 and 1, with idle time 0. Connect as such an account "
            "(smb://DOMAIN\\admin@host)."
        )
    raise RemoteError(raw, f"the server answered none of the session info levels "
        f"{', '.join(map(str, LEVELS))} ({'; '.join(f'{r.level}: {r}' for r in refused)})"
    )


# --- errors ------------------------------------------------------------------------------

def _reason(exc: BaseException, target: SmbTarget, timeout: float,
            password: str | None) -> str:
    """One line saying why impacket or the network failed, without a traceback.

    Text taken from the exception is searched for the password (which impacket never
    puts there, but a message must not rely on that) and has it masked.
    """

    def outside(text: object) -> str:
        text = str(text)
        return text.replace(password, "********") if password else text

    where = f"{target.host}:{target.port}"
    # impacket wraps a failed connect as OSError("Connection error (host:port)", cause).
    if isinstance(exc, OSError) and len(exc.args) == 2 and isinstance(exc.args[1], OSError):
        exc = exc.args[1]
        if isinstance(exc, TimeoutError):
            return f"cannot connect to {where}: no answer within {timeout:g} s"
        return f"cannot connect to {where}: {outside(exc.strerror or exc)}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    try:
        from impacket import nmb, nt_errors
        from impacket.smbconnection import SessionError
    except ImportError:  # pragma: no cover - impacket was imported before
        return outside(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, nmb.NetBIOSTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, nmb.NetBIOSError):
        code = exc.error_code
        detail = os.strerror(code) if isinstance(code, int) and code > 0 else ""
        message = outside(exc.error_msg or "the connection failed").rstrip(".")
        return f"{message[:1].lower()}{message[1:]}" + (f": {detail}" if detail else "")
    from impacket.krb5.kerberosv5 import KerberosError as ImpacketKerberosError

    if isinstance(exc, ImpacketKerberosError):
        # impacket's code is an ASN.1 Int32, which no format spec accepts: as int first.
        code = _as_int(exc.getErrorCode())
        try:
            from impacket.krb5 import constants

            name = constants.ErrorCodes(code).name
        except (ValueError, TypeError):
            name = f"Kerberos error {code if code is not None else '(unknown)'}"
        return f"the KDC answered {name}"
    if isinstance(exc, SessionError):
        code = _as_int(exc.getErrorCode())
        if code is not None and code < 0:  # a signed 32-bit NTSTATUS
            code &= 0xFFFFFFFF
        fallback = f"NTSTATUS {code:#010x}" if code is not None else "an unknown NTSTATUS"
        short = nt_errors.ERROR_MESSAGES.get(code, (fallback, ""))[0]
        if short == "STATUS_LOGON_FAILURE":
            return "logon failed: the user name or password is wrong (STATUS_LOGON_FAILURE)"
        if short == "STATUS_ACCESS_DENIED":
            return "access denied (STATUS_ACCESS_DENIED)"
        return f"the server answered {short}"
    if isinstance(exc, OSError):
        text = outside(exc.strerror or str(exc) or type(exc).__name__)
        return f"{outside(exc.filename)}: {text}" if exc.filename else text
    text = (outside(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_int(value: object) -> int | None:
    """A foreign integer (impacket's ASN.1 ``Int32``, an ``int`` subclass...) as ``int``,
    or None when it is none."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _import_impacket(raw: str) -> None:
    try:
        import impacket.dcerpc.v5.srvs
        import impacket.smbconnection  # noqa: F401
    except ImportError:
        raise ExtraMissing(raw, "smb:// targets need impacket; install the remote extra: "
            "pip install 'smbsession[remote]'"
        ) from None


# --- the public call ---------------------------------------------------------------------

@contextlib.contextmanager
def _srvsvc(target: SmbTarget, password: str | None, timeout: float,
            kerberos: bool) -> Iterator[tuple[object, _Budget]]:
    """Log on to ``target``, open and bind ``\\srvsvc``; yield the RPC handle and the
    budget that bounds the whole conversation. Every failure inside or outside the
    ``with`` block comes out as a :class:`RemoteError` naming the target."""
    raw = str(target)
    _import_impacket(raw)
    from impacket.smbconnection import SMBConnection

    budget = _Budget(timeout)
    conn = None
    dce = None
    done = False
    try:
        conn = SMBConnection(target.host, target.host, sess_port=target.port,
                             timeout=timeout)
        budget.conn = conn
        budget.check()
        if kerberos:
            from .kerberos import service_ticket

            ticket = service_ticket(target.host, target.user, target.domain, raw,
                                    timeout=max(1.0, budget.deadline - time.monotonic()))
            budget.check()
            try:
                # The realm, not the NetBIOS domain the target may name (CONTOSO\bob).
                conn.kerberosLogin(ticket.user, "", ticket.realm, TGS=ticket.tgs,
                                   useCache=False)
            except Exception as exc:
                reason = _reason(exc, target, timeout, password)
                raise KerberosError(raw, reason, ticket.cache) from None
        else:
            conn.login(target.user or "", password or "", target.domain or "")
        budget.check()
        from impacket.dcerpc.v5 import srvs, transport

        rpc = transport.SMBTransport(target.host, target.port, r"\srvsvc", smb_connection=conn)
        rpc.recv = budget.wrap(rpc.recv)
        dce = rpc.get_dce_rpc()
        try:
            dce.connect()
            dce.bind(srvs.MSRPC_UUID_SRVS)
        except RemoteLimit:
            raise
        except Exception as exc:
            reason = _reason(exc, target, timeout, password)
            raise RemoteError(raw, f"cannot open the server's \\srvsvc pipe: {reason}"
                              ) from None
        yield dce, budget
        done = True
    except RemoteError:
        raise
    except RemoteLimit as exc:
        raise RemoteError(raw, f"{exc}") from None
    except Exception as exc:
        raise RemoteError(raw, f"{_reason(exc, target, timeout, password)}") from None
    finally:
        _close(dce, conn, polite=done)


def list_sessions(target: SmbTarget, password: str | None, timeout: float = 30.0,
                  kerberos: bool = False) -> list[SmbSession]:
    """List the SMB sessions of the server at ``target`` through MS-SRVS (srvsvc).

    Logs on over SMB as ``target.user`` in ``target.domain`` with ``password`` (NTLM; no
    user and no password: an anonymous session, which servers refuse to list sessions
    to), or with Kerberos when ``kerberos`` is true, using the credential cache named by
    ``KRB5CCNAME`` (the target's host must then be the server's name, not an address).
    Opens ``\\srvsvc``, calls ``NetrSessionEnum`` at level 502, 10, 1 or 0 (the first the
    server answers), page by page, and returns one :class:`SmbSession` per session, in
    the server's order (see the module docstring for what each property holds).

    Each network operation waits at most ``timeout`` seconds, and so does the listing as
    a whole. Raises :class:`RemoteAccessDenied` when the account may not list sessions,
    :class:`ExtraMissing` when impacket is not installed, and :class:`RemoteError`
    (``<target>: <reason>``) for anything else: no connection, failed logon, a malformed
    or endless answer. The password appears in no message.
    """
    with _srvsvc(target, password, timeout, kerberos) as (dce, budget):
        sessions = _enumerate(dce, budget, str(target))[1]
        names = {s.client_user_name for s in sessions if s.client_user_name and not s.hidden}
        if names:
            spelled = directory_names(budget.conn, target, names, budget)
            doubtful = {n for n in names if _may_be_cached(n, spelled.get(n))}
            if doubtful:
                spelled.update(controller_names(budget.conn, target, doubtful, password,
                                                kerberos, budget))
            if spelled:
                sessions = [s.replace(client_user_name=spelled[s.client_user_name])
                            if s.client_user_name in spelled else s for s in sessions]
        return sessions


#: Names asked of an LSA in one LookupNames/LookupSids pair (Windows and Samba take up
#: to 20,480 per call).
LOOKUP_BATCH = 1000
_STATUS_SOME_NOT_MAPPED = 0x00000107
_SID_TYPE_UNKNOWN = 8


def directory_names(conn: object, target: SmbTarget, names: set[str],
                    budget: _Budget | None = None) -> dict[str, str]:
    """Map user names as a server's srvsvc spells them (Samba: the Unix names, bare for
    local accounts, ``labalice``, or as winbind makes them, ``CONTOSO\\administrator``)
    to ``DOMAIN\\Name`` as the directory spells it (``LABSRV\\labalice``,
    ``CONTOSO\\Administrator``), as the local reader does, asking the server's LSA
    (``\\lsarpc``: LookupNames, then LookupSids of the SIDs found, up to
    :data:`LOOKUP_BATCH` names per call) over the same SMB connection ``conn``. A name it
    cannot map keeps its spelling (it is absent from the result); a batch the server
    refuses as a whole is asked again name by name, so one odd name costs no other."""
    from impacket.dcerpc.v5 import lsad, lsat, transport
    from impacket.dcerpc.v5.dtypes import MAXIMUM_ALLOWED

    out: dict[str, str] = {}
    dce = None
    try:
        rpc = transport.SMBTransport(target.host, target.port, r"\lsarpc",
                                     smb_connection=conn)
        dce = rpc.get_dce_rpc()
        dce.connect()
        dce.bind(lsat.MSRPC_UUID_LSAT)
        policy = lsad.hLsarOpenPolicy2(
            dce, MAXIMUM_ALLOWED)["PolicyHandle"]
        ordered = sorted(names)
        for i in range(0, len(ordered), LOOKUP_BATCH):
            batch = ordered[i:i + LOOKUP_BATCH]
            if budget is not None:
                budget.check()
            try:
                out.update(_lookup(dce, policy, batch))
            except Exception:
                if len(batch) == 1:
                    continue
                for name in batch:
                    if budget is not None:
                        budget.check()
                    with contextlib.suppress(Exception):
                        out.update(_lookup(dce, policy, [name]))
    except Exception:
        return out
    finally:
        if dce is not None:
            with contextlib.suppress(Exception):
                dce.disconnect()
    return out


def _lsa_call(call: Callable[..., object], *args: object) -> object:
    """An LSA lookup's answer; STATUS_SOME_NOT_MAPPED (a success: some names are not
    known) gives its answer too, which impacket raises as an error."""
    from impacket.dcerpc.v5.rpcrt import DCERPCException

    try:
        return call(*args)
    except DCERPCException as exc:
        packet = getattr(exc, "packet", None)
        if _as_int(exc.get_error_code()) == _STATUS_SOME_NOT_MAPPED and packet is not None:
            return packet
        raise


def _lookup(dce: object, policy: object, names: list[str]) -> dict[str, str]:
    """One LookupNames3 of ``names`` and one LookupSids of the SIDs found: the names
    the LSA maps back to themselves, as ``DOMAIN\\Account`` in the directory's case."""
    from impacket.dcerpc.v5 import lsat

    found = _lsa_call(lsat.hLsarLookupNames3, dce, policy, names)
    asked: list[tuple[str, str]] = []
    for name, entry in zip(names, found["TranslatedSids"]["Sids"],  # type: ignore[index]
                           strict=False):
        if _as_int(entry["Use"]) == _SID_TYPE_UNKNOWN:
            continue
        with contextlib.suppress(Exception):
            asked.append((name, entry["Sid"].formatCanonical()))
    if not asked:
        return {}
    back = _lsa_call(lsat.hLsarLookupSids, dce, policy, [sid for _, sid in asked],
                     lsat.LSAP_LOOKUP_LEVEL.LsapLookupWksta)
    domains = back["ReferencedDomains"]["Domains"]  # type: ignore[index]
    out: dict[str, str] = {}
    for (name, _sid), entry in zip(asked, back["TranslatedNames"]["Names"],  # type: ignore[index]
                                   strict=False):
        index = _as_int(entry["DomainIndex"])
        if index is None or not 0 <= index < len(domains):
            continue
        account, dom = _text(entry["Name"]), _text(domains[index]["Name"])
        spelled = f"{dom}\\{account}"
        if account and dom and name.lower() in (spelled.lower(), account.lower()):
            out[name] = spelled
    return out


#: The longest the LDAP ping that finds a member's DC may wait (it is also bounded by the
#: listing's deadline).
PING_TIMEOUT = 1.0
#: DSROLE_MACHINE_ROLE values of a domain member (MS-DSSP 2.2.1.1).
_MEMBER_ROLES = (1, 3)  # DsRole_RoleMemberWorkstation, DsRole_RoleMemberServer


def _may_be_cached(name: str, spelled: str | None) -> bool:
    """Whether the spelling of srvsvc's ``name`` (``DOMAIN\\user``, a winbind name) may
    come from winbind's cache rather than the directory: the server's LSA did not map it,
    or mapped it to an account written without capitals (winbind keeps the spelling a
    name was first looked up with, and srvsvc's names, which lookups use, are lower
    case)."""
    if "\\" not in name:
        return False
    account = (spelled or name).rpartition("\\")[2]
    return account == account.lower()


def primary_domain(conn: object, target: SmbTarget,
                   budget: _Budget | None = None) -> tuple[str, str] | None:
    """(NetBIOS name, DNS name) of the domain the server at ``target`` is a member of,
    from its ``DsRolerGetPrimaryDomainInformation`` (MS-DSSP, over ``\\lsarpc`` on the
    SMB connection ``conn``); None when it is no domain member (a DC, a standalone
    server), names no DNS domain, or does not answer."""
    from impacket.dcerpc.v5 import dssp, transport

    dce = None
    try:
        if budget is not None:
            budget.check()
        rpc = transport.SMBTransport(target.host, target.port, r"\lsarpc",
                                     smb_connection=conn)
        dce = rpc.get_dce_rpc()
        dce.connect()
        dce.bind(dssp.MSRPC_UUID_DSSP)
        info = dssp.hDsRolerGetPrimaryDomainInformation(dce, 1)["DomainInfo"][
            "DomainInfoBasic"]
        role = _as_int(info["MachineRole"])
        flat, dns = _text(info["DomainNameFlat"]), _text(info["DomainNameDns"])
    except Exception:
        return None
    finally:
        if dce is not None:
            with contextlib.suppress(Exception):
                dce.disconnect()
    if role not in _MEMBER_ROLES or not flat or not dns:
        return None
    return flat, dns


def _logs_on_to(target: SmbTarget, kerberos: bool, flat: str, dns: str) -> bool:
    """Whether the listing's own logon is an account of the domain ``flat``/``dns`` (the
    only credentials worth showing its DC): Kerberos tickets are checked by the KDC; an
    NTLM user must name that domain (``CONTOSO\\admin``, ``admin@contoso.test``), so a
    local account of the member is never tried against the DC."""
    if kerberos:
        return True
    domain = target.domain or (target.user or "").rpartition("@")[2]
    return domain.lower() in (flat.lower(), dns.lower())


def controller_names(conn: object, target: SmbTarget, names: set[str],
                     password: str | None, kerberos: bool,
                     budget: _Budget) -> dict[str, str]:
    """Spell ``names`` (``DOMAIN\\user`` as srvsvc gives them) as the directory does by
    asking the DC of the domain the server is a member of, for names whose spelling the
    member's winbind cache may have given (see :func:`_may_be_cached`).

    The server's role and domain come from its MS-DSSP answer (:func:`primary_domain`,
    over ``conn``); only a member is asked about, and only names of its own domain. The
    DC is found with an LDAP ping (:func:`~smbsession.remote.dclocator.locate`, at most
    :data:`PING_TIMEOUT` seconds), then logged on to over SMB with the listing's own
    credentials (NTLM with the same user and password, or Kerberos with a ticket for
    ``cifs/<dc>`` from the same cache) and asked through its LSA, as
    :func:`directory_names` asks the server: one extra SMB connection, within the
    listing's deadline. Any failure (no DC answers, the logon or the lookup is refused,
    time runs out) gives no new spelling, and the member's is kept: the names stay
    those of the same accounts, only their case may differ from the directory's."""
    try:
        domain = primary_domain(conn, target, budget)
        if domain is None:
            return {}
        flat, dns = domain
        ours = {n for n in names if n.partition("\\")[0].lower() in (flat.lower(),
                                                                       dns.lower())}
        if not ours or not _logs_on_to(target, kerberos, flat, dns):
            return {}
        from .dclocator import locate

        budget.check()
        left = budget.deadline - time.monotonic()
        dc = locate(dns, dns.upper(), timeout=min(PING_TIMEOUT, left))
        if dc is None:
            return {}
        return _ask_controller(dc.host, dc.address, target, ours, password, kerberos, budget)
    except Exception:
        return {}


def _ask_controller(host: str, address: str, target: SmbTarget, names: set[str],
                    password: str | None, kerberos: bool, budget: _Budget) -> dict[str, str]:
    """Log on to the DC ``host`` (at ``address``) as the listing did and map ``names``
    through its LSA; raises on any failure (the caller keeps the member's spelling)."""
    from impacket.smbconnection import SMBConnection

    own = _Budget(budget.timeout)
    own.deadline = budget.deadline
    conn = None
    done = False
    try:
        left = own.deadline - time.monotonic()
        if left <= 0:
            return {}
        conn = SMBConnection(host, address, sess_port=445, timeout=left)
        own.conn = conn
        own.check()
        if kerberos:
            from .kerberos import service_ticket

            ticket = service_ticket(host, target.user, target.domain, str(target),
                                    timeout=max(0.5, own.deadline - time.monotonic()))
            own.check()
            conn.kerberosLogin(ticket.user, "", ticket.realm, TGS=ticket.tgs, useCache=False)
        else:
            conn.login(target.user or "", password or "", target.domain or "")
        own.check()
        found = directory_names(conn, SmbTarget(host=host, raw=f"smb://{host}"), names, own)
        done = True
        return found
    finally:
        # The member's connection still has to be closed: this one ends by the deadline.
        _close(None, conn, polite=done,
               grace=max(0.1, min(5.0, own.deadline - time.monotonic())))


def uncname(client: str) -> str:
    """The ``\\\\client`` form NetrSessionDel takes for a ClientComputerName (an IPv6
    address loses its brackets)."""
    bare = client[1:-1] if client.startswith("[") and client.endswith("]") else client
    return "\\\\" + bare


def delete_sessions(target: SmbTarget, password: str | None,
                    pairs: list[tuple[str, str | None]], timeout: float = 30.0,
                    kerberos: bool = False) -> list[str | None]:
    """End sessions through MS-SRVS ``NetrSessionDel`` (opnum 13), one call per
    ``(ClientComputerName, ClientUserName)`` pair; a user of None ends every session
    from that client.

    NetrSessionDel has no session id: each call ends *every* session of that user from
    that client, which the caller must make clear before asking. Returns, per pair in
    order, None when the server ended the sessions or the reason it did not (for
    example ``NERR_ClientNameNotFound``). Logging on and the bounds are as for
    :func:`list_sessions`; a failure to reach the server raises :class:`RemoteError`.
    """
    out: list[str | None] = []
    with _srvsvc(target, password, timeout, kerberos) as (dce, budget):
        for client, user in pairs:
            budget.check()
            out.append(_session_del(dce, client, user))
    return out


def _session_del(dce: object, client: str, user: str | None) -> str | None:
    from impacket.dcerpc.v5 import srvs
    from impacket.dcerpc.v5.dtypes import NULL
    from impacket.dcerpc.v5.rpcrt import DCERPCException

    request = srvs.NetrSessionDel()
    request["ServerName"] = NULL
    request["ClientName"] = uncname(client) + "\x00"
    request["UserName"] = user + "\x00" if user else NULL
    try:
        dce.request(request)  # type: ignore[attr-defined]
    except DCERPCException as exc:
        code = _as_int(exc.get_error_code())
        name = _NERR_NAMES.get(code, f"error {code:#x}") if code else str(exc)
        # Listed as DOMAIN\Name (respelled, see directory_names): a server that names
        # its local accounts bare knows them only so (Samba answers a name it has no
        # session of with ERROR_ACCESS_DENIED, Windows with NERR_UserNotFound).
        if code in (5, 2221) and user and "\\" in user and \
                _session_del(dce, client, user.rpartition("\\")[2]) is None:
            return None
        return f"NetrSessionDel failed: {name}"
    return None


def _close(dce: object, conn: object, polite: bool, grace: float = 5.0) -> None:
    """Hang up. After a success, log off politely (each step bounded by ``grace``
    seconds); after a failure only drop the connection, so a dead or stalling server
    costs no more time."""
    steps: list[Callable[[], object]] = []
    if polite and conn is not None:
        steps.append(lambda: conn.setTimeout(grace))  # type: ignore[attr-defined]
        if dce is not None:
            steps.append(dce.disconnect)  # type: ignore[attr-defined]
        steps.append(conn.logoff)  # type: ignore[attr-defined]
    if conn is not None:
        # SMBConnection.close() would log off first: close the socket only.
        steps.append(conn.getSMBServer().close_session)  # type: ignore[attr-defined]
    for step in steps:
        with contextlib.suppress(Exception):
            step()
