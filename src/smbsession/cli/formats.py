"""Output formats: the seed's table and list views, JSON, NDJSON and CSV.

Every formatter takes rows as dicts keyed by Windows property name (the output of
:meth:`SmbSession.to_dict`) and returns the text to print.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

#: The accepted values of ``-Format``.
FORMATS: tuple[str, ...] = ("Table", "List", "Json", "NDJson", "Csv")

#: Width of one table column: the seed's columns start at 0, 30, 60 and 90.
COLUMN_WIDTH = 30
ELLIPSIS = "…"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_text(v) for v in value) + "}"
    return str(value)


def _cell(value: Any, width: int) -> str:
    text = _text(value)
    if len(text) > width:
        text = text[: width - 1] + ELLIPSIS
    return text


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Format rows as the seed's table: a header, a dash rule as long as each header,
    then one line per row; each column starts 30 characters after the previous one and a
    value too long for its column is cut with an ellipsis."""
    if not rows:
        return ""
    inner = COLUMN_WIDTH - 1
    lines = []

    def line(cells: list[str]) -> str:
        padded = [c.ljust(COLUMN_WIDTH) for c in cells[:-1]] + [cells[-1]]
        return "".join(padded).rstrip()

    lines.append(line([_cell(c, inner) for c in columns]))
    lines.append(line(["-" * min(len(c), inner) for c in columns]))
    for row in rows:
        lines.append(line([_cell(row.get(c), inner) for c in columns]))
    return "\n".join(lines) + "\n"


def format_list(rows: Sequence[dict[str, Any]]) -> str:
    """Format rows as the seed's Example 5: ``Name : Value`` lines, names padded to the
    longest, one blank line between records."""
    blocks = []
    for row in rows:
        width = max((len(k) for k in row), default=0)
        blocks.append("\n".join(f"{k.ljust(width)} : {_text(v)}".rstrip() for k, v in row.items()))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def format_json(rows: Sequence[dict[str, Any]]) -> str:
    """Format rows as one JSON array (numbers as numbers, unknown values as null)."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"


def format_ndjson(rows: Sequence[dict[str, Any]]) -> str:
    """Format rows as newline-delimited JSON: one compact object per line."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)


def format_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Format rows as CSV with a header row of property names."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
    return buf.getvalue()


def render(fmt: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Render ``rows`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "Table":
        return format_table(rows, columns)
    if fmt == "List":
        return format_list(rows)
    if fmt == "Json":
        return format_json(rows)
    if fmt == "NDJson":
        return format_ndjson(rows)
    return format_csv(rows, columns)
