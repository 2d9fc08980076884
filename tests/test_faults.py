"""Never lose a call: every fault gets a typed error that names the site, or a transparent recovery.

The local site misbehaves on request (``site.inject_fault``): refused connections, 500/502/503
replies, HTML instead of JSON, a reply slower than the timeout, a dropped connection. Sessions
expire in the middle of a tool's work, logins are cancelled, the session cache is corrupt. None of
it may hang, lose a call, or leave a half-written cache. Bad site URLs and purposes never reach
the network.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from children import run_child, start_child
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sgconnect
from sgconnect import redaction, session_cache
from sgconnect.testing import save_session

CHILDREN = Path(__file__).parent / "children"


pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 90


def cache_bytes(url: str) -> bytes | None:
    path = session_cache.site_cache_file(url)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def cache_files(home) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), home)
        for folder, _, names in os.walk(home)
        for name in names
        if name == "authentication.yml"
    )


@pytest.fixture
def saved_site(make_local_site):
    """A site with alice's session saved; the cache must be byte-identical after the test."""
    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    before = cache_bytes(site.url)
    yield site
    assert cache_bytes(site.url) == before, "a fault changed the session cache"


@pytest.fixture
def short_timeout(monkeypatch):
    """Standalone settings: requests give up after 1 s (SGCONNECT_TIMEOUT_SECS)."""
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "1")
    sgconnect.reset()


# -- the site is down ---------------------------------------------------------------------------


def test_site_down_is_unreachable_naming_the_site(saved_site):
    site = saved_site
    sg = sgconnect.connect("down", site=site.url, interactive=False)
    rest = sgconnect.rest_session("down", site=site.url, interactive=False)
    site.stop()

    with pytest.raises(sgconnect.SiteUnreachableError) as api3:
        sg.find("Project", [], ["name"])
    with pytest.raises(sgconnect.SiteUnreachableError) as rest_error:
        rest.get("/entity/projects")

    for caught in (api3, rest_error):
        message = str(caught.value)
        assert caught.value.site == site.url
        assert f"Cannot reach {site.url}" in message
        assert "ConnectionRefusedError" in message
        assert f"sgconnect doctor --site {site.url}" in message


LOGIN_CHILD = CHILDREN / "faults_login.py"


def child_state(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith("STATE "))
    return json.loads(line[len("STATE ") :])


def test_site_down_during_a_console_login_is_unreachable(make_local_site, isolated_shotgun_home):
    site = make_local_site("default", app_session_launcher=False)
    password = site.password("alice")
    site.stop()
    child = run_child(
        LOGIN_CHILD,
        dict(SITE_URL=site.url, SGCONNECT_LOGIN_METHOD="password"),
        stdin=f"alice\n{password}\n",
    )
    assert child.returncode == 0, child.stderr
    name, message, where = child_state(child.stdout)["error"]
    assert (name, where) == ("SiteUnreachableError", site.url)
    assert f"Cannot reach {site.url} to log in (connection refused: nothing listens" in message
    assert "(ConnectionRefusedError))" in message
    assert cache_files(isolated_shotgun_home) == []


# -- the site answers badly ---------------------------------------------------------------------

API3_FAULTS = [
    # kind, count, error, words in the message, HTTP status
    ("http_500", 1, sgconnect.SiteResponseError, "answered HTTP 500 to read", 500),
    ("http_503", 1, sgconnect.SiteResponseError, "answered HTTP 503 to read", 503),
    # shotgun_api3 retries a 502 twice (0.75 s, then 1.5 s): three in a row are an error.
    ("http_502", 3, sgconnect.SiteResponseError, "answered HTTP 502 to read", 502),
    ("html", 1, sgconnect.SiteResponseError, "text/html; charset=utf-8 instead of ShotGrid", None),
    # httplib2 retries a dropped connection once: two in a row are an error.
    ("close", 2, sgconnect.SiteUnreachableError, "(RemoteDisconnected)", None),
]


