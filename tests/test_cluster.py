"""A clustered Samba (CTDB): one listing for the whole cluster, from every node.

A real 2-node cluster (:class:`smbsession.lab.cluster.ClusterLab`: network namespaces,
ctdbd in test mode, clustered smbd serving ``CTDBFS``) with real smbclient sessions on
both nodes. The oracle is Samba's own ``smbstatus`` on each node, which lists the cluster
through ctdbd too, and the clients themselves (who connected where, as whom, how).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smbsession.lab.cluster import CLUSTER_NAME, ClusterLab, private_address

SRC = str(Path(__file__).resolve().parent.parent / "src")
SESSION_DB = "smbXsrv_session_global.tdb"

#: (user, node, smbclient protocol, files held open, Windows dialect); smbclient holds
#: one file per connection reliably.
CLIENTS = (
    ("labalice", 0, "SMB3_11", ("a0.txt",), "3.1.1"),
    ("labbob", 0, "SMB2_10", (), "2.10"),
    ("labcarol", 1, "SMB3_11", ("c1.txt",), "3.1.1"),
    ("labbob", 1, "NT1", (), "1.50"),
    ("labalice", 1, "SMB2_10", (), "2.10"),
)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the cluster lab needs root"
    for program in ("ctdbd", "ctdb", "smbd", "smbclient"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/sbin/{program}"):
            return f"{program} is not installed (make cluster-deps installs it)"
    return None


class Cluster:
    """The running lab cluster with its clients."""

    def __init__(self, lab: ClusterLab) -> None:
        self.lab = lab
        self.clients: list[tuple[tuple, subprocess.Popen, float]] = []

    def run(self, node: int, *args: str,
            source_args: tuple[str, ...] = ()) -> tuple[int, list[dict], str]:
        """Get-SmbSession in node ``node`` (its namespace and host name), as JSON."""
        argv = [sys.executable, "-m", "smbsession", "get", "-SmbConf",
                str(self.lab.conf_path(node)), "-Format", "Json", "-Property", "*",
                *source_args, *args]
        done = subprocess.run(self.lab.in_node(node, argv), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": SRC})
        rows = json.loads(done.stdout) if done.stdout.strip() else []
        return done.returncode, rows, done.stderr

    def open_files(self, node: int) -> int:
        """How many files smbstatus says are open in the cluster."""
        return _open_files(self, node)

    def smbstatus(self, node: int) -> dict[int, dict]:
        """Samba's own cluster-wide listing from node ``node``: session id -> record."""
        done = subprocess.run(self.lab.in_node(node, ["smbstatus", "-s",
                                                      str(self.lab.conf_path(node)), "--json",
                                                      "-b"]),
                              capture_output=True, text=True, timeout=60, check=True)
        sessions = json.loads(done.stdout).get("sessions") or {}
        return {int(s["session_id"]): s for s in sessions.values()}


def _open_files(cluster: Cluster, node: int) -> int:
    done = subprocess.run(cluster.lab.in_node(node, ["smbstatus", "-s",
                                                     str(cluster.lab.conf_path(node)),
                                                     "--json", "-L"]),
                          capture_output=True, text=True, timeout=60, check=True)
    return sum(len(f.get("opens") or {}) for f in
               (json.loads(done.stdout).get("open_files") or {}).values())


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = _missing()
    if reason:
        pytest.fail(f"cannot build the test cluster: {reason}")
    base = Path(tempfile.mkdtemp(prefix="smbsession-cluster-", dir="/tmp"))
    base.chmod(0o755)
    lab = ClusterLab(base, 2)
    world = Cluster(lab)
    try:
        try:
            lab.start()
        except Exception as exc:  # a busy machine: one more try, saying why
            print(f"the test cluster did not start ({exc}); trying once more")
            lab.stop()
            lab.start(timeout=180)
        for spec in CLIENTS:
            user, node, protocol, files, _dialect = spec
            proc = lab.connect(user, node, protocol, files)
            world.clients.append((spec, proc, time.time()))
        _wait(lambda: len(world.smbstatus(0)) >= len(CLIENTS), 30, "the clients' sessions")
        files = sum(len(c[3]) for c in CLIENTS)
        _wait(lambda: world.open_files(0) >= files, 30, "the clients' open files")
        yield world
    finally:
        for _spec, proc, _t in world.clients:
            proc.kill()
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_every_node_lists_the_whole_cluster(cluster: Cluster) -> None:
    for node in (0, 1):
        code, rows, err = cluster.run(node)
        oracle = cluster.smbstatus(node)
        assert code == 0, err
        assert err == ""
        assert len(rows) == len(CLIENTS)
        assert {r["SessionId"] for r in rows} == set(oracle)
        for row in rows:
            theirs = oracle[row["SessionId"]]
            assert row["ClientUserName"] == f"{CLUSTER_NAME}\\{theirs['username']}"
            assert row["SmbdPid"] == int(theirs["server_id"]["pid"])


