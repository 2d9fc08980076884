"""The hardened HTTP transport of REST sessions, on the wire against LocalSite's faults.

Every case drives a real :class:`sgconnect.rest.RestSession` over real sockets on 127.0.0.1 and
asserts the outcome: the typed error, what reached which host (the site's journal and counters,
the foreign origin's journal, the proxy's journal), the entities written, and elapsed time only as
bounds that cannot flake ("returned long before the 30 s stall ended").
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from typing import Any

import pytest

from sgconnect.credentials import Credential
from sgconnect.errors import (
    CaBundleError,
    ProxyError,
    SgConnectError,
    SiteRedirectError,
    SiteResponseError,
    SiteUnreachableError,
    WriteOutcomeUnknownError,
)
from sgconnect.rest import RestSession
from sgconnect.testing import ForwardProxy, LocalSite
from sgconnect.transport import http as transport_http
from sgconnect.transport.proxies import parse_http_proxy, proxy_for

STALL = 30.0  # seconds a stalled request is held: every bound below is far under it


@pytest.fixture(autouse=True)
def _fresh(fresh_sgconnect, monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SHOTGUN_API_CACERTS", raising=False)
    transport_http.reset()
    yield
    transport_http.reset()


def _session(site: LocalSite, **kwargs: Any) -> RestSession:
    credential = Credential.for_session(
        site.url, "alice", site.issue_session("alice"), source="saved"
    )
    return RestSession(credential, **kwargs)


def _projects(site: LocalSite) -> list[str]:
    session = _session(site)
    return [p["attributes"]["name"] for p in session.get("/entity/projects")["data"]]


def _rest_requests(site: LocalSite, method: str, path: str) -> list[Any]:
    return [e for e in site.journal if e.method == method and e.path.startswith(path)]


# ------------------------------------------------------------------ keep-alive


def test_one_connection_per_thread_across_requests_sessions_and_tokens(local_site):
    first = _session(local_site, timeout_secs=10)
    for _ in range(20):
        assert first.get("/entity/projects")["data"]
    other = _session(local_site, timeout_secs=10)  # another purpose, another token
    local_site.expire_rest_tokens()  # the 401 mints a new token on the same connection
    assert first.get("/entity/projects")["data"]
    assert other.get("/entity/projects")["data"]
    counters = local_site.counters
    assert counters["tcp_connections"] == 1
    assert counters["requests"] >= 23
    assert len({e.connection for e in local_site.journal}) == 1


def test_keep_alive_over_tls_is_one_handshake(monkeypatch):
    with LocalSite(tls=True) as site:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
        session = _session(site, timeout_secs=10)
        for _ in range(10):
            assert session.get("/entity/projects")["data"]
        assert site.counters["tcp_connections"] == 1
        assert site.counters["tls_handshakes"] == 1


def test_each_thread_has_its_own_connection(local_site):
    session = _session(local_site, timeout_secs=10)
    session.get("/entity/projects")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                session.get("/entity/projects")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert local_site.counters["tcp_connections"] == 4


def test_a_forked_child_opens_its_own_connection(local_site):
    session = _session(local_site, timeout_secs=10)
    session.get("/entity/projects")
    parent_connection = local_site.journal[-1].connection
    pid = os.fork()
    if pid == 0:  # the child: one GET, then leave without running pytest's teardown
        try:
            session.get("/entity/projects")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child_entry = local_site.journal[-1]
    assert child_entry.connection != parent_connection
    session.get("/entity/projects")  # the parent's socket is intact
    assert local_site.journal[-1].connection == parent_connection


# ------------------------------------------------------------------ redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_a_call_is_refused_and_nothing_reaches_the_other_origin(local_site, status):
    session = _session(local_site, timeout_secs=10)
    session.get("/entity/projects")  # the token is minted
    local_site.inject_fault("redirect", status=status, path_prefix="/api/v1/entity")
    with pytest.raises(SiteRedirectError) as caught:
        session.get("/entity/projects")
    error = caught.value
    foreign = local_site.foreign_url
    assert error.status == status and error.location_origin == foreign
    assert local_site.url in str(error) and foreign in str(error)
    assert local_site.foreign_journal == []
    assert not any(secret in str(error) for secret in local_site.secrets)


def test_a_redirect_on_the_token_request_is_refused(local_site):
    local_site.inject_fault("redirect", status=307, path_prefix="/api/v1/auth")
    with pytest.raises(SiteRedirectError):
        _session(local_site, timeout_secs=10).get("/entity/projects")
    assert local_site.foreign_journal == []
    assert _rest_requests(local_site, "GET", "/api/v1/entity") == []


# ------------------------------------------------------------------ deadlines


def test_a_trickling_reply_cannot_outlive_the_deadline(local_site):
    session = _session(local_site, timeout_secs=1)
    session.get("/entity/projects")
    local_site.inject_fault("byte_at_a_time", delay=0.5, path_prefix="/api/v1/entity")
    started = time.monotonic()
    with pytest.raises(SiteUnreachableError, match="within 1 s"):
        session.get("/entity/projects")
    assert time.monotonic() - started < 10  # the trickle alone lasts minutes


def test_a_stalled_get_gives_up_at_the_deadline(local_site):
    session = _session(local_site, timeout_secs=1)
    session.get("/entity/projects")
    local_site.inject_fault("stall", delay=STALL, path_prefix="/api/v1/entity")
    started = time.monotonic()
    with pytest.raises(SiteUnreachableError) as caught:
        session.get("/entity/projects")
    assert time.monotonic() - started < STALL / 3
    assert not isinstance(caught.value, WriteOutcomeUnknownError)


# ------------------------------------------------------------------ stale sockets, lost replies


def test_a_keep_alive_socket_closed_by_the_site_is_replaced_at_once():
    with LocalSite(keep_alive_timeout=0.3) as site:
        session = _session(site, timeout_secs=STALL)
        session.get("/entity/projects")
        time.sleep(0.8)  # the site closes the idle connection
        started = time.monotonic()
        assert session.get("/entity/projects")["data"]
        assert time.monotonic() - started < STALL / 3
        assert site.counters["tcp_connections"] == 2


def test_a_get_whose_connection_closes_is_sent_again_once(local_site):
    session = _session(local_site, timeout_secs=STALL)
    session.get("/entity/projects")
    local_site.inject_fault("close", path_prefix="/api/v1/entity")
    started = time.monotonic()
    assert session.get("/entity/projects")["data"]
    assert time.monotonic() - started < STALL / 3
    gets = _rest_requests(local_site, "GET", "/api/v1/entity")
    assert [e.fault for e in gets[-2:]] == ["close", None]


def test_a_get_is_sent_again_only_once(local_site):
    session = _session(local_site, timeout_secs=STALL)
    session.get("/entity/projects")
    local_site.inject_fault("close", count=3, path_prefix="/api/v1/entity")
    with pytest.raises(SiteUnreachableError):
        session.get("/entity/projects")
    assert len(_rest_requests(local_site, "GET", "/api/v1/entity")) == 1 + 2


def test_a_write_whose_reply_is_lost_is_never_sent_again(local_site):
    session = _session(local_site, timeout_secs=STALL)
    before = _projects(local_site)
    local_site.inject_fault("lose_reply", path_prefix="/api/v1/entity")
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        session.post("/entity/projects", json={"name": "Lost Reply"})
    error = caught.value
    assert error.method == "POST" and "/api/v1/entity/projects" in error.what
    assert "may" in str(error) and "Cannot reach" not in str(error)
    assert len(_rest_requests(local_site, "POST", "/api/v1/entity/projects")) == 1
    assert _projects(local_site) == before + ["Lost Reply"]  # written once, exactly


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_no_write_method_is_sent_again_after_a_lost_reply(local_site, method):
    """Whatever the route answers (LocalSite has no PUT route: it would be a 404), a write whose
    reply is lost reached the site once and is an unknown outcome, never re-sent."""
    session = _session(local_site, timeout_secs=STALL)
    session.get("/entity/projects")
    local_site.inject_fault("lose_reply", path_prefix="/api/v1/entity")
    call = getattr(session, method.lower())
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        if method == "DELETE":
            call("/entity/projects/1")
        else:
            call("/entity/projects/1", json={"data": {"name": "Lost"}})
    assert caught.value.method == method
    assert len(_rest_requests(local_site, method, "/api/v1/entity/projects/1")) == 1


def test_a_stalled_write_is_an_unknown_outcome_at_the_deadline(local_site):
    session = _session(local_site, timeout_secs=1)
    session.get("/entity/projects")
    local_site.inject_fault("stall", delay=STALL, path_prefix="/api/v1/entity")
    started = time.monotonic()
    with pytest.raises(WriteOutcomeUnknownError):
        session.post("/entity/projects", json={"name": "Stalled"})
    assert time.monotonic() - started < STALL / 3
    assert local_site.pending_faults == 0  # the one POST took the stall; none was sent again
    assert "Stalled" not in _projects(local_site)


def test_the_token_request_is_sent_again_after_a_lost_reply(local_site):
    local_site.inject_fault("lose_reply", path_prefix="/api/v1/auth")
    assert _session(local_site, timeout_secs=STALL).get("/entity/projects")["data"]
    assert len(_rest_requests(local_site, "POST", "/api/v1/auth/access_token")) == 2
    assert local_site.mint_count == 2  # one token too many, no entity: safe to repeat


# ------------------------------------------------------------------ malformed replies


@pytest.mark.parametrize(
    "kind, words",
    [
        ("html", "text/html"),
        ("wrong_content_type", "text/plain"),
        ("bad_utf8", "not UTF-8"),
        ("truncated", "truncated"),
        ("bad_status_line", "bad status line"),
        ("http_502", "text/html"),
    ],
)
def test_a_malformed_reply_is_a_site_response_error(local_site, kind, words):
    session = _session(local_site, timeout_secs=10)
    session.get("/entity/projects")
    extra = {"content_type": "text/plain"} if kind == "wrong_content_type" else {}
    local_site.inject_fault(kind, path_prefix="/api/v1/entity", **extra)
    with pytest.raises(SiteResponseError, match=words) as caught:
        session.get("/entity/projects")
    assert type(caught.value) is SiteResponseError
    assert local_site.url in str(caught.value)
    assert session.get("/entity/projects")["data"]  # the next call is fine


@pytest.mark.parametrize(
    "kind, options, written",
    [
        ("wrong_content_type", {"content_type": "text/plain"}, True),
        ("truncated", {}, True),
        ("huge_body", {"size": 4 * 1024 * 1024}, True),
        ("bad_utf8", {}, False),  # LocalSite answers these before writing
        ("html", {}, False),
        ("bad_status_line", {}, True),
        ("http_502", {}, False),  # a gateway may have passed it on (LocalSite's did not)
    ],
)
def test_a_malformed_reply_to_a_write_is_an_unknown_outcome(local_site, kind, options, written):
    """The site may have carried the write out before its reply was spoiled: never a plain
    SiteResponseError (a caller retrying those would write twice), and never re-sent."""
    session = _session(local_site, timeout_secs=10, max_body_bytes=256 * 1024)
    before = _projects(local_site)
    local_site.inject_fault(kind, path_prefix="/api/v1/entity", **options)
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        session.post("/entity/projects", json={"name": "Spoiled"})
    error = caught.value
    assert not isinstance(error, SiteResponseError)
    assert error.method == "POST" and "/api/v1/entity/projects" in error.what
    assert "may have been carried out" in str(error) and local_site.url in str(error)
    assert len(_rest_requests(local_site, "POST", "/api/v1/entity/projects")) == 1
    assert _projects(local_site) == before + (["Spoiled"] if written else [])


@pytest.mark.parametrize(
    "method, kind", [("PATCH", "wrong_content_type"), ("DELETE", "bad_status_line")]
)
def test_a_malformed_reply_to_a_patch_or_delete_is_an_unknown_outcome(local_site, method, kind):
    session = _session(local_site, timeout_secs=10)
    created = session.post("/entity/projects", json={"name": "Target"})["data"]["id"]
    local_site.inject_fault(kind, path_prefix="/api/v1/entity", content_type="text/plain")
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        if method == "PATCH":
            session.patch(f"/entity/projects/{created}", json={"name": "Renamed"})
        else:
            session.delete(f"/entity/projects/{created}")
    assert caught.value.method == method
    assert len(_rest_requests(local_site, method, "/api/v1/entity/projects")) == 1


def test_a_body_over_the_cap_is_refused(local_site):
    session = _session(local_site, timeout_secs=10, max_body_bytes=256 * 1024)
    session.get("/entity/projects")
    local_site.inject_fault("huge_body", size=4 * 1024 * 1024, path_prefix="/api/v1/entity")
    with pytest.raises(SiteResponseError, match="262144-byte cap"):
        session.get("/entity/projects")


class _Odd(http.server.BaseHTTPRequestHandler):
    """Replies no LocalSite fault makes: an over-long header, JSON of the wrong shape."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(b'{"access_token": "x", "expires_in": 600}')

    def do_GET(self) -> None:
        if self.path.endswith("/long-header"):
            self.send_response(200)
            self.send_header("X-Long", "a" * 70000)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self._send(b"[1, 2, 3]")

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def odd_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "path, words",
    [("/long-header", "malformed headers|status line"), ("/list", "unexpected shape")],
)
def test_odd_replies_are_site_response_errors(odd_site, path, words):
    session = RestSession(
        Credential.for_session(odd_site, "alice", "t" * 32, source="saved"), timeout_secs=10
    )
    with pytest.raises(SiteResponseError, match=words):
        session.get(path)


