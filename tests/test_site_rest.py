"""The local site's REST surface: token grants, Bearer use, expiry, and the web-login pages."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from typing import Any, Dict, Optional, Tuple

import pytest


def _call(
    url: str,
    *,
    method: str = "GET",
    form: Optional[Dict[str, str]] = None,
    body: Any = None,
    token: Optional[str] = None,
) -> Tuple[int, Any]:
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.headers.get_content_type() == "application/json"
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        assert error.headers.get_content_type() == "application/json"
        return error.code, json.loads(error.read())


def _mint(site, **form: str) -> Tuple[int, Any]:
    return _call(site.url + "/api/v1/auth/access_token", method="POST", form=form)


def _assert_token_reply(site, reply: Dict[str, Any]) -> None:
    assert reply["token_type"] == "Bearer"
    assert reply["expires_in"] == site.rest_token_lifetime
    header, payload, signature = reply["access_token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT"
    assert signature
    assert {reply["access_token"], reply["refresh_token"]} <= site.secrets


def test_password_grant_then_projects(local_site):
    status, reply = _mint(
        local_site, grant_type="password", username="alice", password=local_site.password("alice")
    )
    assert status == 200, reply
    _assert_token_reply(local_site, reply)
    assert local_site.mint_count == 1
    status, projects = _call(
        local_site.url + "/api/v1/entity/projects", token=reply["access_token"]
    )
    assert status == 200
    assert [p["attributes"]["name"] for p in projects["data"]][0] == "Big Buck Bunny"
    first = projects["data"][0]
    assert set(first) >= {"type", "attributes", "relationships", "id", "links"}
    assert projects["links"]["self"]
    entry = local_site.journal[-1]
    assert (entry.auth, entry.login, entry.status) == ("bearer", "alice", 200)


def test_bad_password_and_unknown_grant(local_site):
    status, reply = _mint(local_site, grant_type="password", username="alice", password="nope")
    assert status == 401
    assert set(reply["errors"][0]) >= {"status", "code", "title"}
    status, reply = _mint(local_site, grant_type="magic")
    assert status == 400 and reply["errors"]
    assert local_site.mint_count == 0


def test_password_grant_refused_on_sso(make_local_site):
    site = make_local_site("saml2")
    status, reply = _mint(
        site, grant_type="password", username="alice", password=site.password("alice")
    )
    assert status >= 400 and reply["errors"][0]["code"] == 108


def test_secrets_in_the_query_are_refused(local_site):
    query = urllib.parse.urlencode(
        {"grant_type": "session_token", "session_token": local_site.issue_session("carol")}
    )
    status, reply = _call(
        f"{local_site.url}/api/v1/auth/access_token?{query}", method="POST", form={}
    )
    assert status == 400 and reply["errors"][0]["code"] == 103
    assert local_site.mint_count == 0


def test_client_credentials_with_sudo(local_site):
    status, reply = _mint(
        local_site,
        grant_type="client_credentials",
        client_id="sgconnect_farm",
        client_secret=local_site.script_key("sgconnect_farm"),
        scope="sudo_as_login:carol",
    )
    assert status == 200, reply
    _call(local_site.url + "/api/v1/entity/projects", token=reply["access_token"])
    entry = local_site.journal[-1]
    assert (entry.auth, entry.login, entry.sudo) == ("bearer", "sgconnect_farm", "carol")

    status, reply = _mint(
        local_site,
        grant_type="client_credentials",
        client_id="sgconnect_farm",
        client_secret="wrong",
    )
    assert status == 400


def test_session_token_grant_does_not_use_up_the_session_and_extends_it(make_local_site):
    import shotgun_api3

    site = make_local_site(session_lifetime=60)
    token = site.issue_session("alice")
    before = site.state.sessions[token].expires_at
    for _ in range(2):
        status, reply = _mint(site, grant_type="session_token", session_token=token)
        assert status == 200, reply
    assert site.mint_count == 2
    assert site.state.sessions[token].expires_at >= before
    sg = shotgun_api3.Shotgun(site.url, session_token=token)
    assert len(sg.find("Project", [])) == 3

    site.expire_sessions()
    status, reply = _mint(site, grant_type="session_token", session_token=token)
    assert status == 400 and reply["errors"][0]["code"] == 102


def test_refresh_token_grant(local_site):
    _, first = _mint(
        local_site, grant_type="password", username="carol", password=local_site.password("carol")
    )
    status, second = _mint(
        local_site, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert status == 200, second
    assert second["access_token"] != first["access_token"]
    assert local_site.mint_count == 2
    status, reply = _mint(local_site, grant_type="refresh_token", refresh_token="nope")
    assert status == 401 and reply["errors"]


def test_bearer_token_expires_then_401(local_site):
    _, reply = _mint(
        local_site, grant_type="password", username="alice", password=local_site.password("alice")
    )
    url = local_site.url + "/api/v1/entity/projects"
    assert _call(url, token=reply["access_token"])[0] == 200
    local_site.expire_rest_tokens()
    status, error = _call(url, token=reply["access_token"])
    assert status == 401
    assert error["errors"][0]["status"] == 401
    assert _call(url)[0] == 401
    assert _call(url, token="not.a.token")[0] == 401
    # The refresh token still mints.
    status, _ = _mint(local_site, grant_type="refresh_token", refresh_token=reply["refresh_token"])
    assert status == 200


def test_rest_token_lifetime_zero_expires_at_once(make_local_site):
    site = make_local_site(rest_token_lifetime=0)
    _, reply = _mint(site, grant_type="password", username="alice", password=site.password("alice"))
    assert reply["expires_in"] == 0
    assert _call(site.url + "/api/v1/entity/projects", token=reply["access_token"])[0] == 401


def test_api_root_and_paging(make_local_site):
    site = make_local_site("oxygen", unified_login_flow=True, projects=[f"P{n}" for n in range(5)])
    status, root = _call(site.url + "/api/v1")
    assert status == 200
    assert root["data"]["user_authentication_method"] == "oxygen"
    assert root["data"]["unified_login_flow_enabled"] is True

    _, reply = _mint(site, grant_type="session_token", session_token=site.issue_session("alice"))
    token = reply["access_token"]
    names = []
    url: Optional[str] = site.url + "/api/v1/entity/projects?page[size]=2"
    while url:
        status, page = _call(url, token=token)
        assert status == 200
        names += [p["attributes"]["name"] for p in page["data"]]
        url = site.url + page["links"]["next"] if page["links"].get("next") else None
    assert names == [f"P{n}" for n in range(5)]


def test_create_and_get_a_project(local_site):
    _, reply = _mint(
        local_site, grant_type="password", username="alice", password=local_site.password("alice")
    )
    token = reply["access_token"]
    base = local_site.url + "/api/v1/entity/projects"
    status, created = _call(base, method="POST", body={"name": "Spring"}, token=token)
    assert status == 201
    project_id = created["data"]["id"]
    status, fetched = _call(f"{base}/{project_id}", token=token)
    assert status == 200 and fetched["data"]["attributes"]["name"] == "Spring"
    assert _call(f"{base}/99999", token=token)[0] == 404
    assert "Spring" in local_site.projects


# ------------------------------------------------------------------ web login & app session pages


def _browser() -> urllib.request.OpenerDirector:
    """A tiny cookie-keeping browser (urllib follows the GET redirects)."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def _web_login(site, browser, login: str) -> str:
    """Log in through /auth/renew and the identity provider's form; returns the landing URL."""
    with browser.open(f"{site.url}/auth/renew?product=tests&email={login}", timeout=10) as page:
        assert page.geturl().startswith(site.idp_url + "/login")
        html = page.read().decode()
    for element_id in ('id="login"', 'id="password"', 'id="submit"'):
        assert element_id.replace('"', "'") in html
    return_to = urllib.parse.parse_qs(urllib.parse.urlparse(page.geturl()).query)["return_to"][0]
    form = urllib.parse.urlencode(
        {"return_to": return_to, "login": login, "password": site.password(login)}
    ).encode()
    with browser.open(site.idp_url + "/login", data=form, timeout=10) as landing:
        assert landing.status == 200
        return landing.geturl()


