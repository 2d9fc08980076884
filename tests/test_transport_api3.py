"""The api3 transport on the wire: every fault of the issue "One hardened transport on every path"
against the local site, with the real shotgun_api3 under sgconnect's connections.

Each test asserts the typed error, what reached which host (the site's journal, the foreign
origin's journal), the entities written, and elapsed time only as bounds that cannot flake.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

import sgconnect
from sgconnect.connection import ScriptConnection, SessionConnection
from sgconnect.credentials import ScriptCredential, SessionCredential
from sgconnect.errors import (
    SgConnectError,
    SiteRedirectError,
    SiteResponseError,
    SiteTimeoutError,
    WriteOutcomeUnknownError,
)
from sgconnect.transport import api3, wire

SCRIPT = "sgconnect_farm"
STALL = 30.0  # seconds a stalled request is held: every bound below is far under it


def session_sg(site, login: str = "alice", timeout: float | None = 30.0) -> SessionConnection:
    credential = SessionCredential(site.url, login, site.issue_session(login), source="test")
    return SessionConnection(credential, interactive=False, timeout_secs=timeout)


def script_sg(site, timeout: float | None = 30.0) -> ScriptConnection:
    credential = ScriptCredential(site.url, SCRIPT, site.script_key(SCRIPT))
    return ScriptConnection(credential, timeout_secs=timeout)


def rpcs(site, name: str) -> list:
    return [entry for entry in site.journal if entry.rpc == name]


def secrets_in(text: str, site) -> list[str]:
    return [secret for secret in site.secrets if secret and secret in text]


@pytest.fixture
def site(make_local_site):
    return make_local_site("default")


@pytest.fixture
def quick_keepalive(monkeypatch):
    monkeypatch.setenv("SGCONNECT_KEEPALIVE_SECS", "0.3")


# -- 1. redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("make", [session_sg, script_sg], ids=["session", "script"])
def test_a_redirect_is_never_followed_and_names_only_the_origin(site, make, status):
    sg = make(site)
    sg.find("Project", [], ["name"])  # capabilities fetched, socket open
    site.inject_fault("redirect", rpc="read", status=status)
    with pytest.raises(SiteRedirectError) as caught:
        sg.find("Project", [], ["name"])
    error = caught.value
    assert error.status == status and error.site == site.url
    foreign_origin = site.foreign_url.rstrip("/")
    assert error.location_origin == foreign_origin
    assert foreign_origin in str(error) and "/api3" not in str(error)
    assert site.foreign_journal == []  # not one byte went to the other origin
    assert secrets_in(str(error), site) == []
    # The site behaves again: the next call works on the same connection object.
    assert sg.find("Project", [], ["name"])


def test_the_expired_sso_claims_302_still_means_renewal(make_local_site):
    site = make_local_site("saml2", claims_lifetime=3600)
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault(
        "redirect", rpc="read", status=302, location=f"{site.url}/saml/saml_login_request"
    )
    # Non-interactive and nothing to adopt: the 302 is a rejection (LoginRequiredError), not a
    # redirect error.
    with pytest.raises(sgconnect.LoginRequiredError):
        sg.find("Project", [], ["name"])


# -- 2. deadlines ---------------------------------------------------------------------------------


def test_a_trickling_server_cannot_stretch_the_deadline(site):
    sg = session_sg(site, timeout=1.0)
    sg.find("Project", [], ["name"])
    site.inject_fault("byte_at_a_time", rpc="read", delay=0.5)
    started = time.monotonic()
    with pytest.raises(SiteTimeoutError) as caught:
        sg.find("Project", [], ["name"])
    elapsed = time.monotonic() - started
    # Per-read timeouts would take (reply bytes) x 0.5 s, minutes; the deadline ends it.
    assert elapsed < 20, elapsed
    assert "within 1 s" in str(caught.value) and site.url in str(caught.value)


def test_a_stalled_site_times_out_as_a_typed_error(site):
    sg = script_sg(site, timeout=1.0)
    sg.find("Project", [], ["name"])
    site.inject_fault("stall", rpc="read", delay=60)
    started = time.monotonic()
    with pytest.raises(SiteTimeoutError):
        sg.find("Project", [], ["name"])
    assert time.monotonic() - started < 30  # returned before the 60 s stall ended


# -- 3. idempotency -------------------------------------------------------------------------------


def test_a_silently_dropped_idle_socket_costs_no_timeout(site, quick_keepalive):
    sg = session_sg(site, timeout=60.0)
    site.inject_fault("drop_idle", rpc="read")
    sg.find("Project", [], ["name"])  # answered, then the flow is forgotten (no FIN, no RST)
    time.sleep(0.5)  # idle longer than the keep-alive limit (0.3 s here; 2 s by default)
    started = time.monotonic()
    assert sg.find("Project", [], ["name"])
    assert time.monotonic() - started < 30  # far from the 60 s timeout
    connections = [entry.connection for entry in rpcs(site, "read")]
    assert connections[0] != connections[-1]  # a fresh socket


def test_a_slow_read_after_an_idle_second_is_sent_once_and_answered(site):
    """A reused socket is not probed: a query slower than any probe window (heavy finds take
    seconds on real sites) is answered, and reaches the site once."""
    sg = session_sg(site, timeout=30.0)
    sg.find("Project", [], ["name"])
    time.sleep(wire.STALE_IDLE_SECS + 0.2)
    site.inject_fault("slow", rpc="read", delay=2.5)
    reads = len(rpcs(site, "read"))
    assert sg.find("Project", [], ["name"])
    assert len(rpcs(site, "read")) == reads + 1
    assert site.counters["tcp_connections"] == 1


def test_a_write_after_an_idle_second_goes_on_a_fresh_socket(site):
    sg = session_sg(site, timeout=60.0)
    site.inject_fault("drop_idle", rpc="read")
    sg.find("Project", [], ["name"])  # answered, then the flow is forgotten (no FIN, no RST)
    time.sleep(wire.STALE_IDLE_SECS + 0.2)
    started = time.monotonic()
    sg.create("Project", {"name": "After A Second"})  # no error: written once
    assert time.monotonic() - started < 30
    assert len(sg.find("Project", [["name", "is", "After A Second"]], ["name"])) == 1
    assert len(rpcs(site, "create")) == 1


def test_a_read_reconnects_once_at_once_on_a_reset_socket(site):
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    before = api3.stats()["reconnects"]
    site.inject_fault("close", rpc="read")  # the reused socket is closed without an answer
    assert sg.find("Project", [], ["name"])
    assert api3.stats()["reconnects"] == before + 1
    assert len(rpcs(site, "read")) == 3


def test_a_lost_write_reply_is_never_resent(site):
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault("lose_reply", rpc="create")
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        sg.create("Project", {"name": "Lost Reply"})
    message = str(caught.value)
    assert "may have been carried out" in message and "find the entity" in message
    assert not isinstance(caught.value, sgconnect.SiteUnreachableError)  # not "just retry"
    assert len(sg.find("Project", [["name", "is", "Lost Reply"]], ["name"])) == 1
    assert len(rpcs(site, "create")) == 1


@pytest.mark.parametrize("kind", ["http_502", "stall"])
def test_a_write_is_sent_once_whatever_the_fault(site, kind):
    sg = script_sg(site, timeout=1.0)
    sg.find("Project", [], ["name"])
    site.inject_fault(kind, rpc="create", count=3, delay=30)
    with pytest.raises(WriteOutcomeUnknownError):
        sg.create("Project", {"name": "Once"})
    assert site.pending_faults == 2  # sent once: shotgun_api3 would have re-sent a 502


# -- 4. typed replies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, options, words",
    [
        ("wrong_content_type", {"content_type": "text/html"}, "text/html instead of"),
        ("wrong_content_type", {"content_type": ""}, "no Content-Type"),
        ("bad_utf8", {}, "not UTF-8"),
        ("truncated", {}, "truncated reply"),
        ("bad_status_line", {}, "bad HTTP status line"),
        ("huge_body", {"size": 3 * 1024 * 1024}, "MiB cap"),
        ("html", {}, "text/html"),
    ],
)
def test_a_malformed_reply_is_a_site_response_error(site, monkeypatch, kind, options, words):
    monkeypatch.setenv("SGCONNECT_MAX_REPLY_MIB", "1")
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault(kind, rpc="read", **options)
    with pytest.raises(SiteResponseError) as caught:
        sg.find("Project", [], ["name"])
    assert words in str(caught.value) and site.url in str(caught.value)
    assert secrets_in(str(caught.value), site) == []
    assert sg.find("Project", [], ["name"])  # and the next call works


@pytest.mark.parametrize(
    "kind, options",
    [
        ("wrong_content_type", {"content_type": "text/html"}),
        ("truncated", {}),
        ("huge_body", {"size": 3 * 1024 * 1024}),
        ("bad_utf8", {}),
        ("html", {}),
    ],
)
def test_a_malformed_reply_to_a_write_is_an_unknown_outcome(site, monkeypatch, kind, options):
    """The site may have carried the write out before its reply was spoiled: never a plain
    SiteResponseError (a caller retrying those would write twice), and never re-sent."""
    monkeypatch.setenv("SGCONNECT_MAX_REPLY_MIB", "1")
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault(kind, rpc="create", **options)
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        sg.create("Project", {"name": f"Spoiled {kind}"})
    error = caught.value
    assert not isinstance(error, SiteResponseError)
    assert error.method == "create" and "may have been carried out" in str(error)
    assert site.url in str(error) and secrets_in(str(error), site) == []
    assert len(rpcs(site, "create")) == 1  # sent once
    written = sg.find("Project", [["name", "is", f"Spoiled {kind}"]], ["name"])
    assert len(written) == (0 if kind in ("bad_utf8", "html") else 1)  # LocalSite's faults


def test_repeated_gateway_errors_on_a_read_are_reported_as_such(site):
    sg = session_sg(site, timeout=2.0)
    sg.find("Project", [], ["name"])
    site.inject_fault("http_502", rpc="read", count=50)
    with pytest.raises(SiteResponseError) as caught:
        sg.find("Project", [], ["name"])
    error = caught.value
    assert not isinstance(error, WriteOutcomeUnknownError)
    assert error.status == 502 and "HTTP 502" in str(error)
    assert sum(1 for entry in site.journal if entry.fault == "http_502") >= 1


def test_mislabelled_json_is_a_site_response_error(site):
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault("html", rpc="read")
    site.clear_faults()
    site.inject_fault("wrong_content_type", rpc="read", content_type="application/json")
    site.inject_fault("html", rpc="read")
    # the first fault gives real JSON (labelled JSON): accepted
    assert sg.find("Project", [], ["name"])
    with pytest.raises(SiteResponseError):
        sg.find("Project", [], ["name"])


# -- 5. fork safety -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_never_uses_its_parents_socket(site):
    sg = session_sg(site)
    names = sorted(project["name"] for project in sg.find("Project", [], ["name"]))
    for _ in range(4):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                found = [sg.find_one("Project", [["name", "is", name]], ["name"]) for name in names]
                os.write(write_end, json.dumps([p["name"] for p in found]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        mine = [sg.find_one("Project", [["name", "is", name]], ["name"])["name"] for name in names]
        os.waitpid(pid, 0)
        with os.fdopen(read_end) as pipe:
            theirs = json.loads(pipe.read())
        assert mine == names and theirs == names
    connections = {entry.connection for entry in site.journal}
    assert len(connections) >= 5  # the parent's, and one per child


# -- 6. one socket per thread and site, capabilities once -----------------------------------------


@pytest.mark.tkcore
def test_threads_times_purposes_share_one_socket_per_thread_and_one_info(
    make_local_site, monkeypatch
):
    from sgconnect.testing import save_session

    site = make_local_site("default")
    save_session(site, "alice")
    monkeypatch.setenv("SGCONNECT_SITE", site.url)
    site.reset_counters()
    site.clear_journal()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(10)
            for purpose in ("publish", "review", "loader"):
                sg = sgconnect.connect(purpose, interactive=False)
                sg.find("Project", [], ["name"])
                sg.find_one("HumanUser", [["login", "is", "alice"]], ["login"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert site.counters["tcp_connections"] == 8
    assert len(rpcs(site, "info")) <= 1  # 0 when the capabilities file was fresh
    assert len(rpcs(site, "read")) == 8 * 3 * 2


def test_capabilities_are_seeded_from_a_private_cache_file(site):
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    assert len(rpcs(site, "info")) == 1
    path = api3.capabilities_cache_file(site.url)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sgconnect.reset()  # a new process, as far as the in-memory cache knows
    site.clear_journal()
    session_sg(site).find("Project", [], ["name"])
    assert rpcs(site, "info") == []  # one round trip less
    os.chmod(path, 0o644)  # readable by others: not trusted
    sgconnect.reset()
    session_sg(site).find("Project", [], ["name"])
    assert len(rpcs(site, "info")) == 1


def test_the_capabilities_file_has_a_time_limit(site, monkeypatch):
    session_sg(site).find("Project", [], ["name"])
    path = api3.capabilities_cache_file(site.url)
    old = time.time() - 7200
    os.utime(path, (old, old))
    sgconnect.reset()
    site.clear_journal()
    session_sg(site).find("Project", [], ["name"])
    assert len(rpcs(site, "info")) == 1
    monkeypatch.setenv("SGCONNECT_CAPABILITIES_TTL_SECS", "0")
    sgconnect.reset()
    session_sg(site).find("Project", [], ["name"])
    assert len(rpcs(site, "info")) == 2


@pytest.mark.tkcore
def test_the_per_thread_hand_out_cache_is_bounded(make_local_site, monkeypatch):
    from sgconnect import handouts
    from sgconnect.testing import save_session

    site = make_local_site("default")
    save_session(site, "alice")
    monkeypatch.setattr(handouts, "MAX_HANDOUTS_PER_THREAD", 4)
    first = sgconnect.connect("p0", site.url, interactive=False)
    for number in range(1, 10):
        sgconnect.connect(f"p{number}", site.url, interactive=False)
    assert sgconnect.connect("p9", site.url, interactive=False) is not None
    assert sgconnect.connect("p0", site.url, interactive=False) is not first  # evicted


# -- 7. attachments -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [session_sg, script_sg], ids=["session", "script"])
def test_download_attachment_without_handing_out_the_token(site, make, tmp_path):
    sg = make(site)
    project = sg.find_one("Project", [], ["name"])
    source = tmp_path / "plate.txt"
    source.write_bytes(b"frame data " * 100)
    attachment_id = sg.upload("Project", project["id"], str(source))
    attachment = sg.find_one("Attachment", [["id", "is", attachment_id]], ["this_file"])
    assert sg.download_attachment(attachment["this_file"]) == source.read_bytes()
    target = tmp_path / "copy.txt"
    assert sg.download_attachment(attachment_id, file_path=str(target)) == str(target)
    assert target.read_bytes() == source.read_bytes()
    assert sg.get_attachment_download_url(attachment["this_file"]).startswith(site.url)
    assert sg.config.session_token is None
    with pytest.raises(SgConnectError):
        sg.get_session_token()
    with pytest.raises(SgConnectError):
        sg.get_auth_cookie_handler()
    assert [e.auth for e in site.journal if e.path.startswith("/file_serve")] == ["cookie"] * 2


def test_a_download_redirected_to_storage_carries_no_cookie(site):
    sg = session_sg(site)
    site.inject_fault("redirect", path_prefix="/file_serve", status=302)
    data = sg.download_attachment({"url": f"{site.url}/file_serve/attachment/1", "name": "x"})
    assert json.loads(data) == {"foreign": True}
    (request,) = site.foreign_journal
    assert "cookie" not in {name.lower() for name in request.headers}
    assert all(secret not in json.dumps(request.headers) for secret in site.secrets)


# -- tk-core's password login ---------------------------------------------------------------------


def _password_login(site, home, stdin: str):
    from sgconnect.testing import run_python

    code = f"""
        import sys
        from sgconnect.cli import main
        sys.exit(main(["login", "--site", {site.url!r}, "--method", "password"]))
    """
    return run_python(code, {"SHOTGUN_HOME": str(home)}, stdin=stdin)


@pytest.mark.tkcore
@pytest.mark.parametrize("status", [302, 303, 307, 308])
def test_the_password_never_follows_a_redirect(make_local_site, tmp_path, status):
    site = make_local_site("default", app_session_launcher=False)
    password = site.password("carol")
    site.inject_fault("redirect", rpc="get_session_token", status=status, count=5)
    done = _password_login(site, tmp_path, f"carol\n{password}\n")
    assert done.returncode != 0, done.stdout + done.stderr
    assert site.foreign_journal == []  # not one byte of the password went to the other origin
    assert password not in done.stdout + done.stderr
    assert [e.rpc for e in site.journal].count("get_session_token") >= 1


@pytest.mark.tkcore
def test_a_redirecting_site_fails_before_the_password_is_asked(make_local_site, tmp_path):
    site = make_local_site("default", app_session_launcher=False)
    site.inject_fault("redirect", path_prefix="/api3/json", status=308, count=10)
    done = _password_login(site, tmp_path, f"carol\n{site.password('carol')}\n")
    assert done.returncode != 0
    assert "redirect (HTTP 308)" in done.stderr and site.foreign_url.rstrip("/") in done.stderr
    assert "get_session_token" not in [e.rpc for e in site.journal]
    assert site.foreign_journal == []


def test_the_capabilities_folders_are_private_under_a_loose_umask(site):
    previous = os.umask(0o022)
    try:
        session_sg(site).find("Project", [], ["name"])
    finally:
        os.umask(previous)
    path = api3.capabilities_cache_file(site.url)
    server_info = os.path.dirname(path)
    for folder in (server_info, os.path.dirname(server_info)):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder


def test_an_idle_socket_the_site_closed_is_replaced_before_sending(make_local_site):
    site = make_local_site("default", keep_alive_timeout=0.2)
    sg = script_sg(site)
    sg.find("Project", [], ["name"])
    time.sleep(0.6)  # the site closed the idle connection (FIN): the socket is readable
    before = api3.stats()
    assert sg.find("Project", [], ["name"])
    after = api3.stats()
    assert after["stale"] == before["stale"] + 1  # seen before sending
    assert after["reconnects"] == before["reconnects"]  # nothing had to be sent twice


def _upload(sg, tmp_path) -> int:
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    return sg.upload("Project", project["id"], str(source))


def test_a_lost_upload_reply_is_never_resent(site, tmp_path):
    sg = session_sg(site)
    sg.find("Project", [], ["name"])
    site.inject_fault("lose_reply", path_prefix="/upload", count=3)
    with pytest.raises(WriteOutcomeUnknownError):
        _upload(sg, tmp_path)
    assert site.pending_faults == 2  # sent once (shotgun_api3 would try three times)
    assert len(sg.find("Attachment", [], ["id"])) == 1


def test_an_upload_never_follows_a_redirect(site, tmp_path):
    sg = script_sg(site)
    site.inject_fault("redirect", path_prefix="/upload", status=307)
    with pytest.raises(SiteRedirectError):
        _upload(sg, tmp_path)
    assert site.foreign_journal == []


@pytest.mark.tkcore
def test_a_console_renewal_never_sends_the_password_through_a_redirect(make_local_site, tmp_path):
    from sgconnect.testing import run_python, save_session

    site = make_local_site("default", app_session_launcher=False)
    password = site.password("alice")
    save_session(site, "alice")
    site.expire_sessions()
    site.inject_fault("redirect", rpc="get_session_token", status=308, count=10)
    code = """
        import os, sgconnect
        sg = sgconnect.connect("renewal", os.environ["SITE_URL"], interactive=True)
        try:
            sg.find("Project", [], ["name"])
            print("RESULT ok")
        except Exception as exc:
            print("RESULT", type(exc).__name__)
    """
    done = run_python(code, {"SITE_URL": site.url}, stdin=f"{password}\n" * 3, timeout=60)
    assert "RESULT" in done.stdout, done.stdout + done.stderr
    assert "RESULT ok" not in done.stdout
    assert site.foreign_journal == []  # the password never went to the other origin
    assert "get_session_token" in [entry.rpc for entry in site.journal]  # tk-core did try
    assert password not in done.stdout + done.stderr


# -- replies no ShotGrid site sends: a raw server on 127.0.0.1 -----------------------------------

INFO_REPLY = json.dumps({"results": {"version": [8, 50, 0], "full_version": [8, 50, 0, 1]}})


def _raw_site(reply: bytes):
    """A one-thread HTTP server on 127.0.0.1 that answers every request with ``reply`` bytes
    (the api3 ``info`` first, so capabilities load); returns (url, stop)."""
    import socket as socket_module

    listener = socket_module.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)

                def recv(conn=conn) -> bytes:
                    while not stop.is_set():
                        try:
                            return conn.recv(65536)
                        except TimeoutError:
                            continue
                    raise ConnectionError("stopped")

                data = b""
                try:
                    while not stop.is_set():
                        while b"\r\n\r\n" not in data:
                            chunk = recv()
                            if not chunk:
                                raise ConnectionError
                            data += chunk
                        head, _, rest = data.partition(b"\r\n\r\n")
                        length = int(
                            next(
                                (
                                    line.split(b":")[1]
                                    for line in head.split(b"\r\n")
                                    if line.lower().startswith(b"content-length")
                                ),
                                b"0",
                            )
                        )
                        while len(rest) < length:
                            rest += recv()
                        body, data = rest[:length], rest[length:]
                        if b'"info"' in body:
                            payload = INFO_REPLY.encode()
                            conn.sendall(
                                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                            )
                        else:
                            conn.sendall(reply)
                except (OSError, ConnectionError, ValueError):
                    pass
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(5)

    return f"http://127.0.0.1:{listener.getsockname()[1]}", close


def _reply(body: bytes, headers: bytes = b"Content-Type: application/json\r\n") -> bytes:
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (headers, len(body), body)


@pytest.mark.parametrize(
    "reply, words",
    [
        (_reply(b"{}", b"X-Long: " + b"a" * 70000 + b"\r\n"), "over-long header line"),
        (_reply(b"[1, 2]"), "JSON of an unexpected shape"),
        (_reply(b"{not json"), "invalid JSON"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n" + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 3 + b"0\r\n\r\n",
            "MiB cap",
        ),
    ],
    ids=["long-header", "list", "not-json", "chunked-over-cap"],
)
def test_replies_no_site_should_send_are_site_response_errors(monkeypatch, reply, words):
    monkeypatch.setenv("SGCONNECT_MAX_REPLY_MIB", "2")
    url, close = _raw_site(reply)
    try:
        credential = ScriptCredential(url, SCRIPT, "raw-site-test-key")
        sg = ScriptConnection(credential, timeout_secs=10)
        with pytest.raises(SiteResponseError) as caught:
            sg.find("Project", [], ["name"])
        assert words in str(caught.value) and url in str(caught.value)
    finally:
        close()


def test_over_tls_one_socket_serves_the_calls(make_local_site, monkeypatch):
    site = make_local_site("default", tls=True)
    monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
    sg = session_sg(site)
    api3.preconnect(site.url, 30)  # as a hand-out does: the TLS session tickets arrive idle
    time.sleep(0.3)
    for _ in range(3):
        assert sg.find("Project", [], ["name"])
    assert site.counters["tcp_connections"] == 1 and site.counters["tls_handshakes"] == 1


@pytest.mark.parametrize("fault, words", [("bad_utf8", "not UTF-8"), ("truncated", "truncated")])
@pytest.mark.parametrize("how", ["upload", "upload_thumbnail"])
def test_an_unreadable_upload_reply_is_an_unknown_outcome(site, tmp_path, how, fault, words):
    """The site saved the upload, then its reply could not be read: never a plain
    SiteResponseError ("try again" would upload twice)."""
    sg = script_sg(site)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "thumb.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    site.inject_fault(fault, path_prefix="/upload")
    with pytest.raises(WriteOutcomeUnknownError, match=words) as caught:
        getattr(sg, how)("Project", project["id"], str(source))
    assert site.url in str(caught.value) and "may have been carried out" in str(caught.value)
    assert len([e for e in site.journal if e.path.startswith("/upload")]) == 1


# -- proxy credentials -----------------------------------------------------------------------------


def _public_texts(value, seen=None, depth=0):
    """Every text reachable through public attributes, dict values and sequence items."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    if isinstance(value, (str, bytes)):
        yield value if isinstance(value, str) else value.decode("latin-1")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _public_texts(key, seen, depth + 1)
            yield from _public_texts(item, seen, depth + 1)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _public_texts(item, seen, depth + 1)
        return
    for name in dir(value):
        if name.startswith("_"):
            continue
        try:
            item = getattr(value, name)
        except Exception:  # noqa: BLE001 - a property that refuses (get_session_token...)
            continue
        if callable(item) and not isinstance(item, (str, bytes)):
            continue
        yield from _public_texts(item, seen, depth + 1)


