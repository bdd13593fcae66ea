"""smb:// targets: the lab's own srvsvc (Samba's samba-dcerpcd) asked with impacket."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import SRC, silent_servers, smbprotocol_sessions
from smbsession.errors import InvalidParameter, RemoteAccessDenied, SmbSessionError
from smbsession.lab import WORKGROUP, Lab, free_port, ipv6_loopback_available

pytest.importorskip("impacket")
import smbsession.remote.srvs as srvs_module
from smbsession.remote.srvs import (
    NO_SESSION_ID,
    RemoteError,
    SmbTarget,
    client_computer_name,
    list_sessions,
    parse_smb_target,
)


def target(lab: Lab, user: str | None = "root", domain: str | None = WORKGROUP,
           port: int | None = None) -> SmbTarget:
    who = "" if user is None else (f"{domain}\\{user}@" if domain else f"{user}@")
    return parse_smb_target(f"smb://{who}127.0.0.1:{port or lab.port}")


# --- listing the lab ---------------------------------------------------------------------

def test_root_lists_the_held_sessions(lab: Lab) -> None:
    files = {"labalice": ["srvs-alice.txt"]}
    with smbprotocol_sessions(lab, ["labalice", "labbob"], files=files):
        time.sleep(1.5)  # Samba's sesi1_time counts whole seconds
        t = target(lab)
        sessions = list_sessions(t, lab.user("root").password, timeout=30)
    # Spelled as the local reader spells them (the server's LSA names the domain).
    by_user = {s.client_user_name: s for s in sessions}
    assert {"LABSRV\\labalice", "LABSRV\\labbob"} <= set(by_user)
    alice, bob = by_user["LABSRV\\labalice"], by_user["LABSRV\\labbob"]
    assert alice.client_computer_name == bob.client_computer_name == "127.0.0.1"
    assert alice.num_opens == 1 and bob.num_opens == 0
    for s in (alice, bob):
        assert s.session_id == NO_SESSION_ID
        assert isinstance(s.seconds_exists, int) and 1 <= s.seconds_exists < 600
        # Samba answers level 1 only: its idle time is always 0, so it is not reported;
        # level 1 carries no transport, and MS-SRVS no dialect, scope or cluster node.
        assert s.seconds_idle is None and s.transport_name is None
        assert s.dialect is None and s.scope_name is None and s.cluster_node_name is None
        assert s.smb_instance == "Default" and not s.hidden
        assert s.ps_computer_name == t.raw


def test_the_listing_matches_the_local_reader(lab: Lab) -> None:
    import smbsession

    with smbprotocol_sessions(lab, ["labalice", "labbob", "labcarol"]):
        remote = list_sessions(target(lab), lab.user("root").password, timeout=30)
        local = smbsession.read_sessions(str(lab.conf_path)).sessions
    remote_users = sorted(s.client_user_name or "" for s in remote
                          if s.client_user_name != "LABSRV\\root")
    local_users = sorted(s.client_user_name or "" for s in local if not s.hidden)
    assert remote_users == local_users


def test_sessions_that_end_are_gone_from_the_next_listing(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]):
        during = list_sessions(target(lab), lab.user("root").password)
    assert "LABSRV\\labcarol" in {s.client_user_name for s in during}
    deadline = time.monotonic() + 15
    while True:
        after = list_sessions(target(lab), lab.user("root").password)
        gone = "LABSRV\\labcarol" not in {s.client_user_name for s in after}
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "LABSRV\\labcarol" not in {s.client_user_name for s in after}


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_an_ipv6_target_and_client_are_bracketed(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice"], host="::1"):
        t = parse_smb_target(f"smb://LAB\\root@[::1]:{lab.port}")
        sessions = list_sessions(t, lab.user("root").password, timeout=30)
    alice = next(s for s in sessions if s.client_user_name == "LABSRV\\labalice")
    assert alice.client_computer_name == "[::1]"


# --- refusals and failures ---------------------------------------------------------------

def test_a_user_who_is_not_admin_is_denied_with_the_reason(lab: Lab) -> None:
    password = lab.user("labbob").password
    t = target(lab, "labbob")
    with pytest.raises(RemoteAccessDenied) as err:
        list_sessions(t, password, timeout=30)
    message = str(err.value)
    assert message.startswith(f"{t.raw}: ")
    assert "1607" in message and "Windows Server 2019" in message
    assert "BUILTIN\\Administrators" in message and "levels 0 and 1" in message
    assert password not in message
    assert isinstance(err.value, RemoteError) and isinstance(err.value, SmbSessionError)


def test_an_anonymous_session_is_denied(lab: Lab) -> None:
    with pytest.raises(RemoteAccessDenied):
        list_sessions(target(lab, user=None), None, timeout=30)


def test_a_wrong_password_fails_without_showing_it(lab: Lab) -> None:
    wrong = "Wr0ng-" + lab.user("root").password[::-1]
    t = target(lab)
    with pytest.raises(RemoteError) as err:
        list_sessions(t, wrong, timeout=30)
    message = str(err.value)
    assert not isinstance(err.value, RemoteAccessDenied)
    assert message.startswith(f"{t.raw}: ") and "STATUS_LOGON_FAILURE" in message
    assert wrong not in message and lab.user("root").password not in message
    assert "Traceback" not in message and "\n" not in message


def test_a_closed_port_fails_fast() -> None:
    t = parse_smb_target(f"smb://root@127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(RemoteError) as err:
        list_sessions(t, "unused-secret", timeout=5)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert message == f"{t.raw}: cannot connect to 127.0.0.1:{t.port}: Connection refused"


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    with silent_servers() as (port,):
        t = parse_smb_target(f"smb://root@127.0.0.1:{port}")
        start = time.monotonic()
        with pytest.raises(RemoteError) as err:
            list_sessions(t, "unused-secret", timeout=2)
    assert time.monotonic() - start < 4
    assert str(err.value) == f"{t.raw}: no answer within 2 s"


def test_kerberos_without_a_credential_cache_fails_clearly(lab: Lab,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path) -> None:
    missing = tmp_path / "no-such-ccache"
    monkeypatch.setenv("KRB5CCNAME", str(missing))
    t = target(lab)
    with pytest.raises(RemoteError) as err:
        list_sessions(t, None, timeout=10, kerberos=True)
    assert str(err.value).startswith(f"{t.raw}: Kerberos logon failed: ")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_impacket_is_imported_only_when_listing() -> None:
    done = run_python(
        "import sys, smbsession, smbsession.remote.srvs as s\n"
        "s.parse_smb_target('smb://h')\n"
        "print(sorted(m for m in sys.modules if m.startswith('impacket')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_impacket_the_error_names_the_extra() -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['impacket'] = None\n"
        "from smbsession.errors import ExtraMissing\n"
        "from smbsession.remote.srvs import list_sessions, parse_smb_target\n"
        "try:\n"
        "    list_sessions(parse_smb_target('smb://u@h'), 'secret-pw')\n"
        "except ExtraMissing as e:\n"
        "    print(e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "smb://u@h: smb:// targets need impacket; install the remote extra: "
        "pip install 'smbsession[remote]'"
    )


# --- targets -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "host", "port", "user", "domain"), [
    ("smb://fs1", "fs1", 445, None, None),
    ("SMB://fs1.example.com:4445/", "fs1.example.com", 4445, None, None),
    ("smb://alice@10.0.0.5", "10.0.0.5", 445, "alice", None),
    ("smb://CONTOSO\\alice@fs1", "fs1", 445, "alice", "CONTOSO"),
    ("smb://CONTOSO;alice@fs1:139", "fs1", 139, "alice", "CONTOSO"),
    ("smb://alice@corp.example@fs1", "fs1", 445, "alice@corp.example", None),
    ("smb://[::1]:4445", "::1", 4445, None, None),
    ("smb://LAB\\root@[fe80::1%eth0]", "fe80::1%eth0", 445, "root", "LAB"),
])
def test_good_targets(text: str, host: str, port: int, user: str | None,
                      domain: str | None) -> None:
    t = parse_smb_target(text)
    assert (t.host, t.port, t.user, t.domain, t.raw) == (host, port, user, domain, text)
    assert str(t) == text


def test_a_target_without_raw_prints_its_canonical_form() -> None:
    assert str(SmbTarget("fe80::1", 4445, "bob", "LAB")) == "smb://LAB\\bob@[fe80::1]:4445"
    assert str(SmbTarget("fs1")) == "smb://fs1"


@pytest.mark.parametrize(("text", "why"), [
    ("fs1", "does not start with smb://"),
    ("ssh://fs1", "does not start with smb://"),
    ("smb://", "no host"),
    ("smb://fs1:0", "'0' is not a port"),
    ("smb://fs1:65536", "'65536' is not a port"),
    ("smb://fs1:http", "'http' is not a port"),
    ("smb://fs1:", "'' is not a port"),
    ("smb://::1", "must be written in brackets"),
    ("smb://[nope]", "'nope' in brackets is not an IPv6 address"),
    ("smb://[::1]445", "only ':port' may follow"),
    ("smb://@fs1", "no valid user name"),
    ("smb://LAB\\@fs1", "no valid user name"),
    ("smb://\\bob@fs1", "an empty domain"),
    ("smb://fs1/share", "'fs1/share' is not a host name"),
    ("smb://fs 1", "'fs 1' is not a host name"),
])
def test_bad_targets_are_named(text: str, why: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_smb_target(text)
    message = str(err.value)
    assert f"'{text}'" in message and why in message
    assert "smb://[DOMAIN\\user@]host[:port]" in message


def test_a_password_in_the_target_is_refused_and_not_repeated() -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_smb_target("smb://LAB\\bob:S3cret-pw@fs1")
    assert "must not carry a password" in str(err.value)
    assert "S3cret-pw" not in str(err.value)


@pytest.mark.parametrize(("cname", "shown"), [
    ("\\\\192.168.1.5", "192.168.1.5"),
    ("192.168.1.5", "192.168.1.5"),
    ("\\\\fe80::c8c0:f65d:3bc6:7313", "[fe80::c8c0:f65d:3bc6:7313]"),
    ("\\\\[fe80:0::1]", "[fe80::1]"),
    ("::ffff:10.0.0.7", "10.0.0.7"),
    ("\\\\WKS-17", "WKS-17"),
    ("\\\\", None),
    ("", None),
    (None, None),
])
def test_client_computer_names(cname: str | None, shown: str | None) -> None:
    assert client_computer_name(cname) == shown


# --- a Windows-like srvsvc ---------------------------------------------------------------
# Samba answers levels 0 and 1 in one page. What Windows does (level 502, answers in
# pages joined by ERROR_MORE_DATA and a resume handle), and what a hostile server might do,
# is played by impacket's own SMB server with a NetrSessionEnum added: real SMB, NTLM and
# DCE/RPC on a loopback socket, with the server's answers scripted.

WINDOWS_ROWS = [
    ("\\\\192.168.101.13", "Contoso-HV1$", 5, 45346, 33, "\\Device\\NetbiosSmb"),
    ("\\\\fe80::c8c0:f65d:3bc6:7313", "Administrator", 0, 100, 7, "\\Device\\NetBT_Tcpip_{1}"),
    ("\\\\192.168.102.14", "CONTOSO\\Contoso-HV2$", 2, 9, 1, ""),
    ("\\\\192.168.102.15", "", 0, 3, 3, ""),
    ("\\\\::ffff:10.1.2.3", "carol", 1, 4294967295, 0, ""),
]
ADMIN, ADMIN_PASSWORD = "winadmin", "W1ndows-Adm1n-pw"


def scripted_srvsvc(mode: str):
    """impacket's SRVSServer answering NetrSessionEnum as ``mode`` says:
    ``windows`` level 502 only, two rows a page; ``operator`` level 502 denied, 10 paged;
    ``stuck`` ERROR_MORE_DATA without moving on; ``endless`` a new page forever;
    ``huge`` one entry under an entry count of a billion; ``garbage`` random bytes."""
    from impacket import smbserver
    from impacket.dcerpc.v5 import srvs
    from impacket.dcerpc.v5.dtypes import NULL

    class Srvsvc(smbserver.SRVSServer):
        def __init__(self) -> None:
            super().__init__()
            self.srvsvcCallBacks[12] = self.enum
            self.levels: list[int] = []

        def enum(self, data: bytes):
            request = srvs.NetrSessionEnum(data)
            level = request["InfoStruct"]["Level"]
            self.levels.append(level)
            handle = request["ResumeHandle"]
            resume = handle if isinstance(handle, int) else 0
            answer = srvs.NetrSessionEnumResponse()
            answer["InfoStruct"]["Level"] = level
            answer["InfoStruct"]["SessionInfo"]["tag"] = level
            container = answer["InfoStruct"]["SessionInfo"][f"Level{level}"]
            wanted = 10 if mode == "operator" else 502
            if level != wanted or mode == "stuck":
                container["Buffer"] = NULL
                answer["ResumeHandle"] = resume if mode == "stuck" else NULL
                answer["ErrorCode"] = 234 if level == wanted else 5 if level == 502 else 124
                return answer
            rows = WINDOWS_ROWS[resume:resume + 2] if mode != "endless" else WINDOWS_ROWS[:1]
            for cname, user, opens, seconds, idle, transport in rows:
                entry = getattr(srvs, f"SESSION_INFO_{level}")()
                entry[f"sesi{level}_cname"] = cname + "\x00"
                entry[f"sesi{level}_username"] = user + "\x00" if user else NULL
                entry[f"sesi{level}_time"] = seconds
                entry[f"sesi{level}_idle_time"] = idle
                if level == 502:
                    entry["sesi502_num_opens"] = opens
                    entry["sesi502_user_flags"] = 0
                    entry["sesi502_cltype_name"] = NULL
                    entry["sesi502_transport"] = transport + "\x00" if transport else NULL
                container["Buffer"].append(entry)
            container["EntriesRead"] = len(rows)
            answer["TotalEntries"] = len(WINDOWS_ROWS)
            following = resume + len(rows)
            more = mode == "endless" or following < len(WINDOWS_ROWS)
            answer["ResumeHandle"] = following if more else 0
            answer["ErrorCode"] = 234 if more else 0
            if mode == "garbage":
                return os.urandom(len(answer.getData())) + b"\0\0\0\0"
            if mode == "huge":  # EntriesRead and the array's MaximumCount: 2**30
                data = bytearray(answer.getData())
                struct.pack_into("<L", data, 12, 1 << 30)
                struct.pack_into("<L", data, 20, 1 << 30)
                return bytes(data)
            return answer

    return Srvsvc()


@pytest.fixture
def windows_like():
    """Start a scripted srvsvc behind impacket's SMB server; yield (mode -> target, rpc)."""
    from impacket import ntlm, smbserver

    servers = []

    def start(mode: str):
        port = free_port()
        server = smbserver.SimpleSMBServer("127.0.0.1", port)
        server.setSMB2Support(True)
        server.addCredential(ADMIN, 0, "", ntlm.compute_nthash(ADMIN_PASSWORD).hex())
        rpc = scripted_srvsvc(mode)
        rpc.daemon = True
        rpc.start()
        server.registerNamedPipe("srvsvc", ("127.0.0.1", rpc.getListenPort()))
        threading.Thread(target=server.start, daemon=True).start()
        servers.append(server)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return parse_smb_target(f"smb://CONTOSO\\{ADMIN}@127.0.0.1:{port}"), rpc

    yield start
    for server in servers:
        server.getServer().shutdown()
        server.stop()


