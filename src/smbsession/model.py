"""The session record every source returns, and the names Windows gives its properties.

:class:`SmbSession` mirrors the WMI class ``MSFT_SmbSession`` (the objects Windows'
``Get-SmbSession`` prints) and adds the facts a Samba admin or an auditor also wants
(encryption, signing, shares, smbd pid). A property a source cannot know is ``None``:
a record never carries an invented value.
"""

from __future__ import annotations

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
    "BytesReceived",
    "BytesSent",
    "RttMicroseconds",
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

#: The SessionId of a session read through MS-SRVS, which gives none (no SMB2/3 server
#: gives a session the id 0).
NO_SESSION_ID = 0

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


class SmbSession:
    """One SMB session as the server sees it: an ``MSFT_SmbSession`` plus Samba extras.

    The attribute names are the snake_case forms of the Windows property names
    (``session_id`` is ``SessionId``); :meth:`to_dict` gives the Windows names.
    ``None`` means the source that produced the record cannot know the value.
    ``hidden`` says whether Windows would hide the session without ``-IncludeHidden``
    (anonymous, or still authenticating); ``ps_computer_name`` is the computer the
    session was read from (None: this server); ``cluster_node_keys``, on a cluster, the
    other spellings of the serving node (PNN, address) that ``-ClusterNodeName`` matches.
    Records are immutable and compare equal when every property but ``hidden`` and
    ``cluster_node_keys`` is equal.
    """

    # Written out rather than a dataclass: importing dataclasses costs a listing more
    # start-up time than reading ten sessions.
    session_id: int
    client_computer_name: str | None
    client_user_name: str | None
    cluster_node_name: str | None
    dialect: str | None
    num_opens: int | None
    scope_name: str | None
    seconds_exists: int | None
    seconds_idle: int | None
    transport_name: str | None
    smb_instance: str | None
    client_netbios_name: str | None
    client_guid: str | None
    encryption_cipher: str | None
    encryption_degree: str | None
    signing_cipher: str | None
    signing_degree: str | None
    shares: tuple[str, ...] | None
    smbd_pid: int | None
    #: Traffic of the session's TCP connection from the kernel's tcp_info, shared by every
    #: session on that connection: bytes the client sent (``tcpi_bytes_received``), bytes
    #: it acknowledged receiving (``tcpi_bytes_acked``: retransmissions excluded), both
    #: since the connection opened, and the smoothed round-trip time (``tcpi_rtt``).
    bytes_received: int | None
    bytes_sent: int | None
    rtt_microseconds: int | None
    hidden: bool
    ps_computer_name: str | None
    cluster_node_keys: tuple[str, ...]

    def __init__(
        self,
        session_id: int,
        client_computer_name: str | None = None,
        client_user_name: str | None = None,
        cluster_node_name: str | None = None,
        dialect: str | None = None,
        num_opens: int | None = None,
        scope_name: str | None = None,
        seconds_exists: int | None = None,
        seconds_idle: int | None = None,
        transport_name: str | None = None,
        smb_instance: str | None = "Default",
        client_netbios_name: str | None = None,
        client_guid: str | None = None,
        encryption_cipher: str | None = None,
        encryption_degree: str | None = None,
        signing_cipher: str | None = None,
        signing_degree: str | None = None,
        shares: tuple[str, ...] | None = None,
        smbd_pid: int | None = None,
        bytes_received: int | None = None,
        bytes_sent: int | None = None,
        rtt_microseconds: int | None = None,
        hidden: bool = False,
        ps_computer_name: str | None = None,
        cluster_node_keys: tuple[str, ...] = (),
    ) -> None:
        self.__dict__.update(
            session_id=session_id, client_computer_name=client_computer_name,
            client_user_name=client_user_name, cluster_node_name=cluster_node_name,
            dialect=dialect, num_opens=num_opens, scope_name=scope_name,
            seconds_exists=seconds_exists, seconds_idle=seconds_idle,
            transport_name=transport_name, smb_instance=smb_instance,
            client_netbios_name=client_netbios_name, client_guid=client_guid,
            encryption_cipher=encryption_cipher, encryption_degree=encryption_degree,
            signing_cipher=signing_cipher, signing_degree=signing_degree, shares=shares,
            smbd_pid=smbd_pid, bytes_received=bytes_received, bytes_sent=bytes_sent,
            rtt_microseconds=rtt_microseconds, hidden=hidden, ps_computer_name=ps_computer_name,
            cluster_node_keys=cluster_node_keys,
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SmbSession is immutable: use replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("SmbSession is immutable")

    def _key(self) -> tuple[object, ...]:
        fields = self.__dict__
        return tuple(fields[name] for name in FIELDS if name not in _NOT_COMPARED)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SmbSession):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = self.__dict__
        return "SmbSession(" + ", ".join(f"{n}={fields[n]!r}" for n in FIELDS) + ")"

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
        """Make a record from a dict that names every field, skipping ``__init__`` (a
        source may build tens of thousands). For sources only."""
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    def replace(self, **changes: object) -> SmbSession:
        """Return a copy with the given attributes changed."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise TypeError(f"SmbSession has no attribute {', '.join(sorted(unknown))}")
        return SmbSession._from_fields({**self.__dict__, **changes})


#: Attributes that are not properties of the session (equal records may differ in them):
#: ``cluster_node_keys``, on a cluster, the spellings of the serving node that
#: ``-ClusterNodeName`` matches besides its name (its PNN and private address, lowercase).
_NOT_COMPARED = frozenset({"hidden", "cluster_node_keys"})

#: Every attribute of :class:`SmbSession`, in the order of its constructor.
FIELDS: tuple[str, ...] = SmbSession.__init__.__code__.co_varnames[
    1:SmbSession.__init__.__code__.co_argcount]


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
    "BytesReceived": "bytes_received",
    "BytesSent": "bytes_sent",
    "RttMicroseconds": "rtt_microseconds",
}


class SourceResult:
    """What a source delivers: the sessions it could read, and what it could not.

    ``warnings`` are one-line messages about records or facts that were skipped; a
    source that reports a warning still returns every good record. ``source`` names
    where the sessions came from (``tdb (Samba 4.17 layout)``, ``smbstatus``...).
    """

    __slots__ = ("sessions", "source", "warnings")

    def __init__(self, sessions: list[SmbSession], warnings: list[str] | None = None,
                 source: str = "") -> None:
        self.sessions = sessions
        self.warnings = [] if warnings is None else warnings
        self.source = source

    def __repr__(self) -> str:
        return (f"SourceResult({len(self.sessions)} session(s), source={self.source!r}, "
                f"warnings={self.warnings!r})")


#: Every property in output order: MSFT_SmbSession's, then smbsession's extras.
ALL_PROPERTIES: tuple[str, ...] = MSFT_PROPERTIES + EXTRA_PROPERTIES
