"""How Samba's addresses and user names become the strings Windows shows."""

from __future__ import annotations

# (the C module under socket, whose Python layer costs a listing its enum import)
from _socket import AF_INET, AF_INET6, inet_ntop, inet_pton

from .config import SambaConfig

_V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def windows_host(host: str) -> str:
    """Spell a client's address as Windows' ClientComputerName does.

    IPv4 stays as it is (``1.2.3.4``); IPv6 is bracketed in its canonical form
    (``[fe80::1]``, a zone id kept), as in the seed's Example 1, whether or not it came
    in brackets; an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is shown as the IPv4
    address the client really has. A name, or text that is no address, is unchanged.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" not in bare:
        return bare
    address, percent, zone = bare.partition("%")
    try:
        packed = inet_pton(AF_INET6, address)
    except OSError:
        return host
    if packed[:12] == _V4_MAPPED:
        return inet_ntop(AF_INET, packed[12:])
    return f"[{inet_ntop(AF_INET6, packed)}{percent}{zone}]"


def client_address(samba_address: str) -> str | None:
    """Turn Samba's ``ipv4:1.2.3.4:port`` / ``ipv6:fe80::1:port`` into Windows' form
    (:func:`windows_host`). Anything else is returned unchanged; an empty string gives
    None."""
    if not samba_address:
        return None
    family, _, rest = samba_address.partition(":")
    if family in ("ipv4", "ipv6"):
        return windows_host(rest.rsplit(":", 1)[0])
    return samba_address


def user_name(account: str, config: SambaConfig, domain: str | None = None) -> str:
    """Return ``DOMAIN\\account`` as Windows shows a session's user.

    ``domain`` is the authenticating domain when the source knows it; an account already
    qualified with the winbind separator keeps its domain; a bare local account gets the
    server's NetBIOS name, as Windows shows ``MACHINE\\user`` for local accounts.
    """
    sep = config.winbind_separator
    if sep in account:
        dom, _, acct = account.partition(sep)
        return f"{dom}\\{acct}"
    return f"{domain or config.netbios_name}\\{account}"
