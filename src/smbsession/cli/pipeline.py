"""Pipeline input: objects read from stdin, bound to parameters by property name.

PowerShell passes objects from one command to the next; here the objects travel as the
JSON or NDJSON that ``-Format Json`` / ``-Format NDJson`` writes, so that
``Get-SmbSession -ClientUserName 'LAB\\bob' -Format Json | Get-SmbSession`` works as it does
in PowerShell.

When is stdin pipeline input? PowerShell knows whether a command stands after a ``|``; a
Unix program only sees its stdin. The rule here: stdin is read when it is a pipe or a
regular file. A terminal, ``/dev/null`` (or any other device), a socket or a closed stdin
is not pipeline input, and the command runs once with its command-line parameters.

Each input object runs the command once, as PowerShell's ByPropertyName binding does: its
properties whose names (in any case) are those of parameters that accept pipeline input
bind those parameters, unless the command line already gave them; ``null`` values bind
nothing. Input that holds no object (an empty pipe, ``[]``) runs the command zero times:
it prints nothing, as ``@() | Get-SmbSession`` does. Every input object is read and
checked before anything runs, so bad input changes nothing.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence

from ..errors import InvalidParameter
from .params import Param, convert

_BLANK = re.compile(r"[ \t\r\n]*")
_HINT = "Pipeline input is the JSON or NDJSON that -Format Json or -Format NDJson writes."


class InputObject:
    """One object of pipeline input and the line of stdin it starts on."""

    __slots__ = ("line", "properties")

    def __init__(self, line: int, properties: Mapping[str, object]) -> None:
        self.line = line
        self.properties = properties

    def __repr__(self) -> str:
        return f"InputObject(line={self.line}, properties={dict(self.properties)!r})"


def stdin_kind(fd: int = 0) -> str:
    """Say what stdin is: ``pipe``, ``file``, ``terminal``, ``device`` (``/dev/null``),
    ``socket``, ``closed`` or ``other``. Only a pipe or a file is pipeline input."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return "closed"
    if os.isatty(fd):
        return "terminal"
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISCHR(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def read_stdin(command: str, fd: int = 0) -> list[InputObject] | None:
    """Return the objects piped into the command, or None when stdin is not pipeline input
    (see the module's rule). Raises :class:`InvalidParameter` for input that is not
    UTF-8 JSON/NDJSON of objects, naming the line."""
    if stdin_kind(fd) not in ("pipe", "file"):
        return None
    with open(fd, "rb", closefd=False) as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _input_error(command, line, "the input is not UTF-8 text") from None
    return parse_objects(text, command)


def _input_error(command: str, line: int, what: str) -> InvalidParameter:
    return InvalidParameter(f"{command}: pipeline input, line {line}: {what}. {_HINT}")


class _Lines:
    """Line numbers of positions in a text read front to back (counted incrementally)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def parse_objects(text: str, command: str) -> list[InputObject]:
    """Parse pipeline input: JSON arrays of objects, objects, or NDJSON (one object a
    line), one after another. Raises :class:`InvalidParameter` naming the line of
    anything else."""
    import json

    decoder = json.JSONDecoder()
    lines = _Lines(text)
    objects: list[InputObject] = []

    def skip(pos: int) -> int:
        return _BLANK.match(text, pos).end()  # type: ignore[union-attr]

    def value_at(pos: int) -> int:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _input_error(
                command, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        line = lines.at(pos)
        if not isinstance(value, dict):
            kind = "an array" if isinstance(value, list) else f"the value {json.dumps(value)}"
            raise _input_error(command, line, f"expected an object with properties, found {kind}")
        objects.append(InputObject(line, value))
        return skip(end)

    pos = skip(0)
    while pos < len(text):
        if text[pos] != "[":
            pos = value_at(pos)
            continue
        pos = skip(pos + 1)
        if text.startswith("]", pos):
            pos = skip(pos + 1)
            continue
        while True:
            pos = value_at(pos)
            if text.startswith(",", pos):
                pos = skip(pos + 1)
            elif text.startswith("]", pos):
                pos = skip(pos + 1)
                break
            else:
                where = lines.at(min(pos, len(text)))
                raise _input_error(command, where, "expected ',' or ']' in the array")
    return objects


def bind_by_property_name(
    obj: InputObject, params: Sequence[Param], given: Mapping[str, object], command: str
) -> dict[str, object]:
    """Bind one input object's properties to the parameters that accept pipeline input
    and that ``given`` (the command line) does not already hold; return
    ``{param.key: value}``. Raises :class:`InvalidParameter`, naming the line, for a value
    that does not convert or an object that binds nothing."""
    import json

    where = f"{command}: pipeline input, line {obj.line}"
    by_name = {p.name.lower(): p for p in params if p.pipeline and p.key not in given}
    bound: dict[str, object] = {}
    for name, value in obj.properties.items():
        param = by_name.get(name.lower())
        if param is None or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if len(items) != 1 and not param.array:
            raise InvalidParameter(f"{where}: {param.name} takes one value, not a list.")
        texts = []
        for item in items:
            if isinstance(item, (bool, float, dict, list)) or item is None:
                raise InvalidParameter(
                    f"{where}: Cannot convert the value {json.dumps(item)} of property "
                    f"'{name}' to {param.type_label()}."
                )
            texts.append(str(item))
        converted = [convert(param, t, where) for t in texts]
        bound[param.key] = converted if param.array else converted[0]
    if not bound:
        accepted = ", ".join(p.name for p in params if p.pipeline)
        raise InvalidParameter(
            f"{where}: The input object cannot be bound to any parameters: it has none of "
            f"the properties {accepted} (or the command line already gives them)."
        )
    return bound