@pytest.mark.parametrize("make", ["session", "script"])
def test_the_proxy_password_stays_off_public_attributes_and_still_authenticates(
    site, make, tmp_path
):
    from sgconnect.testing import ForwardProxy

    password = "api3-proxy-pass-7"
    with ForwardProxy(auth=("pipeline", password)) as proxy:
        setting = f"pipeline:{password}@127.0.0.1:{proxy.port}"
        if make == "session":
            credential = SessionCredential(
                site.url, "alice", site.issue_session("alice"), source="test"
            )
            sg = SessionConnection(
                credential, interactive=False, timeout_secs=10, http_proxy=setting
            )
        else:
            credential = ScriptCredential(site.url, SCRIPT, site.script_key(SCRIPT))
            sg = ScriptConnection(credential, timeout_secs=10, http_proxy=setting)
        assert sg.config.proxy_pass is None and sg.config.proxy_user == "pipeline"
        assert [text for text in _public_texts(sg) if password in text] == []
        project = sg.find_one("Project", [], ["name"])
        source = tmp_path / "plate.txt"
        source.write_bytes(b"frame " * 50)
        attachment_id = sg.upload("Project", project["id"], str(source))
        assert sg.download_attachment(attachment_id) == source.read_bytes()
        # api3 (a tunnel), the upload form and the download all went through the proxy, with
        # its credentials
        assert proxy.journal and all(request.authorized for request in proxy.journal)
        assert {entry.path.split("/")[1] for entry in site.journal} >= {
            "api3",
            "upload",
            "file_serve",
        }
        assert [text for text in _public_texts(sg) if password in text] == []
        assert password not in repr(sg) + repr(vars(sg.config))