# ------------------------------------------------------------------ proxies and CA


def test_the_http_proxy_setting_tunnels_https_and_keeps_its_password_private(monkeypatch):
    with LocalSite(tls=True) as site, ForwardProxy(auth=("pipeline", "proxy-pass-1")) as proxy:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
        setting = f"pipeline:proxy-pass-1@127.0.0.1:{proxy.port}"
        session = _session(site, timeout_secs=10, http_proxy=setting)
        for _ in range(3):
            assert session.get("/entity/projects")["data"]
        assert [(r.method, r.status) for r in proxy.journal] == [("CONNECT", 200)]
        assert site.counters["tcp_connections"] == 1
        assert "proxy-pass-1" not in repr(session) + repr(session._proxy)

        wrong = _session(site, timeout_secs=10, http_proxy=f"pipeline:wrong@127.0.0.1:{proxy.port}")
        with pytest.raises(ProxyError, match="407") as caught:
            wrong.get("/entity/projects")
        assert caught.value.proxy == f"http://127.0.0.1:{proxy.port}"
        assert "wrong" not in str(caught.value)


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_site(local_site, monkeypatch):
    with ForwardProxy(auth=("env", "env-pass-2")) as proxy:
        monkeypatch.setenv(
            "HTTP_PROXY", proxy.url_with_auth().replace("proxyuser:proxypass", "env:env-pass-2")
        )
        assert _session(local_site, timeout_secs=10).get("/entity/projects")["data"]
        assert proxy.journal and all(r.authorized for r in proxy.journal)
        count = len(proxy.journal)
        monkeypatch.setenv("NO_PROXY", "example.invalid, 127.0.0.1")
        transport_http.reset()
        assert _session(local_site, timeout_secs=10).get("/entity/projects")["data"]
        assert len(proxy.journal) == count  # nothing more went through the proxy