def assert_names_the_site(error, site, words: str, status: int | None) -> None:
    """The error names the site and says what went wrong (with the HTTP status, if given)."""
    message = str(error)
    assert error.site == site.url
    assert site.url in message and words in message
    if status is not None:
        assert error.status == status


@pytest.mark.parametrize(("kind", "count", "error", "words", "status"), API3_FAULTS)
def test_api3_fault_is_a_typed_error_then_the_next_call_works(
    saved_site, kind, count, error, words, status
):
    site = saved_site
    sg = sgconnect.connect("faults", site=site.url, interactive=False)
    sg.find_one("Project", [])
    site.inject_fault(kind, count, rpc="read")

    with pytest.raises(error) as caught:
        sg.find("Project", [], ["name"])

    assert_names_the_site(caught.value, site, words, status)
    message = str(caught.value).lower()
    assert "try again" in message or "check the" in message
    site.clear_faults()
    assert len(sg.find("Project", [], ["name"])) == 3  # the same connection recovers


def test_one_502_is_retried_transparently(saved_site):
    site = saved_site
    sg = sgconnect.connect("faults", site=site.url, interactive=False)
    sg.find_one("Project", [])
    site.inject_fault("http_502", 1, rpc="read")
    site.clear_journal()

    assert len(sg.find("Project", [], ["name"])) == 3
    assert [(e.rpc, e.status, e.fault) for e in site.journal] == [
        ("read", 502, "http_502"),
        ("read", 200, None),
    ]


def test_slow_site_beyond_the_timeout_is_unreachable_then_recovers(saved_site, short_timeout):
    site = saved_site
    sg = sgconnect.connect("faults", site=site.url, interactive=False)
    sg.find_one("Project", [])
    site.inject_fault("slow", 1, rpc="read", delay=3)

    with pytest.raises(sgconnect.SiteUnreachableError) as caught:
        sg.find("Project", [], ["name"])

    message = str(caught.value)
    assert caught.value.site == site.url
    assert f"{site.url} did not answer read within 1 s (timeout)" in message
    assert "raise the timeout" in message
    assert len(sg.find("Project", [], ["name"])) == 3


REST_FAULTS = [
    ("http_500", 1, sgconnect.SiteResponseError, "with HTTP 500 and text/html", 500),
    ("http_502", 1, sgconnect.SiteResponseError, "with HTTP 502 and text/html", 502),
    ("http_503", 1, sgconnect.SiteResponseError, "with HTTP 503 and text/html", 503),
    ("html", 1, sgconnect.SiteResponseError, "with HTTP 200 and text/html", 200),
    ("close", 2, sgconnect.SiteUnreachableError, "for the REST API (RemoteDisconnected)", None),
    ("slow", 1, sgconnect.SiteUnreachableError, "within 1 s (timeout)", None),
]


@pytest.mark.parametrize(("kind", "count", "error", "words", "status"), REST_FAULTS)
def test_rest_fault_is_a_typed_error_then_the_next_call_works(
    saved_site, short_timeout, kind, count, error, words, status
):
    site = saved_site
    rest = sgconnect.rest_session("faults", site=site.url, interactive=False)
    rest.get("/entity/projects")
    site.inject_fault(kind, count, path_prefix="/api/v1/entity", delay=3)

    with pytest.raises(error) as caught:
        rest.get("/entity/projects")

    assert_names_the_site(caught.value, site, words, status)
    site.clear_faults()
    assert len(rest.get("/entity/projects")["data"]) == 3


# -- the session expires in the middle of a tool's work -------------------------------------------