# -- transfers: bounded by progress, not as a whole ------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_big_upload_on_a_slow_link_takes_as_long_as_it_needs(
    make_local_site, monkeypatch, tmp_path, tls
):
    """8 MiB at 2 MiB/s with a 1 s timeout: each block goes out within the timeout, so the upload
    succeeds (one sendall of the whole body was cut at 1 s), and is sent once. What the system
    still buffers after the last block (up to its send buffer: 2 s here) does not count against
    the reply as if the site were silent."""
    site = make_local_site("default", tls=tls)
    if tls:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
    sg = script_sg(site, timeout=1.0)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "plate.mov"
    source.write_bytes(os.urandom(8 * 1024 * 1024))
    site.slow_request_bodies(2 * 1024 * 1024)
    started = time.monotonic()
    attachment_id = sg.upload("Project", project["id"], str(source))
    assert time.monotonic() - started > 2  # the link was slow: well past the 1 s timeout
    site.slow_request_bodies(None)
    assert sg.download_attachment(attachment_id) == source.read_bytes()
    assert len([e for e in site.journal if e.path.startswith("/upload")]) == 1


def _attachment(sg, tmp_path, size: int) -> tuple[int, bytes]:
    project = sg.find_one("Project", [], ["name"])
    source = tmp_path / "frames.bin"
    source.write_bytes(os.urandom(size))
    return sg.upload("Project", project["id"], str(source)), source.read_bytes()