def test_level_502_in_pages_gives_every_property(windows_like) -> None:
    t, rpc = windows_like("windows")
    sessions = list_sessions(t, ADMIN_PASSWORD, timeout=30)
    assert rpc.levels == [502, 502, 502]  # three pages, joined by the resume handle
    rows = [(s.client_computer_name, s.client_user_name, s.num_opens, s.seconds_exists,
             s.seconds_idle, s.transport_name, s.hidden) for s in sessions]
    assert rows == [
        ("192.168.101.13", "Contoso-HV1$", 5, 45346, 33, "\\Device\\NetbiosSmb", False),
        ("[fe80::c8c0:f65d:3bc6:7313]", "Administrator", 0, 100, 7,
         "\\Device\\NetBT_Tcpip_{1}", False),
        ("192.168.102.14", "CONTOSO\\Contoso-HV2$", 2, 9, 1, None, False),
        ("192.168.102.15", None, 0, 3, 3, None, True),  # anonymous: hidden
        ("10.1.2.3", "carol", 1, 0, 0, None, False),  # a wrapped -1: made this second
    ]
    assert {s.session_id for s in sessions} == {NO_SESSION_ID}
    assert {s.ps_computer_name for s in sessions} == {t.raw}


def test_a_denied_level_moves_on_to_the_next(windows_like) -> None:
    t, rpc = windows_like("operator")
    sessions = list_sessions(t, ADMIN_PASSWORD, timeout=30)
    assert rpc.levels[0] == 502 and set(rpc.levels[1:]) == {10}
    assert len(sessions) == len(WINDOWS_ROWS)
    first = sessions[0]
    # Level 10 has no open count and no transport; its idle time is believed.
    assert (first.client_user_name, first.num_opens, first.seconds_idle,
            first.transport_name) == ("Contoso-HV1$", None, 33, None)