def _cookies(browser) -> Dict[str, str]:
    jar = next(h for h in browser.handlers if isinstance(h, urllib.request.HTTPCookieProcessor))
    return {c.name: c.value for c in jar.cookiejar}


@pytest.mark.parametrize(
    "mode,expiration_cookie",
    [
        ("saml2", "shotgun_current_user_sso_claims_expiration"),
        ("oxygen", "shotgun_current_session_expiration"),
    ],
)
def test_web_login_sets_the_cookies_tk_core_reads(make_local_site, mode, expiration_cookie):
    import shotgun_api3

    site = make_local_site(mode)
    browser = _browser()
    assert _web_login(site, browser, "alice") == site.url + "/auth/landing"
    cookies = _cookies(browser)
    assert cookies["shotgun_current_user_login"] == "alice"
    assert "csrf_token_u42" in cookies
    assert int(cookies[expiration_cookie]) > 0
    first_session = cookies["_session_id"]
    sg = shotgun_api3.Shotgun(site.url, session_token=first_session)
    assert len(sg.find("Project", [])) == 3

    # Renewal: the IdP session is still good, so no form, and a NEW _session_id.
    with browser.open(f"{site.url}/auth/renew?product=tests", timeout=10) as page:
        assert page.geturl() == site.url + "/auth/landing"
    assert _cookies(browser)["_session_id"] != first_session
    # The same through the SAML entry point.
    with browser.open(f"{site.url}/saml/saml_login_request", timeout=10) as page:
        assert page.geturl() == site.url + "/auth/landing"


