"""The facts a real site was recorded to show (issue 12's table), one test per row, on the wire.

Every test talks HTTP to a LocalSite with urllib or the real shotgun_api3, and checks what a
real site answers: statuses, error envelopes, words, shapes.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from typing import Any, Dict, Optional, Tuple

import pytest
import shotgun_api3

from sgconnect.testing import LocalSite

SCRIPT = "sgconnect_farm"


def _call(
    url: str,
    *,
    method: str = "GET",
    data: Optional[bytes] = None,
    content_type: Optional[str] = None,
    opener: Any = None,
) -> Tuple[int, Dict[str, str], Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None and content_type is None:
        request.remove_header("Content-type")  # urllib adds a form type by default
    opener = opener or urllib.request.build_opener()
    try:
        with opener.open(request, timeout=10) as reply:
            raw = reply.read()
            return reply.status, dict(reply.headers.items()), _decoded(reply.headers, raw)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers.items()), _decoded(error.headers, raw)


def _decoded(headers: Any, raw: bytes) -> Any:
    if headers.get_content_type() == "application/json":
        return json.loads(raw)
    return raw.decode("utf-8", "replace")


def _token(site: LocalSite, content_type: Optional[str] = None, **fields: str):
    data = urllib.parse.urlencode(fields).encode()
    ctype = "application/x-www-form-urlencoded" if content_type is None else content_type
    return _call(
        site.url + "/api/v1/auth/access_token",
        method="POST",
        data=data,
        content_type=ctype or None,
    )


def _error(reply: Any) -> Dict[str, Any]:
    (error,) = reply["errors"]
    assert set(error) >= {"id", "status", "code", "title", "detail", "source"}
    return error


def _script_fields(site: LocalSite, **extra: str) -> Dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": SCRIPT,
        "client_secret": site.script_key(SCRIPT),
        **extra,
    }


def _payload(jwt: str) -> Dict[str, Any]:
    header, payload, signature = jwt.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert signature
    return json.loads(base64.urlsafe_b64decode(payload + "=="))


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


# ------------------------------------------------------------------ POST /api/v1/auth/access_token


def test_bad_client_secret_is_400_naming_the_script(site):
    status, _, reply = _token(site, **_script_fields(site, client_secret="wrong"))
    assert status == 400
    assert _error(reply)["detail"] == f"Can't authenticate script '{SCRIPT}'"


@pytest.mark.parametrize(
    "fields",
    [
        {"grant_type": "client_credentials", "client_id": SCRIPT},
        {"grant_type": "client_credentials"},
        {"grant_type": "password"},
        {"grant_type": "session_token"},
    ],
    ids=["no-secret", "client-no-args", "password-no-args", "session-no-args"],
)
def test_missing_arguments_are_400(site, fields):
    status, _, reply = _token(site, **fields)
    assert status == 400
    assert _error(reply)["detail"] == "Missing or invalid authentication arguments"


@pytest.mark.parametrize("expired", [False, True], ids=["unknown", "expired"])
def test_session_token_grant_refused_names_the_last_four(site, expired):
    token = site.issue_session("alice") if expired else "0123456789abcdef0123456789abwxyz"
    if expired:
        site.expire_sessions()
    status, _, reply = _token(site, grant_type="session_token", session_token=token)
    assert status == 400
    assert _error(reply)["detail"] == f"Can't authenticate session token ending with '{token[-4:]}'"


def test_unknown_refresh_token_is_401_unauthorized(site):
    status, _, reply = _token(site, grant_type="refresh_token", refresh_token="not-a-refresh-token")
    assert status == 401
    assert _error(reply)["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "grant", ["authorization_code", "implicit", "device_code", "client_credential", None]
)
def test_unsupported_grant_type_is_400_code_103(site, grant):
    fields = {"grant_type": grant} if grant else {"client_id": SCRIPT}
    status, _, reply = _token(site, **fields)
    error = _error(reply)
    assert (status, error["code"], error["title"]) == (400, 103, "Unsupported grant_type")


@pytest.mark.parametrize("target", ["nobody", "retired.person"])
def test_sudo_to_an_unknown_or_retired_user_is_400_code_102(site, target):
    status, _, reply = _token(site, **_script_fields(site, scope=f"sudo_as_login:{target}"))
    error = _error(reply)
    assert (status, error["code"]) == (400, 102)
    assert error["detail"] == f"Cannot 'sudo' - unknown or retired user: '{target}'"


def test_sudo_to_an_inactive_or_protected_user_is_400_code_102(site):
    site.update_user("carol", sg_status_list="dis")
    status, _, reply = _token(site, **_script_fields(site, scope="sudo_as_login:carol"))
    error = _error(reply)
    assert (status, error["code"], error["detail"]) == (
        400,
        102,
        "Cannot 'sudo' - inactive user account",
    )
    site.update_user("alice", can_impersonate_this_user=False)
    status, _, reply = _token(site, **_script_fields(site, scope="sudo_as_login:alice"))
    assert (status, _error(reply)["code"]) == (400, 102)
    status, _, _ = _token(site, **_script_fields(site, scope="sudo_as_login:bob"))
    assert status == 200  # an active user who may be impersonated


def test_sudo_as_login_as_a_plain_body_field_is_silently_ignored(site):
    status, _, reply = _token(site, **_script_fields(site, sudo_as_login="carol"))
    assert status == 200
    assert _payload(reply["access_token"])["sudo_as_login"] is None


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "APPLICATION/X-WWW-FORM-URLENCODED;charset=utf-8",
        "",
    ],
    ids=["form", "form-latin1", "form-upper", "none"],
)
def test_any_form_type_or_none_is_accepted(site, content_type):
    status, _, reply = _token(site, content_type=content_type, **_script_fields(site))
    assert status == 200, reply


def test_text_plain_is_415_naming_the_accepted_type(site):
    status, _, reply = _token(site, content_type="text/plain", **_script_fields(site))
    assert status == 415
    assert "application/x-www-form-urlencoded" in _error(reply)["detail"]


def test_json_token_request_is_refused(site):
    status, _, reply = _call(
        site.url + "/api/v1/auth/access_token",
        method="POST",
        data=json.dumps(_script_fields(site)).encode(),
        content_type="application/json",
    )
    assert status == 400 and reply["errors"]
    assert site.mint_count == 0


def test_access_token_is_a_jwt_with_the_real_claims(site):
    status, _, reply = _token(site, **_script_fields(site, scope="sudo_as_login:carol"))
    assert status == 200 and reply["expires_in"] == 600 and reply["token_type"] == "Bearer"
    claims = _payload(reply["access_token"])
    assert set(claims) >= {
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
        "user",
        "sudo_as_login",
        "auth_type",
        "session_uuid",
    }
    assert claims["user"] == {"type": "ApiUser", "id": 101}
    assert (claims["sudo_as_login"], claims["auth_type"]) == ("carol", "api_key")
    assert claims["exp"] - claims["iat"] == 600
    session = site.issue_session("alice")
    _, _, reply = _token(site, grant_type="session_token", session_token=session)
    claims = _payload(reply["access_token"])
    assert claims["user"] == {"type": "HumanUser", "id": 42}
    assert (claims["auth_type"], claims["sudo_as_login"]) == ("session_token", None)
    assert claims["session_uuid"]


def test_minting_from_a_session_does_not_consume_it_and_writes_its_expiry_at_most_every_5_min(
    site,
):
    token = site.issue_session("alice")
    session = site.state.sessions[token]
    session.written_at -= 301  # the expiry was last written more than 5 minutes ago
    session.expires_at = time.time() + 10
    assert _token(site, grant_type="session_token", session_token=token)[0] == 200
    extended = session.expires_at
    assert extended >= time.time() + site.session_lifetime - 5  # moved to now + its window
    session.expires_at = time.time() + 10  # within 5 minutes of that write: not written again
    assert _token(site, grant_type="session_token", session_token=token)[0] == 200
    assert session.expires_at < time.time() + 11
    sg = shotgun_api3.Shotgun(site.url, session_token=token)
    assert sg.find_one("HumanUser", [["login", "is", "alice"]])  # not consumed


# ------------------------------------------------------------------ /api/v1 root and versions


def test_api_root_without_a_token(site):
    status, _, reply = _call(site.url + "/api/v1")
    data = reply["data"]
    assert status == 200
    assert data["api_version"] == "1.0"
    assert data["shotgun_version"].startswith("v") and "(build " in data["shotgun_version"]
    assert set(data) >= {
        "site_id",
        "site_name",
        "os",
        "user_authentication_method",
        "unified_login_flow_enabled",
        "authentication_app_session_launcher_enabled",
    }


def test_api_v1_1_is_the_same_api_and_other_versions_are_404(site):
    status, _, reply = _call(site.url + "/api/v1.1")
    assert status == 200 and reply["data"]["api_version"] == "1.1"
    status, _, reply = _token(site, **_script_fields(site))
    status, _, reply = _call(
        site.url + "/api/v1.1/auth/access_token",
        method="POST",
        data=urllib.parse.urlencode(_script_fields(site)).encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 200 and reply["access_token"]
    for other in ("/api/v2", "/api/v1.2", "/api/v2/entity/projects"):
        status, _, reply = _call(site.url + other)
        assert (status, _error(reply)["code"]) == (404, 103), other


# ------------------------------------------------------------------ /internal_api/session


def _browser() -> Any:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def _sign_in(site: LocalSite, browser: Any, login: str, start: str) -> Any:
    """Open ``start`` in ``browser``; sign in at the identity provider; return the last page."""
    page = browser.open(start, timeout=10)
    assert page.geturl().startswith(site.idp_url + "/login")
    return_to = urllib.parse.parse_qs(urllib.parse.urlparse(page.geturl()).query)["return_to"][0]
    form = urllib.parse.urlencode(
        {"return_to": return_to, "login": login, "password": site.password(login)}
    ).encode()
    return browser.open(site.idp_url + "/login", data=form, timeout=10)


def test_internal_api_session_with_and_without_the_cookie(site):
    status, _, reply = _call(site.url + "/internal_api/session")
    assert (status, reply) == (401, {"message": "Unauthorized"})
    browser = _browser()
    _sign_in(site, browser, "alice", site.url + "/auth/renew").read()
    status, _, reply = _call(site.url + "/internal_api/session", opener=browser)
    assert status == 200 and reply["expired"] is False
    assert set(reply["app"]) >= {"createdAt", "expiresAt"} and reply["expiresAt"]
    time.sleep(1.1)  # expiresAt has a one-second resolution
    status, _, extended = _call(
        site.url + "/internal_api/session", method="POST", data=b"", opener=browser
    )
    assert status == 200 and extended["expiresAt"] > reply["expiresAt"]


# ------------------------------------------------------------------ the app session launcher


def _create(site: LocalSite, data: bytes, content_type: str):
    return _call(
        site.url + "/internal_api/app_session_request",
        method="POST",
        data=data,
        content_type=content_type,
    )


def test_app_session_request_needs_both_params_as_form_or_json(site):
    form = "application/x-www-form-urlencoded"
    assert _create(site, b"", form)[1:][1] == {"message": "Missing params: appName, machineId"}
    status, _, reply = _create(site, b"appName=tests", form)
    assert (status, reply) == (400, {"message": "Missing params: machineId"})
    for data, ctype in (
        (b"appName=tests&machineId=box", form),
        (json.dumps({"appName": "tests", "machineId": "box"}).encode(), "application/json"),
    ):
        status, _, reply = _create(site, data, ctype)
        request_id = reply["sessionRequestId"]
        assert status == 200
        assert reply["url"] == f"{site.url}/app_session_request/{request_id}?sticky_id={request_id}"


def test_app_session_page_without_a_cookie_sends_the_person_to_sign_in_and_back():
    with LocalSite(approval_sign_in="redirect") as site:
        _approval_redirect(site)


def test_app_session_page_redirect_is_the_default(site):
    _approval_redirect(site)


def test_app_session_page_option_page_answers_a_401_page_linking_to_the_web_login():
    """``approval_sign_in="page"``: this emulator's older answer, kept as an option."""
    with LocalSite(approval_sign_in="page") as site:
        form = "application/x-www-form-urlencoded"
        _, _, reply = _create(site, b"appName=tests&machineId=box", form)
        status, headers, page = _call(reply["url"])
        assert (status, headers["Content-Type"].split(";")[0]) == (401, "text/html")
        assert f"id='signin' href='{site.url}/auth/renew'" in page


