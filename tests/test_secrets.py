"""Secrets out of reach of a traceback, and site text neutralised (issue 13, parts 7 and 8).

For a failure on every path (api3 call, REST call, REST grant by session and by script, REST
refresh, renewal, service mode), the failure's traceback is printed the way pytest
``--showlocals``, rich and crash reporters print it (``traceback.TracebackException(...,
capture_locals=True)``, chained exceptions included) and searched for every secret the local site
issued or accepted (``site.secrets``). A hostile site (a small HTTP server on 127.0.0.1 in this
module) echoes the request in a 403 page and puts escape sequences in its error texts.
"""

from __future__ import annotations

import copy
import http.server
import json
import logging
import os
import pickle
import re
import secrets
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from children import run_sgconnect

import sgconnect
from sgconnect import redaction, service
from sgconnect.connection import create_connection
from sgconnect.credentials import Credential, auth_method_of
from sgconnect.errors import LoginRequiredError, RestError, SgConnectError
from sgconnect.rest import RestSession
from sgconnect.secret import RedactedBytes, RedactedText, Secret, form_body, json_body
from sgconnect.settings import Settings
from sgconnect.sitetext import neutralize
from sgconnect.testing.site import DEMO_SCRIPTS, DEMO_USERS, HumanUserSpec

CHILDREN = Path(__file__).parent / "children"
SCRIPT = "sgconnect_farm"
HOSTILE_NAME = "Mal\x1b[31mlory\nlogin: admin"


def printed(error: BaseException) -> str:
    """The traceback of ``error`` with every frame's locals, chained exceptions included."""
    report = traceback.TracebackException(
        type(error), error, error.__traceback__, capture_locals=True
    )
    return "".join(report.format(chain=True))


def leaked(secrets_seen: set[str], text: str) -> list[str]:
    """The secrets that appear in ``text`` (short ones, 2FA codes, as whole words only)."""
    found = []
    for secret in secrets_seen:
        if len(secret) >= 8:
            if secret in text:
                found.append(secret)
        elif re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text):
            found.append(secret)
    return found