def test_properties_per_serving_node(cluster: Cluster) -> None:
    lab = cluster.lab
    code, rows, err = cluster.run(0)
    assert code == 0, err
    oracle = cluster.smbstatus(0)
    held = lab.public_ips()
    expected = sorted((user, dialect, node, len(files))
                      for user, node, _p, files, dialect in CLIENTS)
    got = []
    for row in rows:
        serving = int(oracle[row["SessionId"]]["server_id"]["vnn"])
        got.append((row["ClientUserName"].split("\\")[1], row["Dialect"], serving,
                    row["NumOpens"]))
        assert row["ScopeName"] == CLUSTER_NAME
        assert row["ClientComputerName"] == "198.18.0.254"
        if serving == 0:
            assert row["ClusterNodeName"] == lab.hostname(0)
            assert row["SecondsIdle"] is not None and 0 <= row["SecondsIdle"] < 600
        else:
            # Another node: the name its private address resolves to, else the address.
            assert row["ClusterNodeName"] in (private_address(1), _name_of(private_address(1)))
            assert row["SecondsIdle"] is None
        ip, port = row["TransportName"].removeprefix("tcp:").rsplit(":", 1)
        assert held[ip] == serving and port == "445"
        oldest = time.time() - min(t for _s, _p, t in cluster.clients)
        assert 0 <= row["SecondsExists"] <= oldest + 2
    assert sorted(got) == expected
    # From node 1, the names swap: its own sessions carry its host name.
    _, rows1, _ = cluster.run(1)
    names = {r["SessionId"]: r["ClusterNodeName"] for r in rows1}
    for row in rows:
        if row["ClusterNodeName"] == lab.hostname(0):
            assert names[row["SessionId"]] in (private_address(0), _name_of(private_address(0)))
        else:
            assert names[row["SessionId"]] == lab.hostname(1)


def _name_of(address: str) -> str:
    try:
        return socket.gethostbyaddr(address)[0].split(".")[0]
    except OSError:
        return address


def test_scope_and_cluster_node_filters(cluster: Cluster) -> None:
    code, rows, err = cluster.run(0, "-ScopeName", CLUSTER_NAME.lower())
    assert code == 0 and len(rows) == len(CLIENTS), err
    code, rows, err = cluster.run(0, "-ScopeName", "*")
    assert code == 1 and rows == [] and "ScopeName" in err
    on_node1 = sum(1 for c in CLIENTS if c[1] == 1)
    for spelling in ("1", private_address(1)):
        code, rows, err = cluster.run(0, "-ClusterNodeName", spelling)
        assert code == 0, err
        assert len(rows) == on_node1
        assert all(r["SecondsIdle"] is None for r in rows)
    code, rows, err = cluster.run(0, "-ClusterNodeName", cluster.lab.hostname(0).upper())
    assert code == 0 and len(rows) == len(CLIENTS) - on_node1, err
    code, rows, err = cluster.run(0, "-ClusterNodeName", "0")
    assert code == 0 and len(rows) == len(CLIENTS) - on_node1, err


