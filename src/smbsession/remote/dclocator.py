"""The domain controllers of an Active Directory domain, found as Windows' DC locator does.

**Where to look.** The domain's DNS name, which AD's DNS answers with an address record
for each of its DCs (the "same as parent folder" records), and the KDCs the Kerberos
configuration names for the domain's realm (in AD every KDC is a DC; see
:func:`~smbsession.remote.kerberos.kdcs_for`).

**Which one answers.** Each address is sent an *LDAP ping* (MS-ADTS 6.3.3): a CLDAP
search of the rootDSE (LDAP over UDP port 389) for the ``Netlogon`` attribute, filtered by
``DnsDomain`` and ``NtVer``. A DC answers with a ``NETLOGON_SAM_LOGON_RESPONSE_EX``
(MS-ADTS 6.3.1.9): its DNS host name (what a Kerberos ticket needs, ``cifs/<name>``), its
domain's DNS and NetBIOS names and its flags. The pings go out together and the first DC
of that domain to answer is taken; the whole search waits at most its timeout. Name
resolution runs in a helper thread so that a stalling resolver cannot hold it longer.

Standard library only; nothing here raises for an unreachable or odd network: no answer
is None.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

#: NtVer of the ping: NETLOGON_NT_VERSION_5 | NETLOGON_NT_VERSION_5EX, asking for the
#: NETLOGON_SAM_LOGON_RESPONSE_EX answer.
NT_VERSION = 0x00000006
#: The opcode of that answer (LOGON_SAM_LOGON_RESPONSE_EX); 25 is the same answer from a
#: paused DC, 23 the usual one.
_RESPONSE_EX = (23, 25)
#: DS_DS_FLAG: the answering server is a directory server (an AD DC).
DS_DS_FLAG = 0x00000010
#: At most this many addresses are pinged.
MAX_CANDIDATES = 8
#: Largest datagram read.
_DATAGRAM = 65535


@dataclass(frozen=True)
class DomainController:
    """A DC that answered an LDAP ping: ``host`` its DNS host name, ``address`` where it
    answered, ``domain`` and ``dns_domain`` its domain's NetBIOS and DNS names."""

    host: str
    address: str
    domain: str
    dns_domain: str
    flags: int


# --- the request (BER, RFC 4511) -----------------------------------------------------------

def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def ping_request(message_id: int, dns_domain: str) -> bytes:
    """The LDAP ping for ``dns_domain``: an LDAPMessage with a base-object search of the
    rootDSE for ``Netlogon``, filter ``(&(DnsDomain=<domain>)(NtVer=<NT_VERSION>))``."""

    def equal(attr: bytes, value: bytes) -> bytes:
        return _tlv(0xA3, _tlv(0x04, attr) + _tlv(0x04, value))

    search = _tlv(0x63, b"".join((
        _tlv(0x04, b""),             # baseObject: the rootDSE
        _tlv(0x0A, b"\x00"),         # scope: baseObject
        _tlv(0x0A, b"\x00"),         # derefAliases: never
        _integer(0), _integer(0),    # sizeLimit, timeLimit
        _tlv(0x01, b"\x00"),         # typesOnly: false
        _tlv(0xA0, equal(b"DnsDomain", dns_domain.encode("utf-8"))
             + equal(b"NtVer", struct.pack("<I", NT_VERSION))),
        _tlv(0x30, _tlv(0x04, b"Netlogon")),
    )))
    return _tlv(0x30, _integer(message_id) + search)


# --- the answer ------------------------------------------------------------------------------

