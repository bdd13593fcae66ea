"""PowerShell parameter binding of a command line, shared by every command.

:class:`Binder` turns argv into ``{param.key: value}`` the way PowerShell binds a
command's arguments:

- ``-Name value`` and ``-Name:value``; names are case-insensitive and may be shortened to
  any unambiguous prefix (``-sess``). An alias counts when typed in full (``-Session`` is
  ``-CimSession``), and as a prefix only when no parameter name fits. When a prefix fits a
  common parameter and one of the command's own, the command's own wins (``-De`` would
  otherwise be ``-Debug``). GNU spellings work too: ``--session-id 5``,
  ``--session-id=5``, ``--json``.
- Values without a name fill the parameters that have a position, in position order,
  skipping those already given by name; after ``--`` every argument is such a value.
- Arrays: ``1,2,3`` and ``1, 2, 3`` (a value ending in a comma, or followed by one that
  begins with a comma, continues the list); a quoted element keeps its commas
  (``"'a,b'"``).
- Switches: ``-IncludeHidden``, ``-IncludeHidden:$false`` (``-IncludeHidden: $false``).
"""

from __future__ import annotations

from ..errors import InvalidParameter
from .params import Param, convert, snake, unquote

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

HELP_TOKENS = frozenset({"-?", "/?", "-h", "-help", "--help"})


def wants_help(argv: Sequence[str]) -> bool:
    """True when ``argv`` asks for the help page (``-?``, ``-Help``, ``--help``, ``-h``)."""
    for token in argv:
        if token == "--":
            return False
        if token.lower() in HELP_TOKENS:
            return True
    return False




def split_list(text: str) -> list[str]:
    """Split ``a, b,'c,d'`` at the commas outside quotes; strip blanks around each piece
    (quotes stay on the piece: :func:`.params.unquote` removes them)."""
    pieces: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == ",":
            pieces.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    pieces.append("".join(current).strip())
    return pieces


