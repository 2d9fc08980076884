"""REST sessions (sgconnect.rest) against the local site, over real HTTP.

Every grant the chain can use, the shared single-flight token, 401 and expiry handling, session
renewal, refusal of foreign URLs, paging, transport (proxy, CA bundle, failures) and no leak.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sgconnect
from sgconnect import rest
from sgconnect.credentials import Credential
from sgconnect.errors import (
    InvalidSiteError,
    LoginRequiredError,
    ProxyError,
    RestError,
    SgConnectError,
    SiteResponseError,
    SiteUnreachableError,
)
from sgconnect.rest import RestSession
from sgconnect.testing import save_session

SCRIPT = "sgconnect_farm"


def session_credential(site: Any, login: str = "alice", token: str | None = None) -> Credential:
    """What the chain makes of a saved session."""
    return Credential.for_session(
        site.url, login, token or site.issue_session(login), source="saved"
    )


def script_credential(site: Any, sudo: str | None = "alice") -> Credential:
    return Credential.for_script(site.url, SCRIPT, site.script_key(SCRIPT), sudo_as_login=sudo)


def token_requests(site: Any) -> list:
    return [e for e in site.journal if e.path == "/api/v1/auth/access_token"]


def api_requests(site: Any) -> list:
    return [e for e in site.journal if e.auth == "bearer" and e.path != "/api/v1/auth/access_token"]


def project_names(reply: Any) -> list[str]:
    return [item["attributes"]["name"] for item in reply["data"]]


# -- grants --------------------------------------------------------------------------------------


def test_session_token_grant_mints_once_and_calls_as_the_user(local_site):
    session = RestSession(session_credential(local_site))

    assert project_names(session.get("/entity/projects")) == local_site.projects
    assert session.get("entity/projects")["data"]  # the leading slash is optional
    assert session.get("/")["data"]["user_authentication_method"] == "default"

    [mint] = token_requests(local_site)
    assert (mint.auth, mint.login, mint.status) == ("session", "alice", 200)
    calls = api_requests(local_site)
    assert [(e.login, e.sudo, e.status) for e in calls] == [("alice", None, 200)] * 2
    assert local_site.mint_count == 1


@pytest.mark.parametrize("sudo", ["alice", None])
def test_client_credentials_grant_acts_as_the_script_with_sudo(local_site, sudo):
    session = RestSession(script_credential(local_site, sudo))

    assert session.get("/entity/projects")["data"]

    [mint] = token_requests(local_site)
    assert (mint.auth, mint.login, mint.sudo, mint.status) == ("script", SCRIPT, sudo, 200)
    [call] = api_requests(local_site)
    assert (call.login, call.sudo, call.status) == (SCRIPT, sudo, 200)
    assert repr(session) == f"<RestSession {sudo or SCRIPT!r} on {local_site.url}>"


def test_wrong_script_key_is_a_rest_error_with_the_payload(local_site):
    credential = Credential.for_script(local_site.url, SCRIPT, secrets.token_hex(20))

    with pytest.raises(RestError) as caught:
        RestSession(credential).get("/entity/projects")

    assert caught.value.status == 400  # a real site: 400 "Can't authenticate script '<name>'"
    assert caught.value.errors and caught.value.errors[0]["code"] == 102
    assert SCRIPT in str(caught.value) and local_site.url in str(caught.value)
    assert api_requests(local_site) == []  # no call went out without a token


def test_expired_token_is_replaced_with_the_refresh_grant_before_any_401(make_local_site):
    site = make_local_site("default", rest_token_lifetime=1)
    session = RestSession(session_credential(site))
    session.get("/entity/projects")

    time.sleep(1.0)  # past the token's life: the client replaces it at 90 % of it
    session.get("/entity/projects")

    assert [(e.auth, e.status) for e in token_requests(site)] == [
        ("session", 200),
        ("bearer", 200),  # the refresh_token grant
    ]
    assert [e.status for e in api_requests(site)] == [200, 200]
    assert site.mint_count == 2


def test_401_remints_once_and_retries(local_site):
    session = RestSession(session_credential(local_site))
    session.get("/entity/projects")

    local_site.expire_rest_tokens()
    assert session.get("/entity/projects")["data"]

    assert [e.status for e in api_requests(local_site)] == [200, 401, 200]
    assert local_site.mint_count == 2


def test_spent_refresh_token_falls_back_to_a_fresh_mint(local_site):
    credential = session_credential(local_site)
    session = RestSession(credential)
    session.get("/entity/projects")
    # An access and a refresh token the site never issued: a 401, then a refused refresh grant.
    credential.rest_tokens.store(
        {"access_token": secrets.token_urlsafe(32), "refresh_token": secrets.token_urlsafe(32)}
    )
    local_site.expire_rest_tokens()

    assert session.get("/entity/projects")["data"]

    assert [(e.auth, e.status) for e in token_requests(local_site)] == [
        ("session", 200),
        ("bearer", 401),  # the refresh grant, refused (a real site: 401 "Unauthorized")
        ("session", 200),
    ]


# -- one token per credential, one mint per lifetime -------------------------------------------


def _hammer(credential: Credential, threads: int, requests: int) -> list[Any]:
    """``requests`` GETs spread over ``threads`` threads, each with its own RestSession."""
    barrier = threading.Barrier(threads)
    results: list[Any] = []
    lock = threading.Lock()
    share, extra = divmod(requests, threads)

    def worker(count: int) -> None:
        session = RestSession(credential)
        barrier.wait()
        for _ in range(count):
            try:
                outcome: Any = len(session.get("/entity/projects")["data"])
            except Exception as exc:  # collected and asserted below
                outcome = exc
            with lock:
                results.append(outcome)

    pool = [
        threading.Thread(target=worker, args=(share + (1 if i < extra else 0),))
        for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return results


def test_200_requests_over_8_threads_mint_once_per_token_lifetime(local_site):
    credential = session_credential(local_site)

    first = _hammer(credential, threads=8, requests=100)
    assert first == [3] * 100
    assert local_site.mint_count == 1

    local_site.expire_rest_tokens()  # the token's lifetime is over
    second = _hammer(credential, threads=8, requests=100)
    assert second == [3] * 100
    assert local_site.mint_count == 2


def test_sessions_of_different_credentials_do_not_share_a_token(local_site):
    RestSession(session_credential(local_site, "alice")).get("/entity/projects")
    RestSession(session_credential(local_site, "carol")).get("/entity/projects")

    assert [e.login for e in api_requests(local_site)] == ["alice", "carol"]
    assert local_site.mint_count == 2


# -- session renewal ---------------------------------------------------------------------------


def test_expired_session_non_interactive_is_login_required(local_site):
    token = local_site.issue_session("alice")
    RestSession(session_credential(local_site, token=token)).get("/entity/projects")
    local_site.expire_sessions()
    local_site.expire_rest_tokens()

    # A new process starting from the same (now expired) saved session.
    later = RestSession(session_credential(local_site, token=token), interactive=False)
    with pytest.raises(LoginRequiredError) as caught:
        later.get("/entity/projects")

    assert caught.value.site == local_site.url
    assert "sgconnect login --site " + local_site.url in str(caught.value)
    assert local_site.mint_count == 1


@pytest.mark.tkcore
def test_expired_session_adopts_the_session_another_process_saved(local_site):
    token = local_site.issue_session("alice")
    RestSession(session_credential(local_site, token=token)).get("/entity/projects")
    local_site.expire_sessions()
    local_site.expire_rest_tokens()
    from tank.authentication import session_cache

    session_cache.cache_session_data(local_site.url, "alice", local_site.issue_session("alice"))

    credential = session_credential(local_site, token=token)
    assert RestSession(credential, interactive=False).get("/entity/projects")["data"]

    assert [(e.auth, e.status) for e in token_requests(local_site)] == [
        ("session", 200),
        ("session", 400),  # the expired session (a real site: 400, code 102)
        ("session", 200),  # the one tk-core's cache held
    ]
    assert local_site.mint_count == 2
    assert credential.renewals == 0  # adopted, not prompted


# -- the public entry point (chain + hook) ---------------------------------------------------------


@pytest.mark.tkcore
def test_rest_session_through_the_public_entry_point(local_site, fresh_sgconnect):
    save_session(local_site, "alice")

    session = sgconnect.rest_session("rest test", site=local_site.url, interactive=False)
    assert isinstance(session, RestSession)
    assert project_names(session.get("/entity/projects")) == local_site.projects
    assert sgconnect.rest_session("rest test", site=local_site.url) is session

    other: list[Any] = []

    def in_a_thread() -> None:
        handed = sgconnect.rest_session("rest test", site=local_site.url, interactive=False)
        other.append((handed, handed.get("/entity/projects")["data"][0]["type"]))

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(timeout=30)

    assert other and other[0][0] is not session and other[0][1] == "Project"
    assert [(e.login, e.status) for e in api_requests(local_site)] == [("alice", 200)] * 2
    assert local_site.mint_count == 1  # the two threads' sessions share the credential's token


# -- from a hook ---------------------------------------------------------------------------------

STUDIO_HOOK = """
import sgtk

