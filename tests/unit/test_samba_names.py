"""Samba's addresses, protocol names and smb.conf settings as Windows shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from smbsession.model import dialect_name, samba_dialect_name
from smbsession.samba.config import load_config, parse_globals
from smbsession.samba.names import client_address, user_name


@pytest.mark.parametrize(
    ("samba", "windows"),
    [
        ("ipv4:192.168.102.14:51234", "192.168.102.14"),
        ("ipv6:fe80::c8c0:f65d:3bc6:7313:445", "[fe80::c8c0:f65d:3bc6:7313]"),
        ("ipv6:::1:40022", "[::1]"),
        ("ipv6:::ffff:127.0.0.1:40022", "127.0.0.1"),
        ("", None),
    ],
)
def test_client_address(samba: str, windows: str | None) -> None:
    assert client_address(samba) == windows


def test_dialect_names_follow_windows() -> None:
    assert [samba_dialect_name(p) for p in ("NT1", "SMB2_02", "SMB2_10", "SMB3_00",
                                             "SMB3_02", "SMB3_11")] == [
        "1.50", "2.02", "2.10", "3.00", "3.02", "3.1.1"]
    assert dialect_name(0x02FF) == "0x02ff"
    assert dialect_name(None) is None


def test_config_reads_globals_like_samba(tmp_path: Path) -> None:
    inc = tmp_path / "inc.conf"
    inc.write_text("[global]\n  workgroup = included\n")
    conf = tmp_path / "smb.conf"
    conf.write_text(
        "# comment\n[global]\n  Lock Dir = /x/lock\n  pid directory = /x/pid\n"
        "  netbios name = \\\n    fileserver1\n  include = " + str(inc) + "\n"
        "  smb ports = 4455\n; other\n[share]\n  lock directory = /not/global\n"
    )
    g = parse_globals(conf)
    assert g["lockdirectory"] == "/x/lock"
    cfg = load_config(conf)
    assert (cfg.lock_dir, cfg.pid_dir, cfg.netbios_name) == ("/x/lock", "/x/pid", "FILESERVER1")
    assert cfg.workgroup == "INCLUDED" and cfg.smb_ports == (4455,)
    assert user_name("alice", cfg) == "FILESERVER1\\alice"
    assert user_name("CORP\\bob", cfg) == "CORP\\bob"


def test_config_entries_are_the_lines_that_matter() -> None:
    from smbsession.samba.config import SECTION, entries

    text = ("# comment\n; other\n\n[Global]\n  Lock Dir = /x/lock\n  netbios name = \\\n"
            "    fileserver1\n  no equals sign here\n[ share2 ]\n  path = /srv/two  \n"
            "[broken\n  path=/b\n")
    assert list(entries(text)) == [
        (SECTION, "global"), ("lockdirectory", "/x/lock"), ("netbiosname", "fileserver1"),
        (SECTION, "share2"), ("path", "/srv/two"), (SECTION, "broken"), ("path", "/b")]
