"""The local site's api3 JSON-RPC surface, driven by the real shotgun_api3."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
import shotgun_api3
from shotgun_api3.shotgun import UserCredentialsNotAllowedForOxygenAuthenticationFault

from sgconnect.testing import HumanUserSpec, LocalSite, ScriptSpec


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.headers.get_content_type(), json.loads(reply.read())


def test_info_needs_no_auth_and_matches_the_mode(make_local_site):
    site = make_local_site("saml2", app_session_launcher=False, unified_login_flow=True)
    info = shotgun_api3.Shotgun(site.url, session_token="unused", connect=False).info()
    assert info["version"] == [8, 50, 0]
    assert all(isinstance(part, int) for part in info["version"])
    assert info["user_authentication_method"] == "saml2"
    assert info["unified_login_flow_enabled"] is True
    assert info["authentication_app_session_launcher_enabled"] is False
    assert site.journal[-1].rpc == "info"
    assert site.journal[-1].auth == "none"


def test_password_login_then_find_projects(local_site):
    sg = shotgun_api3.Shotgun(local_site.url, login="alice", password=local_site.password("alice"))
    names = [p["name"] for p in sg.find("Project", [], ["name"])]
    assert names == ["Big Buck Bunny", "Sintel", "Tears of Steel"]
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name", "tank_name"])
    assert project == {"type": "Project", "id": project["id"], "name": "Sintel", "tank_name": None}
    assert (
        sg.find("Project", [["name", "is_not", "Sintel"]], ["name"])[0]["name"] == "Big Buck Bunny"
    )
    assert len(sg.find("Project", [["name", "in", ["Sintel", "Tears of Steel"]]])) == 2
    user = sg.find_one("HumanUser", [["login", "is", "alice"]], ["login", "name"])
    assert user == {"type": "HumanUser", "id": 42, "login": "alice", "name": "Alice Anders"}
    reads = [e for e in local_site.journal if e.rpc == "read"]
    assert reads and all(e.auth == "password" and e.login == "alice" for e in reads)


def test_wrong_password_is_an_authentication_fault(local_site):
    sg = shotgun_api3.Shotgun(local_site.url, login="alice", password="not-it", connect=False)
    with pytest.raises(shotgun_api3.AuthenticationFault):
        sg.find("Project", [])
    assert local_site.journal[-1].error_code == 102


def test_password_refused_on_sso_and_oxygen(make_local_site):
    saml = make_local_site("saml2")
    sg = shotgun_api3.Shotgun(
        saml.url, login="alice", password=saml.password("alice"), connect=False
    )
    with pytest.raises(shotgun_api3.UserCredentialsNotAllowedForSSOAuthenticationFault):
        sg.find("Project", [])
    assert saml.journal[-1].error_code == 108

    oxygen = make_local_site("oxygen")
    sg = shotgun_api3.Shotgun(
        oxygen.url, login="alice", password=oxygen.password("alice"), connect=False
    )
    with pytest.raises(UserCredentialsNotAllowedForOxygenAuthenticationFault):
        sg.find("Project", [])
    assert oxygen.journal[-1].error_code == 110


def test_two_factor_login(local_site):
    password = local_site.password("bob")
    sg = shotgun_api3.Shotgun(local_site.url, login="bob", password=password, connect=False)
    with pytest.raises(shotgun_api3.MissingTwoFactorAuthenticationFault):
        sg.get_session_token()
    assert local_site.journal[-1].error_code == 106

    code = local_site.two_factor_code("bob")
    # Given a code, the client swaps the password for a session at construction.
    sg = shotgun_api3.Shotgun(local_site.url, login="bob", password=password, auth_token=code)
    assert sg.config.session_token in local_site.secrets
    assert [p["name"] for p in sg.find("Project", [], ["name"])][0] == "Big Buck Bunny"
    assert local_site.journal[-1].auth == "session" and local_site.journal[-1].login == "bob"
    # A code is good once.
    assert local_site.two_factor_code("bob") != code
    with pytest.raises(shotgun_api3.AuthenticationFault):
        shotgun_api3.Shotgun(local_site.url, login="bob", password=password, auth_token=code)


def test_script_key_with_sudo_as_login(local_site):
    key = local_site.script_key("sgconnect_farm")
    sg = shotgun_api3.Shotgun(
        local_site.url, script_name="sgconnect_farm", api_key=key, sudo_as_login="carol"
    )
    assert len(sg.find("Project", [], ["name"])) == 3
    entry = local_site.journal[-1]
    assert (entry.auth, entry.login, entry.sudo, entry.rpc) == (
        "script",
        "sgconnect_farm",
        "carol",
        "read",
    )
    api_user = sg.find_one("ApiUser", [["firstname", "is", "sgconnect_farm"]], ["firstname"])
    assert api_user["id"] == 101

    # A session token from a script key.
    token = shotgun_api3.Shotgun(local_site.url, script_name="sgconnect_farm", api_key=key)
    assert token.get_session_token() in local_site.secrets

    unknown = shotgun_api3.Shotgun(
        local_site.url, script_name="sgconnect_farm", api_key=key, sudo_as_login="mallory"
    )
    with pytest.raises(shotgun_api3.Fault):
        unknown.find("Project", [])
    bad_key = shotgun_api3.Shotgun(local_site.url, script_name="sgconnect_farm", api_key="nope")
    with pytest.raises(shotgun_api3.AuthenticationFault):
        bad_key.find("Project", [])


def test_product_extra_auth_param_is_accepted(local_site):
    sg = shotgun_api3.Shotgun(local_site.url, session_token=local_site.issue_session("alice"))
    sg.config.extra_auth_params = {"product": "sgconnect tests"}
    assert len(sg.find("Project", [])) == 3


def test_expired_session_token_is_an_authentication_fault(local_site):
    sg = shotgun_api3.Shotgun(local_site.url, session_token=local_site.issue_session("alice"))
    assert len(sg.find("Project", [])) == 3
    local_site.expire_sessions()
    with pytest.raises(shotgun_api3.AuthenticationFault):
        sg.find("Project", [])
    assert local_site.journal[-1].error_code == 102


def test_session_lifetime_is_honoured(make_local_site):
    site = make_local_site(session_lifetime=0)
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    with pytest.raises(shotgun_api3.AuthenticationFault):
        sg.find("Project", [])


def test_saml_claims_expiry_is_a_302_to_the_saml_login_request(make_local_site):
    site = make_local_site("saml2")
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    assert len(sg.find("Project", [])) == 3
    site.expire_claims()
    with pytest.raises(shotgun_api3.ProtocolError) as caught:
        sg.find("Project", [])
    assert caught.value.errcode == 302
    assert caught.value.headers["location"].endswith("/saml/saml_login_request")
    assert site.journal[-1].status == 302


def test_paging_over_several_pages(make_local_site):
    names = [f"Project {n:03d}" for n in range(23)]
    site = make_local_site(projects=names, api_max_entities_per_page=5)
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    found = sg.find("Project", [], ["name"])
    assert [p["name"] for p in found] == names
    assert sum(1 for e in site.journal if e.rpc == "read") == 5
    # An explicit page, and a limit.
    assert [p["name"] for p in sg.find("Project", [], ["name"], limit=2, page=3)] == names[4:6]
    assert len(sg.find("Project", [], ["name"], limit=7)) == 7


def test_bad_requests_get_faults_and_the_server_keeps_serving(local_site):
    url = local_site.url + "/api3/json"
    for body in (
        b"{not json",
        b"[]",
        b'{"method_name": 3}',
        b'{"method_name": "read", "params": 4}',
    ):
        status, content_type, reply = _post(url, body)
        assert status == 200 and content_type == "application/json"
        assert reply["exception"] is True and reply["error_code"] not in (102, 106, 108, 110)
    status, _, reply = _post(url, json.dumps({"method_name": "no_such", "params": [{}]}).encode())
    assert reply["exception"] is True

    sg = shotgun_api3.Shotgun(local_site.url, session_token=local_site.issue_session("alice"))
    with pytest.raises(shotgun_api3.Fault):
        sg._call_rpc("no_such_method", {})
    with pytest.raises(shotgun_api3.Fault):
        sg.find("NoSuchEntityType", [])
    with pytest.raises(shotgun_api3.Fault):
        sg.find("Project", [["name", "weird_relation", "x"]])
    assert len(sg.find("Project", [])) == 3
    status, _, reply = _post(local_site.url + "/api3/track_metrics/", b"{}")
    assert status == 200


def test_many_threads_at_once(local_site):
    token = local_site.issue_session("alice")
    errors: list = []

    def work() -> None:
        try:
            sg = shotgun_api3.Shotgun(local_site.url, session_token=token)
            assert len(sg.find("Project", [])) == 3
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(1 for e in local_site.journal if e.rpc == "read") == 200


def test_custom_population_and_random_secrets():
    users = [HumanUserSpec("dave", "Dave Dunn", 7, password="fixed-password")]
    with LocalSite(users=users, scripts=[ScriptSpec("bot")], projects=["Only"]) as one:
        with LocalSite() as two:
            assert one.password("dave") == "fixed-password"
            assert "fixed-password" in one.secrets
            assert one.script_key("bot") in one.secrets
            assert two.password("alice") != LocalSite().password("alice")
            assert one.url != two.url and one.idp_url != one.url
            sg = shotgun_api3.Shotgun(one.url, login="dave", password="fixed-password")
            assert [p["name"] for p in sg.find("Project", [], ["name"])] == ["Only"]
            assert "fixed-password" not in repr(one.users)
    with pytest.raises(ValueError):
        LocalSite(mode="kerberos")


def test_stop_shuts_the_server_down():
    site = LocalSite().start()
    url = site.url
    site.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/api/v1", timeout=2)