def failure(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as error:  # what a tool's crash reporter would catch
        return error
    raise AssertionError("the call did not fail")


def assert_no_secret_printed(site: Any, error: BaseException, *extra: str) -> str:
    text = printed(error)
    seen = site.secrets | {s for s in extra if s}
    assert seen, "the site issued no secret: the search would prove nothing"
    assert not leaked(seen, text), f"a secret is printed with the locals of:\n{text}"
    return text


def session_credential(site: Any, login: str = "alice") -> Credential:
    return Credential.for_session(site.url, login, site.issue_session(login), source="saved")


def script_credential(site: Any, key: str | None = None) -> Credential:
    return Credential.for_script(
        site.url, SCRIPT, key or site.script_key(SCRIPT), sudo_as_login="alice", source="service"
    )


@pytest.fixture
def site(make_local_site):
    users = DEMO_USERS + (HumanUserSpec("mallory", HOSTILE_NAME, 77),)
    return make_local_site("default", users=users, scripts=DEMO_SCRIPTS)


# -- the test of the test -----------------------------------------------------------------------


def test_the_search_finds_a_secret_held_in_a_local(site):
    token = site.issue_session("alice")

    def holds_it():
        revealed = token  # noqa: F841 (a frame local, as shotgun_api3's payload was)
        raise RuntimeError("boom")

    text = printed(failure(holds_it))
    assert leaked(site.secrets, text) == [token]


# -- api3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_503", "close", "bad_status_line", "truncated", "html"])
def test_api3_call_failures_print_no_secret(site, kind):
    sg = create_connection(session_credential(site), interactive=False)
    sg.find("Project", [], ["name"])  # the token really is sent and accepted
    site.inject_fault(kind, count=5, rpc="read")
    assert_no_secret_printed(site, failure(lambda: sg.find("Project", [], ["name"])))


def test_api3_payload_holds_the_token_as_a_secret_only(site):
    sg = create_connection(session_credential(site), interactive=False)
    payload = sg._build_payload("read", {"type": "Project"})
    assert isinstance(payload["params"][0]["session_token"], Secret)
    body = sg._encode_payload(payload)
    assert isinstance(body, RedactedBytes)
    assert not leaked(site.secrets, repr(payload) + repr(body) + str(body) + f"{body}")
    assert leaked(site.secrets, bytes(body).decode()), "the real body must carry the token"


def test_api3_expired_session_renewal_prints_no_secret(site):
    sg = create_connection(session_credential(site), interactive=False)
    sg.find("Project", [], ["name"])
    site.expire_sessions()
    error = failure(lambda: sg.find("Project", [], ["name"]))
    assert isinstance(error, LoginRequiredError)
    assert_no_secret_printed(site, error)


def test_service_mode_failures_print_no_secret(site, monkeypatch):
    variable = f"SGC_TEST_KEY_{secrets.token_hex(4).upper()}"
    settings = Settings(
        service_script_name=SCRIPT,
        service_key_env=variable,
        service_keyring_name="",
        service_site=site.url,
    )
    monkeypatch.setenv(variable, site.script_key(SCRIPT))
    monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", "alice")
    service.forget_environment_keys()
    try:
        credential = service.service_credential(site.url, settings)
    finally:
        service.forget_environment_keys()
    assert variable not in os.environ
    sg = create_connection(credential, interactive=False)
    assert sg.find_one("Project", [], ["name"])
    site.inject_fault("close", count=5, rpc="read")
    assert_no_secret_printed(site, failure(lambda: sg.find("Project", [])))
    rest = RestSession(credential)
    rest.get("/entity/projects")
    site.inject_fault("http_500", path_prefix="/api/v1/entity")
    assert_no_secret_printed(site, failure(lambda: rest.get("/entity/projects")))


def test_a_wrong_script_key_prints_no_secret(site):
    wrong = secrets.token_urlsafe(24)
    sg = create_connection(script_credential(site, wrong), interactive=False)
    assert_no_secret_printed(site, failure(lambda: sg.find("Project", [])), wrong)
    rest = RestSession(script_credential(site, wrong))
    error = failure(lambda: rest.get("/entity/projects"))
    assert isinstance(error, RestError)
    assert_no_secret_printed(site, error, wrong)


# -- REST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "close", "truncated"])
def test_rest_call_failures_print_no_secret(site, kind):
    rest = RestSession(session_credential(site))
    rest.get("/entity/projects")  # a Bearer is minted and valid
    site.inject_fault(kind, count=5, path_prefix="/api/v1/entity")
    assert_no_secret_printed(site, failure(lambda: rest.get("/entity/projects")))


@pytest.mark.parametrize("make", [session_credential, script_credential], ids=["session", "script"])
@pytest.mark.parametrize("kind", ["http_500", "close", "html"])
def test_rest_grant_failures_print_no_secret(site, make, kind):
    rest = RestSession(make(site))
    site.inject_fault(kind, count=5, path_prefix="/api/v1/auth/access_token")
    assert_no_secret_printed(site, failure(lambda: rest.get("/entity/projects")))


def test_rest_grant_with_an_expired_session_prints_no_secret(site):
    rest = RestSession(session_credential(site))
    site.expire_sessions()
    error = failure(lambda: rest.get("/entity/projects"))
    assert isinstance(error, LoginRequiredError)
    assert_no_secret_printed(site, error)


def test_rest_refresh_failure_prints_no_secret(site):
    rest = RestSession(session_credential(site))
    rest.get("/entity/projects")
    site.expire_rest_tokens()
    site.inject_fault("close", count=5, path_prefix="/api/v1/auth/access_token")
    assert_no_secret_printed(site, failure(lambda: rest.get("/entity/projects")))


# -- a hostile site: echoes, escapes --------------------------------------------------------------

HOSTILE_TITLE = "Forbid\x1b[2J\x1b]0;pwned\x07den\nsgconnect: all good"


class _Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "echo"
    token = ""

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/v1/auth/access_token":
            reply = {"access_token": type(self).token, "token_type": "Bearer", "expires_in": 600}
            return self._answer(200, json.dumps(reply).encode())
        if json.loads(body).get("method_name") == "info":
            return self._answer(200, json.dumps({"results": {"version": [8, 50, 0]}}).encode())
        if type(self).mode == "echo":  # a proxy's "API access blocked" page, request included
            page = b"<html><body>Blocked request:<pre>" + body + b"</pre></body></html>"
            return self._answer(403, page, "text/html")
        fault = {"exception": True, "error_code": 103, "message": HOSTILE_TITLE}
        return self._answer(200, json.dumps(fault).encode())

    def do_GET(self) -> None:
        errors = [
            {
                "status": 403,
                "title": HOSTILE_TITLE,
                "detail": f"you sent {self.headers.get('Authorization')}",
            }
        ]
        self._answer(403, json.dumps({"errors": errors}).encode())


@pytest.fixture
def hostile() -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hostile.token = "hostile-bearer-" + secrets.token_hex(16)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_403_page_echoing_the_request_leaves_no_secret_in_the_context(hostile):
    token = secrets.token_hex(16)
    _Hostile.mode = "echo"
    sg = create_connection(
        Credential.for_session(hostile, "alice", token, source="saved"), interactive=False
    )
    error = failure(lambda: sg.find("Project", []))
    assert isinstance(error, SgConnectError)
    assert error.__context__ is None and error.__cause__ is None
    # The test of the test: the replaced shotgun_api3 error did carry the echoed token.
    replaced = BaseException.__dict__["__context__"].__get__(error)
    assert token in str(replaced)
    assert token not in printed(error) and token not in str(error)


def test_site_fault_messages_are_neutralised(hostile):
    _Hostile.mode = "fault"
    sg = create_connection(
        Credential.for_session(hostile, "alice", secrets.token_hex(16), source="saved"),
        interactive=False,
    )
    error = failure(lambda: sg.find("Project", []))
    assert "\x1b" not in str(error) and "\n" not in str(error) and "\x07" not in str(error)
    assert "Forbidden" in str(error)


def test_rest_error_titles_are_neutralised_and_an_echoed_bearer_redacted(hostile):
    rest = RestSession(Credential.for_session(hostile, "alice", "s" * 32, source="saved"))
    error = failure(lambda: rest.get("/entity/projects"))
    assert isinstance(error, RestError) and error.status == 403
    message = str(error)
    assert "\x1b" not in message and "\n" not in message and "\x07" not in message
    assert "Forbidden sgconnect: all good" in message
    assert _Hostile.token not in message and _Hostile.token not in printed(error)


def test_display_names_are_neutralised(site):
    sgconnect.broker().adopt(session_credential(site, "mallory"))
    user = sgconnect.current_user(site.url)
    info = sgconnect.broker().current_user(site.url, with_name=True)
    assert user.login == "mallory"
    assert info.name == "Mallory login: admin"


def test_neutralize_keeps_text_and_drops_controls():
    assert neutralize("Zoë 日本 ok") == "Zoë 日本 ok"
    assert neutralize("a\x1b[31mb\x1b[0m") == "ab"
    assert neutralize("a\x1b]8;;https://x.invalid\x07link\x1b]8;;\x07") == "alink"
    assert neutralize("x\u202egnp.exe\r\ny\tz\x00") == "xgnp.exe  y z"
    assert neutralize(12) == "12"


# -- the Secret type -----------------------------------------------------------------------------


def test_secret_never_prints_and_compares_safely():
    value = secrets.token_hex(16)
    secret = Secret(value)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, "")):
        assert shown == "[redacted]"
    assert repr({"token": secret}) == "{'token': [redacted]}"
    assert not isinstance(secret, str) and secret.reveal() == value
    assert secret == Secret(value) and secret != Secret(value + "x") and secret != value
    assert hash(secret) == hash(Secret(value)) and len({secret, Secret(value)}) == 1
    assert copy.copy(secret) is secret and copy.deepcopy(secret) is secret
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(secret, protocol)
    with pytest.raises(AttributeError):
        secret._value = "x"
    with pytest.raises(TypeError):
        Secret(b"bytes")
    assert value not in redaction.redact(f"sent {value}")  # registered