def test_expiry_in_the_middle_of_work_loses_no_call(make_local_site):
    """20 finds; after the 10th the session expires and another process saves a new one."""
    site = make_local_site("default")
    save_session(site, "alice")
    sg = sgconnect.connect("long job", site=site.url, interactive=False)
    results = []
    site.clear_journal()
    for index in range(20):
        if index == 10:
            site.expire_sessions()
            save_session(site, "alice")  # another process renewed and saved
            saved = cache_bytes(site.url)
        results.append(sg.find("Project", [["id", "greater_than", 70 + index % 3]], ["name"]))

    assert [len(found) for found in results] == [3 - index % 3 for index in range(20)]
    reads = [(e.status, e.error_code) for e in site.journal if e.rpc == "read"]
    assert reads.count((200, 102)) == 1  # one call was refused, then retried and completed
    assert len(reads) == 21
    assert [e for e in site.journal if e.rpc == "get_session_token"] == []
    credential = sgconnect.broker().credential(site.url)
    assert credential.renewals == 0  # the calls completed with the session another process saved
    assert cache_bytes(site.url) == saved  # adopted as it was, not rewritten


# -- cancelled logins leave nothing behind ----------------------------------------------------


def test_cancelled_console_login_saves_nothing_and_the_next_call_asks_again(
    make_local_site, isolated_shotgun_home
):
    site = make_local_site("default", app_session_launcher=False)
    # tk-core's console: "Password (empty to abort)"; then the next call logs in for real.
    child = run_child(
        LOGIN_CHILD,
        dict(SITE_URL=site.url, SGCONNECT_LOGIN_METHOD="password", AGAIN="1"),
        stdin=f"alice\n\nalice\n{site.password('alice')}\n",
    )
    assert child.returncode == 0, child.stderr
    state = child_state(child.stdout)
    name, message, where = state["error"]
    assert (name, where) == ("LoginCancelledError", site.url)
    assert f"Login to {site.url} cancelled; nothing was saved." in message
    assert "The next call asks again" in message
    assert state["credentials"] == 0  # the broker holds nothing
    assert "AGAIN 3 fresh" in child.stdout
    assert [e.rpc for e in site.journal if e.rpc == "get_session_token"] == ["get_session_token"]