def test_a_download_that_keeps_coming_is_not_cut_by_the_timeout(site, tmp_path):
    """1 MiB at 256 KiB/s with a 1 s timeout: about 4 s, and each 64 KiB well within the
    timeout."""
    sg = session_sg(site, timeout=1.0)
    attachment_id, data = _attachment(sg, tmp_path, 1024 * 1024)
    site.slow_replies(256 * 1024)
    target = tmp_path / "copy.bin"
    started = time.monotonic()
    assert sg.download_attachment(attachment_id, file_path=str(target)) == str(target)
    assert time.monotonic() - started > 2  # longer than the timeout, as a whole
    assert target.read_bytes() == data


@pytest.mark.parametrize("how", ["stalled", "trickled head", "trickled body"])
def test_a_download_that_stops_moving_ends_at_the_timeout(site, tmp_path, how):
    """A stall; a head trickled one byte per 0.5 s (the answer comes within the timeout as a
    whole); a body at 8 KiB/s (64 KiB would take 8 s: a trickle, not progress)."""
    sg = session_sg(site, timeout=1.0)
    attachment_id, _ = _attachment(sg, tmp_path, 512 * 1024)
    if how == "stalled":
        site.inject_fault("stall", path_prefix="/file_serve", delay=STALL)
    elif how == "trickled head":
        site.inject_fault("byte_at_a_time", path_prefix="/file_serve", delay=0.5)
    else:
        site.slow_replies(8 * 1024)
    started = time.monotonic()
    with pytest.raises(SiteTimeoutError, match="within 1 s"):
        sg.download_attachment(attachment_id)
    assert time.monotonic() - started < STALL / 3


