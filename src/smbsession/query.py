"""The filters of Get-SmbSession as one object: which sessions a command is about.

Matching follows the Windows cmdlet: every value is an exact match (no wildcards), a
parameter given several values matches any of them, and different parameters must all
match. Strings are compared case-insensitively, as WMI compares them. Two documented
extensions for Samba:

- ClientComputerName matches the client's address as shown (``192.168.1.5``,
  ``[fe80::1]``), an IPv6 address without brackets or in any spelling (``::1``,
  ``0:0:0:0:0:0:0:1``), and the client's NetBIOS name when Samba knows it (clients that
  connect over NetBIOS, port 139, send one);
- ClientUserName matches ``DOMAIN\\user``; a bare user name (no ``DOMAIN\\``) matches that
  user in any domain;
- ClusterNodeName, on a cluster, matches the serving node's name, its PNN and its
  private address.

Sessions that are hidden by default (see :class:`SessionQuery`) are selected only with
``include_hidden``.
"""

from __future__ import annotations

from .errors import InvalidParameter
from .model import SMB_INSTANCES, SmbSession

TYPE_CHECKING = False  # collections costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    Test = Callable[[SmbSession], bool]

UINT64_MAX = 2**64 - 1

#: Filter field -> the Windows property it filters on, in the seed's positional order.
PROPERTY_OF: dict[str, str] = {
    "session_id": "SessionId",
    "client_computer_name": "ClientComputerName",
    "client_user_name": "ClientUserName",
    "scope_name": "ScopeName",
    "cluster_node_name": "ClusterNodeName",
}


def _host_keys(value: str) -> frozenset[str]:
    """The spellings of one ClientComputerName value that count as equal."""
    v = value.strip().lower()
    bare = v[1:-1] if v.startswith("[") and v.endswith("]") else v
    keys = {v, bare}
    if ":" not in bare and not bare.replace(".", "").isdigit():
        return frozenset(keys)  # a name: no address spellings to add
    import ipaddress

    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return frozenset(keys)
    if address.version == 6:
        keys.update({address.compressed, f"[{address.compressed}]", f"[{bare}]"})
    else:
        keys.add(address.compressed)
    return frozenset(keys)


def _session_id_test(wanted: int) -> Test:
    return lambda s: s.session_id == wanted


def _computer_test(wanted: str) -> Test:
    keys = _host_keys(wanted)

    def test(s: SmbSession) -> bool:
        address, netbios = s.client_computer_name, s.client_netbios_name
        return (address is not None and address.lower() in keys) or (
            netbios is not None and netbios.lower() in keys
        )

    return test


def _user_test(wanted: str) -> Test:
    low = wanted.lower()
    if "\\" in low or not low:
        return lambda s: (s.client_user_name or "").lower() == low
    return lambda s: (s.client_user_name or "").lower().rpartition("\\")[2] == low


def _string_test(attribute: str, wanted: str) -> Test:
    low = wanted.lower()

    def test(s: SmbSession) -> bool:
        actual = getattr(s, attribute)
        return actual is not None and actual.lower() == low

    return test


def _cluster_node_test(wanted: str) -> Test:
    low = wanted.lower()

    def test(s: SmbSession) -> bool:
        actual = s.cluster_node_name
        return (actual is not None and actual.lower() == low) or low in s.cluster_node_keys

    return test


def _test_for(name: str, value: object) -> Test:
    if name == "session_id":
        return _session_id_test(value)  # type: ignore[arg-type]
    if name == "client_computer_name":
        return _computer_test(str(value))
    if name == "client_user_name":
        return _user_test(str(value))
    if name == "cluster_node_name":
        return _cluster_node_test(str(value))
    return _string_test(name, str(value))


def _as_tuple(name: str, values: object) -> tuple[object, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, int)):
        values = (values,)
    try:
        items: tuple[object, ...] = tuple(values)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidParameter(
            f"{values!r} is neither a value nor a list of values.", name, values
        ) from None
    for item in items:
        if name == "session_id":
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= UINT64_MAX:
                raise InvalidParameter(
                    f"{item!r} is not a session id; a session id is a whole number from 0 "
                    f"to {UINT64_MAX}.", name, item
                )
        elif not isinstance(item, str):
            raise InvalidParameter(
                f"{item!r} is not a string; give a string or a list of strings.", name, item
            )
    return items


