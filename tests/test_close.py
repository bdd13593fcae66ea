"""Close-SmbSession's library API against the real lab: exactly the chosen sessions go."""

from __future__ import annotations

import os
import subprocess

import pytest

import smbsession
from conftest import as_user, smbprotocol_sessions, wait_for
from smbsession import (
    ConfirmationRequired,
    SessionNotFound,
    SessionQuery,
    close_smb_session,
)
from smbsession.lab import Lab
from smbsession.lab.clients import open_file


def live_ids(lab: Lab) -> set[int]:
    return {s.session_id for s in smbsession.read_sessions(str(lab.conf_path)).sessions}


def write_file(session, name: str) -> None:
    """Create and write a file through ``session`` (a new tree connect and open)."""
    from smbprotocol.tree import TreeConnect

    tree = TreeConnect(session, r"\\127.0.0.1\share")
    tree.connect()
    handle = open_file(tree, name)
    handle.write(b"still here\n", 0)
    handle.close()


def test_close_one_of_two_sessions_on_one_connection(any_lab: Lab) -> None:
    with smbprotocol_sessions(any_lab, ["labalice", "labbob"]) as (alice, bob):
        results = close_smb_session(SessionQuery(session_id=(alice.session_id,)),
                                    smb_conf=str(any_lab.conf_path), force=True)
        assert [(r.session.session_id, r.closed, r.message) for r in results] == [
            (alice.session_id, True, "closed")]
        ids = live_ids(any_lab)
        assert alice.session_id not in ids and bob.session_id in ids
        write_file(bob, "bob-after-close.txt")
    assert (any_lab.share_path / "bob-after-close.txt").read_text() == "still here\n"


def test_closing_releases_open_files(lab: Lab) -> None:
    from smbprotocol.exceptions import SMBException
    from smbprotocol.tree import TreeConnect

    files = {"labalice": ["locked.txt"]}
    with smbprotocol_sessions(lab, ["labalice"], files=files) as (alice,), \
            smbprotocol_sessions(lab, ["labbob"]) as (bob,):
        tree = TreeConnect(bob, r"\\127.0.0.1\share")
        tree.connect()
        with pytest.raises(SMBException):
            open_file(tree, "locked.txt", write=False, share=False, create=False)
        close_smb_session(SessionQuery(session_id=(alice.session_id,)),
                          smb_conf=str(lab.conf_path), force=True)
        open_file(tree, "locked.txt", write=False, share=False, create=False).close()


def test_what_if_closes_nothing(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        results = close_smb_session(SessionQuery(session_id=(carol.session_id,)),
                                    smb_conf=str(lab.conf_path), what_if=True)
        assert [(r.closed, r.message) for r in results] == [(False, "what if")]
        assert carol.session_id in live_ids(lab)


def test_without_force_or_confirmation_nothing_is_closed(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labcarol"]) as (carol,):
        with pytest.raises(ConfirmationRequired, match="nothing was closed"):
            close_smb_session(SessionQuery(session_id=(carol.session_id,)),
                              smb_conf=str(lab.conf_path))
        assert carol.session_id in live_ids(lab)


def test_confirmation_answers(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob", "labcarol"]) as sessions:
        ids = tuple(s.session_id for s in sessions)
        asked: list[int] = []
        answers = iter(["no", "all"])

        def confirm(session: smbsession.SmbSession) -> str:
            asked.append(session.session_id)
            return next(answers)

        results = close_smb_session(SessionQuery(session_id=ids), smb_conf=str(lab.conf_path),
                                    confirm=confirm)
        order = [r.session.session_id for r in results]
        assert asked == order[:2]  # "yes to all" stops the questions
        assert [r.closed for r in results] == [False, True, True]
        left = live_ids(lab)
        assert order[0] in left and order[1] not in left and order[2] not in left


def test_smb1_session_closes_alone(lab: Lab) -> None:
    from impacket.smb import SMB_DIALECT
    from impacket.smbconnection import SessionError, SMBConnection

    user = lab.user("labcarol")
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=lab.port,
                         preferredDialect=SMB_DIALECT)
    conn.login(user.name, user.password, "LAB")
    mine = wait_for(lambda: [s for s in smbsession.read_sessions(str(lab.conf_path)).sessions
                             if s.dialect == "1.50"])
    assert len(mine) == 1
    results = close_smb_session(SessionQuery(session_id=(mine[0].session_id,)),
                                smb_conf=str(lab.conf_path), force=True)
    assert results[0].closed and mine[0].session_id not in live_ids(lab)
    with pytest.raises(SessionError):  # the client's session is gone: its next request fails
        conn.connectTree("share")


def test_close_connection_takes_the_neighbours_along(lab: Lab) -> None:
    with smbprotocol_sessions(lab, ["labalice", "labbob"]) as (alice, bob):
        with pytest.raises(ConfirmationRequired, match="needs force"):
            close_smb_session(SessionQuery(session_id=(alice.session_id,)),
                              smb_conf=str(lab.conf_path), close_connection=True,
                              confirm=lambda s: "yes")
        results = close_smb_session(SessionQuery(session_id=(alice.session_id,)),
                                    smb_conf=str(lab.conf_path), force=True,
                                    close_connection=True)
        assert results[0].closed and "2 session(s)" in results[0].message
        ids = live_ids(lab)
        assert alice.session_id not in ids and bob.session_id not in ids


def test_a_query_that_matches_nothing(lab: Lab) -> None:
    with pytest.raises(SessionNotFound, match="SessionId = 7") as err:
        close_smb_session(SessionQuery(session_id=(7,)), smb_conf=str(lab.conf_path),
                          force=True)
    assert err.value.unmatched == (("SessionId", 7),)


def test_not_root_is_refused(lab: Lab) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    script = (
        "import smbsession, sys\n"
        "try:\n"
        f"    smbsession.close_smb_session(smbsession.SessionQuery(session_id=(1,)), "
        f"smb_conf={str(lab.conf_path)!r}, force=True)\n"
        "except smbsession.AccessDenied as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    cmd, env = as_user("nobody", "-c", script)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd="/")
    assert out.returncode == 3, out.stderr
    assert "root" in out.stdout and "sudo" in out.stdout