def test_a_trickled_upload_reply_ends_at_the_timeout(site, tmp_path):
    """The body went out; the reply (head and body) must come as a whole within the timeout."""
    sg = script_sg(site, timeout=1.0)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    site.inject_fault("byte_at_a_time", path_prefix="/upload", delay=0.5)
    started = time.monotonic()
    with pytest.raises(WriteOutcomeUnknownError, match="before the timeout"):
        sg.upload("Project", project["id"], str(source))
    assert time.monotonic() - started < STALL / 3
    assert len([e for e in site.journal if e.path.startswith("/upload")]) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_an_upload_the_proxy_refuses_is_a_proxy_error(make_local_site, monkeypatch, tmp_path, tls):
    """A wrong proxy password: the proxy answers 407 (http) or refuses the tunnel (https), so
    nothing reached the site: a ProxyError naming the proxy, never "may have been carried out"."""
    from sgconnect.errors import ProxyError
    from sgconnect.testing import ForwardProxy

    site = make_local_site("default", tls=tls)
    if tls:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
    project = script_sg(site).find_one("Project", [], ["name"])  # capabilities known
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    with ForwardProxy(auth=("pipeline", "right-pass")) as proxy:
        credential = ScriptCredential(site.url, SCRIPT, site.script_key(SCRIPT))
        setting = f"pipeline:wrong-pass@127.0.0.1:{proxy.port}"
        sg = ScriptConnection(credential, timeout_secs=10, http_proxy=setting)
        uploads = len([e for e in site.journal if e.path.startswith("/upload")])
        with pytest.raises(ProxyError, match="407") as caught:
            sg.upload("Project", project["id"], str(source))
        assert caught.value.proxy == f"http://127.0.0.1:{proxy.port}"
        assert "wrong-pass" not in str(caught.value)
        assert len([e for e in site.journal if e.path.startswith("/upload")]) == uploads


