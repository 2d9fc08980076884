"""The transport's rules on the login and renewal paths, with real tk-core, on the wire.

``sgconnect login --method url`` (tk-core's app session launcher), ``--method password`` (tk-core's
console login through shotgun_api3) and the console renewal run in child processes against
LocalSite's faults and a ForwardProxy; each test asserts the typed error, what reached the site
or the proxy, and elapsed time only as bounds that cannot flake.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from children import start_child
from test_cli import assert_no_secret, run_cli, start_cli, wait_for_request

from sgconnect import interactive, session_cache
from sgconnect.errors import CaBundleError
from sgconnect.testing import ForwardProxy, LocalSite, save_session

STALL = 60.0  # seconds a stalled request is held: every bound below is far under it
RENEWAL_CHILD = Path(__file__).parent / "children" / "console_renewal.py"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_inherited_proxy(monkeypatch):
    for name in PROXY_VARIABLES + ("SGCONNECT_HTTP_PROXY", "SHOTGUN_API_CACERTS"):
        monkeypatch.delenv(name, raising=False)


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("sgconnect:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _password_login(home, site):
    """``sgconnect login --method password`` as carol, her password typed on stdin."""
    return run_cli(
        home, "login", "--site", site.url, "--method", "password",
        stdin=f"carol\n{site.password('carol')}\n",
    )  # fmt: skip


def _renewal_under(site, fault, **options):
    """alice's saved session expires, then the console renewal (her password on stdin) meets
    ``fault`` on ``get_session_token``; the child's (stdout, stderr)."""
    save_session(site, "alice")
    child = start_child(RENEWAL_CHILD, {"SITE_URL": site.url, "THREADS": "1"})
    try:
        assert child.stdout.readline().strip() == "READY"
        site.expire_sessions()
        site.inject_fault(fault, rpc="get_session_token", **options)
        return child.communicate(f"\n{site.password('alice')}\n", timeout=STALL)
    finally:
        child.kill()


# ------------------------------------------------------------------ headless login: deadlines


@pytest.mark.tkcore
@pytest.mark.parametrize(
    "path_prefix, what",
    [
        ("/internal_api/app_session_request", "the app session launcher's request"),
        ("/internal_api/app_session_request/", "a poll of the app session launcher"),
    ],
    ids=["request", "poll"],
)
def test_url_login_gives_up_when_the_site_holds_a_request(
    make_local_site, isolated_shotgun_home, monkeypatch, path_prefix, what
):
    site = make_local_site("saml2")
    site.inject_fault("stall", delay=STALL, path_prefix=path_prefix)
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "2")
    started = time.monotonic()
    result = run_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert time.monotonic() - started < STALL / 2
    assert result.returncode == 1  # an error, not a login refusal
    line = _error_line(result.stderr)
    assert f"did not answer {what} within 2 s" in line and site.url in line
    assert session_cache.read_saved_session(site.url) is None
    if what.startswith("a poll"):
        elapsed = [
            int(n) for n in re.findall(r"waiting for approval: (\d+) s elapsed", result.stderr)
        ]
        # the first poll starts 2 s in and hangs: the progress line still counts past it
        assert elapsed and max(elapsed) >= 4, result.stderr
        assert elapsed == sorted(elapsed)


@pytest.mark.tkcore
def test_url_login_stops_at_its_approval_limit(make_local_site, isolated_shotgun_home, monkeypatch):
    site = make_local_site("saml2")
    monkeypatch.setenv("SGCONNECT_APPROVAL_TIMEOUT_SECS", "3")
    started = time.monotonic()
    result = run_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert time.monotonic() - started < 60  # tk-core's own wait is 180 s
    assert result.returncode == 3
    assert "was not approved within 3 s" in _error_line(result.stderr)
    assert "s left" in result.stderr


# ------------------------------------------------------------------ headless login: proxy rule


@pytest.mark.tkcore
def test_url_login_goes_through_the_http_proxy_setting(
    make_local_site, isolated_shotgun_home, monkeypatch
):
    site = make_local_site("saml2")
    with ForwardProxy(auth=("pipeline", "url-proxy-pass")) as proxy:
        monkeypatch.setenv(
            "SGCONNECT_HTTP_PROXY", f"pipeline:url-proxy-pass@127.0.0.1:{proxy.port}"
        )
        login = start_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
        site.approve_app_session(wait_for_request(site, login), "alice")
        out, err = login.communicate(timeout=60)
        journal = list(proxy.journal)
    assert login.returncode == 0, err
    assert any("/internal_api/app_session_request" in r.target for r in journal)
    assert all(r.authorized for r in journal)
    assert "url-proxy-pass" not in out + err
    assert_no_secret(site, out, err)


