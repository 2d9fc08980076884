"""Every decision sgconnect makes from a status or an error code, through the public entry
points (``sgconnect.connect`` and ``sgconnect.rest_session``) against the faithful statuses of
LocalSite (docs/local-site-contract.md, "Facts recorded on a real site"):

- a refused session token on the REST grant is 400 with code 102 (not a 401): the product renews
  the session (a session another process saved), or says ``LoginRequiredError`` without a prompt;
- an unknown refresh token is 401 "Unauthorized": the product falls back to a fresh grant;
- a refused sudo target is 400 code 102 on REST (a ``RestError`` naming the person and the sudo
  login to check) and a 102 AuthenticationFault on api3 (``ServiceAuthenticationError``), once,
  with no renewal and no retry loop; api3's "The user does not have
  permission to 'sudo':" Fault (code 104) is not taken for an expired session;
- on a ``saml2`` site an expired session is 102 before the claims (not the claims 302): the
  product renews, or says ``LoginRequiredError``; a live session whose claims lapsed (the 302)
  is renewed the same way.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
import shotgun_api3

import sgconnect
from sgconnect.errors import LoginRequiredError, RestError
from sgconnect.testing import save_session

pytestmark = pytest.mark.tkcore

SCRIPT = "sgconnect_farm"
TOKEN_PATH = "/api/v1/auth/access_token"


def _grants(site: Any) -> list:
    return [(e.auth, e.status) for e in site.journal if e.path == TOKEN_PATH]


def _calls(site: Any) -> list:
    return [
        (e.method, e.status)
        for e in site.journal
        if e.path.startswith("/api/v1/entity/") and e.path != TOKEN_PATH
    ]


def _reads(site: Any) -> list:
    return [(e.login, e.sudo, e.status, e.error_code) for e in site.journal if e.rpc == "read"]


def _service(monkeypatch: Any, site: Any, sudo: Optional[str]) -> None:
    monkeypatch.setenv("SGCONNECT_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")
    monkeypatch.setenv("SGCONNECT_SERVICE_SCRIPT_NAME", SCRIPT)
    monkeypatch.setenv("SGCONNECT_SERVICE_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_SCRIPT_KEY", site.script_key(SCRIPT))
    monkeypatch.setenv("SGCONNECT_JOB", "1")
    if sudo:
        monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", sudo)


# -- REST: a refused session token (400, code 102) -------------------------------------------------


def test_rest_session_token_refused_with_400_102_adopts_the_session_another_process_saved(
    local_site,
):
    save_session(local_site, "alice")
    rest = sgconnect.rest_session("decisions", site=local_site.url, interactive=False)
    rest.get("/entity/projects")
    local_site.expire_sessions()
    local_site.expire_rest_tokens()
    local_site.state.refresh_tokens.clear()  # nothing to refresh: a fresh grant is needed
    fresh = save_session(local_site, "alice")  # SG Desktop logged in again meanwhile
    local_site.clear_journal()

    assert rest.get("/entity/projects")["data"]

    assert _grants(local_site) == [
        ("bearer", 401),  # the refresh token the site forgot
        ("session", 400),  # the expired session: 400 code 102, as a real site
        ("session", 200),  # the session tk-core's cache now holds
    ]
    assert _calls(local_site) == [("GET", 401), ("GET", 200)]
    assert fresh in local_site.secrets


def test_rest_session_token_refused_non_interactive_is_login_required(local_site):
    save_session(local_site, "alice")
    rest = sgconnect.rest_session("decisions", site=local_site.url, interactive=False)
    rest.get("/entity/projects")
    local_site.expire_sessions()
    local_site.expire_rest_tokens()
    local_site.state.refresh_tokens.clear()
    local_site.clear_journal()

    with pytest.raises(LoginRequiredError) as caught:
        rest.get("/entity/projects")

    assert f"sgconnect login --site {local_site.url}" in str(caught.value)
    assert _grants(local_site) == [("bearer", 401), ("session", 400)]  # one refusal, no loop


# -- REST: an unknown refresh token (401 "Unauthorized") -------------------------------------------


def test_rest_refresh_token_refused_with_401_falls_back_to_a_fresh_grant(local_site):
    save_session(local_site, "alice")
    rest = sgconnect.rest_session("decisions", site=local_site.url, interactive=False)
    rest.get("/entity/projects")
    local_site.expire_rest_tokens()
    local_site.state.refresh_tokens.clear()  # the site forgot every refresh token
    local_site.clear_journal()

    assert rest.get("/entity/projects")["data"]

    assert _grants(local_site) == [("bearer", 401), ("session", 200)]
    assert _calls(local_site) == [("GET", 401), ("GET", 200)]


# -- sudo refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, change, words",
    [
        ("nobody_here", None, "unknown, retired or not impersonable"),
        ("bob", {"sg_status_list": "dis"}, "inactive"),
        ("carol", {"can_impersonate_this_user": False}, "unknown, retired or not impersonable"),
    ],
)
def test_rest_sudo_refused_with_400_102_is_a_typed_error_without_renewal(
    local_site, monkeypatch, target, change, words
):
    if change:
        local_site.update_user(target, **change)
    _service(monkeypatch, local_site, target)

    with pytest.raises(RestError) as caught:
        sgconnect.rest_session("render").get("/entity/projects")

    assert _grants(local_site) == [("script", 400)]  # one refusal: a script is not renewed
    assert caught.value.status == 400 and caught.value.errors[0]["code"] == 102
    assert f"refused a REST token for {target}" in str(caught.value)
    assert "sudo login" in str(caught.value)  # the advice names what to check
    assert not any(secret in str(caught.value) for secret in local_site.secrets)


# api3's refusal of a sudo target (a 102 AuthenticationFault, once, as ServiceAuthenticationError
# naming the person): tests/test_identity.py::test_unknown_or_inactive_sudo_target_is_a_typed_error.


def test_api3_human_sudo_fault_is_not_taken_for_an_expired_session(local_site):
    save_session(local_site, "alice")
    sg = sgconnect.connect("decisions", site=local_site.url, interactive=False)
    assert sg.find_one("Project", [])
    sg.config.sudo_as_login = "bob"  # a person may not sudo (a real site: Fault, code 104)
    local_site.clear_journal()

    with pytest.raises(shotgun_api3.Fault) as caught:
        sg.find_one("Project", [])

    assert str(caught.value).startswith("The user does not have permission to 'sudo':")
    assert not isinstance(caught.value, shotgun_api3.AuthenticationFault)
    assert _reads(local_site) == [("alice", "bob", 200, 104)]  # once: the session was not renewed
    assert not [e for e in local_site.journal if e.auth == "password"]


# -- saml2: an expired session is 102 before the claims --------------------------------------------


def test_saml2_expired_session_is_102_then_login_required(make_local_site):
    site = make_local_site("saml2")
    save_session(site, "alice")
    sg = sgconnect.connect("decisions", site=site.url, interactive=False)
    assert sg.find_one("Project", [])
    site.expire_sessions()  # the session and its claims are over
    site.clear_journal()

    with pytest.raises(LoginRequiredError) as caught:
        sg.find_one("Project", [])

    assert f"sgconnect login --site {site.url}" in str(caught.value)
    assert [(e.status, e.error_code) for e in site.journal if e.rpc == "read"] == [(200, 102)]


@pytest.mark.parametrize("expire", ["expire_sessions", "expire_claims"])
def test_saml2_expired_session_or_claims_adopts_the_session_another_process_saved(
    make_local_site, expire
):
    site = make_local_site("saml2")
    save_session(site, "alice")
    sg = sgconnect.connect("decisions", site=site.url, interactive=False)
    assert sg.find_one("Project", [])
    getattr(site, expire)()
    save_session(site, "alice")  # SG Desktop signed in again meanwhile
    site.clear_journal()

    assert sg.find_one("Project", [])

    first = (200, 102) if expire == "expire_sessions" else (302, None)  # 102 before the claims
    statuses = [(e.status, e.error_code) for e in site.journal if e.path == "/api3/json"]
    assert statuses[0] == first and statuses[-1] == (200, None), statuses
