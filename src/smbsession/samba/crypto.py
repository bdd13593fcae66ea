"""Encryption and signing of a session, named as ``smbstatus`` names them.

Samba records in each session (and tree connect) which kinds of packets it has processed
(``encryption_flags``, ``signing_flags`` in ``smbXsrv.idl``) and the channel's negotiated
algorithms. A session is "full"y encrypted when it has seen no unencrypted packet and is
encrypted or wants to be; "partial" when it has seen both; likewise for signing. The names
of the algorithms are those of MS-SMB2 2.2.3.1.2 / 2.2.3.1.7 as Samba prints them.
"""

from __future__ import annotations

# smbXsrv_encrpytion_flags
ENCRYPTION_REQUIRED = 0x01
ENCRYPTION_DESIRED = 0x02
PROCESSED_ENCRYPTED_PACKET = 0x04
PROCESSED_UNENCRYPTED_PACKET = 0x08
# smbXsrv_signing_flags
PROCESSED_SIGNED_PACKET = 0x02
PROCESSED_UNSIGNED_PACKET = 0x04

#: MS-SMB2 cipher ids (SMB2_ENCRYPTION_CAPABILITIES).
CIPHER_NAMES: dict[int, str] = {
    0x0001: "AES-128-CCM",
    0x0002: "AES-128-GCM",
    0x0003: "AES-256-CCM",
    0x0004: "AES-256-GCM",
}

#: MS-SMB2 signing algorithm ids, plus Samba's internal id for SMB1's MD5 signing.
SIGNING_NAMES: dict[int, str] = {
    0x0000: "HMAC-SHA256",
    0x0001: "AES-128-CMAC",
    0x0002: "AES-128-GMAC",
    0xFFFE: "HMAC-MD5",
}


def encryption(flags: int, cipher: int | None) -> tuple[str | None, str]:
    """Return ``(cipher name or None, degree)`` for a session's encryption flags.

    Degree is ``"full"``, ``"partial"`` or ``"none"``; the cipher is None when the
    degree is none, and ``"???"`` for an id this table does not know (as smbstatus).
    """
    unencrypted = flags & PROCESSED_UNENCRYPTED_PACKET
    if not unencrypted and flags & (
        PROCESSED_ENCRYPTED_PACKET | ENCRYPTION_DESIRED | ENCRYPTION_REQUIRED
    ):
        degree = "full"
    elif flags & PROCESSED_ENCRYPTED_PACKET and unencrypted:
        degree = "partial"
    else:
        return None, "none"
    return CIPHER_NAMES.get(cipher if cipher is not None else -1, "???"), degree


def signing(flags: int, algorithm: int | None) -> tuple[str | None, str]:
    """Return ``(algorithm name or None, degree)`` for a session's signing flags."""
    signed = flags & PROCESSED_SIGNED_PACKET
    unsigned = flags & PROCESSED_UNSIGNED_PACKET
    if signed and not unsigned:
        degree = "full"
    elif signed and unsigned:
        degree = "partial"
    else:
        return None, "none"
    return SIGNING_NAMES.get(algorithm if algorithm is not None else -1, "???"), degree
