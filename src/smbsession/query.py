"""The filters of Get-SmbSession as one object: which sessions a command is about.

Matching follows the Windows cmdlet: every value is an exact match (no wildcards), a
parameter given several values matches any of them, and different parameters must all
match. Two documented extensions for Samba: ClientComputerName also matches the client's
NetBIOS name and an IPv6 address with or without brackets; ClientUserName is compared
case-insensitively and a bare user name (no ``DOMAIN\\``) matches that user in any domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import SmbSession


def _host_keys(value: str) -> set[str]:
    v = value.strip().lower()
    bare = v[1:-1] if v.startswith("[") and v.endswith("]") else v
    return {v, bare, f"[{bare}]"}


def _user_matches(wanted: str, actual: str | None) -> bool:
    if not actual:
        return False
    w, a = wanted.lower(), actual.lower()
    if "\\" in w:
        return w == a
    return a.rpartition("\\")[2] == w


@dataclass(frozen=True)
class SessionQuery:
    """Which sessions to select; an empty tuple means "any value".

    ``include_hidden`` also selects sessions that are hidden by default (anonymous and
    not yet authenticated sessions). ``smb_instance`` selects by SmbInstance; Samba only
    has ``Default``, so ``CSV``, ``SBL`` and ``SR`` select nothing.
    """

    session_id: tuple[int, ...] = ()
    client_computer_name: tuple[str, ...] = ()
    client_user_name: tuple[str, ...] = ()
    scope_name: tuple[str, ...] = ()
    cluster_node_name: tuple[str, ...] = ()
    include_hidden: bool = False
    smb_instance: str | None = None

    def _value_matches(self, param: str, value: object, s: SmbSession) -> bool:
        if param == "session_id":
            return s.session_id == value
        if param == "client_computer_name":
            keys = _host_keys(str(value))
            names = (s.client_computer_name, s.client_netbios_name)
            return any(n is not None and n.lower() in keys for n in names)
        if param == "client_user_name":
            return _user_matches(str(value), s.client_user_name)
        actual = getattr(s, param)
        return actual is not None and actual.lower() == str(value).lower()

    def matches(self, session: SmbSession) -> bool:
        """Return True when ``session`` passes every filter of this query."""
        if session.hidden and not self.include_hidden:
            return False
        if self.smb_instance and self.smb_instance.lower() != (session.smb_instance or "").lower():
            return False
        for param, values in self._filters():
            if values and not any(self._value_matches(param, v, session) for v in values):
                return False
        return True

    def select(self, sessions: Iterable[SmbSession]) -> list[SmbSession]:
        """Return the sessions this query selects, in their original order."""
        return [s for s in sessions if self.matches(s)]

    def unmatched(self, selected: Sequence[SmbSession]) -> list[tuple[str, object]]:
        """Return ``(PropertyName, value)`` for each filter value that matched none of
        ``selected``: PowerShell reports each of them as a "not found" error."""
        missing: list[tuple[str, object]] = []
        for param, values in self._filters():
            for v in values:
                if not any(self._value_matches(param, v, s) for s in selected):
                    missing.append((_PROPERTY_OF[param], v))
        return missing

    def _filters(self) -> list[tuple[str, tuple[object, ...]]]:
        return [
            ("session_id", self.session_id),
            ("client_computer_name", self.client_computer_name),
            ("client_user_name", self.client_user_name),
            ("scope_name", self.scope_name),
            ("cluster_node_name", self.cluster_node_name),
        ]


_PROPERTY_OF = {
    "session_id": "SessionId",
    "client_computer_name": "ClientComputerName",
    "client_user_name": "ClientUserName",
    "scope_name": "ScopeName",
    "cluster_node_name": "ClusterNodeName",
}
