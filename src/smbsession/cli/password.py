"""Where the password of smb:// targets comes from: never the command line.

In order: the environment variable ``SMBSESSION_PASSWORD`` (when not empty); else, when
``KRB5CCNAME`` names a Kerberos credential cache, no password (Kerberos is used); else a
prompt on the controlling terminal (``/dev/tty``, not standard input, which may carry
pipeline input), which does not echo. With none of these, the targets log on without a
password and the server says why that is not enough.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping

#: The environment variable read for the password of smb:// targets.
PASSWORD_VARIABLE = "SMBSESSION_PASSWORD"


def open_terminal() -> int | None:
    """The controlling terminal, opened for reading and writing (None without one).
    Prompts use it rather than stdin, which may carry pipeline input."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None


def smb_password(who: str, environ: Mapping[str, str] | None = None,
                 ) -> tuple[str | None, bool]:
    """The password of smb:// targets and whether to use Kerberos instead: the password
    from ``SMBSESSION_PASSWORD``; Kerberos when ``KRB5CCNAME`` is set and there is no
    password; else a password asked on the terminal for ``who`` (the account named in the
    prompt); with no terminal, none."""
    environ = os.environ if environ is None else environ
    password = environ.get(PASSWORD_VARIABLE)
    if password:
        return password, False
    if environ.get("KRB5CCNAME"):
        return None, True
    tty = open_terminal()
    if tty is None:
        return None, False
    os.close(tty)
    try:
        return getpass.getpass(f"Password for {who}: "), False
    except (EOFError, KeyboardInterrupt):
        return None, False