def failed_listing(windows_like, mode: str, timeout: float = 30) -> tuple[str, float]:
    """List a scripted server that misbehaves as ``mode`` says; return the error message
    without its target, and the seconds the listing took."""
    t, _rpc = windows_like(mode)
    start = time.monotonic()
    with pytest.raises(RemoteError) as err:
        list_sessions(t, ADMIN_PASSWORD, timeout=timeout)
    message = str(err.value)
    assert message.startswith(f"{t.raw}: ")
    return message[len(t.raw) + 2:], time.monotonic() - start


def test_more_data_without_progress_stops_at_once(windows_like) -> None:
    message, took = failed_listing(windows_like, "stuck")
    assert took < 10
    assert message == "the server says there are more sessions but does not move on"


@pytest.mark.parametrize(("bound", "value", "reason"), [
    ("MAX_PAGES", 40, "the server's session list did not end within 40 pages"),
    ("MAX_ENTRIES", 25, "the server listed more than 25 sessions"),
    ("MAX_BYTES", 600, "the server sent more than 600 bytes of session list"),
])
def test_an_endless_list_stops_at_each_bound(windows_like, monkeypatch: pytest.MonkeyPatch,
                                             bound: str, value: int, reason: str) -> None:
    monkeypatch.setattr(srvs_module, bound, value)
    t, rpc = windows_like("endless")
    with pytest.raises(RemoteError) as err:
        list_sessions(t, ADMIN_PASSWORD, timeout=30)
    assert str(err.value) == f"{t.raw}: {reason}"
    if bound == "MAX_PAGES":
        assert len(rpc.levels) == 40


def test_an_endless_list_stops_at_the_deadline(windows_like) -> None:
    message, took = failed_listing(windows_like, "endless", timeout=2)
    assert took < 4
    assert message == "no answer within 2 s"


def test_a_short_password_does_not_mask_the_message(windows_like) -> None:
    t, _rpc = windows_like("windows")
    with pytest.raises(RemoteError) as err:
        list_sessions(t, "wrong", timeout=30)
    assert str(err.value) == (
        f"{t.raw}: logon failed: the user name or password is wrong (STATUS_LOGON_FAILURE)")


@pytest.mark.parametrize("mode", ["huge", "garbage"])
def test_an_answer_that_does_not_decode_is_a_target_error(windows_like, mode: str) -> None:
    message, took = failed_listing(windows_like, mode)
    assert took < 10
    assert message.startswith("the server's NetrSessionEnum answer at level ")
    assert "does not decode" in message
