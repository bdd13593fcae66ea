"""smbsession exporter against a real smbd, real clients and a real Prometheus.

The exporter runs as its users run it (``smbsession exporter``, started as root: a root
reader and an HTTP front as ``nobody``); Prometheus is Debian's package (make
monitor-deps), scraping it on loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")
import itertools

from prometheus_client.parser import text_string_to_metric_families

from conftest import SRC, run_get, running_lab, smbprotocol_sessions, wait_for
from smbsession.lab import SHARE, Lab
from smbsession.lab.standalone import free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


class Exporter:
    """A running ``smbsession exporter`` process."""

    def __init__(self, proc: subprocess.Popen, port: int, scheme: str = "http") -> None:
        self.proc = proc
        self.port = port
        self.scheme = scheme
        self.output = ""  # its log (stderr), once it has stopped

    def url(self, path: str = "/metrics") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def get(self, path: str = "/metrics", headers: dict[str, str] | None = None,
            context: ssl.SSLContext | None = None) -> str:
        request = urllib.request.Request(self.url(path), headers=headers or {})
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            return answer.read().decode()

    def log(self) -> str:
        return self.proc.stderr.read().decode() if self.proc.poll() is not None else ""


@contextlib.contextmanager
def exporter(lab: Lab | None, *args: str, port: int | None = None,
             scheme: str = "http", env: dict[str, str] | None = None) -> Iterator[Exporter]:
    """Start ``smbsession exporter`` for ``lab`` on a free loopback port; stop it after."""
    port = port or free_port()
    conf = ["-SmbConf", str(lab.conf_path)] if lab is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "smbsession", "exporter", "--listen", f"127.0.0.1:{port}",
         *conf, *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})})
    context = ssl._create_unverified_context() if scheme == "https" else None
    running = Exporter(proc, port, scheme)

    def answers() -> bool:
        if proc.poll() is not None:
            return True
        try:
            urllib.request.urlopen(running.url("/"), timeout=2, context=context).close()
        except urllib.error.HTTPError:
            return True  # 401: it answers
        except OSError:
            return False
        return True

    try:
        assert wait_for(answers, 20), "the exporter did not answer"
        assert proc.poll() is None, proc.stderr.read().decode()
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        running.output = proc.stderr.read().decode()
        proc.stderr.close()


def families(text: str) -> dict[str, list]:
    """name -> samples of an exposition (counters under their name without _total)."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family.samples
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    return None


def listing_count(lab: Lab) -> int:
    out = run_get(lab, "-Format", "Json")
    assert out.returncode == 0, out.stderr
    return len(json.loads(out.stdout))


