"""Parameter declarations and value conversion, shared by every command.

A command declares each parameter once as a :class:`Param`; :mod:`.binder` binds argv to
them and :mod:`.pipeline` binds piped objects to them. :func:`convert` turns one textual
value into the parameter's type, or raises an error that names the parameter, the value
and the type, the way PowerShell reports it.
"""

from __future__ import annotations

from ..errors import InvalidParameter

UINT64_MAX = 2**64 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: Parameter types, with the .NET type name shown in help and in error messages.
TYPE_NAMES: dict[str, str] = {
    "uint64": "UInt64",
    "int32": "Int32",
    "string": "String",
    "switch": "SwitchParameter",
    "enum": "String",
}

#: The values PowerShell's ``-ErrorAction`` takes that mean something here.
ERROR_ACTIONS: tuple[str, ...] = ("Continue", "SilentlyContinue", "Stop", "Ignore")


class Param:
    """One parameter of a command.

    ``type`` is ``uint64``, ``int32``, ``string``, ``switch`` or ``enum`` (``choices``
    lists the accepted values, matched case-insensitively). ``array`` makes it take a
    list; ``position`` (0-based) lets it bind positionally; ``aliases`` are other full
    names. ``pipeline`` marks PowerShell's "Accept pipeline input: True (ByPropertyName)".
    ``common`` marks PowerShell's common parameters (-Verbose, -ErrorAction, ...): when a
    shortened name fits a common parameter and one of the command's own, the command's
    own wins. ``type_name`` overrides the type shown in help (``SmbInstance``),
    ``minimum`` is the least number an ``int32`` takes (PowerShell's ValidateRange), and
    ``help`` is the description shown by ``-?``.
    """

    __slots__ = ("aliases", "array", "choices", "common", "help", "minimum", "name",
                 "pipeline", "position", "type", "type_name")

    def __init__(self, name: str, type: str = "string", array: bool = False,
                 position: int | None = None, aliases: tuple[str, ...] = (),
                 choices: tuple[str, ...] = (), pipeline: bool = False, common: bool = False,
                 type_name: str = "", minimum: int | None = None, help: str = "") -> None:
        self.name = name
        self.type = type
        self.array = array
        self.position = position
        self.aliases = aliases
        self.choices = choices
        self.pipeline = pipeline
        self.common = common
        self.type_name = type_name
        self.minimum = minimum
        self.help = help

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.type!r})"

    @property
    def key(self) -> str:
        """The snake_case key of this parameter in the bound result (``session_id``)."""
        return snake(self.name)

    @property
    def gnu(self) -> str:
        """The GNU spelling of the name: ``SessionId`` -> ``session-id``."""
        return self.key.replace("_", "-")

    def type_label(self) -> str:
        """The type as help shows it: ``UInt64[]``, ``String``, ``SmbInstance``."""
        base = self.type_name or TYPE_NAMES[self.type]
        return f"{base}[]" if self.array else base


def snake(name: str) -> str:
    """``SessionId`` -> ``session_id``; ``PSComputerName`` -> ``ps_computer_name``: a
    ``_`` before a capital that follows a small letter or a digit, or that ends a run of
    capitals followed by a small letter. (Written out: the regular expression module
    costs every listing's start-up.)"""
    out = []
    for i, char in enumerate(name):
        if i and "A" <= char <= "Z":
            before, after = name[i - 1], name[i + 1:i + 2]
            if ("a" <= before <= "z" or "0" <= before <= "9"
                    or ("A" <= before <= "Z" and "a" <= after <= "z")):
                out.append("_")
        out.append(char)
    return "".join(out).lower()