def test_the_proxy_rule():
    site = "https://studio.example.invalid"
    env = {"HTTPS_PROXY": "http://u:secret-3@proxy.invalid:3128", "NO_PROXY": ".other.invalid"}
    proxy = proxy_for(site, None, env)
    assert (proxy.host, proxy.port, proxy.username, proxy.source) == (
        "proxy.invalid",
        3128,
        "u",
        "HTTPS_PROXY",
    )
    assert "secret-3" not in repr(proxy) and "secret-3" not in proxy.display
    assert proxy_for(site, None, {**env, "NO_PROXY": "example.invalid"}) is None
    assert proxy_for(site, None, {**env, "no_proxy": "*"}) is None
    assert proxy_for("http://studio.example.invalid", None, env) is None  # http: no HTTP_PROXY
    setting = proxy_for(site, "me:pw@hookproxy.invalid", {**env, "NO_PROXY": "*"})
    assert (setting.host, setting.port, setting.source) == (
        "hookproxy.invalid",
        8080,
        "http_proxy setting",
    )
    assert parse_http_proxy("a:b@h.invalid:1").api3() == "a:b@h.invalid:1"
    with pytest.raises(ValueError):
        parse_http_proxy("socks5://h.invalid:1")


def test_a_missing_ca_bundle_is_named(monkeypatch, tmp_path):
    with LocalSite(tls=True) as site:
        missing = str(tmp_path / "nowhere.pem")
        monkeypatch.setenv("SHOTGUN_API_CACERTS", missing)
        with pytest.raises(CaBundleError) as caught:
            _session(site, timeout_secs=10).get("/entity/projects")
        assert missing in str(caught.value) and "SHOTGUN_API_CACERTS" in str(caught.value)
        assert "check the URL" not in str(caught.value)
        assert caught.value.path == missing
        assert site.counters["tcp_connections"] == 0


