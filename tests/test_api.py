"""The Python API against the real lab server: typed records, filters, one error hierarchy."""

from __future__ import annotations

import pytest

import smbsession
from smbsession import (
    InvalidParameter,
    SessionQuery,
    SmbSession,
    SmbSessionError,
    get_smb_session,
    read_sessions,
)
from smbsession.lab import NETBIOS_NAME, Lab


def test_get_smb_session_returns_typed_frozen_records(lab: Lab, alice_bob: list) -> None:
    alice = alice_bob[0].session_id
    (record,) = get_smb_session(session_id=alice, smb_conf=str(lab.conf_path))
    assert isinstance(record, SmbSession)
    assert record.session_id == alice and isinstance(record.num_opens, int)
    assert record.client_user_name == f"{NETBIOS_NAME}\\labalice"
    assert record.dialect == "3.1.1" and record.smb_instance == "Default"
    with pytest.raises(AttributeError, match="immutable"):
        record.num_opens = 5  # type: ignore[misc]
    as_dict = record.to_dict()
    assert as_dict["SessionId"] == alice and as_dict["ClientUserName"] == record.client_user_name


def test_keyword_filters_match_like_the_command(lab: Lab, alice_bob: list) -> None:
    conf = str(lab.conf_path)
    bob = alice_bob[1].session_id
    by_user = get_smb_session(client_user_name="LabBob", smb_conf=conf)
    assert bob in [s.session_id for s in by_user]
    assert all(s.client_user_name == f"{NETBIOS_NAME}\\labbob" for s in by_user)
    assert get_smb_session(session_id=[bob], client_computer_name=["127.0.0.1"],
                           scope_name="*", cluster_node_name="", smb_conf=conf)[0].session_id == bob
    assert get_smb_session(smb_instance="CSV", smb_conf=conf) == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"smb_instance": "Cluster"}, "smb_instance: 'Cluster'"),
        ({"session_id": -1}, "session_id: -1"),
        ({"session_id": "5"}, "session_id: '5'"),
        ({"session_id": 2**64}, "session_id"),
        ({"client_user_name": 5}, "client_user_name: 5"),
    ],
)
def test_bad_arguments_raise_invalid_parameter(lab: Lab, kwargs: dict, says: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        get_smb_session(smb_conf=str(lab.conf_path), **kwargs)
    # The library names its own (Python) parameter and keeps the value as an attribute;
    # no command-line wording.
    assert str(err.value).startswith(says)
    assert isinstance(err.value, SmbSessionError)
    assert err.value.parameter == next(iter(kwargs))
    assert err.value.value in (*kwargs.values(), 5)
    assert "-" + err.value.parameter.title().replace("_", "") not in str(err.value)


def test_the_errors_form_one_hierarchy() -> None:
    for name in ("InvalidParameter", "AccessDenied", "ServerNotRunning", "ConfigNotFound",
                 "SambaNotInstalled", "SourceError"):
        assert issubclass(getattr(smbsession, name), SmbSessionError), name


def test_session_query_selects_and_reports_what_it_did_not_find(
    lab: Lab, alice_bob: list
) -> None:
    alice, bob = (s.session_id for s in alice_bob)
    sessions = read_sessions(str(lab.conf_path)).sessions
    query = SessionQuery(session_id=(alice, 7), client_user_name="labalice")
    chosen = query.select(sessions)
    assert [s.session_id for s in chosen] == [alice]
    assert query.unmatched(chosen) == [("SessionId", 7)]
    assert bob not in [s.session_id for s in query.select(sessions)]
    assert query.describe() == f"SessionId = {alice} or 7, and ClientUserName = 'labalice'"
