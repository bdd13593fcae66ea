"""Pipeline input: objects read from stdin, bound to parameters by property name.

PowerShell passes objects from one command to the next; here the objects travel as the
JSON or NDJSON that ``-Format Json`` / ``-Format NDJson`` writes, so that
``Get-SmbSession -ClientUserName 'LAB\\bob' -Format Json | Get-SmbSession`` works as it does
in PowerShell.

When is stdin pipeline input? PowerShell knows whether a command stands after a ``|``; a
Unix program only sees its stdin. The rule here (:func:`read_stdin`):

- a terminal, ``/dev/null`` (or any other device), a socket or a closed stdin is not
  pipeline input;
- a regular file (``< sessions.json``) or a pipe (``... | Get-SmbSession``) is pipeline
  input when what it holds begins with JSON: ``[`` or ``{`` after blanks. Anything else
  is not pipeline input and is left unread: the file's offset does not move and the
  pipe's bytes stay in the pipe (they are looked at with ``tee(2)``), so
  ``while read -r u; do Get-SmbSession -ClientUserName "$u"; done < users.txt`` reads
  every line. Empty input (a file at its end, a pipe closed with nothing in it, as
  cron's) is not pipeline input either;
- a pipe whose writing end is held by one of the command's own ancestors is the
  session's stdin, not a pipeline: ``ssh host Get-SmbSession`` without ``-n`` (sshd holds
  it), a service manager. It counts only if JSON is already there (or arrives within
  :data:`ANCESTOR_WAIT` seconds); otherwise it is left alone, and the command does not
  hang on a terminal that will never send anything.

A pipe from another command (``Get-SmbSession -Json | Close-SmbSession``) is waited for
as long as that command takes.

Each input object runs the command once, as PowerShell's ByPropertyName binding does: its
properties whose names (in any case) are those of parameters that accept pipeline input
bind those parameters, unless the command line already gave them; ``null`` values bind
nothing. Input that holds no object (an empty pipe, ``[]``) runs the command zero times:
it prints nothing, as ``@() | Get-SmbSession`` does. Every input object is read and
checked before anything runs, so bad input changes nothing.
"""

from __future__ import annotations

import os
import stat

from ..errors import InvalidParameter
from .params import Param, convert

TYPE_CHECKING = False  # collections costs a listing start-up time
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HINT = "Pipeline input is the JSON or NDJSON that -Format Json or -Format NDJson writes."


class InputObject:
    """One object of pipeline input and the line of stdin it starts on."""

    __slots__ = ("line", "properties")

    def __init__(self, line: int, properties: Mapping[str, object]) -> None:
        self.line = line
        self.properties = properties

    def __repr__(self) -> str:
        return f"InputObject(line={self.line}, properties={dict(self.properties)!r})"


#: Seconds a pipe held by an ancestor (ssh without -n) may take to show JSON.
ANCESTOR_WAIT = 0.5
_PEEK = 4096
_BLANKS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def stdin_kind(fd: int = 0) -> str:
    """Say what stdin is: ``pipe``, ``file``, ``terminal``, ``device`` (``/dev/null``),
    ``socket``, ``closed`` or ``other``. Only a pipe or a file can be pipeline input."""
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


class Stdin:
    """What :func:`read_stdin` found: ``objects`` (None when stdin is not pipeline
    input) and ``why``, in words, for -Debug: ``a terminal``, ``empty``, ``not JSON``..."""

    __slots__ = ("objects", "why")

    def __init__(self, objects: list[InputObject] | None, why: str) -> None:
        self.objects = objects
        self.why = why


def _json_start(head: bytes) -> bool | None:
    """True when ``head`` begins with JSON, False when it begins with something else,
    None when it holds only blanks (so far)."""
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    rest = head.lstrip(_BLANKS)
    if not rest:
        return None
    return rest[:1] in (b"[", b"{")


def _peek_file(fd: int) -> bool | None:
    """Look at a regular file from its current offset without moving it."""
    offset = os.lseek(fd, 0, os.SEEK_CUR)
    size = _PEEK
    while True:
        head = os.pread(fd, size, offset)
        verdict = _json_start(head)
        if verdict is not None or len(head) < size:
            return verdict
        size *= 4


