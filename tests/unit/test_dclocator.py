"""The LDAP ping of the DC locator, against a real answer of Samba 4.17's AD DC
(tests/fixtures/cldap: the lab's dc1.contoso.test answering ping_request(4242, ...))."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from smbsession.remote import dclocator
from smbsession.remote.dclocator import netlogon_blob, parse_netlogon, ping_request

ANSWER = (Path(__file__).resolve().parents[1] / "fixtures" / "cldap" /
          "samba-4.17-dc1.bin").read_bytes()
MESSAGE_ID = 4242


def test_samba_dc_answer_parses_as_captured() -> None:
    blob = netlogon_blob(ANSWER, MESSAGE_ID)
    assert blob is not None
    dc = parse_netlogon(blob, "198.18.0.1")
    assert dc is not None
    assert (dc.host, dc.address, dc.domain, dc.dns_domain) == (
        "dc1.contoso.test", "198.18.0.1", "CONTOSO", "contoso.test")
    assert dc.flags & dclocator.DS_DS_FLAG


def test_an_answer_to_another_ping_is_ignored() -> None:
    assert netlogon_blob(ANSWER, MESSAGE_ID + 1) is None


@pytest.mark.parametrize("cut", range(len(ANSWER)))
def test_a_truncated_answer_is_no_dc_and_no_error(cut: int) -> None:
    blob = netlogon_blob(ANSWER[:cut], MESSAGE_ID)
    if blob is not None:
        parse_netlogon(blob, "198.18.0.1")  # may or may not name a DC; never raises
    truncated = netlogon_blob(ANSWER, MESSAGE_ID)
    assert truncated is not None
    parse_netlogon(truncated[:cut], "198.18.0.1")


def test_a_pointer_loop_is_no_dc() -> None:
    head = struct.pack("<HHI", 23, 0, 0x10) + bytes(16)
    assert parse_netlogon(head + b"\xc0\x18", "x") is None  # points at itself
    assert parse_netlogon(head + b"\x03dc1", "x") is None  # no end


def test_another_answer_type_is_no_dc() -> None:
    blob = netlogon_blob(ANSWER, MESSAGE_ID)
    assert blob is not None
    assert parse_netlogon(struct.pack("<H", 19) + blob[2:], "x") is None  # user unknown


def test_the_request_is_the_ldap_ping_of_ms_adts() -> None:
    """Byte for byte what impacket's LDAP client encodes for the same search (an
    independent encoder): the rootDSE, base scope, Netlogon, the DnsDomain/NtVer filter."""
    pytest.importorskip("impacket")
    from impacket.ldap import ldap, ldapasn1
    from pyasn1.codec.ber import encoder

    client = ldap.LDAPConnection.__new__(ldap.LDAPConnection)  # its parser, no socket
    search = ldapasn1.SearchRequest()
    search["baseObject"] = ""
    search["scope"] = ldapasn1.Scope("baseObject")
    search["derefAliases"] = ldapasn1.DerefAliases("neverDerefAliases")
    search["sizeLimit"] = 0
    search["timeLimit"] = 0
    search["typesOnly"] = False
    search["filter"] = client._parseFilter(
        r"(&(DnsDomain=contoso.test)(NtVer=\06\00\00\00))")
    search["attributes"].setComponents("Netlogon")
    message = ldapasn1.LDAPMessage()
    message["messageID"] = 7
    message["protocolOp"].setComponentByType(search.getTagSet(), search)
    assert dclocator.NT_VERSION == 6
    assert ping_request(7, "contoso.test") == encoder.encode(message)