class SessionQuery:
    """Which sessions to select; an empty tuple means "any value".

    Each filter takes a tuple (a single value or a list is accepted and stored as a
    tuple). Values are checked when the query is made: a session id must be a whole
    number from 0 to 18446744073709551615, the other filters strings, ``smb_instance``
    one of ``Default``, ``CSV``, ``SBL``, ``SR`` in any case (stored in that spelling);
    anything else raises :class:`~smbsession.errors.InvalidParameter` naming the
    parameter and the value.

    Hidden sessions: on Samba, a session is hidden by default when its authentication has
    not completed yet or when it is anonymous (a null session, ``NT AUTHORITY\\ANONYMOUS
    LOGON``); ``include_hidden`` selects them too. ``smb_instance`` selects by
    SmbInstance: Samba only has ``Default``, so ``CSV``, ``SBL`` and ``SR`` select nothing.
    """

    _tests: list[list[Test]]
    __slots__ = ("_tests", "client_computer_name", "client_user_name", "cluster_node_name",
                 "include_hidden", "scope_name", "session_id", "smb_instance")

    session_id: tuple[int, ...]
    client_computer_name: tuple[str, ...]
    client_user_name: tuple[str, ...]
    scope_name: tuple[str, ...]
    cluster_node_name: tuple[str, ...]
    include_hidden: bool
    smb_instance: str | None

    def __init__(
        self,
        session_id: Iterable[int] | int = (),
        client_computer_name: Iterable[str] | str = (),
        client_user_name: Iterable[str] | str = (),
        scope_name: Iterable[str] | str = (),
        cluster_node_name: Iterable[str] | str = (),
        include_hidden: bool = False,
        smb_instance: str | None = None,
    ) -> None:
        given = {"session_id": session_id, "client_computer_name": client_computer_name,
                 "client_user_name": client_user_name, "scope_name": scope_name,
                 "cluster_node_name": cluster_node_name}
        for name in PROPERTY_OF:
            object.__setattr__(self, name, _as_tuple(name, given[name]))
        object.__setattr__(self, "include_hidden", bool(include_hidden))
        if smb_instance is not None:
            canonical = next(
                (i for i in SMB_INSTANCES if i.lower() == str(smb_instance).lower()), None
            )
            if canonical is None:
                raise InvalidParameter(
                    f"'{smb_instance}' is not an SMB instance; use one of: "
                    f"{', '.join(SMB_INSTANCES)}.", "smb_instance", smb_instance
                )
            smb_instance = canonical
        object.__setattr__(self, "smb_instance", smb_instance)
        tests = [
            [_test_for(name, value) for value in getattr(self, name)] for name in PROPERTY_OF
        ]
        object.__setattr__(self, "_tests", [t for t in tests if t])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SessionQuery is immutable: use replace({name}=...)")

    def _key(self) -> tuple[object, ...]:
        return (*(getattr(self, name) for name in PROPERTY_OF), self.include_hidden,
                self.smb_instance)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionQuery):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        given = ", ".join(f"{name}={getattr(self, name)!r}" for name in PROPERTY_OF
                          if getattr(self, name))
        return (f"SessionQuery({given + ', ' if given else ''}include_hidden="
                f"{self.include_hidden}, smb_instance={self.smb_instance!r})")

    def replace(self, **changes: object) -> SessionQuery:
        """Return a copy with the given filters changed."""
        fields = {name: getattr(self, name) for name in (*PROPERTY_OF, "include_hidden",
                                                          "smb_instance")}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"SessionQuery has no filter {', '.join(sorted(unknown))}")
        fields.update(changes)
        return SessionQuery(**fields)  # checked by __init__

    def matches(self, session: SmbSession) -> bool:
        """Return True when ``session`` passes every filter of this query."""
        if session.hidden and not self.include_hidden:
            return False
        if self.smb_instance is not None and self.smb_instance != session.smb_instance:
            return False
        return all(any(test(session) for test in alternatives) for alternatives in self._tests)

    def select(self, sessions: Iterable[SmbSession]) -> list[SmbSession]:
        """Return the sessions this query selects, in their original order."""
        return [s for s in sessions if self.matches(s)]

    def unmatched(self, selected: Sequence[SmbSession]) -> list[tuple[str, object]]:
        """Return ``(PropertyName, value)`` for each filter value that matched none of
        ``selected``: PowerShell reports each of them as a "not found" error."""
        missing: list[tuple[str, object]] = []
        for name, prop in PROPERTY_OF.items():
            for value in getattr(self, name):
                test = _test_for(name, value)
                if not any(test(s) for s in selected):
                    missing.append((prop, value))
        return missing

    def describe(self) -> str:
        """Say in words what this query selects, for ``-Verbose``:
        ``SessionId = 5 or 7, and ClientUserName = 'LAB\\bob'``."""
        parts = [
            f"{prop} = " + " or ".join(
                f"'{v}'" if isinstance(v, str) else str(v) for v in getattr(self, name)
            )
            for name, prop in PROPERTY_OF.items()
            if getattr(self, name)
        ]
        if self.smb_instance is not None:
            parts.append(f"SmbInstance = '{self.smb_instance}'")
        text = ", and ".join(parts) or "every session"
        return text + (", hidden ones included" if self.include_hidden else "")
