"""How the commands report the library's errors: PowerShell's wording and exit codes.

The library's errors carry what went wrong as attributes
(:mod:`smbsession.errors`); this module turns them into the line a command prints on
stderr, starting with the command's name, and the exit code it ends with: 2 for a bad
parameter or bad pipeline input, 1 for anything else.
"""

from __future__ import annotations

from ..errors import InvalidParameter, SmbSessionError

#: Exit codes: everything done; a non-terminating error or a failure; bad usage.
OK, FAILED, USAGE = 0, 1, 2


def exit_code(exc: BaseException) -> int:
    """The exit code a command ends with when ``exc`` ends it."""
    return USAGE if isinstance(exc, InvalidParameter) else FAILED


def parameter_name(key: str) -> str:
    """The PowerShell name of a parameter from the library's name for it:
    ``session_id`` -> ``SessionId``, ``smb_conf`` -> ``SmbConf``."""
    from .close import CLOSE_PARAMS
    from .get import GET_PARAMS

    for param in (*GET_PARAMS, *CLOSE_PARAMS):
        if param.key == key:
            return param.name
    return "".join(part.capitalize() for part in key.split("_"))


def message(exc: SmbSessionError, command: str) -> str:
    """The line ``command`` prints for ``exc``: ``<command>: -<Parameter>: <detail>`` for a
    bad parameter, ``<command>: <message>`` for the rest."""
    text = str(exc)
    if text.startswith(f"{command}:"):  # the command's own binder already said it
        return text
    if isinstance(exc, InvalidParameter) and exc.parameter:
        return f"{command}: -{parameter_name(exc.parameter)}: {exc.detail}"
    return f"{command}: {text}"
