"""Which properties to show, in which format: ``-Format``, ``-Json`` and ``-Property``.

Properties are shown by their Windows names in the seed's order (Example 5): the
MSFT_SmbSession properties, then smbsession's extras, then ``PSComputerName``, which
PowerShell adds to every object it gets through CIM: the server the session was read
from, empty (``null``) for the local server.

``-Property`` works like ``Select-Object -Property``: names in any case, wildcards
(``Client*``, ``*``), in the order given. Without ``-Format``, PowerShell shows an
object of up to four properties as a table and one of five or more as a list; so does
this tool (``-Property *`` gives the seed's Example 5 list).
"""

from __future__ import annotations

from ..errors import InvalidParameter
from ..model import ALL_PROPERTIES, TABLE_PROPERTIES, SmbSession

TYPE_CHECKING = False  # collections costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

PS_COMPUTER_NAME = "PSComputerName"

#: Every property a row can have, in the order ``-Property *`` shows them.
PROPERTIES: tuple[str, ...] = (*ALL_PROPERTIES, PS_COMPUTER_NAME)

#: Up to this many properties, the default view is a table (PowerShell's rule).
TABLE_LIMIT = 4


def select_properties(patterns: Sequence[str], command: str) -> tuple[str, ...]:
    """Return the properties ``-Property`` names, in the order given, each once.

    Raises :class:`InvalidParameter` for a name or pattern that matches no property."""
    from fnmatch import fnmatchcase

    chosen: dict[str, None] = {}
    for pattern in patterns:
        matched = [p for p in PROPERTIES if fnmatchcase(p.lower(), pattern.lower())]
        if not matched:
            raise InvalidParameter(
                f"{command}: Cannot bind parameter 'Property': '{pattern}' is not a property "
                f"of MSFT_SmbSession. Properties: {', '.join(PROPERTIES)} (wildcards work: "
                "Client*, *)."
            )
        chosen.update(dict.fromkeys(matched))
    return tuple(chosen)


def choose_view(
    fmt: str | None, json: bool, patterns: Sequence[str] | None, command: str
) -> tuple[str, tuple[str, ...]]:
    """Return ``(format, properties)`` for the given ``-Format``, ``-Json`` and
    ``-Property``. Raises :class:`InvalidParameter` when -Json and -Format disagree."""
    if json and fmt not in (None, "Json"):
        raise InvalidParameter(
            f"{command}: -Json and -Format {fmt} ask for two formats; give one of them."
        )
    if json:
        fmt = "Json"
    properties = select_properties(patterns, command) if patterns else None
    if fmt is None:
        fmt = "Table" if properties is None or len(properties) <= TABLE_LIMIT else "List"
    if properties is None:
        properties = TABLE_PROPERTIES if fmt == "Table" else PROPERTIES
    return fmt, properties


def rows(sessions: Iterable[SmbSession], properties: tuple[str, ...]) -> Iterator[dict]:
    """Yield each session as a dict of ``properties`` (Windows names, in that order)."""
    own = tuple(p for p in properties if p != PS_COMPUTER_NAME)
    if own == properties:
        for s in sessions:
            yield s.to_dict(own)
        return
    in_order = properties[-1] == PS_COMPUTER_NAME
    for s in sessions:
        values = s.to_dict(own) if own else {}
        values[PS_COMPUTER_NAME] = s.ps_computer_name
        yield values if in_order else {p: values.get(p) for p in properties}