@pytest.mark.parametrize("to_file", [True, False], ids=["file", "memory"])
def test_a_download_cut_short_is_a_site_response_error(site, tmp_path, to_file):
    sg = session_sg(site, timeout=5.0)
    attachment_id, _ = _attachment(sg, tmp_path, 256 * 1024)
    site.inject_fault("truncated", path_prefix="/file_serve")
    target = tmp_path / "copy.bin"
    with pytest.raises(SiteResponseError, match="cut short"):
        sg.download_attachment(attachment_id, file_path=str(target) if to_file else None)
    assert not target.exists()  # no half file left behind


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_download_the_proxy_refuses_is_a_proxy_error(make_local_site, monkeypatch, tmp_path, tls):
    from sgconnect.errors import ProxyError
    from sgconnect.testing import ForwardProxy

    site = make_local_site("default", tls=tls)
    if tls:
        monkeypatch.setenv("SHOTGUN_API_CACERTS", site.ca_path)
    attachment_id, _ = _attachment(session_sg(site), tmp_path, 1000)
    with ForwardProxy(auth=("pipeline", "right-pass")) as proxy:
        credential = SessionCredential(site.url, "alice", site.issue_session("alice"), source="t")
        sg = SessionConnection(
            credential,
            interactive=False,
            timeout_secs=10,
            http_proxy=f"pipeline:wrong-pass@127.0.0.1:{proxy.port}",
        )
        # storage on another origin: no cookie, so no api3 call first, and the download itself
        # meets the proxy
        url = {"url": f"{site.foreign_url.rstrip('/')}/storage/{attachment_id}", "name": "x"}
        with pytest.raises(ProxyError, match="407") as caught:
            sg.download_attachment(url)
        assert caught.value.proxy == f"http://127.0.0.1:{proxy.port}"
        assert "the attachment download" in str(caught.value)
        assert "wrong-pass" not in str(caught.value)


