"""The session record every source returns, and the names Windows gives its properties.

:class:`SmbSession` mirrors the WMI class ``MSFT_SmbSession`` (the objects Windows'
``Get-SmbSession`` prints) and adds the facts a Samba admin or an auditor also wants
(encryption, signing, shares, smbd pid). A property a source cannot know is ``None``:
a record never carries an invented value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

#: MSFT_SmbSession's properties, in the order Windows lists them (seed, Example 5).
MSFT_PROPERTIES: tuple[str, ...] = (
    "ClientComputerName",
    "ClientUserName",
    "ClusterNodeName",
    "Dialect",
    "NumOpens",
    "ScopeName",
    "SecondsExists",
    "SecondsIdle",
    "SessionId",
    "TransportName",
    "SmbInstance",
)

#: The extras smbsession adds after the MSFT_SmbSession properties.
EXTRA_PROPERTIES: tuple[str, ...] = (
    "ClientNetBiosName",
    "ClientGuid",
    "EncryptionCipher",
    "EncryptionDegree",
    "SigningCipher",
    "SigningDegree",
    "Shares",
    "SmbdPid",
)

#: The four columns of the default table (seed, Example 1).
TABLE_PROPERTIES: tuple[str, ...] = (
    "SessionId",
    "ClientComputerName",
    "ClientUserName",
    "NumOpens",
)

#: SMB dialects as Windows spells them in ``Get-SmbSession`` / ``Get-SmbConnection``.
#: Keys are the negotiated dialect revision (MS-SMB2 2.2.4); SMB1 (NT LM 0.12) has no
#: revision number and is keyed 0.
DIALECT_NAMES: dict[int, str] = {
    0x0000: "1.50",
    0x0202: "2.02",
    0x0210: "2.10",
    0x0300: "3.00",
    0x0302: "3.02",
    0x0311: "3.1.1",
}

#: The protocol names Samba prints (``smbstatus``' ``session_dialect``) mapped to revisions.
SAMBA_DIALECT_REVISIONS: dict[str, int] = {
    "NT1": 0x0000,
    "SMB2_02": 0x0202,
    "SMB2_10": 0x0210,
    "SMB3_00": 0x0300,
    "SMB3_02": 0x0302,
    "SMB3_11": 0x0311,
}

#: ``SmbInstance`` values (an enum in MSFT_SmbSession); Samba only ever serves ``Default``.
SMB_INSTANCES: tuple[str, ...] = ("Default", "CSV", "SBL", "SR")


def dialect_name(revision: int | None) -> str | None:
    """Return the Windows spelling of an SMB dialect revision.

    ``0x0311`` gives ``"3.1.1"``, ``0x0300`` gives ``"3.00"``, SMB1 (revision ``0``) gives
    ``"1.50"``. A revision this table does not know is shown as its hexadecimal value
    (``"0x02ff"``, the SMB2 wildcard) rather than guessed; ``None`` stays ``None``.
    """
    if revision is None:
        return None
    return DIALECT_NAMES.get(revision, f"0x{revision:04x}")


def samba_dialect_name(protocol: str | None) -> str | None:
    """Return the Windows spelling of a Samba protocol name such as ``"SMB3_11"``."""
    if not protocol:
        return None
    revision = SAMBA_DIALECT_REVISIONS.get(protocol)
    return protocol if revision is None else DIALECT_NAMES[revision]


@dataclass(frozen=True)
class SmbSession:
    """One SMB session as the server sees it: an ``MSFT_SmbSession`` plus Samba extras.

    The attribute names are the snake_case forms of the Windows property names
    (``session_id`` is ``SessionId``); :meth:`to_dict` gives the Windows names.
    ``None`` means the source that produced the record cannot know the value.
    """

    session_id: int
    client_computer_name: str | None = None
    client_user_name: str | None = None
    cluster_node_name: str | None = None
    dialect: str | None = None
    num_opens: int | None = None
    scope_name: str | None = None
    seconds_exists: int | None = None
    seconds_idle: int | None = None
    transport_name: str | None = None
    smb_instance: str | None = "Default"
    client_netbios_name: str | None = None
    client_guid: str | None = None
    encryption_cipher: str | None = None
    encryption_degree: str | None = None
    signing_cipher: str | None = None
    signing_degree: str | None = None
    shares: tuple[str, ...] | None = None
    smbd_pid: int | None = None
    hidden: bool = field(default=False, compare=False)
    #: The target the session was read from, as the user wrote it (None: this server).
    ps_computer_name: str | None = None

    def to_dict(self, properties: tuple[str, ...] | None = None) -> dict[str, object]:
        """Return the record as a dict keyed by Windows property name.

        ``properties`` selects and orders the keys (default: every MSFT_SmbSession
        property, then the extras). Values are JSON-ready (Shares is a tuple, which the
        json module writes as an array).
        """
        names = properties or ALL_PROPERTIES
        fields = self.__dict__
        return {name: fields[ATTRIBUTE_OF[name]] for name in names}

    @classmethod
    def _from_fields(cls, fields: dict[str, object]) -> SmbSession:
        """Make a record from a dict that names every field, skipping the generated
        ``__init__`` (a source may build tens of thousands). For sources only."""
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    def replace(self, **changes: object) -> SmbSession:
        """Return a copy with the given attributes changed."""
        return dataclasses.replace(self, **changes)


#: Windows property name -> SmbSession attribute name.
ATTRIBUTE_OF: dict[str, str] = {
    "ClientComputerName": "client_computer_name",
    "ClientUserName": "client_user_name",
    "ClusterNodeName": "cluster_node_name",
    "Dialect": "dialect",
    "NumOpens": "num_opens",
    "ScopeName": "scope_name",
    "SecondsExists": "seconds_exists",
    "SecondsIdle": "seconds_idle",
    "SessionId": "session_id",
    "TransportName": "transport_name",
    "SmbInstance": "smb_instance",
    "ClientNetBiosName": "client_netbios_name",
    "ClientGuid": "client_guid",
    "EncryptionCipher": "encryption_cipher",
    "EncryptionDegree": "encryption_degree",
    "SigningCipher": "signing_cipher",
    "SigningDegree": "signing_degree",
    "Shares": "shares",
    "SmbdPid": "smbd_pid",
}


@dataclass
class SourceResult:
    """What a source delivers: the sessions it could read, and what it could not.

    ``warnings`` are one-line messages about records or facts that were skipped; a
    source that reports a warning still returns every good record.
    """

    sessions: list[SmbSession]
    warnings: list[str] = field(default_factory=list)
    source: str = ""

#: Every property in output order: MSFT_SmbSession's, then smbsession's extras.
ALL_PROPERTIES: tuple[str, ...] = MSFT_PROPERTIES + EXTRA_PROPERTIES