def test_smbstatus_source_names_nodes_and_scope_the_same(cluster: Cluster) -> None:
    _, tdb_rows, _ = cluster.run(1)
    code, rows, err = cluster.run(1, source_args=("-Source", "smbstatus"))
    assert code == 0, err
    by_id = {r["SessionId"]: r for r in tdb_rows}
    assert set(by_id) == {r["SessionId"] for r in rows}
    for row in rows:
        assert row["ScopeName"] == CLUSTER_NAME
        assert row["ClusterNodeName"] == by_id[row["SessionId"]]["ClusterNodeName"]
    code, rows, _ = cluster.run(1, "-ScopeName", CLUSTER_NAME, source_args=("-Source",
                                                                            "smbstatus"))
    assert code == 0 and len(rows) == len(CLIENTS)


def test_a_migrated_record_is_listed_once(cluster: Cluster) -> None:
    from smbsession.samba.ctdb import protocol
    from smbsession.samba.tdb import read_tdb

    lab = cluster.lab
    _, before, _ = cluster.run(0)
    on_node0 = next(r for r in before if r["ClusterNodeName"] == lab.hostname(0))
    key = on_node0["SessionId"].to_bytes(4, "big")
    done = lab.ctdb(1, "readkey", SESSION_DB, "0x" + key.hex())
    assert done.returncode == 0, done.stderr
    # Node 0's own file now holds a stale copy (dmaster 1) that still has data.
    local = {r.key: r.value for r in read_tdb(
        str(lab.node_dir(0) / "var" / "volatile" / f"{SESSION_DB}.0")).records}
    stale = protocol.parse_ltdb_header(local[key])
    assert stale.dmaster == 1 and len(local[key]) > protocol.LTDB_HEADER.size
    for node in (0, 1):
        code, rows, err = cluster.run(node)
        assert code == 0, err
        ids = [r["SessionId"] for r in rows]
        assert len(ids) == len(set(ids)) == len(before)
        assert set(ids) == {r["SessionId"] for r in before}


def test_the_ssh_reader_lists_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """-CimSession ssh:// to one node: the reader shipped over SSH reads through ctdbd."""
    from helpers.sshd import LabSshd
    from smbsession.remote import ssh

    names = zipfile_names(ssh.reader_zip())
    assert "smbsession/samba/ctdb/client.py" in names
    assert "smbsession/samba/cluster_store.py" in names
    sshd = LabSshd(tmp_path)
    try:
        target = ssh.parse_ssh_target(f"ssh://root@127.0.0.1:{sshd.port}")
        sessions = ssh.list_sessions(target, str(cluster.lab.conf_path(0)), timeout=60,
                                     **sshd.options())
    finally:
        sshd.stop()
    assert {s.session_id for s in sessions} == set(cluster.smbstatus(0))
    assert all(s.scope_name == CLUSTER_NAME for s in sessions)
    # -ClusterNodeName by PNN and by address works on rows read over SSH too.
    from smbsession import SessionQuery

    node1_names = (private_address(1), _name_of(private_address(1)))
    on_node1 = {s.session_id for s in sessions if s.cluster_node_name in node1_names}
    for spelling in ("1", private_address(1)):
        picked = SessionQuery(cluster_node_name=(spelling,)).select(sessions)
        assert {s.session_id for s in picked} == on_node1
    assert len(on_node1) == sum(1 for c in CLIENTS if c[1] == 1)