def test_an_opener_called_without_a_timeout_keeps_the_connections_timeout(site):
    """shotgun_api3 uploads to cloud storage through the connection's opener with no timeout
    (``opener.open(request)``): the connection's timeout_secs bounds each step all the same."""
    import urllib.request

    from sgconnect.transport import is_timeout

    sg = script_sg(site, timeout=1.0)
    site.inject_fault("stall", path_prefix="/file_serve", delay=STALL)
    opener = sg._build_opener(urllib.request.HTTPHandler)
    request = urllib.request.Request(f"{site.url}/file_serve/attachment/1", data=b"x" * 200_000)
    started = time.monotonic()
    with pytest.raises(OSError) as caught:  # urllib's URLError, or the reply's TimeoutError
        opener.open(request)
    assert is_timeout(getattr(caught.value, "reason", caught.value))
    assert time.monotonic() - started < STALL / 3


def test_a_failed_download_leaves_an_existing_file_untouched(site, tmp_path):
    sg = session_sg(site, timeout=5.0)
    attachment_id, data = _attachment(sg, tmp_path, 256 * 1024)
    target = tmp_path / "plate.exr"
    target.write_bytes(b"the artist's own file")
    site.inject_fault("truncated", path_prefix="/file_serve")
    with pytest.raises(SiteResponseError, match="cut short"):
        sg.download_attachment(attachment_id, file_path=target)
    assert target.read_bytes() == b"the artist's own file"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert sg.download_attachment(attachment_id, file_path=target) == target  # a Path works
    assert target.read_bytes() == data


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_an_upload_is_never_redirected(site, tmp_path, status):
    """shotgun_api3's opener carries urllib's own redirect handler (which follows a 301, 302 or
    303 as a GET): sgconnect's is consulted first and raises."""
    sg = script_sg(site)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    site.inject_fault("redirect", path_prefix="/upload", status=status)
    with pytest.raises(SiteRedirectError) as caught:
        sg.upload("Project", project["id"], str(source))
    assert caught.value.status == status
    assert site.foreign_journal == []


def test_an_upload_answered_with_an_html_page_is_an_unknown_outcome(site, tmp_path):
    sg = script_sg(site)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    site.inject_fault("html", path_prefix="/upload")
    with pytest.raises(WriteOutcomeUnknownError, match="not ShotGrid's answer") as caught:
        sg.upload("Project", project["id"], str(source))
    assert "<h1>" not in str(caught.value)