def test_wrong_password_at_the_idp_shows_the_form_again(make_local_site):
    site = make_local_site("saml2")
    browser = _browser()
    with browser.open(f"{site.url}/auth/renew", timeout=10) as page:
        return_to = urllib.parse.parse_qs(urllib.parse.urlparse(page.geturl()).query)["return_to"]
    form = urllib.parse.urlencode(
        {"return_to": return_to[0], "login": "alice", "password": "wrong"}
    ).encode()
    with pytest.raises(urllib.error.HTTPError) as caught:
        browser.open(site.idp_url + "/login", data=form, timeout=10)
    assert caught.value.code == 401
    assert "_session_id" not in _cookies(browser)


def test_app_session_request_approved_in_a_browser(local_site):
    status, created = _call(
        local_site.url + "/internal_api/app_session_request",
        method="POST",
        form={"appName": "tests", "machineId": "box"},
    )
    assert status == 200
    request_id = created["sessionRequestId"]
    assert local_site.pending_app_session_requests() == [request_id]
    poll = f"{local_site.url}/internal_api/app_session_request/{request_id}"
    assert _call(poll, method="PUT") == (200, {"approved": False})

    browser = _browser()
    _web_login(local_site, browser, "carol")
    with browser.open(created["url"], timeout=10) as page:
        assert "id='approve'" in page.read().decode()
    with browser.open(created["url"], data=b"decision=approve", timeout=10) as page:
        assert page.status == 200
    status, reply = _call(poll, method="PUT")
    assert status == 200 and reply["approved"] is True and reply["userLogin"] == "carol"
    assert reply["sessionToken"] in local_site.secrets
    assert _call(poll, method="PUT")[0] == 404  # delivered once


def test_app_session_request_denied_expired_or_disabled(make_local_site):
    site = make_local_site()
    create = site.url + "/internal_api/app_session_request"
    _, created = _call(create, method="POST", form={"appName": "t", "machineId": "m"})
    site.deny_app_session(created["sessionRequestId"])
    status, reply = _call(f"{create}/{created['sessionRequestId']}", method="PUT")
    assert status == 404
    assert _call(f"{create}/unknown", method="PUT")[0] == 404

    short = make_local_site(app_session_request_lifetime=0)
    _, created = _call(
        short.url + "/internal_api/app_session_request",
        method="POST",
        form={"appName": "t", "machineId": "m"},
    )
    poll = f"{short.url}/internal_api/app_session_request/{created['sessionRequestId']}"
    assert _call(poll, method="PUT")[0] == 404

    off = make_local_site(app_session_launcher=False)
    status, reply = _call(
        off.url + "/internal_api/app_session_request",
        method="POST",
        form={"appName": "t", "machineId": "m"},
    )
    assert status == 403 and isinstance(reply, dict)
