"""How Samba's addresses and user names become the strings Windows shows."""

from __future__ import annotations

from .config import SambaConfig


def client_address(samba_address: str) -> str | None:
    """Turn Samba's ``ipv4:1.2.3.4:port`` / ``ipv6:fe80::1:port`` into Windows' form.

    IPv4 stays as it is (``1.2.3.4``); IPv6 is bracketed (``[fe80::1]``), as in the seed's
    Example 1. An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is shown as the IPv4 address
    the client really has. Anything else is returned unchanged; an empty string gives None.
    """
    if not samba_address:
        return None
    family, _, rest = samba_address.partition(":")
    if family == "ipv4":
        return rest.rsplit(":", 1)[0]
    if family == "ipv6":
        host = rest.rsplit(":", 1)[0]
        if host.lower().startswith("::ffff:") and "." in host:
            return host[7:]
        return f"[{host}]"
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
