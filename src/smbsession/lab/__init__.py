"""Private Samba worlds for demos and tests.

:class:`Lab` is a standalone smbd on loopback (:mod:`.standalone`); :mod:`.clients` holds
sample SMB clients that open sessions on it (they need the ``[lab]`` extra:
``pip install 'smbsession[lab]'``). Nothing here is used by the listing or closing path.
"""

from .standalone import (
    LAB_USERS,
    NETBIOS_NAME,
    SHARE,
    SHARE2,
    SHARE_ALIAS,
    WORKGROUP,
    Lab,
    LabError,
    LabUser,
    default_lab_dir,
    free_port,
    ipv6_loopback_available,
    samba_program,
)

__all__ = [
    "LAB_USERS",
    "NETBIOS_NAME",
    "SHARE",
    "SHARE2",
    "SHARE_ALIAS",
    "WORKGROUP",
    "Lab",
    "LabError",
    "LabUser",
    "default_lab_dir",
    "free_port",
    "ipv6_loopback_available",
    "samba_program",
]
