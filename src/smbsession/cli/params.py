"""PowerShell parameter binding, shared by every command.

A command declares its parameters once (:class:`Param`); :func:`bind` turns argv into
values the way PowerShell binds them:

- ``-Name value`` and ``-Name:value``; names are case-insensitive and may be shortened
  to any unambiguous prefix; aliases count as names; ``--kebab-case`` spellings work too
  (``--session-id 5``);
- positional values fill the parameters that have a position, in order;
- arrays: ``1,2,3`` and ``1, 2, 3`` (a value ending in a comma continues the list);
- switches: ``-IncludeHidden`` and ``-IncludeHidden:$false``;
- values are converted to the declared type, and a value that does not convert is an
  error naming the parameter, the value and the type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidParameter

UINT64_MAX = 2**64 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: Types a parameter can have, with the .NET name used in error messages.
TYPE_NAMES = {
    "uint64": "System.UInt64",
    "int32": "System.Int32",
    "string": "System.String",
    "switch": "System.Management.Automation.SwitchParameter",
    "enum": "System.String",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a command.

    ``type`` is ``uint64``, ``int32``, ``string``, ``switch`` or ``enum`` (``choices``
    lists the accepted values); ``array`` makes it take a list; ``position`` (0-based)
    lets it bind positionally; ``aliases`` are other full names.
    """

    name: str
    type: str = "string"
    array: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def key(self) -> str:
        """The snake_case key of this parameter in the bound result."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name).lower()

    @property
    def gnu(self) -> str:
        """The GNU spelling: ``SessionId`` -> ``session-id``."""
        return self.key.replace("_", "-")

    def type_label(self) -> str:
        base = TYPE_NAMES[self.type]
        return f"{base}[]" if self.array else base


_TRUE = {"$true", "true", "1"}
_FALSE = {"$false", "false", "0"}
_NUMBER = re.compile(r"^[+-]?\d+$")


def convert(param: Param, text: str, command: str) -> object:
    """Convert one textual value to ``param``'s type, or raise :class:`InvalidParameter`."""

    def fail(reason: str) -> InvalidParameter:
        return InvalidParameter(
            f"{command}: Cannot process argument transformation on parameter '{param.name}'. "
            f"Cannot convert value \"{text}\" to type \"{TYPE_NAMES[param.type]}\": {reason}"
        )

    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if param.type == "uint64":
        if not _NUMBER.match(value) or value.startswith("-"):
            raise fail(f"expected a whole number from 0 to {UINT64_MAX}.")
        number = int(value)
        if number > UINT64_MAX:
            raise fail(f"the value is larger than {UINT64_MAX}.")
        return number
    if param.type == "int32":
        if not _NUMBER.match(value):
            raise fail(f"expected a whole number from {INT32_MIN} to {INT32_MAX}.")
        number = int(value)
        if not INT32_MIN <= number <= INT32_MAX:
            raise fail(f"the value is outside {INT32_MIN} to {INT32_MAX}.")
        return number
    if param.type == "enum":
        for choice in param.choices:
            if choice.lower() == value.lower():
                return choice
        raise InvalidParameter(
            f"{command}: Cannot validate argument on parameter '{param.name}'. "
            f"The argument \"{text}\" does not belong to the set \"{','.join(param.choices)}\". "
            f"Supply one of: {', '.join(param.choices)}."
        )
    if param.type == "switch":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise fail("a switch takes $true or $false.")
    return value


class Binder:
    """Binds argv to the parameters of one command."""

    def __init__(self, command: str, params: Sequence[Param]) -> None:
        self.command = command
        self.params = list(params)
        self.positional = sorted(
            (p for p in self.params if p.position is not None), key=lambda p: p.position or 0
        )

    def lookup(self, token: str) -> Param:
        """Return the parameter a ``-Name`` / ``--gnu-name`` token names (prefixes allowed)."""
        gnu = token.startswith("--")
        name = token.lstrip("-")
        low = name.lower()
        if gnu:
            low = low.replace("_", "-")
            names = {p.gnu: p for p in self.params}
        else:
            names = {p.name.lower(): p for p in self.params}
            for p in self.params:
                names.update({a.lower(): p for a in p.aliases})
        if low in names:
            return names[low]
        candidates = sorted({p.name for n, p in names.items() if n.startswith(low)})
        if len(candidates) == 1:
            return next(p for p in self.params if p.name == candidates[0])
        if candidates:
            raise InvalidParameter(
                f"{self.command}: Parameter cannot be processed because the parameter name "
                f"'{name}' is ambiguous. Possible matches include: "
                + " ".join(f"-{c}" for c in candidates)
                + "."
            )
        raise InvalidParameter(
            f"{self.command}: A parameter cannot be found that matches parameter name "
            f"'{name}'. Run '{self.command} -Help' for the parameters."
        )

    def _is_name(self, token: str) -> bool:
        if token in ("-", "--") or not token.startswith("-"):
            return False
        return not _NUMBER.match(token.split(":", 1)[0])

    def _store(self, bound: dict[str, object], param: Param, values: list[str]) -> None:
        if param.key in bound:
            raise InvalidParameter(
                f"{self.command}: Cannot bind parameter because parameter '{param.name}' "
                "is specified more than once."
            )
        converted = [convert(param, v, self.command) for v in values]
        bound[param.key] = converted if param.array else converted[0]

    def _take_values(self, argv: list[str], i: int, param: Param) -> tuple[list[str], int]:
        """Collect the value(s) starting at argv[i]; return them and the next index."""
        if i >= len(argv):
            raise InvalidParameter(
                f"{self.command}: Missing an argument for parameter '{param.name}'. "
                f"Specify a parameter of type '{param.type_label()}' and try again."
            )
        parts: list[str] = []
        text = argv[i]
        i += 1
        while param.array and text.rstrip().endswith(",") and i < len(argv):
            text += argv[i]
            i += 1
        for piece in _split_list(text) if param.array else [text]:
            if piece == "":
                raise InvalidParameter(
                    f"{self.command}: Cannot bind parameter '{param.name}': "
                    f"the list \"{text}\" has an empty element."
                )
            parts.append(piece)
        if len(parts) > 1 and not param.array:
            raise InvalidParameter(
                f"{self.command}: Cannot convert \"{text}\" for parameter '{param.name}': "
                f"it takes one {param.type_label()}, not a list."
            )
        return parts, i

    def bind(self, argv: Sequence[str]) -> dict[str, object]:
        """Bind ``argv``; return ``{param.key: value}`` for the parameters given."""
        args = list(argv)
        bound: dict[str, object] = {}
        positional = list(self.positional)
        i = 0
        while i < len(args):
            token = args[i]
            if self._is_name(token):
                name, sep, inline = token.partition(":")
                if token.startswith("--") and "=" in token:
                    name, sep, inline = token.partition("=")
                param = self.lookup(name)
                i += 1
                if param.type == "switch":
                    self._store(bound, param, [inline] if sep else ["$true"])
                    continue
                if sep:
                    args.insert(i, inline)
                values, i = self._take_values(args, i, param)
                self._store(bound, param, values)
                continue
            while positional and positional[0].key in bound:
                positional.pop(0)
            if not positional:
                raise InvalidParameter(
                    f"{self.command}: A positional parameter cannot be found that accepts "
                    f"argument '{token}'."
                )
            param = positional.pop(0)
            values, i = self._take_values(args, i, param)
            self._store(bound, param, values)
        return bound


def _split_list(text: str) -> list[str]:
    return [piece.strip() for piece in text.split(",")]