def test_bodies_and_headers_send_the_value_and_print_it_redacted():
    value = secrets.token_hex(16)
    body = json_body({"params": [{"session_token": Secret(value)}]})
    assert value in body.decode() and value not in repr(body) and value not in str(body)
    form = form_body({"grant_type": "client_credentials", "client_secret": Secret(value)})
    assert f"client_secret={value}".encode() in form and value not in repr(form)
    header = RedactedText(f"Bearer {value}")
    assert header == f"Bearer {value}" and repr(header) == "'Bearer [redacted]'"
    assert value not in repr({"Authorization": header})


# -- redaction: is_installed() and the new shapes ---------------------------------------------


def test_is_installed_notices_a_replaced_factory():
    redaction.install()
    ours = logging.getLogRecordFactory()
    assert redaction.is_installed()
    try:
        logging.setLogRecordFactory(logging.LogRecord)  # another library, not calling ours
        assert not redaction.is_installed()
        redaction.install()  # the documented fix: a redacting layer on top again
        assert redaction.is_installed()
    finally:
        redaction.uninstall()
        logging.setLogRecordFactory(ours)
        redaction.install()


@pytest.mark.parametrize(
    "text, kept",
    [
        ("Proxy-Authorization: Basic SECRET", "Proxy-Authorization: Basic "),
        ("X-Api-Key: SECRET", "X-Api-Key: "),
        ("x-api-key=SECRET&page=2", "&page=2"),
        ("proxy https://farm:SECRET@proxy.invalid:3128/", "https://farm:"),
        ("SGCONNECT_SCRIPT_KEY=SECRET\nHOME=/home/a", "HOME=/home/a"),
        ("export STUDIO_TOKEN=SECRET", "export STUDIO_TOKEN="),
        ("DB_SECRET=SECRET PATH=/bin", "PATH=/bin"),
        ("SMTP_PASSWORD='SECRET'", "SMTP_PASSWORD='"),
    ],
)
def test_missing_shapes_are_redacted(text, kept):
    value = "v" + secrets.token_hex(10)
    for before in "= :'":
        text = text.replace(before + "SECRET", before + value)
    out = redaction.redact(text)
    assert value not in out and "[redacted]" in out and kept in out