# ------------------------------------------------------------------ console login and renewal


@pytest.mark.tkcore
def test_console_login_honours_no_proxy(make_local_site, isolated_shotgun_home, monkeypatch):
    site = make_local_site("default", app_session_launcher=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        result = _password_login(isolated_shotgun_home, site)
        journal = list(proxy.journal)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal == []  # tk-core alone would have gone to the proxy
    assert ("get_session_token", "password", "carol") in [
        (e.rpc, e.auth, e.login) for e in site.journal
    ]


@pytest.mark.tkcore
def test_console_login_goes_through_the_http_proxy_setting(
    make_local_site, isolated_shotgun_home, monkeypatch
):
    site = make_local_site("default", app_session_launcher=False)
    with ForwardProxy(auth=("pipeline", "console-proxy-pass")) as proxy:
        monkeypatch.setenv(
            "SGCONNECT_HTTP_PROXY", f"pipeline:console-proxy-pass@127.0.0.1:{proxy.port}"
        )
        result = _password_login(isolated_shotgun_home, site)
        journal = list(proxy.journal)
    assert result.returncode == 0, result.stdout + result.stderr
    port = site.url.rsplit(":", 1)[1]
    assert journal and all(r.authorized for r in journal)
    assert any(r.target.endswith(f":{port}") or f":{port}/" in r.target for r in journal)
    assert "console-proxy-pass" not in result.stdout + result.stderr


@pytest.mark.tkcore
def test_console_renewal_honours_no_proxy(make_local_site, monkeypatch):
    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    with ForwardProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        child = start_child(RENEWAL_CHILD, {"SITE_URL": site.url, "THREADS": "1"})
        try:
            assert child.stdout.readline().strip() == "READY"
            site.expire_sessions()
            out, err = child.communicate(f"\n{site.password('alice')}\n", timeout=90)
        finally:
            child.kill()
        journal = list(proxy.journal)
    assert child.returncode == 0, err
    assert "RENEWALS 1" in out, out + err
    assert journal == []  # neither tk-core's renewal nor the api3 connection used the proxy


# ------------------------------------------------------------------ CA bundle


def test_a_missing_ca_bundle_is_named_before_any_login_request(monkeypatch, tmp_path):
    with LocalSite(tls=True, mode="saml2") as site:
        missing = str(tmp_path / "gone.pem")
        monkeypatch.setenv("SHOTGUN_API_CACERTS", missing)
        with pytest.raises(CaBundleError, match="gone.pem") as caught:
            interactive.login(site.url, "url")
        assert "SHOTGUN_API_CACERTS" in str(caught.value)
        assert site.journal == [] and site.counters["tcp_connections"] == 0


# ------------------------------------------------------------------ doctor


def test_doctor_reads_the_site_by_the_rule_and_shows_no_proxy_password(local_site, monkeypatch):
    import io

    from sgconnect import doctor

    with ForwardProxy(auth=("doc", "doctor-proxy-pass")) as proxy:
        monkeypatch.setenv("SGCONNECT_HTTP_PROXY", f"doc:doctor-proxy-pass@127.0.0.1:{proxy.port}")
        out = io.StringIO()
        doctor.run(local_site.url, out)
        text = out.getvalue()
        assert proxy.journal and all(r.authorized for r in proxy.journal)
        assert f"http://doc:***@127.0.0.1:{proxy.port} (from http_proxy setting)" in text
        assert "doctor-proxy-pass" not in text
        monkeypatch.delenv("SGCONNECT_HTTP_PROXY")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        count = len(proxy.journal)
        out = io.StringIO()
        doctor.run(local_site.url, out)
        assert len(proxy.journal) == count
        assert "NO_PROXY names it" in out.getvalue()


@pytest.mark.parametrize("fault, delay", [("stall", STALL), ("byte_at_a_time", 0.5)])
def test_doctor_reads_the_site_info_within_its_timeout(make_local_site, fault, delay):
    from sgconnect import doctor
    from sgconnect.errors import SiteTimeoutError

    site = make_local_site("default")
    site.inject_fault(fault, delay=delay, rpc="info")
    started = time.monotonic()
    with pytest.raises(SiteTimeoutError, match="within 1 s"):
        doctor.read_site_info(site.url, timeout=1.0)
    assert time.monotonic() - started < STALL / 4


def test_doctor_names_a_missing_ca_bundle(monkeypatch, tmp_path):
    import io

    from sgconnect import doctor

    monkeypatch.setenv("SHOTGUN_API_CACERTS", str(tmp_path / "absent.pem"))
    out = io.StringIO()
    with LocalSite(tls=True) as site:
        doctor.run(site.url, out)
        assert site.counters["tcp_connections"] == 0
    text = out.getvalue()
    assert "absent.pem" in text and "does not exist" in text
    assert "check the URL" not in text


# ------------------------------------------------------------------ the api3 connection


def test_the_api3_connection_gets_the_rules_proxy(local_site, isolated_shotgun_home, monkeypatch):
    import sgconnect

    save_session(local_site, "alice")
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        sgconnect.connect("rule", local_site.url, interactive=False).find("Project", [])
        assert proxy.journal == []  # NO_PROXY names the site: directly
        sgconnect.reset()
        monkeypatch.delenv("NO_PROXY")
        sgconnect.connect("rule", local_site.url, interactive=False).find("Project", [])
        port = local_site.url.rsplit(":", 1)[1]
        assert any(r.target.endswith(f":{port}") for r in proxy.journal)


@pytest.mark.tkcore
@pytest.mark.parametrize(
    "rpc, fault, delay, what",
    [
        ("get_session_token", "stall", STALL, "did not answer the request to log in within 2"),
        # one byte every 0.5 s: each read is answered, the whole request is not (tk-core's
        # httplib2 bounds each read only; the guard's watchdog bounds the request)
        ("get_session_token", "byte_at_a_time", 0.5, "request to log in within 2"),
        # the pre-check before the password is asked keeps timeout_secs too (it waited 10 s)
        ("info", "stall", STALL, "did not answer ShotGrid's api3 `info` within 2"),
        ("info", "byte_at_a_time", 0.5, "ShotGrid's api3 `info` within 2"),
    ],
    ids=["login", "login-trickled", "pre-check", "pre-check-trickled"],
)
def test_console_login_gives_up_when_the_site_holds_the_login_request(
    make_local_site, isolated_shotgun_home, monkeypatch, rpc, fault, delay, what
):
    site = make_local_site("default", app_session_launcher=False)
    site.inject_fault(fault, delay=delay, rpc=rpc)
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "2")
    started = time.monotonic()
    result = _password_login(isolated_shotgun_home, site)
    assert time.monotonic() - started < STALL / 2
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert what in line and site.url in line
    assert session_cache.read_saved_session(site.url) is None
    assert_no_secret(site, result.stdout, result.stderr)