def test_metrics_sum_to_the_listing_and_the_http_side_is_not_root(lab: Lab,
                                                                   alice_bob) -> None:
    with exporter(lab) as running:
        text = running.get()
        assert value(text, "smbsession_up") == 1
        sessions = [s for s in families(text)["smbsession_sessions"]]
        assert sum(s.value for s in sessions) == listing_count(lab) >= 2
        assert value(text, "smbsession_build_info") == 1
        assert value(text, "smbsession_scrape_duration_seconds") > 0
        assert value(text, "smbsession_user_sessions", user="LABSRV\\labalice") >= 1
        # The front that parses HTTP is nobody; its root child only reads.
        front = os.stat(f"/proc/{running.proc.pid}").st_uid
        assert front == 65534
        children = Path(f"/proc/{running.proc.pid}/task/{running.proc.pid}/children")
        (reader,) = children.read_text().split()
        assert os.stat(f"/proc/{reader}").st_uid == 0
        with pytest.raises(urllib.error.HTTPError) as missing:
            running.get("/nothing-here")
        assert missing.value.code == 404


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (make monitor-deps)")
def test_promtool_check_metrics_passes(lab: Lab, alice_bob) -> None:
    with exporter(lab, "--per-session") as running:
        text = running.get()
    assert value(text, "smbsession_session_info", user="LABSRV\\labbob") == 1
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                             capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def _prometheus_query(port: int, query: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            data = json.loads(answer.read())
    except OSError:
        return []
    return data["data"]["result"] if data.get("status") == "success" else []


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (make monitor-deps)")
def test_a_real_prometheus_scrapes_the_session_count(lab: Lab, alice_bob) -> None:
    expected = listing_count(lab)
    work = Path(tempfile.mkdtemp(prefix="smbsession-prom-"))
    web_port = free_port()
    with exporter(lab) as running:
        (work / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 3s\n  scrape_timeout: 3s\n"
            "scrape_configs:\n  - job_name: smbsession\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{running.port}']\n")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{web_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            result = wait_for(lambda: _prometheus_query(web_port, "sum(smbsession_sessions)"), 60,
                              0.5)
            assert result, "Prometheus never had smbsession_sessions"
            assert float(result[0]["value"][1]) == expected
            up = _prometheus_query(web_port, 'up{job="smbsession"}')
            assert up and float(up[0]["value"][1]) == 1
            ours = _prometheus_query(web_port, "smbsession_up")
            assert ours and float(ours[0]["value"][1]) == 1
        finally:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(15)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            prom.stderr.close()
            shutil.rmtree(work, ignore_errors=True)


def _copy_slowly(lab: Lab, name: str, chunks: int, size: int, done: threading.Event,
                 errors: list[str]) -> None:
    """labcarol writes ``chunks`` chunks of ``size`` bytes, a little apart, then logs off."""
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    from smbsession.lab.clients import open_file

    try:
        conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
        conn.connect()
        session = Session(conn, "labcarol", lab.user("labcarol").password,
                          require_encryption=False)
        session.connect()
        tree = TreeConnect(session, rf"\\127.0.0.1\{SHARE}")
        tree.connect()
        handle = open_file(tree, name)
        data = os.urandom(size)
        for i in range(chunks):
            handle.write(data, i * size)
            time.sleep(0.1)
        handle.close()
        conn.disconnect(True)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        done.set()


def test_byte_counters_only_go_up_during_a_copy_and_after_the_client_leaves(lab: Lab,
                                                                            alice_bob) -> None:
    chunks, size = 30, 1 << 20
    with exporter(lab) as running:
        def received() -> float:
            text = running.get()
            assert value(text, "smbsession_up") == 1
            return value(text, "smbsession_client_received_bytes_total",
                         client="127.0.0.1") or 0.0

        seen = [received()]
        done = threading.Event()
        errors: list[str] = []
        copier = threading.Thread(target=_copy_slowly,
                                  args=(lab, "exporter-copy.bin", chunks, size, done, errors))
        copier.start()
        while not done.is_set():
            seen.append(received())
            time.sleep(0.2)
        copier.join()
        assert not errors, errors
        for _ in range(3):  # the copying client is gone: its bytes stay counted
            seen.append(received())
            time.sleep(0.3)
        sent = value(running.get(), "smbsession_client_sent_bytes_total", client="127.0.0.1")
    assert all(b >= a for a, b in itertools.pairwise(seen)), seen
    # Most of the copy was seen (what moved after the last scrape before it ended is not).
    assert seen[-1] - seen[0] >= (chunks - 5) * size, seen
    assert len(set(seen)) > 3, seen  # it rose during the copy, not in one step
    assert sent and sent > 0


def test_the_exporter_survives_smbd_stopping_and_starting_again() -> None:
    with running_lab("exp-restart") as own, exporter(own) as running:
        assert value(running.get(), "smbsession_up") == 1
        port = own.port
        own.stop()
        text = running.get()
        assert value(text, "smbsession_up") == 0
        assert families(text)["smbsession_build_info"]
        assert "smbsession_sessions" not in families(text)
        own.start(port=port)
        with smbprotocol_sessions(own, ["labalice"]):
            text = running.get()
            assert value(text, "smbsession_up") == 1
            assert sum(s.value for s in families(text)["smbsession_sessions"]) == 1
        assert running.proc.poll() is None
    # The failed read is in the log with its reason, and so is the recovery.
    assert "localhost: reading the sessions failed: " in running.output
    assert "localhost: reading the sessions again" in running.output
    assert "Traceback" not in running.output


def _tls_files(work: Path, password: str) -> Path:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")],
                   check=True, capture_output=True)
    os.chmod(work / "key.pem", 0o600)  # root only: read before the front drops privileges
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
    config = work / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                      f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    return config


def test_a_scrape_over_tls_with_a_password(lab: Lab, alice_bob) -> None:
    import secrets

    password = secrets.token_urlsafe(12)
    work = Path(tempfile.mkdtemp(prefix="smbsession-tls-"))
    try:
        config = _tls_files(work, password)
        context = ssl.create_default_context(cafile=str(work / "cert.pem"))
        with exporter(lab, "--web-config-file", str(config), scheme="https") as running:
            good = base64.b64encode(f"prometheus:{password}".encode()).decode()
            text = running.get(headers={"Authorization": f"Basic {good}"}, context=context)
            assert value(text, "smbsession_up") == 1
            bad = base64.b64encode(b"prometheus:wrong").decode()
            for headers in ({}, {"Authorization": f"Basic {bad}"}):
                with pytest.raises(urllib.error.HTTPError) as refused:
                    running.get(headers=headers, context=context)
                assert refused.value.code == 401
            with pytest.raises(OSError):  # plain HTTP to the TLS port
                urllib.request.urlopen(f"http://127.0.0.1:{running.port}/metrics",
                                       timeout=5).read()
            assert password not in " ".join(Path(f"/proc/{running.proc.pid}/cmdline")
                                            .read_text().split("\0"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_probe_reads_only_configured_targets(lab: Lab, alice_bob) -> None:
    with exporter(lab, "-CimSession", "localhost") as running:
        text = running.get("/probe?target=localhost")
        assert value(text, "smbsession_up") == 1
        assert sum(s.value for s in families(text)["smbsession_sessions"]) == listing_count(lab)
        for target in ("ssh://198.18.0.1", "smb://somewhere", ""):
            with pytest.raises(urllib.error.HTTPError) as refused:
                running.get(f"/probe?target={urllib.parse.quote(target)}")
            assert refused.value.code == 400
        # With -CimSession alone, /metrics is the exporter's own: no local read.
        own = running.get()
        assert "smbsession_up" not in own and value(own, "smbsession_build_info") == 1


def test_bad_options_are_one_clear_line() -> None:
    for args, word in ((["--listen", "nowhere"], "--listen"),
                       (["--top", "-3"], "Top"),
                       (["--web-config-file", "/nonexistent/web.yml"], "--web-config-file"),
                       (["--log-level", "loud"], "--log-level")):
        out = subprocess.run([sys.executable, "-m", "smbsession", "exporter", *args],
                             capture_output=True, text=True, env={**os.environ,
                                                                  "PYTHONPATH": SRC},
                             timeout=30, check=False)
        assert out.returncode != 0, args
        assert word.lower() in out.stderr.lower(), (args, out.stderr)
        assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def sshd() -> Iterator[object]:
    from helpers.sshd import running_sshd

    with running_sshd() as server:
        yield server


def test_probe_over_ssh(lab: Lab, alice_bob, sshd, tmp_path: Path) -> None:
    pytest.importorskip("asyncssh")
    target = f"ssh://root@127.0.0.1:{sshd.port}"
    from helpers.sshd import trusting_home

    env = trusting_home(sshd, tmp_path)
    with exporter(lab, "-CimSession", target, "--user", "root", env=env) as running:
        text = running.get("/probe?" + urllib.parse.urlencode({"target": target}))
        assert value(text, "smbsession_up") == 1, running.log()
        assert sum(s.value for s in families(text)["smbsession_sessions"]) == listing_count(lab)
        received = value(text, "smbsession_client_received_bytes_total", client="127.0.0.1")
        assert received and received > 0


CARD_USERS, CARD_SESSIONS, CARD_PREFIX = 500, 2000, "smbcard"


@contextlib.contextmanager
def many_users(lab: Lab, count: int) -> Iterator[list[str]]:
    """``count`` more accounts ``smbcard000``... with labalice's password: Unix accounts
    made with useradd (primary group users, so no new groups), Samba accounts
    imported with pdbedit from an smbpasswd file carrying labalice's hashes (no password
    on any command line). The Unix accounts are removed after; the Samba ones go with
    the lab's passdb."""
    names = [f"{CARD_PREFIX}{i:03d}" for i in range(count)]
    root = lab.chroot or Path("/")
    wrap = ["chroot", str(root)] if lab.chroot else []
    pdbedit = [*wrap, "pdbedit", "-s", str(lab.server_conf_path if lab.chroot is None else
                                          "/" / lab.server_conf_path.relative_to(root))]
    existing = {line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()}
    assert not existing & set(names), "accounts of an earlier run are left: userdel them"
    # One shell for all (Debian's newusers sets each password through PAM: slower).
    made = subprocess.run([*wrap, "sh", "-c", "; ".join(
        f"useradd -M -N -g 100 -s /usr/sbin/nologin -c 'smbsession test' {n} || exit 1"
        for n in names)], capture_output=True, text=True, check=False)
    work = Path(tempfile.mkdtemp(dir=root / "tmp"))
    try:
        assert made.returncode == 0, made.stderr
        listed = subprocess.run([*pdbedit, "-Lw"], capture_output=True, text=True,
                                check=True).stdout
        alice = next(line for line in listed.splitlines() if line.startswith("labalice:"))
        hashes = alice.split(":", 2)[2]
        uids = dict(line.split(":")[0:3:2] for line in
                    (root / "etc/passwd").read_text().splitlines())
        path = work / "smbpasswd"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{n}:{uids[n]}:{hashes}\n" for n in names))
        inside = path if lab.chroot is None else "/" / path.relative_to(root)
        subprocess.run([*pdbedit, "-i", f"smbpasswd:{inside}"], capture_output=True,
                       text=True, check=True)
        yield names
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # The Samba accounts live in the lab's passdb, which goes with the lab.
        script = "; ".join(f"userdel {n}" for n in names)
        subprocess.run([*wrap, "sh", "-c", script], capture_output=True, check=False)


def _open_sessions(lab: Lab, users: list[str], password: str, keep: list,
                   errors: list[str]) -> None:
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session

    try:
        conn = Connection(uuid.uuid4(), "127.0.0.1", lab.port)
        conn.connect()
        keep.append(conn)
        for user in users:
            session = Session(conn, user, password, require_encryption=False)
            session.connect()
            keep.append(session)
    except Exception as exc:
        errors.append(repr(exc))


def test_cardinality_stays_within_its_caps_with_2000_sessions_of_500_users() -> None:
    # The host's Samba (4.17): 4.22 in the chroot takes some 0.3 s per session setup here
    # once a connection has a few, which would make this test take minutes.
    with running_lab("exp-card") as own:
        _cardinality(own)


def _cardinality(lab: Lab) -> None:
    password = lab.user("labalice").password
    with many_users(lab, CARD_USERS) as names:
        users = [names[i % CARD_USERS] for i in range(CARD_SESSIONS)]
        keep: list = []
        errors: list[str] = []
        threads = [threading.Thread(target=_open_sessions,
                                    args=(lab, users[i::4], password, keep, errors))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert not errors, errors[:3]
            with exporter(lab, "--top", "10", "--per-session", "--max-sessions",
                          "500") as running:
                text = running.get()
        finally:
            for conn in keep:
                if hasattr(conn, "disconnect"):
                    with contextlib.suppress(Exception):
                        conn.disconnect(False)
    found = families(text)
    total = sum(s.value for s in found["smbsession_sessions"])
    assert total >= CARD_SESSIONS
    user_labels = {s.labels["user"] for s in found["smbsession_user_sessions"]}
    assert len(user_labels) == 11 and "other" in user_labels
    assert sum(s.value for s in found["smbsession_user_sessions"]) == total
    assert len(found["smbsession_client_sessions"]) <= 11
    assert len(found["smbsession_sessions"]) <= 6 * 4 * 4
    assert len(found["smbsession_session_info"]) == 500
    assert value(text, "smbsession_session_series_dropped") == total - 500
    series = sum(len(samples) for samples in found.values())
    assert series < 3000, series  # 500 sessions x 5 series, plus a few dozen