def _tee(fd: int, size: int) -> bytes | None:
    """Copy up to ``size`` bytes waiting in pipe ``fd`` without taking them out
    (Linux ``tee(2)``); None when that cannot be done here."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        tee = libc.tee
    except (OSError, AttributeError):
        return None
    tee.restype = ctypes.c_ssize_t
    tee.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint)
    read_end, write_end = os.pipe()
    try:
        copied = tee(fd, write_end, size, 2)  # SPLICE_F_NONBLOCK
        if copied < 0:
            return None
        return os.read(read_end, copied) if copied else b""
    finally:
        os.close(read_end)
        os.close(write_end)


def _wait_pipe(fd: int, timeout: float | None) -> bool:
    """Wait until pipe ``fd`` has data or is closed; False when ``timeout`` passed first."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    return bool(poller.poll(None if timeout is None else int(timeout * 1000)))


def _peek_pipe(fd: int, timeout: float | None) -> bool | str | None:
    """Look at what waits in a pipe: as :func:`_json_start`, or ``"timeout"``, or
    ``"unknown"`` when the bytes cannot be looked at without reading them."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not _wait_pipe(fd, left):
            return "timeout"
        head = _tee(fd, _PEEK)
        if head is None:
            return "unknown"
        verdict = _json_start(head)
        if verdict is not None:
            return verdict
        if not head:  # closed, and nothing in it
            return None
        os.read(fd, len(head))  # only blanks so far: they may go; wait for more
        if deadline is not None:
            deadline = time.monotonic() + timeout  # type: ignore[operator]


def _writes(pid: int | str, target: str, skip: str | None = None) -> bool:
    """True when process ``pid`` holds ``target`` (a pipe) open for writing."""
    for entry in os.scandir(f"/proc/{pid}/fd"):
        if entry.name == skip:
            continue
        try:
            if os.readlink(entry.path) != target:
                continue
            with open(f"/proc/{pid}/fdinfo/{entry.name}") as info:
                flags = next(line for line in info if line.startswith("flags:"))
            if int(flags.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                return True
        except (OSError, StopIteration, ValueError):
            continue
    return False


def _held_by_ancestor(fd: int) -> bool:
    """True when this process (through another descriptor) or one of its ancestors holds
    the writing end of pipe ``fd``: nobody else may ever write or close it."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if _writes("self", target, skip=str(fd)):
            return True
        pid = os.getppid()
        while pid > 1:
            if _writes(pid, target):
                return True
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return False


def read_stdin(command: str, fd: int = 0, patient: bool = False) -> Stdin:
    """Read the objects piped into the command, when stdin is pipeline input (see the
    module's rule). ``patient`` waits for a pipe held by an ancestor as long as it takes
    (Close-SmbSession without a filter: reading too little there would close too much).
    Raises :class:`InvalidParameter` for pipeline input that is not UTF-8 JSON/NDJSON of
    objects, naming the line."""
    kind = stdin_kind(fd)
    if kind == "file":
        verdict: bool | str | None = _peek_file(fd)
    elif kind == "pipe":
        ancestor = _held_by_ancestor(fd)
        verdict = _peek_pipe(fd, ANCESTOR_WAIT if ancestor and not patient else None)
        if verdict == "timeout":
            return Stdin(None, "a pipe held by the session (ssh, a service), with no JSON")
    else:
        return Stdin(None, f"a {kind}" if kind != "closed" else "closed")
    if verdict is None:
        return Stdin(None, f"an empty {kind}")
    if verdict is False:
        return Stdin(None, f"a {kind} that does not begin with JSON (left unread)")
    with open(fd, "rb", closefd=False) as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _input_error(command, line, "the input is not UTF-8 text") from None
    return Stdin(parse_objects(text, command), f"a {kind} of JSON")


def _input_error(command: str, line: int, what: str) -> InvalidParameter:
    return InvalidParameter(f"{command}: pipeline input, line {line}: {what}. {HINT}")


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
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

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