HookBaseClass = sgtk.get_hook_baseclass()


class StudioConnection(HookBaseClass):
    def create_rest_session(self, credential, purpose, interactive):
        rest = super().create_rest_session(credential, purpose, interactive)
        rest.add_header("X-Studio-Tool", purpose)
        if purpose.startswith("report"):
            rest.forbid_writes("reporting tools only read")
        return rest
"""


@pytest.mark.tkcore
def test_a_studio_hook_makes_read_only_sessions(local_site, fresh_sgconnect, tmp_path, monkeypatch):
    hook_file = tmp_path / "studio_connection.py"
    hook_file.write_text(STUDIO_HOOK)
    monkeypatch.setenv(sgconnect.HOOK_VARIABLE, str(hook_file))
    save_session(local_site, "alice")

    report = sgconnect.rest_session("report: assets", site=local_site.url, interactive=False)
    assert report.get("/entity/projects")["data"]
    for write in (
        lambda: report.post("/entity/projects", json={"name": "Nope"}),
        lambda: report.patch("/entity/projects/1", json={"name": "Nope"}),
        lambda: report.delete("/entity/projects/1"),
    ):
        with pytest.raises(sgconnect.SiteForbiddenError, match="reporting tools only read"):
            write()
    publish = sgconnect.rest_session("publish", site=local_site.url, interactive=False)
    assert publish.post("/entity/projects", json={"name": "Yes"})["data"]["id"]

    assert [e.method for e in api_requests(local_site)] == ["GET", "POST"]


def test_added_headers_go_with_calls_only(stub_site):
    stub_site.routes["/api/v1/entity/things"] = lambda h: h._answer(
        200, b'{"data": []}', "application/json"
    )
    session = _stub_session(stub_site.url)
    session.add_header("X-Studio-Tool", "asset report")
    for name in ("Authorization", "proxy-authorization", "Host", "Cookie", "bad name", ""):
        with pytest.raises(ValueError):
            session.add_header(name, "x")
    with pytest.raises(ValueError):
        session.add_header("X-Other", "two\r\nlines")

    assert session.get("/entity/things") == {"data": []}
    assert stub_site.tool_headers == ["asset report"]


# -- paths: the token goes nowhere else ----------------------------------------------------------


def foreign_forms(site: Any, foreign: Any) -> list[str]:
    own_port = site.url.rsplit(":", 1)[1]
    foreign_port = foreign.url.rsplit(":", 1)[1]
    return [
        foreign.url + "/api/v1/entity/projects",
        f"//127.0.0.1:{foreign_port}/api/v1/entity/projects",
        f"https://127.0.0.1:{own_port}/api/v1/entity/projects",  # other scheme
        f"http://127.0.0.1:{foreign_port}/api/v1",
        "http://evil.example/api/v1/entity/projects",
        f"http://alice@127.0.0.1:{own_port}/api/v1/entity/projects",
        f"http://alice:pw@127.0.0.1:{foreign_port}/api/v1/entity/projects",
        f"alice@127.0.0.1:{foreign_port}/api/v1/entity/projects",
        f"127.0.0.1:{foreign_port}/api/v1/entity/projects",
        f"\\\\127.0.0.1:{foreign_port}/api/v1/entity/projects",
        site.url + "/api3/json",
        "/entity/../../../api3/json",
        "/entity/%2e%2e/%2E%2E/auth/renew",
        "/entity/projects%2f..%2f..%2fapi3",
        "javascript:alert(1)",
        "/entity/projects\r\nHost: evil.example",
    ]


def test_foreign_urls_are_refused_before_any_request(make_local_site):
    site = make_local_site("default")
    foreign = make_local_site("default")
    session = RestSession(session_credential(site))
    calls: list[Callable[[str], Any]] = [
        session.get,
        lambda path: session.post(path, json={"name": "x"}),
        lambda path: session.patch(path, json={"name": "x"}),
        session.delete,
        session.iter_pages,  # refused when called, not when iterated
    ]

    for path in foreign_forms(site, foreign):
        for call in calls:
            with pytest.raises(InvalidSiteError) as caught:
                call(path)
            assert site.url in str(caught.value)
            assert "evil" not in str(caught.value) and foreign.url not in str(caught.value)

    assert site.journal == [] and foreign.journal == []
    assert site.mint_count == foreign.mint_count == 0


def test_same_origin_links_are_accepted():
    site = "http://127.0.0.1:8000"
    for path, expected in [
        ("/entity/projects", "/api/v1/entity/projects"),
        ("entity/projects", "/api/v1/entity/projects"),
        ("/api/v1/entity/projects?page[number]=2", "/api/v1/entity/projects?page[number]=2"),
        ("http://127.0.0.1:8000/api/v1/entity/projects", "/api/v1/entity/projects"),
        ("HTTP://127.0.0.1:8000/api/v1", "/api/v1"),
        ("", "/api/v1"),
        (
            "/entity/projects?filter[email]=a@b.example",
            "/api/v1/entity/projects?filter[email]=a@b.example",
        ),
    ]:
        assert rest.resolve_url(site, path) == site + expected
    assert rest.resolve_url("https://s.example", "https://s.example:443/api/v1/x") == (
        "https://s.example/api/v1/x"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="/.:@%2eE\\?#ahpst1 ", max_size=30))
def test_resolved_urls_never_leave_the_api_root(path):
    site = "http://127.0.0.1:8000"
    try:
        url = rest.resolve_url(site, path)
    except InvalidSiteError:
        return
    parsed = urllib.parse.urlsplit(url)
    assert (parsed.scheme, parsed.netloc) == ("http", "127.0.0.1:8000")
    assert parsed.path == "/api/v1" or parsed.path.startswith("/api/v1/")
    assert ".." not in urllib.parse.unquote(parsed.path).split("/")


# -- calls, paging, errors ---------------------------------------------------------------------


def test_iter_pages_follows_links_next(make_local_site):
    names = [f"Project {i}" for i in range(5)]
    site = make_local_site("default", projects=names)
    session = RestSession(session_credential(site))

    items = list(session.iter_pages("/entity/projects", params={"page[size]": 2}))

    assert [item["attributes"]["name"] for item in items] == names
    assert [e.path for e in api_requests(site)] == ["/api/v1/entity/projects"] * 3


def test_post_returns_json_and_errors_carry_the_rest_payload(local_site):
    session = RestSession(session_credential(local_site))

    created = session.post("/entity/projects", json={"name": "Elephants Dream"})
    assert created["data"]["attributes"]["name"] == "Elephants Dream"
    assert session.get(f"/entity/projects/{created['data']['id']}")["data"]["id"]

    with pytest.raises(RestError) as missing:
        session.get("/entity/nonsense")
    assert missing.value.status == 404
    assert missing.value.errors[0]["title"] == "Not found"
    assert "GET /api/v1/entity/nonsense" in str(missing.value)
    assert local_site.url in str(missing.value)

    with pytest.raises(RestError) as refused:
        session.post("/entity/human_users", json={"name": "x"})
    assert refused.value.status == 403 and refused.value.errors[0]["code"]

    for call in (session.delete, lambda p: session.patch(p, json={"name": "y"})):
        with pytest.raises(RestError) as not_allowed:
            call("/entity/projects/1")
        assert not_allowed.value.status == 405 and not_allowed.value.errors
    assert local_site.mint_count == 1


class _StubHandler(http.server.BaseHTTPRequestHandler):
    """A site that mints tokens, then answers oddly: HTML, redirects, foreign links."""

    routes: dict[str, Callable[[Any], None]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = {
            "access_token": secrets.token_urlsafe(24),
            "expires_in": 600,
            "token_type": "Bearer",
        }
        self._answer(200, json.dumps(reply).encode(), "application/json")

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.server.tool_headers.append(self.headers.get("X-Studio-Tool"))  # type: ignore[attr-defined]
        self.server.routes[self.path](self)  # type: ignore[attr-defined]


def _start_stub(tls: tuple[str, str] | None = None) -> Any:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.routes = {}  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    server.tool_headers = []  # type: ignore[attr-defined]
    server.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def make_stub_site() -> Iterator[Callable[..., Any]]:
    servers: list[Any] = []

    def factory(tls: tuple[str, str] | None = None) -> Any:
        servers.append(_start_stub(tls))
        return servers[-1]

    yield factory
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub_site(make_stub_site) -> Any:
    return make_stub_site()


def _stub_session(url: str, **kwargs: Any) -> RestSession:
    return RestSession(
        Credential.for_session(url, "alice", secrets.token_hex(16), source="saved"), **kwargs
    )


def test_non_json_reply_is_a_site_response_error(stub_site):
    stub_site.routes["/api/v1/page"] = lambda h: h._answer(200, b"<html>login</html>", "text/html")

    with pytest.raises(SiteResponseError) as caught:
        _stub_session(stub_site.url).get("/page")

    assert caught.value.status == 200
    assert "text/html" in str(caught.value) and stub_site.url in str(caught.value)


def test_redirects_are_not_followed(stub_site, local_site):
    target = local_site.url + "/api/v1/entity/projects"
    stub_site.routes["/api/v1/moved"] = lambda h: h._answer(302, b"", "text/plain", Location=target)

    with pytest.raises(SiteResponseError) as caught:
        _stub_session(stub_site.url).get("/moved")

    assert caught.value.status == 302 and "redirect" in str(caught.value)
    assert local_site.journal == []


def test_a_foreign_links_next_is_refused(stub_site, local_site):
    page = {"data": [{"id": 1}], "links": {"next": local_site.url + "/api/v1/entity/projects"}}
    stub_site.routes["/api/v1/entity/things"] = lambda h: h._answer(
        200, json.dumps(page).encode(), "application/json"
    )

    items = _stub_session(stub_site.url).iter_pages("/entity/things")
    assert next(items) == {"id": 1}
    with pytest.raises(InvalidSiteError):
        next(items)

    assert local_site.journal == []


def test_unreachable_and_timeout_are_site_unreachable_errors():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(SiteUnreachableError) as refused:
        _stub_session(closed_url).get("/entity/projects")
    assert closed_url in str(refused.value)

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(SiteUnreachableError) as waited:
            _stub_session(silent_url, timeout_secs=0.3).get("/entity/projects")
    assert "timeout" in str(waited.value)


# -- transport: proxy and CA bundle ------------------------------------------------------------


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """A forwarding HTTP proxy that records what went through it."""

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        self.server.seen.append(  # type: ignore[attr-defined]
            (self.command, self.path, self.headers.get("Proxy-Authorization"))
        )
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("proxy-authorization", "host")
        }
        request = urllib.request.Request(self.path, data=body, method=self.command, headers=headers)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(request, timeout=10) as reply:
                status, payload, content_type = reply.status, reply.read(), reply.headers
        except urllib.error.HTTPError as error:
            status, payload, content_type = error.code, error.read(), error.headers
        self.send_response(status)
        self.send_header("Content-Type", content_type.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _forward


def test_the_http_proxy_setting_wins_else_the_environment_with_no_proxy(local_site, monkeypatch):
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead_port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)

    with pytest.raises(ProxyError) as caught:  # the environment's proxy is used, and blamed
        RestSession(session_credential(local_site)).get("/entity/projects")
    assert f"127.0.0.1:{dead_port}" in str(caught.value) and "http_proxy" in str(caught.value)
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")  # NO_PROXY names the site: direct
    assert RestSession(session_credential(local_site)).get("/entity/projects")["data"]

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    proxy.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        password = secrets.token_urlsafe(12)
        session = RestSession(
            session_credential(local_site),
            http_proxy=f"pipeline:{password}@127.0.0.1:{proxy.server_address[1]}",
        )
        assert session.get("/entity/projects")["data"]
    finally:
        proxy.shutdown()
        proxy.server_close()

    expected_auth = "Basic " + base64.b64encode(f"pipeline:{password}".encode()).decode()
    assert proxy.seen == [  # type: ignore[attr-defined]
        ("POST", local_site.url + "/api/v1/auth/access_token", expected_auth),
        ("GET", local_site.url + "/api/v1/entity/projects", expected_auth),
    ]
    assert local_site.mint_count == 2
    assert password not in repr(session)


def test_proxy_formats_match_shotgun_api3():
    assert rest.proxy_url("proxy.example") == "http://proxy.example:8080"
    assert rest.proxy_url("10.0.0.1:3128") == "http://10.0.0.1:3128"
    assert (
        rest.proxy_url("me:p@ss:w@proxy.example:3128") == "http://me:p%40ss%3Aw@proxy.example:3128"
    )
    for bad in ("", "user:pw@", "proxy.example:port"):
        with pytest.raises(ValueError):
            rest.proxy_url(bad)


@pytest.fixture
def tls_certificate(tmp_path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_the_ca_bundle_is_shotgun_api3s(make_stub_site, tls_certificate, monkeypatch):
    cert, _ = tls_certificate
    stub = make_stub_site(tls=tls_certificate)
    stub.routes["/api/v1/entity/projects"] = lambda h: h._answer(
        200, b'{"data": []}', "application/json"
    )

    with pytest.raises(SiteUnreachableError) as untrusted:  # not in shotgun_api3's bundle
        _stub_session(stub.url).get("/entity/projects")
    assert "TLS" in str(untrusted.value) and "SHOTGUN_API_CACERTS" in str(untrusted.value)

    monkeypatch.setenv("SHOTGUN_API_CACERTS", cert)
    assert _stub_session(stub.url).get("/entity/projects") == {"data": []}

    monkeypatch.setenv("SHOTGUN_API_CACERTS", cert + ".missing")
    with pytest.raises(SgConnectError) as unreadable:
        _stub_session(stub.url).get("/entity/projects")
    assert "SHOTGUN_API_CACERTS" in str(unreadable.value)
    assert stub.seen == ["/api/v1/entity/projects"]


# -- privacy ---------------------------------------------------------------------------------


def test_expiry_margin_is_bounded():
    assert rest.expiry_margin(600) == 30
    assert rest.expiry_margin(3) == pytest.approx(0.3)
    assert rest.expiry_margin(0) == 0
    assert rest.expires_in({"expires_in": 120}) == 120
    for unusable in ({}, {"expires_in": "soon"}, {"expires_in": -5}, {"expires_in": True}):
        assert rest.expires_in(unusable) == rest.DEFAULT_EXPIRES_IN


def test_a_session_cannot_be_pickled_and_shows_no_token(local_site):
    import pickle

    credential = session_credential(local_site)
    session = RestSession(credential)
    session.get("/entity/projects")
    for private in (session, credential, credential.rest_tokens):
        with pytest.raises(TypeError):
            pickle.dumps(private)
    public = {name: getattr(session, name) for name in dir(session) if not name.startswith("_")}
    text = repr(public) + repr(session) + repr(credential) + repr(credential.rest_tokens)
    assert not [s for s in local_site.secrets if s in text]


def test_no_secret_reaches_logs_output_or_exceptions(make_local_site, caplog, capsys):
    site = make_local_site("default")
    foreign = make_local_site("default")
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def attempt(call: Callable[[], Any]) -> None:
        try:
            seen.append(repr(call()))
        except SgConnectError as exc:
            seen.extend([str(exc), repr(exc), repr(getattr(exc, "errors", None))])

    before = set(site.secrets)
    token = site.issue_session("alice")
    user = RestSession(session_credential(site, token=token), interactive=False)
    script = RestSession(script_credential(site))

    def flows(session: RestSession) -> None:
        seen.append(repr(session))
        attempt(lambda: session.get("/entity/projects"))
        attempt(lambda: list(session.iter_pages("/entity/projects", {"page[size]": 1})))
        attempt(lambda: session.get("/entity/nonsense"))
        attempt(lambda: session.delete("/entity/projects/1"))
        attempt(lambda: session.get(foreign.url + f"/api/v1/entity/projects?token={token}"))
        site.expire_rest_tokens()
        attempt(lambda: session.get("/entity/projects"))

    flows(user)
    flows(script)
    site.expire_sessions()
    attempt(
        lambda: RestSession(session_credential(site, token=token), interactive=False).get(
            "/entity/projects"
        )
    )
    attempt(lambda: RestSession(Credential.for_script(site.url, SCRIPT, "x" * 24)).get("/"))
    # Every REST token the site issued was registered: a third party logging one is redacted.
    issued = site.secrets - before - {token}
    assert len(issued) >= 6  # access and refresh tokens of at least three mints
    for value in issued:
        logging.getLogger("some.third.party").debug("got %s from the site", value)

    captured = capsys.readouterr()
    haystack = "\n".join(
        [caplog.text, captured.out, captured.err, *seen]
        + [record.getMessage() for record in caplog.records]
    )
    assert "REST access token minted for alice" in caplog.text  # the logs were captured
    assert "LoginRequiredError" in haystack and "RestError" in haystack
    leaked = [secret for secret in site.secrets if secret in haystack]
    assert leaked == []
    assert foreign.journal == []