def test_every_error_is_an_sgconnect_error_naming_the_site():
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    session = RestSession(
        Credential.for_session(url, "alice", "t" * 32, source="saved"), timeout_secs=5
    )
    with pytest.raises(SiteUnreachableError) as caught:
        session.get("/entity/projects")
    assert isinstance(caught.value, SgConnectError) and url in str(caught.value)
    assert json.dumps(str(caught.value))  # one printable line


def test_a_connection_a_nat_forgot_costs_no_timeout(local_site, monkeypatch):
    """Idle past the keep-alive limit: a new connection before sending, so the GET reaches the
    site once, at once."""
    monkeypatch.setenv("SGCONNECT_KEEPALIVE_SECS", "0.5")
    session = _session(local_site, timeout_secs=STALL)
    session.get("/entity/projects")
    local_site.inject_fault("drop_idle", path_prefix="/api/v1/entity")
    session.get("/entity/projects")  # answered, then the site forgets the connection silently
    time.sleep(0.8)
    gets = len(_rest_requests(local_site, "GET", "/api/v1/entity"))
    started = time.monotonic()
    assert session.get("/entity/projects")["data"]
    assert time.monotonic() - started < STALL / 3
    assert len(_rest_requests(local_site, "GET", "/api/v1/entity")) == gets + 1
    assert local_site.counters["tcp_connections"] == 2


