"""Broken server state: clear errors or the good records plus a warning, never a traceback.

Each case gives Get-SmbSession a lock directory of its own (copies of real databases,
damaged on purpose) next to the lab's running smbd, whose release tells the layout.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from conftest import run_cli
from smbsession.lab import Lab

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "samba-4.17"
DATABASES = ("session", "tcon", "open")


@pytest.fixture
def server(lab: Lab, tmp_path: Path) -> Path:
    """An smb.conf whose lock directory is ours and whose smbd is the lab's (4.17)."""
    lock = tmp_path / "lock"
    (lock / "msg.lock").mkdir(parents=True)
    pid_dir = tmp_path / "pid"
    pid_dir.mkdir()
    pid = lab.pid()
    (pid_dir / "smbd.pid").write_text(f"{pid}\n")
    for kind in DATABASES:
        shutil.copyfile(FIXTURES / f"smbXsrv_{kind}_global.tdb",
                        lock / f"smbXsrv_{kind}_global.tdb")
    conf = tmp_path / "smb.conf"
    conf.write_text(f"[global]\n  lock directory = {lock}\n  pid directory = {pid_dir}\n"
                    "  netbios name = LABSRV\n  smb ports = 1\n")
    return conf


def get(conf: Path) -> tuple[int, list[dict] | None, str]:
    out = run_cli("get", "-SmbConf", str(conf), "-Format", "Json", "-Source", "tdb")
    assert "Traceback" not in out.stderr, out.stderr
    rows = json.loads(out.stdout) if out.stdout.strip() else None
    return out.returncode, rows, out.stderr


def test_records_of_gone_smbds_are_not_listed(server: Path) -> None:
    # The captured records decode, but the smbds that wrote them are long gone.
    code, rows, err = get(server)
    assert (code, rows) == (0, []), err


def test_a_lock_directory_without_databases_while_smbd_runs_is_an_error(server: Path) -> None:
    # smbd creates its global databases when it starts, so a running smbd whose lock
    # directory has none is looked for in the wrong place: say so, never an empty table.
    for kind in DATABASES:
        os.unlink(server.parent / "lock" / f"smbXsrv_{kind}_global.tdb")
    code, rows, err = get(server)
    assert (code, rows) == (1, None)
    assert "smbXsrv_session_global.tdb" in err and str(server.parent / "lock") in err, err


def test_session_database_of_random_bytes_is_a_clear_error(server: Path) -> None:
    (server.parent / "lock" / "smbXsrv_session_global.tdb").write_bytes(os.urandom(65536))
    code, rows, err = get(server)
    assert code == 1 and rows is None
    assert "cannot read the sessions" in err and "not a TDB" in err


def test_truncated_session_database_keeps_what_is_whole(server: Path) -> None:
    path = server.parent / "lock" / "smbXsrv_session_global.tdb"
    data = path.read_bytes()
    _, intact, _ = get(server)
    path.write_bytes(data[: len(data) * 3 // 4])
    code, rows, err = get(server)
    assert rows == intact == []
    assert code in (0, 1) and (code == 0 or "WARNING:" in err)


def test_tree_connect_database_of_random_bytes_is_a_warning(server: Path) -> None:
    (server.parent / "lock" / "smbXsrv_tcon_global.tdb").write_bytes(os.urandom(8192))
    code, rows, err = get(server)
    assert code == 1 and rows is not None
    assert "WARNING: smbXsrv_tcon_global.tdb: unreadable" in err


def _patch_first_record(path: Path, offset_in_value: int, value: bytes) -> None:
    """Overwrite bytes inside the first live record's value (after its key)."""
    data = bytearray(path.read_bytes())
    base = struct.unpack_from("<I", data, 64)[0]
    hash_size = struct.unpack_from("<I", data, 36)[0]
    heads = struct.unpack_from(f"<{hash_size}I", data, base + 168 + 4)
    first = next(h for h in heads if h)
    key_len = struct.unpack_from("<I", data, base + first + 8)[0]
    start = base + first + 24 + key_len + offset_in_value
    data[start : start + len(value)] = value
    path.write_bytes(bytes(data))


def _channel_count_offset(value: bytes) -> int:
    """Offset of num_channels in a 4.17 session value: after the watcher count, the
    record's fixed head (74 bytes) and four key blobs, each followed by a pointer."""
    d = value[4:]  # NDR alignment counts from the blob, after the watcher count
    p = 74
    for _ in range(4):
        p = (p + 3) & ~3
        p += 4 + int.from_bytes(d[p : p + 4], "little")
        p = ((p + 3) & ~3) + 4
    assert int.from_bytes(d[p : p + 4], "little") == 1  # the real record has one channel
    return 4 + p


def test_a_billion_channels_is_skipped_with_a_warning(server: Path) -> None:
    from smbsession.samba.tdb import read_tdb

    path = server.parent / "lock" / "smbXsrv_session_global.tdb"
    first = read_tdb(path).records[0].value
    _patch_first_record(path, _channel_count_offset(first), (10**9).to_bytes(4, "little"))
    code, rows, err = get(server)
    assert code == 1 and rows is not None
    assert "skipped 1 session record" in err and "channels" in err


def test_a_string_running_past_its_record_is_skipped(server: Path) -> None:
    path = server.parent / "lock" / "smbXsrv_tcon_global.tdb"
    _patch_first_record(path, 64 + 8, (5000).to_bytes(4, "little"))  # share name length
    code, rows, err = get(server)
    assert code == 1 and rows is not None
    assert "smbXsrv_tcon_global.tdb: skipped 1 tree connect record" in err


def test_a_targets_warning_reaches_the_fleet_listing(server: Path) -> None:
    (server.parent / "lock" / "smbXsrv_tcon_global.tdb").write_bytes(os.urandom(8192))
    out = run_cli("get", "-SmbConf", str(server), "-CimSession", "localhost", "-Format", "Json")
    assert out.returncode == 1 and json.loads(out.stdout) == []
    assert "WARNING: localhost: smbXsrv_tcon_global.tdb: unreadable" in out.stderr
    assert "Traceback" not in out.stderr