def _approval_redirect(site: LocalSite) -> None:
    _, _, reply = _create(site, b"appName=tests&machineId=box", "application/x-www-form-urlencoded")
    request_id = reply["sessionRequestId"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    status, headers, _ = _call(reply["url"], opener=urllib.request.build_opener(NoRedirect))
    assert status == 302
    assert headers["Location"] == (
        f"{site.url}/user/login?return_path=%2Fapp_session_request%2F{request_id}"
    )
    page = _sign_in(site, _browser(), "carol", reply["url"])
    assert page.geturl() == f"{site.url}/app_session_request/{request_id}"
    html = page.read().decode()
    assert "id='approve'" in html and "carol" in html


@pytest.mark.parametrize("mode", ["default", "oxygen"])
def test_app_session_poll_pending_once_then_404(mode):
    with LocalSite(mode) as site:
        _, _, reply = _create(
            site, b"appName=tests&machineId=box", "application/x-www-form-urlencoded"
        )
        poll = f"{site.url}/internal_api/app_session_request/{reply['sessionRequestId']}"
        assert _call(poll, method="PUT")[::2] == (200, {"approved": False})
        site.approve_app_session(reply["sessionRequestId"], "alice")
        status, _, approved = _call(poll, method="PUT")
        assert status == 200 and approved["approved"] is True and approved["sessionToken"]
        assert approved["userLogin"] == ("alice@example.com" if mode == "oxygen" else "alice")
        assert _call(poll, method="PUT")[::2] == (404, {"message": "Not Found"})
        unknown = f"{site.url}/internal_api/app_session_request/unknown"
        assert _call(unknown, method="PUT")[::2] == (404, {"message": "Not Found"})
        _, _, denied = _create(
            site, b"appName=tests&machineId=box", "application/x-www-form-urlencoded"
        )
        site.deny_app_session(denied["sessionRequestId"])
        poll = f"{site.url}/internal_api/app_session_request/{denied['sessionRequestId']}"
        assert _call(poll, method="PUT")[::2] == (404, {"message": "Not Found"})


def test_app_session_request_forgotten_after_its_lifetime():
    with LocalSite(app_session_request_lifetime=0) as site:
        _, _, reply = _create(
            site, b"appName=tests&machineId=box", "application/x-www-form-urlencoded"
        )
        poll = f"{site.url}/internal_api/app_session_request/{reply['sessionRequestId']}"
        assert _call(poll, method="PUT")[::2] == (404, {"message": "Not Found"})


def test_get_on_the_app_session_endpoints_is_a_json_api_404(site):
    for path in ("/internal_api/app_session_request", "/internal_api/app_session_request/x"):
        status, _, reply = _call(site.url + path)
        assert (status, _error(reply)["code"]) == (404, 103)


# ------------------------------------------------------------------ api3


def test_api3_info_full_version_is_four_ints(site):
    info = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice")).info()
    assert len(info["full_version"]) == 4
    assert all(isinstance(part, int) for part in info["full_version"])


def test_api3_info_may_say_ldap():
    with LocalSite("ldap") as site:
        sg = shotgun_api3.Shotgun(site.url, login="alice", password=site.password("alice"))
        assert sg.info()["user_authentication_method"] == "ldap"
        assert sg.find_one("HumanUser", [["login", "is", "alice"]])


@pytest.mark.parametrize("how", ["session", "password"])
def test_api3_human_user_with_sudo_as_login_is_a_permission_fault(site, how):
    if how == "session":
        sg = shotgun_api3.Shotgun(
            site.url, session_token=site.issue_session("alice"), sudo_as_login="carol"
        )
    else:
        sg = shotgun_api3.Shotgun(
            site.url, login="alice", password=site.password("alice"), sudo_as_login="carol"
        )
    with pytest.raises(shotgun_api3.Fault) as caught:
        sg.find("Project", [])
    assert not isinstance(caught.value, shotgun_api3.AuthenticationFault)
    assert str(caught.value).startswith("The user does not have permission to 'sudo':")


def test_api3_saml2_expired_session_is_102_before_the_claims(make_local_site):
    site = make_local_site("saml2")
    expired = site.issue_session("alice")
    site.expire_sessions()  # session and claims both over
    with pytest.raises(shotgun_api3.AuthenticationFault):
        shotgun_api3.Shotgun(site.url, session_token=expired).find("Project", [])
    assert site.journal[-1].error_code == 102
    live = site.issue_session("alice")
    site.expire_claims()  # a live session whose claims expired: the 302
    with pytest.raises(Exception) as caught:  # noqa: B017 - shotgun_api3 sees a redirect
        shotgun_api3.Shotgun(site.url, session_token=live).find("Project", [])
    assert not isinstance(caught.value, shotgun_api3.AuthenticationFault)
    assert site.journal[-1].status == 302