def test_a_slow_get_after_an_idle_second_is_sent_once_and_answered(local_site):
    """A reused connection is not probed: an answer slower than any probe window is a slow
    answer, not a forgotten connection (a ShotGrid query may take seconds)."""
    session = _session(local_site, timeout_secs=STALL)
    session.get("/entity/projects")
    time.sleep(transport_http.STALE_IDLE_SECS + 0.2)
    local_site.inject_fault("slow", delay=2.5, path_prefix="/api/v1/entity")
    gets = len(_rest_requests(local_site, "GET", "/api/v1/entity"))
    assert session.get("/entity/projects")["data"]
    assert len(_rest_requests(local_site, "GET", "/api/v1/entity")) == gets + 1
    assert local_site.counters["tcp_connections"] == 1


def test_a_write_on_a_forgotten_connection_is_not_sent_twice(local_site):
    session = _session(local_site, timeout_secs=2)
    before = _projects(local_site)  # on this thread's connection, which the site will forget
    local_site.inject_fault("drop_idle", path_prefix="/api/v1/entity")
    session.get("/entity/projects")
    # at once (idle under a second): the connection is trusted, and forgotten at once
    with pytest.raises(WriteOutcomeUnknownError):
        session.post("/entity/projects", json={"name": "Forgotten"})
    assert _projects(local_site) == before  # the forgotten connection carried nothing


def test_a_write_after_an_idle_second_goes_on_a_new_connection(local_site):
    """Under the keep-alive limit (2 s) but idle a second: a NAT may have forgotten the connection
    silently, and a write sent there would wait the deadline with an unknown outcome."""
    session = _session(local_site, timeout_secs=STALL)
    before = _projects(local_site)
    local_site.inject_fault("drop_idle", path_prefix="/api/v1/entity")
    session.get("/entity/projects")  # answered, then the site forgets the connection silently
    time.sleep(transport_http.STALE_IDLE_SECS + 0.2)
    started = time.monotonic()
    session.post("/entity/projects", json={"name": "After A Second"})  # no error: sent once
    assert time.monotonic() - started < STALL / 3
    assert _projects(local_site) == before + ["After A Second"]
    assert len(_rest_requests(local_site, "POST", "/api/v1/entity/projects")) == 1


def test_a_write_never_goes_to_a_connection_idle_past_the_keep_alive_limit(local_site, monkeypatch):
    monkeypatch.setenv("SGCONNECT_KEEPALIVE_SECS", "0.5")
    session = _session(local_site, timeout_secs=STALL)
    before = _projects(local_site)
    local_site.inject_fault("drop_idle", path_prefix="/api/v1/entity")
    session.get("/entity/projects")  # answered, then the site forgets the connection silently
    time.sleep(0.8)  # past the keep-alive limit
    started = time.monotonic()
    session.post("/entity/projects", json={"name": "After Idle"})  # no error: sent once
    assert time.monotonic() - started < STALL / 3
    assert _projects(local_site) == before + ["After Idle"]
    assert len(_rest_requests(local_site, "POST", "/api/v1/entity/projects")) == 1


def test_the_http_submodule_does_not_shadow_http_client_in_the_package():
    from sgconnect import transport

    assert transport.http is transport_http  # the submodule is an attribute of the package...
    failure = transport.network_failure(RuntimeError("wrapped"))
    assert failure is None  # ...and the package's own checks still reach http.client
    reset = ConnectionResetError("reset")
    assert transport.network_failure(reset) is reset