@pytest.mark.tkcore
@pytest.mark.parametrize("fault, delay", [("stall", STALL), ("byte_at_a_time", 0.5)])
def test_console_renewal_gives_up_when_the_site_holds_the_renewal(
    make_local_site, monkeypatch, fault, delay
):
    site = make_local_site("default", app_session_launcher=False)
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "2")
    started = time.monotonic()
    out, err = _renewal_under(site, fault, delay=delay)
    assert time.monotonic() - started < STALL / 2
    assert "ERRORS ['SiteTimeoutError']" in out, out + err
    assert "RENEWALS 0" in out, out + err


def test_the_api3_hand_out_names_a_missing_ca_bundle(isolated_shotgun_home, monkeypatch, tmp_path):
    import sgconnect

    with LocalSite(tls=True) as site:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
        save_session(site, "alice")
        missing = str(tmp_path / "moved.pem")
        monkeypatch.setenv("SHOTGUN_API_CACERTS", missing)
        with pytest.raises(CaBundleError, match="moved.pem"):
            sgconnect.connect("ca", site.url, interactive=False).find("Project", [])
        assert site.counters["tcp_connections"] == 0


# ------------------------------------------------------------------ broken replies, pre-check bound


@pytest.mark.tkcore
@pytest.mark.parametrize(
    "fault, what", [("bad_utf8", "is not UTF-8"), ("truncated", "was cut short")]
)
def test_console_login_names_a_broken_reply(
    make_local_site, isolated_shotgun_home, monkeypatch, fault, what
):
    site = make_local_site("default", app_session_launcher=False)
    site.inject_fault(fault, rpc="get_session_token")
    result = _password_login(isolated_shotgun_home, site)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert f"answered the request to log in, but its reply {what}" in line and site.url in line
    assert "unexpected error" not in line and "Cannot reach" not in line
    assert session_cache.read_saved_session(site.url) is None
    assert_no_secret(site, result.stdout, result.stderr)


