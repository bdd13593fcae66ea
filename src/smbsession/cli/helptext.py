"""``-?`` / ``--help``: a command's help page, laid out like PowerShell's ``Get-Help``.

A page has the sections of the seed's reference page: NAME, SYNOPSIS, SYNTAX,
DESCRIPTION, PARAMETERS (one entry per declared parameter, from :class:`.params.Param`),
EXAMPLES, and free sections after them (exit codes, notes).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from .params import Param

WIDTH = 92
INDENT = "    "

#: Tokens that ask for help wherever they stand before ``--``.


@dataclass(frozen=True)
class Example:
    """One example: a title, the command line, and what it does."""

    title: str
    command: str
    explanation: str


@dataclass(frozen=True)
class HelpPage:
    """The text of one command's help page."""

    name: str
    synopsis: str
    syntax: str
    description: str
    examples: Sequence[Example] = ()
    #: ``(TITLE, preformatted text)`` sections after the examples.
    sections: Sequence[tuple[str, str]] = ()


def _wrap(text: str, indent: str) -> str:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join(
        textwrap.fill(" ".join(p.split()), WIDTH, initial_indent=indent, subsequent_indent=indent)
        for p in paragraphs
    )


def _block(text: str) -> str:
    return textwrap.indent(text.strip("\n"), INDENT)


def _param_entry(param: Param) -> str:
    head = f"{INDENT}-{param.name}" + ("" if param.type == "switch" else f" <{param.type_label()}>")
    facts = [f"Position: {param.position + 1}" if param.position is not None else "Position: Named"]
    if param.aliases:
        facts.append("Aliases: " + ", ".join(param.aliases))
    if param.choices:
        facts.append("Accepted values: " + ", ".join(param.choices))
    if param.pipeline:
        facts.append("Accepts pipeline input by property name")
    body = _wrap(param.help, INDENT * 2) if param.help else ""
    return "\n".join(part for part in (head, body, INDENT * 2 + "; ".join(facts)) if part)


def _example_entry(number: int, example: Example) -> str:
    return (
        f"{INDENT}Example {number}: {example.title}\n{INDENT * 2}{example.command}\n"
        + _wrap(example.explanation, INDENT * 2)
    )


def render(page: HelpPage, params: Sequence[Param]) -> str:
    """Return the whole help page of a command with ``params``."""
    out = [
        f"NAME\n{INDENT}{page.name}",
        f"SYNOPSIS\n{_wrap(page.synopsis, INDENT)}",
        f"SYNTAX\n{_block(page.syntax)}",
        f"DESCRIPTION\n{_wrap(page.description, INDENT)}",
        "PARAMETERS\n" + "\n\n".join(_param_entry(p) for p in params),
    ]
    if page.examples:
        out.append("EXAMPLES\n" + "\n\n".join(
            _example_entry(i, e) for i, e in enumerate(page.examples, 1)
        ))
    out.extend(f"{title}\n{_block(text)}" for title, text in page.sections)
    return "\n\n".join(out) + "\n"