#: PowerShell's common parameters that this tool honours.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("Verbose", "switch", aliases=("vb",), common=True,
          help="Says on stderr what the command does (VERBOSE: lines)."),
    Param("Debug", "switch", aliases=("db",), common=True,
          help="Says on stderr how the parameters and the input were bound (DEBUG: lines)."),
    Param("ErrorAction", "enum", aliases=("ea",), choices=ERROR_ACTIONS, common=True,
          type_name="ActionPreference",
          help="What a non-terminating error (a value that matches nothing) does: Continue "
               "(the default) reports it and goes on, SilentlyContinue and Ignore go on "
               "without reporting it, Stop reports it and stops. The exit code is 1 in "
               "every case."),
)

_TRUE = frozenset({"$true", "true", "1"})
_FALSE = frozenset({"$false", "false", "0"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _decimal(text: str) -> bool:
    """One or more decimal digits, as ``\\d+`` matches them."""
    return bool(text) and all(c.isdecimal() for c in text)


def _hex(text: str) -> bool:
    """``0x`` then hexadecimal digits."""
    return len(text) > 2 and text[:2] in ("0x", "0X") and all(c in _HEX_DIGITS for c in text[2:])


def unquote(text: str) -> str:
    """Remove one pair of matching quotes around ``text``, as PowerShell's parser would
    (``'LAB\\bob'`` -> ``LAB\\bob``); a doubled quote inside single quotes is one quote."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        inner = text[1:-1]
        return inner.replace("''", "'") if text[0] == "'" else inner
    return text


def _conversion_error(command: str, param: Param, text: str, reason: str) -> InvalidParameter:
    return InvalidParameter(
        f"{command}: Cannot process argument transformation on parameter '{param.name}'. "
        f"Cannot convert value \"{text}\" to type \"System.{TYPE_NAMES[param.type]}\": {reason}"
    )


def _to_uint64(value: str) -> int | None:
    if _decimal(value):
        return int(value)
    if _hex(value):
        return int(value, 16)
    return None


def convert(param: Param, text: str, command: str) -> object:
    """Convert one value, as text, to ``param``'s type, or raise :class:`InvalidParameter`
    naming the parameter, the value and the type. ``command`` starts the message.

    UInt64 takes a decimal number without a sign (or hexadecimal ``0x...``) up to
    18446744073709551615; Int32 a decimal number with an optional sign; an enum one of
    its choices in any case (returned in its canonical spelling); a switch ``$true``,
    ``$false``, ``true``, ``false``, ``1`` or ``0``; a string anything.
    """
    value = text
    if param.type == "uint64":
        number = _to_uint64(value)
        if number is None:
            raise _conversion_error(
                command, param, text,
                f"expected a whole number from 0 to {UINT64_MAX}, without a sign.",
            )
        if number > UINT64_MAX:
            raise _conversion_error(
                command, param, text, f"the value is larger than {UINT64_MAX}."
            )
        return number
    if param.type == "int32":
        digits = value[1:] if value[:1] in "+-" else value
        if not _decimal(digits) or not INT32_MIN <= int(value) <= INT32_MAX:
            raise _conversion_error(
                command, param, text, f"expected a whole number from {INT32_MIN} to {INT32_MAX}."
            )
        if param.minimum is not None and int(value) < param.minimum:
            raise InvalidParameter(
                f"{command}: Cannot validate argument on parameter '{param.name}'. The {text} "
                f"argument is less than the minimum allowed range of {param.minimum}. Supply "
                f"an argument that is greater than or equal to {param.minimum} and then try "
                "the command again."
            )
        return int(value)
    if param.type == "enum":
        for choice in param.choices:
            if choice.lower() == value.lower():
                return choice
        raise InvalidParameter(
            f"{command}: Cannot validate argument on parameter '{param.name}'. The argument "
            f"\"{text}\" does not belong to the set \"{','.join(param.choices)}\". "
            f"Supply one of: {', '.join(param.choices)}."
        )
    if param.type == "switch":
        low = value.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise _conversion_error(
            command, param, text,
            "a switch takes $true or $false (in a Unix shell, quote it: "
            f"-{param.name}:'$false').",
        )
    return value