def test_ctrl_c_during_a_headless_url_login_saves_nothing(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2", app_session_launcher=True)
    child = start_child(
        LOGIN_CHILD, dict(SITE_URL=site.url, SGCONNECT_LOGIN_METHOD="url"), stdin=subprocess.DEVNULL
    )
    try:
        shown = ""
        while "waiting for approval" not in shown:
            line = child.stderr.readline()
            assert line, f"the child ended before waiting for approval:\n{shown}"
            shown += line
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
    finally:
        child.kill()
    assert child.returncode == 0, shown + err
    state = child_state(out)
    name, message, where = state["error"]
    assert (name, where) == ("LoginCancelledError", site.url)
    assert f"Login to {site.url} cancelled (Ctrl-C); nothing was saved." in message
    assert state["credentials"] == 0
    assert cache_files(isolated_shotgun_home) == []


CANCELLED_RENEWAL_CHILD = CHILDREN / "faults_cancelled_renewal.py"


def test_cancelled_renewal_keeps_the_cache_and_the_next_call_asks_again(make_local_site):
    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    child = start_child(CANCELLED_RENEWAL_CHILD, dict(SITE_URL=site.url))
    try:
        assert child.stdout.readline().strip() == "READY"
        site.expire_sessions()
        # go; an empty password (cancel); then the password the next call's prompt reads.
        out, err = child.communicate(f"\n\n{site.password('alice')}\n", timeout=CHILD_TIMEOUT)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert f"FIRST LoginCancelledError {site.url} |" in out, err
    assert f"Renewal of alice's session on {site.url} was cancelled" in out
    assert "The next call asks again" in out
    assert "CACHE unchanged" in out
    assert "SECOND 3 1" in out


# -- a corrupt or unreadable session cache ---------------------------------------------------


@pytest.fixture
def two_sites(make_local_site):
    """Site A (127.0.0.1) and the user's other site B (reached as localhost: its own cache)."""
    first = make_local_site("default", app_session_launcher=False)
    second = make_local_site("default")
    second_url = second.url.replace("127.0.0.1", "localhost")
    save_session(second, "carol", url=second_url)
    return first, second, second_url


CORRUPTIONS = {
    # A truncated write: valid YAML up to a point, with a real token in the broken part.
    "truncated": "current_user: alice\nusers:\n- login: alice\n  session_token: '{token}\n  se",
    "not-a-mapping": "- {token}\n- alice\n",
    "binary": "\x00\xff\xfe{token}",
}


@pytest.mark.parametrize("corruption", [*CORRUPTIONS, "directory"])
def test_corrupt_cache_is_no_saved_session_with_one_warning_other_sites_untouched(
    two_sites, corruption, caplog
):
    first, second, second_url = two_sites
    path = session_cache.site_cache_file(first.url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if corruption == "directory":  # unreadable: a folder where the file should be
        os.mkdir(path, 0o700)
    else:
        token = first.issue_session("alice")
        with open(path, "wb") as handle:
            text = CORRUPTIONS[corruption].format(token=token)
            handle.write(text.encode("utf-8", "surrogateescape"))
    first_before = None if corruption == "directory" else cache_bytes(first.url)
    second_before = cache_bytes(second_url)

    with caplog.at_level(logging.WARNING):
        with pytest.raises(sgconnect.LoginRequiredError) as caught:
            sgconnect.connect("corrupt", site=first.url, interactive=False)

    assert caught.value.site == first.url and "no saved session" in str(caught.value)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert path in warnings[0] and "Ignoring the tk-core session cache file" in warnings[0]
    for secret in first.secrets:
        assert secret not in warnings[0]
    if first_before is not None:
        assert cache_bytes(first.url) == first_before  # sgconnect never writes it
        # tk-core logs a broken file line by line at DEBUG: its token is redacted from logs.
        assert redaction.redact(f"line: {token}") == f"line: {redaction.REDACTED}"
    assert cache_bytes(second_url) == second_before
    assert first.journal == []
    sg = sgconnect.connect("other site", site=second_url, interactive=False)
    assert len(sg.find("Project", [], ["name"])) == 3


def test_corrupt_cache_then_a_console_login_writes_a_valid_cache(two_sites):
    import yaml

    first, second, second_url = two_sites
    path = session_cache.site_cache_file(first.url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(CORRUPTIONS["truncated"].format(token=first.issue_session("alice")))
    second_before = cache_bytes(second_url)

    child = run_child(
        LOGIN_CHILD,
        dict(SITE_URL=first.url, SGCONNECT_LOGIN_METHOD="password"),
        stdin=f"alice\n{first.password('alice')}\n",
    )

    assert child.returncode == 0, child.stderr
    assert child_state(child.stdout)["error"] is None
    with open(path, "rb") as handle:
        document = yaml.safe_load(handle)
    assert document["current_user"] == "alice"
    assert cache_bytes(second_url) == second_before
    assert session_cache.read_saved_session(first.url).login == "alice"


# -- bad input never reaches the network -----------------------------------------------------


@contextmanager
def no_network():
    """Record (and refuse) every outgoing connection attempt of this process."""
    attempts: list = []
    original = socket.socket.connect, socket.socket.connect_ex

    def refuse(self, address):
        attempts.append(address)
        raise ConnectionRefusedError("test guard: no network for bad input")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = original


def test_the_network_guard_sees_connection_attempts(saved_site):
    with no_network() as attempts:
        # Inside the guard: the hand-out opens its socket ahead (transport/api3.py preconnect).
        sg = sgconnect.connect("guard", site=saved_site.url, interactive=False)
        with pytest.raises(sgconnect.SiteUnreachableError):
            sg.find_one("Project", [])
    assert attempts and attempts[0][0] == "127.0.0.1"


CONTROL_CHARS = st.sampled_from(["\n", "\r", "\x00", "\x1b", "\t", "\x7f", "\u2028", "\x85"])


@st.composite
def bad_sites(draw, url: str):
    """Site URLs aimed at ``url`` (the local site) that must be refused."""
    host_port = url.split("://", 1)[1]
    kind = draw(st.sampled_from(["scheme", "credentials", "control", "space", "secret", "empty"]))
    if kind == "scheme":
        scheme = draw(st.sampled_from(["javascript:", "file://", "ftp://", "data:", "ws://"]))
        return scheme + draw(st.sampled_from([host_port, "alert(1)", "/etc/passwd"]))
    if kind == "credentials":
        user = draw(st.text("abcxyz", min_size=1, max_size=5))
        return f"http://{user}:{draw(st.text('pw123', max_size=5))}@{host_port}"
    if kind == "control":
        at = draw(st.integers(1, len(url) - 1))
        return url[:at] + draw(CONTROL_CHARS) + url[at:]
    if kind == "space":
        host, port = host_port.split(":")
        return f"http://{host[:3]} {host[3:]}:{port}"
    if kind == "secret":
        word = draw(st.sampled_from(["session_token", "password", "key", "auth"]))
        return f"{url}/page/1?{word}=abc"
    return draw(st.sampled_from(["", " ", "\n", "https://", "http://:80"]))


@st.composite
def bad_purposes(draw):
    kind = draw(st.sampled_from(["control", "empty", "long", "type"]))
    if kind == "control":
        text = draw(st.text(min_size=0, max_size=20))
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(CONTROL_CHARS) + text[at:]
    if kind == "empty":
        return draw(st.sampled_from(["", " ", "   "]))
    if kind == "long":
        return "p" * draw(st.integers(201, 400))
    return draw(st.sampled_from([None, 42, b"bytes", ["list"]]))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_bad_sites_and_purposes_are_refused_before_any_network(saved_site, data):
    site = saved_site
    bad_site = data.draw(bad_sites(site.url), label="site")
    good_purpose = data.draw(st.sampled_from(["report", "maya publish"]), label="purpose")
    bad_purpose = data.draw(bad_purposes(), label="bad purpose")
    site.clear_journal()
    with no_network() as attempts:
        with pytest.raises(sgconnect.InvalidSiteError) as site_error:
            sgconnect.connect(good_purpose, site=bad_site, interactive=False)
        with pytest.raises(sgconnect.InvalidSiteError):
            sgconnect.rest_session(good_purpose, site=bad_site, interactive=False)
        with pytest.raises(sgconnect.InvalidPurposeError) as purpose_error:
            sgconnect.connect(bad_purpose, site=site.url, interactive=False)
    assert attempts == []
    assert site.journal == []
    assert "Invalid ShotGrid site" in str(site_error.value)
    assert "Invalid purpose" in str(purpose_error.value)
    assert site.url.split("://")[1] not in str(site_error.value)  # the URL is never echoed


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_sloppy_site_urls_are_normalised_and_reach_only_the_site(saved_site, data):
    site = saved_site
    scheme, host_port = site.url.split("://", 1)
    sloppy = (
        data.draw(st.sampled_from([scheme, scheme.upper(), "Http"]))
        + "://"
        + data.draw(st.sampled_from([host_port, host_port.upper()]))
        + data.draw(st.sampled_from(["", "/", "/page/12", "/detail/Shot/3#x", "/?x=1"]))
    )
    sloppy = (
        data.draw(st.sampled_from(["", " ", "\t"]))
        + sloppy
        + data.draw(st.sampled_from(["", " ", "\n"]))
    )
    sg = sgconnect.connect("sloppy", site=sloppy, interactive=False)
    assert sg.base_url == site.url
    assert sgconnect.current_user(sloppy).site == site.url
    assert sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])["name"] == "Sintel"