def zipfile_names(data: bytes) -> set[str]:
    import io
    import zipfile

    return set(zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_a_broken_or_absent_ctdbd_socket_is_a_clear_error(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    lab = cluster.lab
    refusing = tmp_path / "refusing.socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(refusing))
    sock.close()
    for path, words in ((tmp_path / "absent.socket", "does not exist"),
                        (refusing, "refuses connections")):
        conf = tmp_path / "smb.conf"
        conf.write_text(lab.conf_path(0).read_text().replace(
            f"ctdbd socket = {lab.socket_path(0)}", f"ctdbd socket = {path}"))
        done = subprocess.run(
            lab.in_node(0, [sys.executable, "-m", "smbsession", "get", "-SmbConf", str(conf)]),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": SRC})
        assert done.returncode == 1
        assert done.stdout == ""
        assert words in done.stderr and str(path) in done.stderr
        assert "Traceback" not in done.stderr


def test_a_traverse_during_recovery_ends_at_its_deadline(cluster: Cluster) -> None:
    """Node 1's ctdbd stops answering (SIGSTOP): node 0 cannot finish a traverse, and
    what a recovery does to a traverse. The listing fails at its deadline, with nothing
    partial."""
    from smbsession.errors import ClusterTimeout
    from smbsession.samba import server as samba_server
    from smbsession.samba import tdb_source

    lab = cluster.lab
    server = samba_server.resolve(str(lab.conf_path(0)))
    server.store.traverse_timeout = 2.0  # type: ignore[attr-defined]
    ctdbd1 = int((lab.node_dir(1) / "run" / "ctdbd.pid").read_text())
    os.kill(ctdbd1, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(ClusterTimeout, match="traverse"):
            tdb_source.read_sessions(server)
        assert 1.9 <= time.monotonic() - started < 6
    finally:
        os.kill(ctdbd1, signal.SIGCONT)
    _wait(lambda: cluster.run(0)[0] == 0, 60, "the cluster to answer again")


def test_close_a_session_another_node_serves(cluster: Cluster) -> None:
    lab = cluster.lab
    _, rows, _ = cluster.run(0)
    remote = [r for r in rows if r["ClusterNodeName"] != lab.hostname(0)]
    victim = remote[0]
    argv = [sys.executable, "-m", "smbsession", "close", "-SmbConf", str(lab.conf_path(0)),
            "-SessionId", str(victim["SessionId"]), "-Force"]
    done = subprocess.run(lab.in_node(0, argv), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    for node in (0, 1):
        _, after, _ = cluster.run(node)
        assert {r["SessionId"] for r in after} == {r["SessionId"] for r in rows} - {
            victim["SessionId"]}
    assert victim["SessionId"] not in cluster.smbstatus(1)


def test_a_killed_node_leaves_no_ghost_sessions(cluster: Cluster) -> None:
    """Last: it takes node 1 down. Its smbds die with it; the records naming them may
    survive on node 0 (recovery moves what node 0 holds there); none is listed, in any
    listing from the moment node 0 sees node 1 gone. A record whose only current copy was
    on node 1 is lost with it until its smbd on node 0 stores it again, for smbstatus as
    for us: so the listing is compared with smbstatus until both agree."""
    from smbsession.samba.ctdb.client import CtdbClient

    lab = cluster.lab
    _, before, _ = cluster.run(0)
    survivors = {r["SessionId"] for r in before if r["ClusterNodeName"] == lab.hostname(0)}
    of_node1 = {r["SessionId"] for r in before} - survivors
    assert survivors and of_node1
    lab.kill_node(1)

    def node1_gone() -> bool:
        with CtdbClient(str(lab.socket_path(0))) as c:
            flags = {n.pnn: n.flags for n in c.nodemap()}
            return bool(flags[1] & 1) and c.recovery_state()[0] == 0

    _wait(node1_gone, 60, "node 0 to see node 1 gone")
    seen: list[tuple[set[int], set[int]]] = []

    def agreed() -> bool:
        code, rows, err = cluster.run(0)
        if code != 0:  # a recovery still running: an error, never a partial list
            assert rows == [] and err, err
            return False
        ours = {r["SessionId"] for r in rows}
        assert not ours & of_node1, f"ghost sessions of node 1 listed: {ours & of_node1}"
        assert all(r["ClusterNodeName"] == lab.hostname(0) for r in rows)
        theirs = set(cluster.smbstatus(0))
        seen.append((ours, theirs))
        return ours == theirs == survivors

    try:
        _wait(agreed, 60, "the listing and smbstatus to agree on node 0's sessions")
    except AssertionError:
        raise AssertionError(f"survivors {survivors}; listings (ours, smbstatus): "
                             f"{seen[-5:]}") from None
