"""Man pages, Get-SmbSession(1), Close-SmbSession(1) and smbsession(1), made from the help
text as troff (the man(7) macros).

The pages are generated from the same :class:`.helptext.HelpPage` and :class:`.params.Param`
declarations that ``-?`` prints, and committed under ``man/man1`` in the source tree;
pyproject's ``[tool.setuptools.data-files]`` installs them into ``<prefix>/share/man/man1``
with a plain ``pip install``. ``tests/test_manpages.py`` fails when a committed page differs
from what this module makes now; ``make man`` (``python -m smbsession.cli.manpage man/man1``)
writes them again.

Committed pages rather than a build step: the build stays declarative (no ``setup.py`` or
custom command that imports the package while building, which every PEP 517 frontend and
the sdist -> wheel path would have to run), and a change of the help shows in review as a
change of the page.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .helptext import HelpPage
from .params import Param

SECTION = "1"


def escape(text: str) -> str:
    """Escape text for troff: backslashes, hyphens (as the minus a command line needs), and
    a control character (``.`` or ``'``) that would start a line."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    lines = [("\\&" + line) if line[:1] in (".", "'") else line for line in out.split("\n")]
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    """Filled text: the help's paragraphs (separated by blank lines), each one line."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return "\n.PP\n".join(escape(p) for p in paragraphs)


def _verbatim(text: str) -> str:
    """Preformatted text, as the help prints it."""
    return ".nf\n" + escape(text.strip("\n")) + "\n.fi"


def _param(param: Param) -> str:
    tag = f"\\fB\\-{escape(param.name)}\\fR, \\fB\\-\\-{escape(param.gnu)}\\fR"
    if param.type != "switch":
        tag += f" \\fI<{escape(param.type_label())}>\\fR"
    facts = [f"Position: {param.position + 1}" if param.position is not None else "Position: Named"]
    if param.aliases:
        facts.append("Aliases: " + ", ".join(f"-{a}" for a in param.aliases))
    if param.choices:
        facts.append("Accepted values: " + ", ".join(param.choices))
    if param.pipeline:
        facts.append("Accepts pipeline input by property name")
    body = [_paragraphs(param.help)] if param.help else []
    return "\n".join([".TP", tag, *body, ".br" if body else "", escape("; ".join(facts))]
                     ).replace("\n\n", "\n")


def render(name: str, page: HelpPage, params: Sequence[Param],
           see_also: Sequence[str] = (), params_title: str = "PARAMETERS") -> str:
    """Return the man page of command ``name`` from its help ``page`` and ``params``
    (listed under ``params_title``), ending with SEE ALSO ``see_also``."""
    from .. import __version__

    out = [
        f".\\\" {name}({SECTION}), generated from the help text by "
        "smbsession.cli.manpage (make man); do not edit.",
        f'.TH "{name.upper()}" "{SECTION}" "" "smbsession {__version__}" "User Commands"',
        ".nh\n.ad l",  # no hyphenation, ragged right: names and options stay whole
        ".SH NAME",
        f"{escape(name)} \\- {escape(' '.join(page.synopsis.split()))}",
        ".SH SYNOPSIS",
        _verbatim(page.syntax),
        ".SH DESCRIPTION",
        _paragraphs(page.description),
    ]
    if params:
        out += [f".SH {params_title}", *(_param(p) for p in params)]
    if page.examples:
        out.append(".SH EXAMPLES")
        for number, example in enumerate(page.examples, 1):
            out += [f".SS Example {number}: {escape(example.title)}",
                    ".PP", ".RS 4", _verbatim(example.command), ".RE", ".PP",
                    _paragraphs(example.explanation)]
    for title, text in page.sections:
        out += [f".SH {escape(title.upper())}", _verbatim(text)]
    if see_also:
        out += [".SH SEE ALSO",
                ",\n".join(f"\\fB{escape(s)}\\fR({SECTION})" for s in see_also)]
    return "\n".join(out) + "\n"


def _umbrella_page() -> tuple[HelpPage, tuple[Param, ...]]:
    """smbsession(1): the umbrella command and its subcommands, from their usage texts."""
    from .commands import JOB_USAGE, LAB_PARAMS, LAB_USAGE, UMBRELLA_USAGE
    from .completion import USAGE as COMPLETION_USAGE

    page = HelpPage(
        name="smbsession",
        synopsis="Get-SmbSession and Close-SmbSession for Samba, a private lab server, "
                 "background jobs and shell completion.",
        syntax=UMBRELLA_USAGE,
        description="smbsession get and smbsession close are Get-SmbSession(1) and "
                    "Close-SmbSession(1), with the same parameters. smbsession lab sets up "
                    "a private Samba server on loopback, with sample clients, to try the "
                    "commands on. smbsession job manages the background jobs that -AsJob "
                    "starts. smbsession completion prints a completion script for bash or "
                    "zsh. --version prints the version, on every command and subcommand.",
        sections=(("THE LAB", LAB_USAGE), ("JOBS", JOB_USAGE),
                  ("SHELL COMPLETION", COMPLETION_USAGE)),
    )
    return page, tuple(p for p in LAB_PARAMS if p.name != "Help")


def pages() -> dict[str, str]:
    """``{file name: troff text}`` of every man page."""
    from .close import CLOSE_PARAMS
    from .close import HELP as CLOSE_HELP
    from .get import GET_PARAMS
    from .get_help import HELP as GET_HELP

    umbrella, lab_params = _umbrella_page()
    return {
        "Get-SmbSession.1": render("Get-SmbSession", GET_HELP, GET_PARAMS,
                                   ("Close-SmbSession", "smbsession", "smbstatus")),
        "Close-SmbSession.1": render("Close-SmbSession", CLOSE_HELP, CLOSE_PARAMS,
                                     ("Get-SmbSession", "smbsession", "smbcontrol")),
        "smbsession.1": render("smbsession", umbrella, lab_params,
                               ("Get-SmbSession", "Close-SmbSession"), "LAB PARAMETERS"),
    }


def write(directory: Path) -> list[Path]:
    """Write every page into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "man/man1")):
        print(written)