@pytest.mark.parametrize(
    "fault, error, words",
    [
        ("stall", SiteTimeoutError, "within 1 s"),
        ("redirect", SiteRedirectError, "redirect"),
        ("http_503", SiteResponseError, "not stored"),
        ("close", sgconnect.SiteUnreachableError, "storage"),
    ],
)
def test_an_upload_to_cloud_storage_is_sent_once_and_typed(site, tmp_path, fault, error, words):
    """shotgun_api3's PUT to a presigned storage URL (LocalSite stands in for storage): sent once
    (shotgun_api3 would send a file object again, already read to its end), bounded, typed, and
    never naming the presigned URL."""
    sg = script_sg(site, timeout=1.0)
    storage_url = f"{site.url}/storage/bucket/object?X-Amz-Signature=presigned-secret-1"
    site.inject_fault(fault, path_prefix="/storage", delay=STALL)
    source = tmp_path / "plate.mov"
    source.write_bytes(os.urandom(300 * 1024))
    requests = site.counters["requests"]
    started = time.monotonic()
    with open(source, "rb") as data, pytest.raises(error, match=words) as caught:
        sg._upload_data_to_storage(data, "video/quicktime", 300 * 1024, storage_url)
    assert time.monotonic() - started < STALL / 3
    assert "presigned-secret-1" not in str(caught.value) and "/bucket" not in str(caught.value)
    assert site.counters["requests"] == requests + 1  # sent once


def test_a_stalled_reply_after_a_big_upload_ends_soon(site, tmp_path):
    """All 5 MiB reached the site, which then holds its reply: nothing is left in the send queue,
    so the reply gets one timeout, not one per 64 KiB the send buffer could have held."""
    sg = script_sg(site, timeout=1.0)
    project = sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])
    source = tmp_path / "plate.mov"
    source.write_bytes(os.urandom(5 * 1024 * 1024))
    site.inject_fault("stall", path_prefix="/upload", delay=STALL)
    started = time.monotonic()
    with pytest.raises(WriteOutcomeUnknownError):
        sg.upload("Project", project["id"], str(source))
    assert time.monotonic() - started < STALL / 3


def test_an_early_answer_to_an_upload_is_heard_at_once(site, tmp_path):
    """Storage (here a bare server on 127.0.0.1) answers 403 at once and never reads the 1 MiB
    body, which stays queued in the system's buffers: the answer is read as it comes, not after
    the timeout. (A body too big for the buffers still waits for its send to time out.)"""
    import socket as socket_module
    import threading as threading_module

    listener = socket_module.create_server(("127.0.0.1", 0))
    held = []

    def answer() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    threading_module.Thread(target=answer, daemon=True).start()
    sg = script_sg(site, timeout=STALL)
    storage_url = f"http://127.0.0.1:{listener.getsockname()[1]}/bucket/object?X-Amz-Signature=s"
    started = time.monotonic()
    try:
        with pytest.raises(SiteResponseError, match="403"):
            sg._upload_data_to_storage(
                b"x" * (1024 * 1024), "video/quicktime", 1024 * 1024, storage_url
            )
        assert time.monotonic() - started < STALL / 3
    finally:
        for conn in held:
            conn.close()
        listener.close()


def test_a_failed_download_through_a_symlink_leaves_its_target_untouched(site, tmp_path):
    """A "latest" link to a published file: the download goes to the link's target through a
    temporary name, keeps its mode, and an error leaves it whole."""
    sg = session_sg(site, timeout=5.0)
    attachment_id, data = _attachment(sg, tmp_path, 256 * 1024)
    real = tmp_path / "plate_v003.exr"
    real.write_bytes(b"the published file")
    real.chmod(0o640)
    link = tmp_path / "plate_latest.exr"
    link.symlink_to(real)
    site.inject_fault("truncated", path_prefix="/file_serve")
    with pytest.raises(SiteResponseError, match="cut short"):
        sg.download_attachment(attachment_id, file_path=str(link))
    assert real.read_bytes() == b"the published file" and link.is_symlink()
    assert sg.download_attachment(attachment_id, file_path=str(link)) == str(link)
    assert link.is_symlink() and real.read_bytes() == data
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


@pytest.mark.parametrize("url", ["file:///etc/hostname", "data:text/plain,secret"])
def test_a_download_opens_only_http_urls(site, tmp_path, url):
    """urllib opens file: and data: URLs too: an attachment (or a site's redirect) pointing at
    the session cache must not hand it to the tool."""
    sg = session_sg(site)
    with pytest.raises(SiteResponseError, match="not http or https"):
        sg.download_attachment({"url": url, "name": "x"})
    site.inject_fault("redirect", path_prefix="/file_serve", status=302, location=url)
    with pytest.raises(SiteResponseError, match="not http or https"):
        sg.download_attachment({"url": f"{site.url}/file_serve/attachment/1", "name": "x"})


def test_a_proxy_a_tool_sets_on_the_config_is_used_with_its_credentials(site):
    """Like shotgun_api3, a tool may set ``sg.config.proxy_*`` itself after the connection was
    made: api3 requests then go through that proxy, with its credentials."""
    from sgconnect.testing import ForwardProxy

    with ForwardProxy(auth=("tool", "tool-set-pass")) as proxy:
        sg = session_sg(site)
        sg.config.proxy_server, sg.config.proxy_port = "127.0.0.1", proxy.port
        sg.config.proxy_user, sg.config.proxy_pass = "tool", "tool-set-pass"
        assert sg.find("Project", [], ["name"])
        assert proxy.journal and all(request.authorized for request in proxy.journal)