@pytest.mark.tkcore
def test_url_login_names_a_launcher_reply_that_is_not_utf8(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2")
    site.inject_fault("bad_utf8", path_prefix="/internal_api/app_session_request")
    result = run_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert "its reply is not UTF-8" in line and site.url in line
    assert session_cache.read_saved_session(site.url) is None


@pytest.mark.tkcore
@pytest.mark.parametrize("fault", ["bad_utf8", "truncated"])
def test_console_renewal_names_a_broken_reply(make_local_site, monkeypatch, fault):
    site = make_local_site("default", app_session_launcher=False)
    out, err = _renewal_under(site, fault)
    assert "ERRORS ['SiteResponseError']" in out, out + err
    assert "RENEWALS 0" in out, out + err


@pytest.mark.tkcore
def test_a_wrong_proxy_password_is_a_proxy_error_in_doctor_and_login(
    make_local_site, isolated_shotgun_home, monkeypatch
):
    import io

    from sgconnect import doctor

    site = make_local_site("default", app_session_launcher=False)
    with ForwardProxy(auth=("pipeline", "right-proxy-pass")) as proxy:
        monkeypatch.setenv(
            "SGCONNECT_HTTP_PROXY", f"pipeline:wrong-proxy-pass@127.0.0.1:{proxy.port}"
        )
        out = io.StringIO()
        assert doctor.run(site.url, out) == 1
        text = out.getvalue()
        result = _password_login(isolated_shotgun_home, site)
        journal = list(proxy.journal)
        port = proxy.port
    assert journal and not any(r.authorized for r in journal)
    assert f"The proxy http://127.0.0.1:{port} refused its credentials (407" in text
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert f"The proxy http://127.0.0.1:{port} refused its credentials (407" in line
    assert "unexpected error" not in line
    for shown in (text, result.stdout, result.stderr):
        assert "wrong-proxy-pass" not in shown and "right-proxy-pass" not in shown
    assert session_cache.read_saved_session(site.url) is None


# ------------------------------------------------------------------ redirects on the login paths


@pytest.mark.tkcore
@pytest.mark.parametrize("status, on_poll", [(307, False), (308, True)], ids=["request", "poll"])
def test_url_login_names_a_redirect_of_the_launcher(
    make_local_site, isolated_shotgun_home, monkeypatch, status, on_poll
):
    site = make_local_site("saml2")
    prefix = "/internal_api/app_session_request"
    if on_poll:  # the request is answered; the next call to the launcher (a poll) redirects
        site.inject_fault("slow", delay=0, path_prefix=prefix)
    site.inject_fault("redirect", status=status, path_prefix=prefix)
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "2")
    result = run_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert f"with a redirect (HTTP {status}) to {site.foreign_url}" in line, line
    assert "Cannot reach" not in line
    assert not site.foreign_journal
    assert session_cache.read_saved_session(site.url) is None


@pytest.mark.tkcore
def test_console_login_names_a_redirect_of_the_password_request(
    make_local_site, isolated_shotgun_home
):
    site = make_local_site("default", app_session_launcher=False)
    site.inject_fault("redirect", status=308, rpc="get_session_token")
    result = _password_login(isolated_shotgun_home, site)
    assert result.returncode == 1  # an error of the site, not a refused login (3)
    line = _error_line(result.stderr)
    assert f"with a redirect (HTTP 308) to {site.foreign_url}" in line, line
    assert not site.foreign_journal
    assert_no_secret(site, result.stdout, result.stderr)


@pytest.mark.tkcore
def test_console_renewal_names_a_redirect(make_local_site, monkeypatch):
    site = make_local_site("default", app_session_launcher=False)
    out, err = _renewal_under(site, "redirect", status=308)
    assert "ERRORS ['SiteRedirectError']" in out, out + err
    assert not site.foreign_journal