# -- auth_method ----------------------------------------------------------------------------------


def _cookies(*pairs: str) -> str:
    import base64

    jar = "\n".join(f"Set-Cookie: {pair}; Path=/" for pair in pairs)
    return base64.b64encode(jar.encode()).decode()


def test_auth_method_is_decided_from_the_saved_cookies_as_tk_core_does():
    from tank.authentication import user as tk_user
    from tank.authentication import user_impl

    cases = {
        None: "session",
        _cookies("csrf_token_u42=abc", "shotgun_current_user_sso_claims_expiration=1900000000"): (
            "sso"
        ),
        _cookies("csrf_token_u42=abc", "shotgun_sso_session_expiration_u42=1900000000"): "sso",
        _cookies("shotgun_current_session_expiration=1900000000"): "web",
        _cookies("unrelated=1"): "session",
    }
    words = {"ShotgunSamlUser": "sso", "ShotgunWebUser": "web", "ShotgunUser": "session"}
    for metadata, expected in cases.items():
        assert auth_method_of(metadata) == expected
        assert auth_method_of(Secret(metadata) if metadata else None) == expected
        impl = user_impl.SessionUser(
            "http://127.0.0.1:1", "alice", "t" * 32, None, session_metadata=metadata
        )
        made = tk_user.deserialize_user(user_impl.serialize_user(impl, use_json=True))
        assert words[type(made).__name__] == expected, "tk-core decides otherwise"


