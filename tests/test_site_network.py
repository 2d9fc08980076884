"""LocalSite's network conditions and hostile faults, proved on the wire with plain clients.

http.client, urllib and the real shotgun_api3 talk to the site over real sockets on 127.0.0.1;
each test shows one knob doing what docs/local-site-contract.md says it does.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

import pytest
import shotgun_api3

from sgconnect.testing import ForwardProxy, LocalSite

INFO = json.dumps({"method_name": "info", "params": []}).encode()
HEADERS = {"Content-Type": "application/json"}


def _conn(site: LocalSite, timeout: float = 10.0) -> http.client.HTTPConnection:
    parts = urlsplit(site.url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=site.client_ssl_context()
        )
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _info(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("POST", "/api3/json", body=INFO, headers=HEADERS)
    return conn.getresponse()


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


# ------------------------------------------------------------------ keep-alive and counters


def test_keep_alive_serves_many_requests_on_one_connection(site):
    conn = _conn(site)
    for _ in range(3):
        response = _info(conn)
        assert response.status == 200
        assert response.getheader("Connection") == "keep-alive"
        assert json.loads(response.read())["results"]["version"]
    conn.close()
    assert site.counters == {"tcp_connections": 1, "tls_handshakes": 0, "requests": 3}
    connections = {entry.connection for entry in site.journal}
    assert len(connections) == 1 and None not in connections


def test_connection_close_from_the_client_is_honoured(site):
    conn = _conn(site)
    conn.request("POST", "/api3/json", body=INFO, headers={**HEADERS, "Connection": "close"})
    response = conn.getresponse()
    assert response.getheader("Connection") == "close"
    response.read()
    _info(conn).read()  # http.client reconnects
    assert site.counters["tcp_connections"] == 2


def test_shotgun_api3_reuses_its_connection(site):
    sg = shotgun_api3.Shotgun(
        site.url, "sgconnect_farm", site.script_key("sgconnect_farm"), connect=False
    )
    sg.info()
    sg.find("Project", [], ["name"])
    sg.find("HumanUser", [], ["login"])
    assert site.counters["requests"] >= 3  # server_caps' own info call included
    assert site.counters["tcp_connections"] == 1
    assert len({e.connection for e in site.journal}) == 1


def test_reset_counters(site):
    _info(_conn(site)).read()
    site.reset_counters()
    assert site.counters == {"tcp_connections": 0, "tls_handshakes": 0, "requests": 0}


# ------------------------------------------------------------------ TLS


def test_tls_with_a_throw_away_ca():
    with LocalSite(tls=True) as site:
        assert site.url.startswith("https://127.0.0.1:")
        assert site.idp_url.startswith("https://")
        conn = _conn(site)
        assert json.loads(_info(conn).read())["results"]
        assert json.loads(_info(conn).read())["results"]
        assert site.counters == {"tcp_connections": 1, "tls_handshakes": 1, "requests": 2}
        parts = urlsplit(site.url)
        untrusted = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=10, context=ssl.create_default_context()
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            _info(untrusted)
        ca_path = site.ca_path
        with open(ca_path) as handle:
            assert "BEGIN CERTIFICATE" in handle.read()
    with pytest.raises(FileNotFoundError):
        open(ca_path)  # the throw-away CA is gone with the site


def test_shotgun_api3_over_tls_with_shotgun_api_cacerts(monkeypatch):
    with LocalSite(tls=True) as site:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
        sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
        assert sg.find_one("HumanUser", [["login", "is", "alice"]], ["login"])["login"] == "alice"
        assert site.counters["tls_handshakes"] >= 1


def test_plain_site_has_no_ca(site):
    with pytest.raises(RuntimeError, match="tls=True"):
        site.ca_path  # noqa: B018


# ------------------------------------------------------------------ latency


def test_latency_is_one_round_trip_per_handshake_and_per_reply():
    with LocalSite(latency=0.2) as site:
        conn = _conn(site)
        started = time.monotonic()
        _info(conn).read()
        first = time.monotonic() - started  # TCP handshake + reply
        started = time.monotonic()
        _info(conn).read()
        second = time.monotonic() - started  # reply only
        assert first >= 0.35
        assert second >= 0.18


# ------------------------------------------------------------------ hostile faults


def test_stall_holds_the_request_until_the_client_gives_up(site):
    site.inject_fault("stall", delay=30)
    conn = _conn(site, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _info(conn)
    assert time.monotonic() - started < 30  # gave up long before the stall ended


def test_stall_per_rpc_lets_other_rpcs_through(site):
    site.inject_fault("stall", delay=30, rpc="read")
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    assert sg.info()["version"]
    assert site.pending_faults == 1


def test_drop_idle_forgets_the_connection_silently(site):
    site.inject_fault("drop_idle")
    conn = _conn(site, timeout=0.5)
    assert json.loads(_info(conn).read())["results"]  # answered normally
    conn.request("POST", "/api3/json", body=INFO, headers=HEADERS)
    with pytest.raises(TimeoutError):  # no FIN, no RST: the reply just never comes
        conn.getresponse()
    fresh = _conn(site)
    assert _info(fresh).status == 200  # the site itself is fine


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_redirect_to_a_foreign_origin_that_journals(site, status):
    site.inject_fault("redirect", status=status, path_prefix="/api/v1")
    conn = _conn(site)
    conn.request("GET", "/api/v1/entity/projects?page[size]=1", headers={"Authorization": "X"})
    response = conn.getresponse()
    assert response.status == status
    assert (
        unquote(response.getheader("Location"))
        == site.foreign_url + "/api/v1/entity/projects?page[size]=1"
    )
    response.read()
    assert site.foreign_journal == []
    foreign = urlsplit(site.foreign_url)
    follow = http.client.HTTPConnection(foreign.hostname, foreign.port, timeout=10)
    follow.request("GET", "/api/v1/entity/projects", headers={"Authorization": "Bearer leaked"})
    assert json.loads(follow.getresponse().read()) == {"foreign": True}
    (seen,) = site.foreign_journal
    assert (seen.method, seen.path, seen.headers["Authorization"]) == (
        "GET",
        "/api/v1/entity/projects",
        "Bearer leaked",
    )


def test_redirect_followed_by_urllib_lands_on_the_foreign_origin(site):
    site.inject_fault("redirect", status=307, path_prefix="/api/v1")
    with urllib.request.urlopen(site.url + "/api/v1", timeout=10) as response:
        assert json.loads(response.read()) == {"foreign": True}
    assert [r.path for r in site.foreign_journal] == ["/api/v1"]


def test_redirect_refuses_a_non_3xx_status(site):
    with pytest.raises(ValueError):
        site.inject_fault("redirect", status=200)


def test_byte_at_a_time(site):
    site.inject_fault("byte_at_a_time", delay=0.002)
    with socket.create_connection(("127.0.0.1", urlsplit(site.url).port), timeout=10) as sock:
        sock.sendall(
            b"POST /api3/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(INFO) + INFO
        )
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["results"]["version"]
    assert len(chunks) > 20  # many small segments, not one reply


def test_lose_reply_commits_the_write(site):
    conn = _conn(site)
    body = "grant_type=client_credentials&client_id=sgconnect_farm&client_secret=" + (
        site.script_key("sgconnect_farm")
    )
    conn.request(
        "POST",
        "/api/v1/auth/access_token",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    token = json.loads(conn.getresponse().read())["access_token"]
    site.inject_fault("lose_reply", path_prefix="/api/v1/entity")
    conn.request(
        "POST",
        "/api/v1/entity/projects",
        body=json.dumps({"name": "Lost Reply"}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    assert "Lost Reply" in site.projects  # the write happened
    assert site.journal[-1].fault == "lose_reply" and site.journal[-1].status == 0


def test_truncated_body(site):
    site.inject_fault("truncated")
    response = _info(_conn(site))
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_bad_utf8(site):
    site.inject_fault("bad_utf8")
    response = _info(_conn(site))
    assert response.getheader("Content-Type") == "application/json"
    with pytest.raises(UnicodeDecodeError):
        response.read().decode("utf-8")


def test_bad_status_line(site):
    site.inject_fault("bad_status_line")
    with pytest.raises(http.client.BadStatusLine):
        _info(_conn(site))


def test_huge_body(site):
    site.inject_fault("huge_body", size=3 * 1024 * 1024)
    response = _info(_conn(site))
    assert int(response.getheader("Content-Length")) == 3 * 1024 * 1024
    assert len(response.read()) == 3 * 1024 * 1024


def test_wrong_content_type(site):
    site.inject_fault("wrong_content_type", content_type="text/plain")
    response = _info(_conn(site))
    assert response.getheader("Content-Type") == "text/plain"
    assert json.loads(response.read())["results"]["version"]  # the real reply underneath


def test_shotgun_api3_sees_the_faults_as_errors(site):
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    sg.config.max_rpc_attempts = 1
    site.inject_fault("bad_utf8", rpc="read")
    with pytest.raises(Exception):  # noqa: B017 - whatever shotgun_api3 makes of it
        sg.find("Project", [], ["name"])
    assert site.journal[-1].fault == "bad_utf8"


# ------------------------------------------------------------------ forward proxy


def test_proxy_with_basic_auth_journals_and_relays(site):
    with ForwardProxy(auth=("proxyuser", "proxypass")) as proxy:
        handler = urllib.request.ProxyHandler({"http": proxy.url_with_auth()})
        opener = urllib.request.build_opener(handler)
        with opener.open(site.url + "/api/v1", timeout=10) as response:
            assert json.loads(response.read())["data"]
        (seen,) = proxy.journal
        assert (seen.method, seen.target, seen.authorized) == ("GET", site.url + "/api/v1", True)
        wrong = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            wrong.open(site.url + "/api/v1", timeout=10)
        assert refused.value.code == 407
        assert proxy.journal[-1].status == 407


def test_proxy_tunnels_tls(monkeypatch):
    with LocalSite(tls=True) as site, ForwardProxy(auth=("u", "p")) as proxy:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
        sg = shotgun_api3.Shotgun(
            site.url,
            session_token=site.issue_session("alice"),
            http_proxy=f"u:p@127.0.0.1:{proxy.port}",
        )
        assert sg.info()["version"]
        assert [(r.method, r.target) for r in proxy.journal][:1] == [
            ("CONNECT", f"127.0.0.1:{urlsplit(site.url).port}")
        ]


def test_no_proxy_is_the_clients_choice(site, monkeypatch):
    """urllib honours NO_PROXY (nothing in the journal); shotgun_api3's http_proxy ignores it."""
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler())
        with opener.open(site.url + "/api/v1", timeout=10) as response:
            assert response.status == 200
        assert proxy.journal == []
        sg = shotgun_api3.Shotgun(
            site.url,
            session_token=site.issue_session("alice"),
            http_proxy=f"127.0.0.1:{proxy.port}",
        )
        sg.info()
        assert [r.method for r in proxy.journal] == ["CONNECT"]  # httplib2 tunnels even http


def test_proxy_never_leaves_loopback():
    with ForwardProxy() as proxy:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open("http://sg.example.invalid/api/v1", timeout=10)
        assert refused.value.code == 502