class Binder:
    """Binds the arguments of one command to its declared parameters."""

    def __init__(self, command: str, params: Sequence[Param]) -> None:
        """``command`` is the name error messages start with; ``params`` are the
        command's parameters (include :data:`.params.COMMON_PARAMS` to accept them)."""
        self.command = command
        self.params = tuple(params)
        self.positional = tuple(
            sorted((p for p in self.params if p.position is not None),
                   key=lambda p: p.position or 0)
        )

    def lookup(self, token: str) -> Param:
        """Return the parameter that ``-Name`` or ``--gnu-name`` (possibly shortened)
        names; raise :class:`InvalidParameter` for an unknown or ambiguous name."""
        gnu = token.startswith("--")
        typed = token.lstrip("-")
        key = typed.lower().replace("_", "-") if gnu else typed.lower()

        def spell(name: str) -> str:
            return snake(name).replace("_", "-") if gnu else name.lower()

        names = [(spell(p.name), p) for p in self.params]
        aliases = [(spell(a), p) for p in self.params for a in p.aliases]
        for spelled, param in names + aliases:
            if spelled == key:
                return param
        for table in (names, aliases):
            found = list(dict.fromkeys(p for spelled, p in table if spelled.startswith(key)))
            own = [p for p in found if not p.common]
            if len(found) == 1 or (len(found) > 1 and len(own) == 1):
                return found[0] if len(found) == 1 else own[0]
            if found:
                dash = "--" if gnu else "-"
                listed = " ".join(dash + (p.gnu if gnu else p.name) for p in found)
                raise InvalidParameter(
                    f"{self.command}: Parameter cannot be processed because the parameter "
                    f"name '{typed}' is ambiguous. Possible matches include: {listed}."
                )
        import difflib  # only a mistyped name pays for it

        dash = "--" if gnu else "-"
        spellings = {spelled: dash + (p.gnu if gnu else p.name) for spelled, p in names}
        spellings.update({spell(a): dash + (spell(a) if gnu else a)
                          for p in self.params for a in p.aliases if len(a) > 2})
        close = difflib.get_close_matches(key, list(spellings), n=1, cutoff=0.75)
        hint = f" Did you mean {spellings[close[0]]}?" if close else ""
        raise InvalidParameter(
            f"{self.command}: A parameter cannot be found that matches parameter name "
            f"'{typed}'.{hint} Run '{self.command} -?' for the parameters."
        )

    @staticmethod
    def is_name(token: str) -> bool:
        """True when ``token`` is a parameter name (``-x``, ``--x``), not a value such as
        ``-5`` or ``-``."""
        rest = token[2:] if token.startswith("--") else token[1:] if token[:1] == "-" else ""
        return bool(rest) and rest[0] not in "-." and not rest[0].isdecimal()

    def _missing(self, param: Param) -> InvalidParameter:
        if param.type == "switch":
            return InvalidParameter(
                f"{self.command}: Missing a value after -{param.name}: give $true or $false "
                f"(in a Unix shell, quote it: -{param.name}:'$false')."
            )
        return InvalidParameter(
            f"{self.command}: Missing an argument for parameter '{param.name}'. "
            f"Specify a parameter of type '{param.type_label()}' and try again."
        )

    @staticmethod
    def _continue_list(text: str, argv: Sequence[str], i: int) -> tuple[str, int]:
        """Join ``1,`` ``2`` (or ``1`` ``,2``) into one list text; return it and the
        index of the next unread argument."""
        while i < len(argv) and (text.rstrip().endswith(",") or argv[i].lstrip().startswith(",")):
            text += argv[i]
            i += 1
        return text, i

    def _store(self, bound: dict[str, object], param: Param, text: str) -> None:
        if param.key in bound:
            raise InvalidParameter(
                f"{self.command}: Cannot bind parameter because parameter '{param.name}' "
                "is specified more than once."
                + (f" To give several values, use the array syntax: -{param.name} "
                   "value1,value2." if param.array else "")
            )
        pieces = split_list(text) if param.array else [text.strip()]
        if len(pieces) > 1 and "" in pieces:
            raise InvalidParameter(
                f"{self.command}: Cannot bind parameter '{param.name}': the list \"{text}\" "
                "has an empty element."
            )
        values = [convert(param, unquote(piece), self.command) for piece in pieces]
        bound[param.key] = values if param.array else values[0]

    def bind(self, argv: Sequence[str]) -> dict[str, Any]:
        """Bind ``argv``; return ``{param.key: value}`` for the parameters given (a list
        for an array parameter). Raises :class:`InvalidParameter` (exit code 2) naming
        the parameter and the value for anything that does not bind."""
        named: list[tuple[Param, str]] = []
        loose: list[str] = []
        i, only_values = 0, False
        while i < len(argv):
            token = argv[i]
            i += 1
            if token == "--" and not only_values:
                only_values = True
                continue
            if only_values or not self.is_name(token):
                text, i = self._continue_list(token, argv, i)
                loose.append(text)
                continue
            name, sep, inline = token.partition("=" if token.startswith("--") else ":")
            param = self.lookup(name)
            if param.type == "switch" and not sep:
                named.append((param, "$true"))
                continue
            if not inline:
                if i >= len(argv) or (self.is_name(argv[i]) and param.type != "switch"):
                    raise self._missing(param)
                inline = argv[i]
                i += 1
            if param.array:
                inline, i = self._continue_list(inline, argv, i)
            named.append((param, inline))
        bound: dict[str, object] = {}
        for param, text in named:
            self._store(bound, param, text)
        free = [p for p in self.positional if p.key not in bound]
        for text in loose:
            if not free:
                raise InvalidParameter(
                    f"{self.command}: A positional parameter cannot be found that accepts "
                    f"argument '{text}'."
                )
            self._store(bound, free.pop(0), text)
        return bound
