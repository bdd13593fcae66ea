"""Output formats: the seed's table and list views, JSON, NDJSON and CSV.

Every formatter takes rows as dicts keyed by Windows property name (the output of
:meth:`SmbSession.to_dict`) and yields the text to print, piece by piece, so that a large
listing is written as it is made.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

#: The accepted values of ``-Format``.
FORMATS: tuple[str, ...] = ("Table", "List", "Json", "NDJson", "Csv")

#: Width of one table column: the seed's columns start at 0, 30, 60 and 90.
COLUMN_WIDTH = 30
ELLIPSIS = "…"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_text(v) for v in value) + "}"
    return str(value)


def _cell(value: object, width: int) -> str:
    text = _text(value)
    if len(text) > width:
        text = text[: width - 1] + ELLIPSIS
    return text


def format_table(rows: Iterable[dict[str, object]], columns: Sequence[str]) -> Iterator[str]:
    """Format rows as the seed's table: a header, a dash rule as long as each header,
    then one line per row; each column starts 30 characters after the previous one and a
    value too long for its column is cut with an ellipsis. Nothing at all for no rows."""
    inner = COLUMN_WIDTH - 1

    def line(cells: list[str]) -> str:
        padded = [c.ljust(COLUMN_WIDTH) for c in cells[:-1]] + [cells[-1]]
        return "".join(padded).rstrip() + "\n"

    first = True
    for row in rows:
        if first:
            yield line([_cell(c, inner) for c in columns])
            yield line(["-" * min(len(c), inner) for c in columns])
            first = False
        yield line([_cell(row.get(c), inner) for c in columns])


def format_list(rows: Iterable[dict[str, object]]) -> Iterator[str]:
    """Format rows as the seed's Example 5: ``Name : Value`` lines, names padded to the
    longest, one blank line between records."""
    for index, row in enumerate(rows):
        width = max((len(k) for k in row), default=0)
        body = "\n".join(f"{k.ljust(width)} : {_text(v)}".rstrip() for k, v in row.items())
        yield ("\n" if index else "") + body + "\n"


#: Rows encoded per call of the JSON encoder.
_CHUNK = 1000


def _chunks(rows: Iterable[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    chunk: list[dict[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def json_encoder(separators: tuple[str, str]) -> Callable[[object], str]:
    """What ``json.JSONEncoder(ensure_ascii=False, separators=separators).encode`` is,
    without importing :mod:`json`, whose decoder imports :mod:`re` (a quarter of a small
    listing's own time): the same C encoder of the standard library (``_json``), with
    the same arguments. Where that encoder is missing or takes other arguments (another
    Python implementation or release), :mod:`json` itself."""
    item, key = separators
    try:
        from _json import encode_basestring, make_encoder

        encoder = make_encoder(None, _not_serializable, encode_basestring, None, key, item,
                               False, False, True)
        encoder({"": [0, 0.5, None, True, ""]}, 0)
    except (ImportError, TypeError):
        import json

        return json.JSONEncoder(ensure_ascii=False, separators=separators).encode
    return lambda value: "".join(encoder(value, 0))


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _objects(rows: Iterable[dict[str, object]], separators: tuple[str, str],
             between: str) -> Iterator[str]:
    """Yield the rows as JSON objects joined by ``between``, a chunk at a time.

    The C encoder writes a list of a thousand rows in half the time of a thousand calls;
    the list's own separators are then replaced by ``between``. That is exact when the
    boundary text (``}, {``) occurs once per boundary, which is checked: a value that
    holds it sends its chunk through one call per row instead."""
    encode = json_encoder(separators)
    boundary = "}" + separators[0] + "{"
    for chunk in _chunks(rows):
        text = encode(chunk)
        if text.count(boundary) == len(chunk) - 1:
            yield text[1:-1].replace(boundary, "}" + between + "{")
        else:
            yield between.join(encode(row) for row in chunk)


def format_json(rows: Iterable[dict[str, object]]) -> Iterator[str]:
    """Format rows as one JSON array, one object per line (numbers as numbers, unknown
    values as null)."""
    yield "["
    for index, text in enumerate(_objects(rows, (", ", ": "), ",\n  ")):
        yield ("," if index else "") + "\n  " + text
    yield "\n]\n"


def format_ndjson(rows: Iterable[dict[str, object]]) -> Iterator[str]:
    """Format rows as newline-delimited JSON: one compact object per line."""
    for text in _objects(rows, (",", ":"), "\n"):
        yield text + "\n"


def format_csv(rows: Iterable[dict[str, object]], columns: Sequence[str]) -> Iterator[str]:
    """Format rows as CSV with a header row of property names."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def batched(pieces: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """The pieces joined into strings of about ``size`` characters: one write each
    instead of one a row (a table of ten thousand rows spent 45 ms in writes). For
    output whose rows are all at hand; rows that arrive over time are written as they
    come."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def render(fmt: str, rows: Iterable[dict[str, object]], columns: Sequence[str]) -> Iterator[str]:
    """Render ``rows`` in format ``fmt`` (one of :data:`FORMATS`), piece by piece, so a
    caller can write a large listing without holding all of it."""
    if fmt == "Table":
        return format_table(rows, columns)
    if fmt == "List":
        return format_list(rows)
    if fmt == "Json":
        return format_json(rows)
    if fmt == "NDJson":
        return format_ndjson(rows)
    return format_csv(rows, columns)