def test_the_same_session_has_one_auth_method_with_or_without_tk_core_user(site):
    """One process reads the saved session itself (no tk-core user), the next gets tk-core's
    ``ShotgunSamlUser``: both call it ``sso`` (it was ``web`` without the tk-core user)."""
    from tank.authentication import user as tk_user
    from tank.authentication import user_impl

    sso = _cookies("csrf_token_u42=abc", "shotgun_current_user_sso_claims_expiration=1900000000")
    token = site.issue_session("alice")
    saved = Credential.for_session(site.url, "alice", token, source="saved", session_metadata=sso)
    impl = user_impl.SessionUser(site.url, "alice", token, None, session_metadata=sso)
    made = tk_user.deserialize_user(user_impl.serialize_user(impl, use_json=True))
    assert type(made).__name__ == "ShotgunSamlUser"
    through_tk = sgconnect.credentials.credential_for_tk_user(made, source="current_user")
    assert saved.auth_method == through_tk.auth_method == "sso"
    assert saved.info().auth_method == through_tk.info().auth_method == "sso"


@pytest.mark.tkcore
def test_whoami_prints_a_hostile_display_name_on_one_line(site, isolated_shotgun_home):
    from sgconnect.testing import save_session

    save_session(site, "mallory")
    result = run_sgconnect(isolated_shotgun_home, "whoami", "--site", site.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"mallory (Mallory login: admin) on {site.url}\n")
    assert "\x1b" not in result.stdout and "\nlogin: admin" not in result.stdout
    assert not leaked(site.secrets, result.stdout + result.stderr)


@pytest.mark.tkcore
def test_a_failed_console_renewal_prints_no_secret_nor_typed_password(isolated_shotgun_home):
    """tk-core's prompt frames hold the typed passwords; the error that replaces tk-core's
    keeps none of them reachable (a child: tk-core's prompt must not meet a QApplication)."""
    from children import run_child

    result = run_child(
        CHILDREN / "secrets_renewal_locals.py",
        {"SHOTGUN_HOME": str(isolated_shotgun_home), "SGTK_AUTH_ALLOW_NO_HTTPS": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["error"] == "LoginFailedError"
    assert report["frames"] >= 5 and report["secrets"] >= 4
    assert report["leaked"] == []


@pytest.mark.tkcore
def test_a_saved_sso_session_is_sso_in_this_process_and_the_next(site, isolated_shotgun_home):
    """The session saved with SSO cookies, read back by sgconnect itself (no tk-core user) here
    and by ``sgconnect whoami`` in a new process: ``sso`` both times (it was ``web``)."""
    from tank.authentication import session_cache

    sso = _cookies("csrf_token_u42=abc", "shotgun_current_user_sso_claims_expiration=1900000000")
    session_cache.cache_session_data(site.url, "alice", site.issue_session("alice"), sso)
    session_cache.set_current_user(site.url, "alice")
    session_cache.set_current_host(site.url)
    here = sgconnect.current_user(site.url)
    assert (here.source, here.auth_method) == ("saved", "sso")
    result = run_sgconnect(isolated_shotgun_home, "whoami", "--json", "--site", site.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["auth_method"] == "sso"


def test_upload_auth_params_are_text_that_prints_redacted(site):
    sg = create_connection(session_credential(site), interactive=False)
    params = sg._auth_params()  # what shotgun_api3's uploads and form posts add to their form
    token = params["session_token"]
    assert isinstance(token, str) and leaked(site.secrets, str.__str__(token))
    assert not leaked(site.secrets, repr(params))


def test_settings_and_rest_sessions_print_no_proxy_password():
    password = "pw-" + secrets.token_hex(8)
    settings = Settings(http_proxy=f"farm:{password}@proxy.invalid:3128")
    assert password not in repr(settings) and settings.http_proxy.startswith("farm:")
    credential = Credential.for_session("http://127.0.0.1:1", "alice", "t" * 32, source="saved")
    rest = RestSession(credential, http_proxy=settings.http_proxy)
    assert password not in repr(vars(rest))
