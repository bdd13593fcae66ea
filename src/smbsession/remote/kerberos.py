"""Kerberos for ``smb://`` targets: from a credential cache to an SMB service ticket.

``KRB5CCNAME`` names the cache as MIT and Heimdal spell it. Supported: ``FILE:/path``, a
bare path, ``DIR:/dir`` (the collection's primary cache, named in ``/dir/primary``) and
``DIR::/dir/tkt...`` (one member). Refused with a line saying what to do instead:
``KEYRING:``, ``KCM:``, ``MEMORY:``, ``API:`` (caches that live in the kernel, a daemon
or a process, which impacket cannot read). Without ``KRB5CCNAME``, MIT's default
``/tmp/krb5cc_<uid>`` is used.

**Whose ticket.** The cache's principal is the logon. A target's user may be written
``DOMAIN\\user`` (a NetBIOS domain, ``CONTOSO``: not a realm, so the cache's realm is
used), ``REALM\\user`` (``CONTOSO.TEST\\bob``: a name with a dot is a realm) or
``user@REALM``. The user (case-insensitive) and a realm the target names must be the
cache's, else the logon would silently be someone else's.

**The service ticket.** A ticket for ``cifs/<host>@REALM`` already in the cache is used
as it is. With only a TGT (after a plain ``kinit``), the ticket is asked of the realm's
KDC (from ``[realms]`` in ``$KRB5_CONFIG`` or ``/etc/krb5.conf``, else the realm's own
name in DNS) with a TGS-REQ of our own: impacket's ``getKerberosTGS`` sends an
authenticator without the checksum of the request body, which RFC 4120 (5.5.1) makes
part of a TGS-REQ's authenticator and Heimdal's KDC (Samba AD) requires: it answers
``KRB_AP_ERR_INAPP_CKSUM`` ("No authenticator in request"). Here the authenticator
carries the keyed checksum of the encoded body (key usage 6, the checksum type of the
TGT session key's enctype), and every exchange with the KDC has a timeout.

Every failure is a :class:`~smbsession.errors.KerberosError` with one line: no cache,
an expired ticket, another user's or realm's cache, a KDC that does not answer or
refuses (its error named). Foreign values (impacket's ASN.1 integers, for one) are
turned into ``int``/``str`` before they are formatted.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import random
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from ..errors import KerberosError

#: RFC 4120 7.5.1: the key usage of a TGS-REQ authenticator's checksum of the body.
KU_TGS_REQ_AUTH_CKSUM = 6
#: ... and of the TGS-REQ authenticator itself.
KU_TGS_REQ_AUTH = 7
#: Cache types impacket cannot read, and why.
_UNSUPPORTED = {
    "KEYRING": "a kernel keyring",
    "KCM": "the KCM daemon",
    "MEMORY": "another process's memory",
    "MSLSA": "Windows' LSA",
    "API": "the CCAPI daemon",
}


@dataclass(frozen=True)
class Ticket:
    """What an SMB Kerberos logon needs: the client ``user`` and ``realm`` from the cache,
    and ``tgs`` (impacket's ``{'KDC_REP', 'cipher', 'sessionKey'}``) for cifs/host."""

    user: str
    realm: str
    tgs: dict[str, Any]
    cache: str
    from_cache: bool


def _safe(value: object) -> str:
    """``value`` as text whatever its type (impacket's Int32, bytes, None)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def cache_path(spec: str, target: str = "smb://") -> str:
    """The file of the credential cache ``spec`` (a ``KRB5CCNAME`` value), or raise
    :class:`KerberosError` for a cache type that cannot be read (see the module)."""
    kind, colon, rest = spec.partition(":")
    if not colon or spec.startswith("/"):
        return spec
    upper = kind.upper()
    if upper == "FILE":
        return rest
    if upper == "DIR":
        if rest.startswith(":"):
            return rest[1:]
        try:
            with open(os.path.join(rest, "primary"), encoding="utf-8") as fh:
                name = fh.read().strip() or "tkt"
        except FileNotFoundError:
            name = "tkt"
        except OSError as exc:
            raise KerberosError(target, f"KRB5CCNAME={spec}: cannot read the collection's "
                                f"primary cache: {exc.strerror or exc}", spec) from None
        return os.path.join(rest, name)
    if upper in _UNSUPPORTED:
        raise KerberosError(
            target,
            f"KRB5CCNAME={spec}: a {upper} cache lives in {_UNSUPPORTED[upper]}, which "
            "smbsession cannot read; copy the tickets into a file cache (kinit -c "
            "FILE:/tmp/krb5cc_$(id -u), or 'kvno' + KRB5CCNAME=FILE:...) and set "
            "KRB5CCNAME=FILE:<that path>", spec)
    if len(kind) == 1 and rest.startswith("\\"):  # a Windows path, C:\...
        return spec
    raise KerberosError(target, f"KRB5CCNAME={spec}: unknown credential cache type "
                        f"'{kind}' (use FILE:/path, DIR:/dir or a path)", spec)


def default_cache() -> str:
    """``$KRB5CCNAME``, else MIT's default file cache of this user."""
    return os.environ.get("KRB5CCNAME") or f"FILE:/tmp/krb5cc_{os.getuid()}"


def _load(path: str, spec: str, target: str) -> Any:
    from impacket.krb5.ccache import CCache

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise KerberosError(target, f"no credential cache at {path} (KRB5CCNAME={spec}): "
                            "run kinit first", spec) from None
    except OSError as exc:
        raise KerberosError(target, f"cannot read the credential cache {path}: "
                            f"{exc.strerror or exc}", spec) from None
    try:
        return CCache(data)
    except Exception as exc:
        raise KerberosError(target, f"{path} is not a credential cache impacket can read "
                            f"({type(exc).__name__})", spec) from None


def _principal_text(principal: Any) -> str:
    return _safe(principal.prettyPrint())


def _split_principal(text: str) -> tuple[str, str]:
    name, _, realm = text.rpartition("@")
    return name, realm


def wanted_identity(user: str | None, domain: str | None) -> tuple[str | None, str | None]:
    """The (user, realm) a target names: ``user@REALM`` and ``REALM\\user`` name a realm
    (a domain with a dot is a DNS name: its realm is its upper case); ``DOMAIN\\user``
    names a NetBIOS domain, which says nothing of the realm (None)."""
    if user and "@" in user:
        name, _, realm = user.rpartition("@")
        return name, realm.upper()
    if domain and "." in domain:
        return user, domain.upper()
    return user, None


def _expired(cred: Any, now: float) -> str | None:
    end = _int(cred["time"]["endtime"])
    if end is not None and end <= now:
        return datetime.datetime.fromtimestamp(end, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC")
    return None


def service_ticket(host: str, user: str | None, domain: str | None, target: str,
                   timeout: float = 30.0) -> Ticket:
    """Get the ticket for ``cifs/<host>`` from the credential cache (``$KRB5CCNAME``),
    asking the KDC with the cache's TGT when the cache holds no such ticket.

    ``user``/``domain`` are the target's (see :func:`wanted_identity`); ``target`` is
    how messages name it. Raises :class:`KerberosError` with one line on any failure.
    """
    spec = default_cache()
    path = cache_path(spec, target)
    ccache = _load(path, spec, target)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise KerberosError(target, f"Kerberos needs the server's name, not the address "
                            f"{host} (the ticket is for cifs/<name>)", spec)
    if ccache.principal is None:
        raise KerberosError(target, f"the credential cache {path} names no principal", spec)
    cname, crealm = _split_principal(_principal_text(ccache.principal))
    want_user, want_realm = wanted_identity(user, domain)
    if want_user and want_user.lower() != cname.lower():
        raise KerberosError(target, f"the credential cache {path} holds tickets of "
                            f"{cname}@{crealm}, not of {want_user}: kinit as that user or "
                            "name the cache's user in the target", spec)
    if want_realm and want_realm != crealm.upper():
        raise KerberosError(target, f"wrong realm: the target names {want_realm}, the "
                            f"credential cache {path} holds tickets of {cname}@{crealm}",
                            spec)
    now = time.time()
    spn = f"cifs/{host}@{crealm}"
    for cred in ccache.credentials:
        server = _principal_text(cred["server"])
        if server.lower() == spn.lower() and _expired(cred, now) is None:
            return Ticket(cname, crealm, cred.toTGS(spn), path, True)
    tgt_name = f"krbtgt/{crealm}@{crealm}"
    tgt = next((c for c in ccache.credentials
                if _principal_text(c["server"]).upper() == tgt_name.upper()), None)
    if tgt is None:
        raise KerberosError(target, f"the credential cache {path} holds no ticket-granting "
                            f"ticket for {crealm} and no ticket for cifs/{host}: run kinit",
                            spec)
    when = _expired(tgt, now)
    if when:
        raise KerberosError(target, f"the ticket-granting ticket in {path} expired at "
                            f"{when}: run kinit again", spec)
    tgs = request_service_ticket(tgt.toTGT(), cname, crealm, f"cifs/{host}", target,
                                 timeout, spec)
    return Ticket(cname, crealm, tgs, path, False)


# --- the KDC -----------------------------------------------------------------------------

def kdcs_for(realm: str) -> list[tuple[str, int]]:
    """The KDCs of ``realm`` from ``[realms]`` of the Kerberos configuration
    (``$KRB5_CONFIG``, a colon-separated list, else ``/etc/krb5.conf``), as (host, port);
    empty when none is configured."""
    files = (os.environ.get("KRB5_CONFIG") or "/etc/krb5.conf").split(":")
    found: list[tuple[str, int]] = []
    for name in files:
        try:
            with open(name, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        section = ""
        current: str | None = None
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not line:
                continue
            m = re.match(r"^\[(\w+)\]$", line)
            if m:
                section, current = m.group(1).lower(), None
                continue
            if section != "realms":
                continue
            m = re.match(r"^(\S+)\s*=\s*\{$", line)
            if m:
                current = m.group(1)
                continue
            if line == "}":
                current = None
                continue
            m = re.match(r"^kdc\s*=\s*(\S+)$", line)
            if m and current and current.upper() == realm.upper():
                found.append(_host_port(m.group(1)))
    return found


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        inner, _, after = text[1:].partition("]")
        return inner, int(after[1:]) if after.startswith(":") and after[1:].isdigit() else 88
    if text.count(":") == 1:
        h, _, p = text.partition(":")
        return h, int(p) if p.isdigit() else 88
    return text, 88


def _exchange(data: bytes, kdc: tuple[str, int], timeout: float) -> bytes:
    """Send one Kerberos message to ``kdc`` over TCP and return the answer."""
    with socket.create_connection(kdc, timeout=timeout) as s:
        s.sendall(struct.pack("!I", len(data)) + data)
        head = _recv(s, 4)
        length = struct.unpack("!I", head)[0]
        if length > 1 << 20:
            raise OSError(f"an answer of {length} bytes is no Kerberos reply")
        return _recv(s, length)


def _recv(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("the KDC closed the connection")
        out += chunk
    return out


def _error_name(code: int | None) -> str:
    from impacket.krb5 import constants

    try:
        return constants.ErrorCodes(code).name
    except (ValueError, TypeError):
        return f"error {code}"


def tgs_req(tgt: dict[str, Any], cname: str, realm: str, service: str,
            now: datetime.datetime | None = None) -> tuple[bytes, Any]:
    """Build a TGS-REQ for ``service`` (``cifs/host``) in ``realm`` from ``tgt``
    (impacket's ``{'KDC_REP', 'cipher', 'sessionKey'}``); return its DER bytes and the
    session key. The authenticator carries the checksum of the encoded req-body."""
    from impacket.krb5 import constants
    from impacket.krb5.asn1 import AP_REQ, AS_REP, TGS_REQ, Authenticator, seq_set, seq_set_iter
    from impacket.krb5.crypto import Cksumtype, _get_checksum_profile
    from impacket.krb5.types import KerberosTime, Principal, Ticket
    from pyasn1.codec.der import decoder, encoder
    from pyasn1.type.univ import noValue

    session_key = tgt["sessionKey"]
    cipher = tgt["cipher"]
    decoded = decoder.decode(tgt["KDC_REP"], asn1Spec=AS_REP())[0]
    ticket = Ticket()
    ticket.from_asn1(decoded["ticket"])
    now = now or datetime.datetime.now(datetime.timezone.utc)

    req = TGS_REQ()
    req["pvno"] = 5
    req["msg-type"] = int(constants.ApplicationTagNumbers.TGS_REQ.value)
    body = seq_set(req, "req-body")
    # No forwardable/renewable: a KDC answers KDC_ERR_BADOPTION when the TGT is not
    # (MIT's kinit makes neither unless asked).
    opts = [constants.KDCOptions.canonicalize.value]
    body["kdc-options"] = constants.encodeFlags(opts)
    server = Principal(service, type=constants.PrincipalNameType.NT_SRV_INST.value)
    seq_set(body, "sname", server.components_to_asn1)
    body["realm"] = realm
    body["till"] = KerberosTime.to_asn1(now + datetime.timedelta(days=1))
    body["nonce"] = random.SystemRandom().getrandbits(31)
    seq_set_iter(body, "etype", (int(cipher.enctype),
                                 int(constants.EncryptionTypes.aes256_cts_hmac_sha1_96.value),
                                 int(constants.EncryptionTypes.aes128_cts_hmac_sha1_96.value),
                                 int(constants.EncryptionTypes.rc4_hmac.value)))
    # The checksum covers the KDC-REQ-BODY itself: without the [4] tag it has inside
    # the TGS-REQ (which the component encodes with).
    body_bytes = _untag(encoder.encode(body))

    cksumtype = {
        18: Cksumtype.SHA1_AES256, 17: Cksumtype.SHA1_AES128, 23: Cksumtype.HMAC_MD5,
    }.get(int(session_key.enctype))
    if cksumtype is None:
        raise ValueError(f"no checksum for the session key's enctype {session_key.enctype}")
    checksum = _get_checksum_profile(cksumtype).checksum(
        session_key, KU_TGS_REQ_AUTH_CKSUM, body_bytes)

    auth = Authenticator()
    auth["authenticator-vno"] = 5
    auth["crealm"] = decoded["crealm"].asOctets()
    client = Principal(cname, type=constants.PrincipalNameType.NT_PRINCIPAL.value)
    seq_set(auth, "cname", client.components_to_asn1)
    auth["cksum"] = noValue
    auth["cksum"]["cksumtype"] = int(cksumtype)
    auth["cksum"]["checksum"] = checksum
    auth["cusec"] = now.microsecond
    auth["ctime"] = KerberosTime.to_asn1(now)
    sealed = cipher.encrypt(session_key, KU_TGS_REQ_AUTH, encoder.encode(auth), None)

    ap = AP_REQ()
    ap["pvno"] = 5
    ap["msg-type"] = int(constants.ApplicationTagNumbers.AP_REQ.value)
    ap["ap-options"] = constants.encodeFlags([])
    seq_set(ap, "ticket", ticket.to_asn1)
    ap["authenticator"] = noValue
    ap["authenticator"]["etype"] = int(cipher.enctype)
    ap["authenticator"]["cipher"] = sealed

    req["padata"] = noValue
    req["padata"][0] = noValue
    req["padata"][0]["padata-type"] = int(constants.PreAuthenticationDataTypes.PA_TGS_REQ.value)
    req["padata"][0]["padata-value"] = encoder.encode(ap)
    return encoder.encode(req), session_key


def _untag(der: bytes) -> bytes:
    """The content of an explicitly tagged DER value (``A4 len <value>`` -> value); a
    value without a context tag is returned as it is."""
    if not der or der[0] & 0xE0 != 0xA0:
        return der
    first = der[1]
    start = 2 if first < 0x80 else 2 + (first & 0x7F)
    return der[start:]


def request_service_ticket(tgt: dict[str, Any], cname: str, realm: str, service: str,
                           target: str, timeout: float, spec: str | None = None,
                           ) -> dict[str, Any]:
    """Ask the KDC of ``realm`` for ``service`` with ``tgt``; return impacket's TGS dict.

    Raises :class:`KerberosError`: the KDC does not answer (each configured KDC tried
    within ``timeout``), refuses (its error named), or its answer does not decode."""
    from impacket.krb5 import crypto
    from impacket.krb5.asn1 import KRB_ERROR, TGS_REP, EncTGSRepPart
    from pyasn1.codec.der import decoder

    data, session_key = tgs_req(tgt, cname, realm, service)
    kdcs = kdcs_for(realm) or [(realm.lower(), 88)]
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    answer = None
    for kdc in kdcs:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            answer = _exchange(data, kdc, left)
            break
        except TimeoutError:
            failures.append(f"{kdc[0]}:{kdc[1]}: no answer within {timeout:g} s")
        except OSError as exc:
            failures.append(f"{kdc[0]}:{kdc[1]}: {exc.strerror or exc}")
    if answer is None:
        raise KerberosError(target, f"the KDC of {realm} does not answer "
                            f"({'; '.join(failures) or 'no time left'})", spec)
    try:
        err = decoder.decode(answer, asn1Spec=KRB_ERROR())[0]
    except Exception:
        err = None
    if err is not None:
        code = _int(err["error-code"])
        text = ""
        if err["e-text"].hasValue():
            text = f": {_safe(err['e-text'])}"
        raise KerberosError(target, f"the KDC of {realm} refused a ticket for {service}: "
                            f"{_error_name(code)} ({_safe(code)}){text}", spec)
    try:
        rep = decoder.decode(answer, asn1Spec=TGS_REP())[0]
        cipher = crypto._enctype_table[int(rep["enc-part"]["etype"])]
        plain = cipher.decrypt(session_key, 8, rep["enc-part"]["cipher"].asOctets())
        part = decoder.decode(plain, asn1Spec=EncTGSRepPart())[0]
        new_key = crypto.Key(int(part["key"]["keytype"]), part["key"]["keyvalue"].asOctets())
    except Exception as exc:
        raise KerberosError(target, f"the KDC's answer for {service} does not decode "
                            f"({type(exc).__name__})", spec) from None
    return {"KDC_REP": answer, "cipher": cipher(), "sessionKey": new_key}
