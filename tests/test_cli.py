"""The ``sgconnect`` command, run as a real subprocess against the local site.

Every subcommand: exit codes, one-line errors (never a traceback), and output that holds no
secret of the site. The headless browser login is approved by the test through the site, as a
person in a browser would, and a new process then reads the saved session.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from sgconnect import cli, doctor, session_cache
from sgconnect.doctor import Environment, SiteFacts, conclude
from sgconnect.testing import child_environment

TIMEOUT = 60


# -- helpers --------------------------------------------------------------------------------------


def cli_env(home) -> dict:
    """The environment of a child: this test's SHOTGUN_HOME, no display, no inherited site."""
    env = child_environment()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SGCONNECT_SITE", "SGCONNECT_NON_INTERACTIVE"):
        env.pop(name, None)
    env["SHOTGUN_HOME"] = str(home)
    env["SGTK_AUTH_ALLOW_NO_HTTPS"] = "1"
    return env


def _default_sigint():  # a child started from a backgrounded runner may inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(home, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sgconnect", *args],
        env=cli_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def run_cli(
    home, *args: str, stdin: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``sgconnect *args`` in a child with :func:`cli_env`, changed by ``env`` (``None``: unset)."""
    environment = cli_env(home)
    for name, value in (env or {}).items():
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "-m", "sgconnect", *args],
        env=environment,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def assert_no_secret(site, *texts: str) -> None:
    secrets = site.secrets
    assert secrets, "the site issued no secret: the check would prove nothing"
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret of the site was printed"


def assert_one_line_error(result, *fragments: str) -> None:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sgconnect:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def wait_for_request(site, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        pending = site.pending_app_session_requests()
        if pending:
            return pending[0]
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"login exited {process.returncode} before asking: {out}{err}")
        time.sleep(0.05)
    process.kill()
    pytest.fail("no app session request reached the site")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def html_server():
    """A web server that is not ShotGrid: it answers every request with an HTML page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _page(self):
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _page

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def seed_saved_session(site, login: str = "alice") -> None:
    """Save a session in tk-core's cache the way SG Desktop does."""
    from tank.authentication import session_cache as tk_cache

    tk_cache.cache_session_data(site.url, login, site.issue_session(login))
    tk_cache.set_current_user(site.url, login)
    tk_cache.set_current_host(site.url)


# -- help and usage -------------------------------------------------------------------------------


def test_help_lists_every_subcommand_and_the_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("login", "whoami", "logout", "doctor", "site", "demo"):
        assert re.search(rf"^\s+{command}\s", text, re.M), command
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"  {code}" in text
    for command in ("login", "whoami", "logout", "doctor", "site", "demo"):
        assert cli.main([command, "--help"]) == 0
        assert "exit codes:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["nonsense"], ["login", "--method", "carrier-pigeon"], ["site", "--mode", "ftp"]],
)
def test_bad_arguments_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_invalid_site_url_is_a_usage_error(capsys):
    assert cli.main(["whoami", "--site", "ftp://mystudio.example.com"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgconnect: Invalid ShotGrid site") and err.count("\n") == 1


# -- login (headless browser login), whoami, logout -------------------------------------------


@pytest.mark.tkcore
def test_headless_login_approved_then_whoami_in_a_new_process(
    make_local_site, isolated_shotgun_home
):
    site = make_local_site("saml2")
    login = start_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    request_id = wait_for_request(site, login)
    site.approve_app_session(request_id, "alice")
    out, err = login.communicate(timeout=TIMEOUT)

    assert login.returncode == 0, err
    assert f"{site.url}/app_session_request/{request_id}" in err  # the URL to open elsewhere
    assert "waiting for approval" in err and "s left" in err  # the progress line
    assert f"Logged in to {site.url} as alice (Alice Anders)." in out
    saved = session_cache.read_saved_session(site.url)
    assert saved is not None and saved.login == "alice"

    site.clear_journal()
    whoami = run_cli(isolated_shotgun_home, "whoami", "--site", site.url)
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.startswith(f"alice (Alice Anders) on {site.url}\n")
    assert "source:         saved" in whoami.stdout
    # The new process acted with the saved session, not a new login.
    assert [(e.rpc, e.auth, e.login) for e in site.journal if e.rpc == "read"] == [
        ("read", "session", "alice")
    ]

    as_json = run_cli(isolated_shotgun_home, "whoami", "--json", "--site", site.url)
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert info["login"] == "alice" and info["source"] == "saved" and info["site"] == site.url
    assert set(info) == {
        "login", "name", "site", "auth_method", "source", "session_expiry", "script_name",
        "sudo_as_login", "acting_as",
    }  # fmt: skip
    assert_no_secret(site, out, err, whoami.stdout, whoami.stderr, as_json.stdout, as_json.stderr)


@pytest.mark.tkcore
def test_denied_approval_exits_3_with_one_line(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2")
    login = start_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    site.deny_app_session(wait_for_request(site, login))
    out, err = login.communicate(timeout=TIMEOUT)

    assert login.returncode == 3
    result = subprocess.CompletedProcess(login.args, 3, out, err)
    assert_one_line_error(result, f"Login to {site.url} failed", "rejected or has expired")
    assert session_cache.read_saved_session(site.url) is None
    assert_no_secret(site, out, err)


@pytest.mark.tkcore
def test_ctrl_c_while_waiting_exits_130_and_saves_nothing(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2")
    login = start_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    wait_for_request(site, login)
    login.send_signal(signal.SIGINT)
    out, err = login.communicate(timeout=TIMEOUT)

    assert login.returncode == 130, err
    result = subprocess.CompletedProcess(login.args, 130, out, err)
    assert_one_line_error(result, "cancelled", "nothing was saved")
    assert session_cache.read_saved_session(site.url) is None
    assert not os.path.exists(session_cache.site_cache_file(site.url))
    assert session_cache.current_host() is None
    assert_no_secret(site, out, err)


def test_url_login_on_a_site_without_app_session_launcher_exits_3(
    make_local_site, isolated_shotgun_home
):
    site = make_local_site("saml2", app_session_launcher=False)
    result = run_cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert result.returncode == 3
    assert_one_line_error(result, "app session launcher is disabled", "sgconnect doctor --site")
    assert not site.pending_app_session_requests()


def test_whoami_without_a_session_exits_3_and_never_prompts(local_site, isolated_shotgun_home):
    # stdin is an open pipe with nothing in it: a prompt would hang until the timeout.
    result = run_cli(isolated_shotgun_home, "whoami", "--site", local_site.url, stdin="")
    assert result.returncode == 3
    assert_one_line_error(result, "Login required for", f"sgconnect login --site {local_site.url}")
    assert result.stdout == ""


@pytest.mark.tkcore
def test_whoami_with_an_expired_session_exits_3(make_local_site, isolated_shotgun_home):
    site = make_local_site("default")
    seed_saved_session(site)
    site.expire_sessions()
    result = run_cli(isolated_shotgun_home, "whoami", "--site", site.url, stdin="")
    assert result.returncode == 3
    assert_one_line_error(result, "session of alice expired")
    assert_no_secret(site, result.stdout, result.stderr)


@pytest.mark.tkcore
def test_debug_logs_of_whoami_hold_no_secret(make_local_site, isolated_shotgun_home):
    site = make_local_site("default")
    seed_saved_session(site, "carol")
    result = run_cli(isolated_shotgun_home, "whoami", "--debug", "--site", site.url)
    assert result.returncode == 0, result.stderr
    assert "INFO sgconnect.hook: hand-out api3" in result.stderr  # --debug did log
    assert result.stdout.startswith("carol (Carol Chen)")
    assert_no_secret(site, result.stdout, result.stderr)


@pytest.mark.tkcore
def test_logout_forgets_the_saved_session(make_local_site, isolated_shotgun_home):
    site = make_local_site("default")
    seed_saved_session(site)
    assert session_cache.read_saved_session(site.url) is not None

    first = run_cli(isolated_shotgun_home, "logout", "--site", site.url)
    assert first.returncode == 0, first.stderr
    assert f"Removed the saved session of alice on {site.url}" in first.stdout
    assert session_cache.read_saved_session(site.url) is None

    again = run_cli(isolated_shotgun_home, "logout", "--site", site.url)
    assert again.returncode == 0
    assert f"No saved session for {site.url}: nothing removed." in again.stdout
    whoami = run_cli(isolated_shotgun_home, "whoami", "--site", site.url)
    assert whoami.returncode == 3
    assert_no_secret(site, first.stdout, first.stderr, again.stdout, whoami.stderr)


@pytest.mark.tkcore
def test_password_login_on_the_console(make_local_site, isolated_shotgun_home):
    site = make_local_site("default", app_session_launcher=False)
    result = run_cli(
        isolated_shotgun_home,
        "login", "--site", site.url, "--method", "password",
        stdin=f"carol\n{site.password('carol')}\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Logged in to {site.url} as carol (Carol Chen)." in result.stdout
    assert session_cache.read_saved_session(site.url).login == "carol"
    assert_no_secret(site, result.stdout, result.stderr)


# -- bad sites: one line, never a traceback -----------------------------------------------------


def test_unreachable_site(isolated_shotgun_home):
    site = f"http://127.0.0.1:{free_port()}"
    for command in ("login", "whoami", "doctor"):
        args = [command, "--site", site] + (["--method", "url"] if command == "login" else [])
        result = run_cli(isolated_shotgun_home, *args)
        assert result.returncode in (1, 3), (command, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
    login = run_cli(isolated_shotgun_home, "login", "--site", site, "--method", "url")
    assert login.returncode == 1
    assert_one_line_error(login, f"Cannot reach {site}", "connection refused")


def test_site_url_without_a_scheme_becomes_https(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2")
    bare = site.url.replace("http://", "")
    result = run_cli(isolated_shotgun_home, "login", "--site", bare, "--method", "url")
    assert result.returncode == 1
    assert_one_line_error(result, f"Cannot reach https://{bare}", "TLS failed")


def test_a_server_that_is_not_shotgrid(html_server, isolated_shotgun_home):
    result = run_cli(isolated_shotgun_home, "login", "--site", html_server, "--method", "url")
    assert result.returncode == 1
    assert_one_line_error(result, f"{html_server} is not a ShotGrid site")
    report = run_cli(isolated_shotgun_home, "doctor", "--site", html_server)
    assert report.returncode == 1
    assert "is not a ShotGrid site" in report.stdout and "Traceback" not in report.stderr


# -- doctor ---------------------------------------------------------------------------------------


@pytest.mark.tkcore  # without tk-core, doctor rightly concludes that no login method works
def test_doctor_sso_site_with_app_session_launcher(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2")
    result = run_cli(isolated_shotgun_home, "doctor", "--site", site.url)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "user_authentication_method  saml2" in text
    assert "app session launcher        enabled" in text
    assert re.search(r"^  url\s+works", text, re.M)
    assert re.search(r"^  password\s+no", text, re.M)
    assert f"Conclusion: log in with `sgconnect login --site {site.url} --method url`." in text


@pytest.mark.tkcore
def test_doctor_default_site_password_works(local_site, isolated_shotgun_home):
    result = run_cli(isolated_shotgun_home, "doctor", "--site", local_site.url)
    assert result.returncode == 0
    assert re.search(r"^  password\s+works", result.stdout, re.M)


def test_doctor_unreachable_site(isolated_shotgun_home):
    site = f"http://127.0.0.1:{free_port()}"
    result = run_cli(isolated_shotgun_home, "doctor", "--site", site)
    assert result.returncode == 1
    assert "Conclusion: the site could not be checked." in result.stdout
    assert f"Cannot reach {site} (connection refused" in result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_warns_about_cache_permissions(make_local_site, isolated_shotgun_home):
    site_folder = isolated_shotgun_home / "127.0.0.1"
    site_folder.mkdir(mode=0o755)
    os.chmod(site_folder, 0o755)
    cache_file = site_folder / "authentication.yml"
    cache_file.write_text("current_user: alice\nusers: []\n")
    os.chmod(cache_file, 0o644)
    out = io.StringIO()
    assert doctor.run(None, out) == 0
    text = out.getvalue()
    assert "0644: readable by others, should be 0600" in text
    assert "0755: readable by others, should be 0700" in text
    assert "Warnings:" in text


def test_doctor_masks_proxy_passwords(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://render:pr0xy-Pa55word@proxy.studio.example:3128")
    monkeypatch.setenv("SGCONNECT_HTTP_PROXY", "render:hook-Pa55word@proxy.studio.example:3128")
    out = io.StringIO()
    doctor.run(None, out)
    text = out.getvalue()
    assert "HTTPS_PROXY=http://render:***@proxy.studio.example:3128" in text
    assert "render:***@proxy.studio.example:3128" in text.split("Proxy (hook)")[1]
    assert "Pa55word" not in text


@pytest.mark.tkcore
def test_site_command_serves_until_ctrl_c_and_doctor_reads_it(isolated_shotgun_home):
    port = free_port()
    server = start_cli(
        isolated_shotgun_home,
        "site",
        "--mode",
        "saml2",
        "--no-app-session-launcher",
        "--port",
        str(port),
    )
    try:
        first = server.stdout.readline()
        assert first.startswith("Local ShotGrid site (saml2, app session launcher off): ")
        url = first.rsplit(" ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}"
        listing = [server.stdout.readline() for _ in range(5)]
        assert listing[0].startswith("Identity provider: http://127.0.0.1:")
        assert [line.split()[0] for line in listing[2:]] == ["alice", "bob", "carol"]

        result = run_cli(isolated_shotgun_home, "doctor", "--site", url)
        assert result.returncode == 1  # SSO, no launcher, no display: nothing works here
        assert "app session launcher        disabled" in result.stdout
        assert re.search(
            r"^  url\s+no\s+the site's app session launcher is off", result.stdout, re.M
        )
        assert "No login method will work in this environment." in result.stdout
        assert "ask the site admin to enable the app session launcher" in result.stdout
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0, err
    assert "Stopped." in out


# -- doctor's conclusion, as a pure function ----------------------------------------------------

HEADLESS_WITHOUT_WEBENGINE = Environment(
    tk_core=True, qt_binding="PySide2", qt_webengine=False, display=False, local_browser=False
)
DESKTOP = Environment(
    tk_core=True, qt_binding="PySide6", qt_webengine=True, display=True, local_browser=True
)


def verdicts(env, site) -> dict:
    return {v.method: v.works for v in conclude(env, site)}


def test_sso_without_webengine_but_with_launcher_logs_in_by_url():
    works = verdicts(HEADLESS_WITHOUT_WEBENGINE, SiteFacts("saml2", app_session_launcher=True))
    assert works == {"qt": False, "browser": False, "web": False, "password": False, "url": True}


def test_sso_without_webengine_and_without_launcher_cannot_log_in():
    site = SiteFacts("saml2", app_session_launcher=False)
    assert not any(verdicts(HEADLESS_WITHOUT_WEBENGINE, site).values())
    advice = " ".join(doctor.advice_when_none_work("https://x.example.com", site))
    assert "enable the app session launcher" in advice and "SG Desktop" in advice


def test_a_desktop_can_use_the_dialog_web_page_and_browser():
    works = verdicts(DESKTOP, SiteFacts("saml2", app_session_launcher=True))
    assert works == {"qt": True, "browser": True, "web": True, "password": True, "url": True}
    works = verdicts(DESKTOP, SiteFacts("default", app_session_launcher=False))
    assert works == {"qt": True, "browser": False, "web": False, "password": True, "url": False}


def test_identity_site_web_login_needs_the_unified_flow():
    assert verdicts(DESKTOP, SiteFacts("oxygen", False))["web"] is False
    assert verdicts(DESKTOP, SiteFacts("oxygen", False, unified_login_flow=True))["web"] is True


def test_without_tk_core_nothing_works_and_without_a_site_it_depends():
    no_tk = Environment(False, "PySide6", True, True, True)
    assert not any(verdicts(no_tk, SiteFacts("default", True)).values())
    unknown = verdicts(HEADLESS_WITHOUT_WEBENGINE, None)
    assert unknown["url"] is None and unknown["password"] is None and unknown["web"] is False