def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the BER element at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4 or pos + k > end:
            raise ValueError("bad length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise ValueError("truncated")
    return tag, pos, pos + n


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _header(data, pos, end)
        out.append((tag, vstart, vend))
        pos = vend
    return out


def netlogon_blob(data: bytes, message_id: int) -> bytes | None:
    """The ``Netlogon`` value of the SearchResultEntry answering ``message_id`` in a CLDAP
    datagram, or None."""
    try:
        for tag, start, end in _elements(data, 0, len(data)):
            if tag != 0x30:
                continue
            parts = _elements(data, start, end)
            if len(parts) < 2 or parts[0][0] != 0x02:
                continue
            if int.from_bytes(data[parts[0][1]:parts[0][2]], "big") != message_id:
                continue
            op, ostart, oend = parts[1]
            if op != 0x64:  # SearchResultEntry
                continue
            entry = _elements(data, ostart, oend)
            if len(entry) < 2:
                continue
            for _t, astart, aend in _elements(data, entry[1][1], entry[1][2]):
                attr = _elements(data, astart, aend)
                if len(attr) < 2 or data[attr[0][1]:attr[0][2]].lower() != b"netlogon":
                    continue
                values = _elements(data, attr[1][1], attr[1][2])
                if values:
                    return data[values[0][1]:values[0][2]]
    except (ValueError, IndexError):
        return None
    return None


def _dns_name(blob: bytes, pos: int) -> tuple[str, int]:
    """A name compressed as in RFC 1035 (4.1.4) at ``pos``; (name, position after it)."""
    labels: list[str] = []
    after = None
    jumps = 0
    while True:
        if pos >= len(blob):
            raise ValueError("truncated name")
        n = blob[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(blob):
                raise ValueError("truncated pointer")
            if after is None:
                after = pos + 2
            jumps += 1
            if jumps > 64:
                raise ValueError("pointer loop")
            pos = ((n & 0x3F) << 8) | blob[pos + 1]
            continue
        if n & 0xC0 or pos + 1 + n > len(blob):
            raise ValueError("bad label")
        labels.append(blob[pos + 1:pos + 1 + n].decode("utf-8", errors="replace"))
        pos += 1 + n
    return ".".join(labels), (after if after is not None else pos)


def parse_netlogon(blob: bytes, address: str) -> DomainController | None:
    """A ``NETLOGON_SAM_LOGON_RESPONSE_EX`` as a :class:`DomainController`, or None when
    ``blob`` is not one (another answer type, truncated, no host name)."""
    try:
        opcode, _sbz, flags = struct.unpack_from("<HHI", blob, 0)
        if opcode not in _RESPONSE_EX:
            return None
        pos = 24  # opcode, sbz, flags, DomainGuid
        names = []
        for _ in range(5):  # forest, domain, host, NetBIOS domain, NetBIOS computer
            name, pos = _dns_name(blob, pos)
            names.append(name)
    except (ValueError, struct.error):
        return None
    _forest, dns_domain, host, netbios_domain, _computer = names
    if not host:
        return None
    return DomainController(host=host, address=address, domain=netbios_domain,
                            dns_domain=dns_domain, flags=flags)


# --- finding and pinging ---------------------------------------------------------------------

def _resolve_all(names: list[str], timeout: float) -> list[tuple[int, str]]:
    """(family, address) for each of ``names`` (addresses kept as they are), in order and
    without repeats; resolution stops being waited for after ``timeout`` seconds."""
    found: list[tuple[int, str]] = []

    def work() -> None:
        for name in names:
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                pass
            else:
                found.append((socket.AF_INET6 if ip.version == 6 else socket.AF_INET, name))
                continue
            with contextlib.suppress(OSError, UnicodeError):
                for family, _t, _p, _c, addr in socket.getaddrinfo(
                        name, 389, type=socket.SOCK_DGRAM):
                    found.append((family, str(addr[0])))

    worker = threading.Thread(target=work, name="smbsession-dc-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout))
    out = list(dict.fromkeys(list(found)))
    return [a for a in out if a[0] in (socket.AF_INET, socket.AF_INET6)][:MAX_CANDIDATES]


def candidates(dns_domain: str, realm: str | None, timeout: float) -> list[tuple[int, str]]:
    """The addresses to ping for ``dns_domain``: its own name's, then its realm's KDCs'."""
    names = [dns_domain]
    if realm:
        from .kerberos import kdcs_for

        names += [h for h, _port in kdcs_for(realm)]
    return _resolve_all(names, timeout)


def locate(dns_domain: str, realm: str | None = None, timeout: float = 2.0,
           ) -> DomainController | None:
    """The first DC of ``dns_domain`` to answer an LDAP ping (see the module), within
    ``timeout`` seconds in all; None when none answers."""
    deadline = time.monotonic() + timeout
    addresses = candidates(dns_domain, realm, timeout)
    message_id = random.SystemRandom().randrange(1, 2**31 - 1)
    request = ping_request(message_id, dns_domain)
    sockets: dict[int, socket.socket] = {}
    sent: set[str] = set()
    try:
        for family, address in addresses:
            try:
                sock = sockets.get(family)
                if sock is None:
                    sock = sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
                    sock.setblocking(False)
                sock.sendto(request, (address, 389))
                sent.add(address)
            except OSError:
                continue
        while sent:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _w, _x = select.select(list(sockets.values()), [], [], left)
            for sock in ready:
                try:
                    data, peer = sock.recvfrom(_DATAGRAM)
                except OSError:
                    continue
                address = str(peer[0])
                if address not in sent:
                    continue
                blob = netlogon_blob(data, message_id)
                dc = parse_netlogon(blob, address) if blob else None
                if dc is not None and dc.flags & DS_DS_FLAG and \
                        dc.dns_domain.lower().rstrip(".") == dns_domain.lower().rstrip("."):
                    return dc
        return None
    finally:
        for sock in sockets.values():
            sock.close()
