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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..remote.fleet import SmbLogon

#: The environment variable read for the password of smb:// targets.
PASSWORD_VARIABLE = "SMBSESSION_PASSWORD"


def open_terminal() -> int | None:
    """The controlling terminal, opened for reading and writing (None without one).
    Prompts use it rather than stdin, which may carry pipeline input."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None


def smb_logon(credential: str | None, who: str,
              environ: Mapping[str, str] | None = None) -> SmbLogon:
    """The :class:`SmbLogon` for smb:// targets: ``credential`` as given, the password
    from ``SMBSESSION_PASSWORD``, Kerberos when ``KRB5CCNAME`` is set and there is no
    password, else a password asked on the terminal for ``who`` (the account named in
    the prompt)."""
    from ..remote.fleet import SmbLogon

    environ = os.environ if environ is None else environ
    password = environ.get(PASSWORD_VARIABLE)
    if password:
        return SmbLogon(credential, password)
    if environ.get("KRB5CCNAME"):
        return SmbLogon(credential, None, kerberos=True)
    tty = open_terminal()
    if tty is None:
        return SmbLogon(credential, None)
    os.close(tty)
    try:
        password = getpass.getpass(f"Password for {who}: ")
    except (EOFError, KeyboardInterrupt):
        password = None
    return SmbLogon(credential, password)
