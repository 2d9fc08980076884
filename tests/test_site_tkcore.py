"""The local site driven by the real tk-core (``tank.authentication``).

Console prompts run in a subprocess fed through stdin, in a new session (no controlling
terminal, so ``getpass`` reads stdin), with its own ``SHOTGUN_HOME`` and no proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

CHILDREN = Path(__file__).parent / "children"


pytestmark = pytest.mark.tkcore


def _env(shotgun_home: Path) -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(
        SHOTGUN_HOME=str(shotgun_home),
        SGTK_AUTH_ALLOW_NO_HTTPS="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).parents[1] / "python"), os.environ.get("PYTHONPATH")])
        ),
    )
    env.pop("QT_QPA_PLATFORM", None)
    return env


def _spawn(script: Path, shotgun_home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(shotgun_home),
        start_new_session=True,  # no controlling terminal: getpass falls back to stdin
    )


def _result_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout
    return json.loads(lines[-1][len("RESULT ") :])


CONSOLE_LOGIN = CHILDREN / "site_tkcore_console_login.py"


def test_console_password_login(local_site, isolated_shotgun_home):
    # site URL, method 2 (legacy credentials: the site also offers the app session launcher),
    # login, password.
    feed = f"{local_site.url}\n2\nalice\n{local_site.password('alice')}\n"
    proc = _spawn(CONSOLE_LOGIN, isolated_shotgun_home)
    out, err = proc.communicate(feed, timeout=60)
    assert proc.returncode == 0, err
    result = _result_line(out)
    assert result["login"] == "alice"
    assert result["host"] == local_site.url
    assert result["projects"] == ["Big Buck Bunny", "Sintel", "Tears of Steel"]
    kinds = [(e.rpc, e.auth) for e in local_site.journal if e.path == "/api3/json"]
    assert ("get_session_token", "password") in kinds
    assert ("read", "session") in kinds
    # The password never reaches the output.
    assert local_site.password("alice") not in out + err
    # tk-core saved the session in this test's cache.
    assert list(isolated_shotgun_home.rglob("authentication.yml"))


def test_console_login_2fa(make_local_site, isolated_shotgun_home):
    site = make_local_site(app_session_launcher=False)
    code = site.two_factor_code("bob")
    feed = f"{site.url}\nbob\n{site.password('bob')}\n{code}\n"
    proc = _spawn(CONSOLE_LOGIN, isolated_shotgun_home)
    out, err = proc.communicate(feed, timeout=60)
    assert proc.returncode == 0, err
    assert _result_line(out)["login"] == "bob"
    assert [e.error_code for e in site.journal if e.rpc == "get_session_token"] == [106, None]


def test_console_refuses_sso_without_app_session_launcher(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2", app_session_launcher=False)
    proc = _spawn(CONSOLE_LOGIN, isolated_shotgun_home)
    out, err = proc.communicate(f"{site.url}\n", timeout=60)
    assert proc.returncode != 0
    assert "ConsoleLoginNotSupportedError" in err


def test_app_session_launcher_process_approved(make_local_site):
    from tank.authentication import app_session_launcher

    site = make_local_site("saml2")
    opened: List[str] = []

    def browser_open(url: str) -> bool:
        # The person opens the URL in a browser with a session on the site, and approves.
        opened.append(url)
        (request_id,) = site.pending_app_session_requests()
        assert url.endswith(request_id)
        site.approve_app_session(request_id, "alice")
        return True

    start = time.monotonic()
    url, login, token, extra = app_session_launcher.process(
        site.url, product="sgconnect tests", browser_open_callback=browser_open
    )
    assert time.monotonic() - start < 10
    assert (url, login, extra) == (site.url, "alice", None)
    assert token in site.secrets
    assert opened and opened[0].startswith(site.url)
    polls = [e for e in site.journal if e.path.startswith("/internal_api/app_session_request/")]
    assert polls and polls[-1].method == "PUT" and polls[-1].status == 200

    # The session it got works through tk-core.
    from tank.authentication import ShotgunAuthenticator

    user = ShotgunAuthenticator().create_session_user(login, session_token=token, host=url)
    assert len(user.create_sg_connection().find("Project", [])) == 3


def test_app_session_launcher_denied_and_disabled(make_local_site):
    from tank.authentication import app_session_launcher

    site = make_local_site()

    def deny(url: str) -> bool:
        site.deny_app_session(url.split("?")[0].rsplit("/", 1)[-1])
        return True

    with pytest.raises(app_session_launcher.AuthenticationError, match="rejected or has expired"):
        app_session_launcher.process(site.url, browser_open_callback=deny)

    off = make_local_site(app_session_launcher=False)
    with pytest.raises(app_session_launcher.AuthenticationError, match="not seem to be enabled"):
        app_session_launcher.process(off.url, browser_open_callback=lambda url: True)


EXPIRY_MID_USE = CHILDREN / "site_tkcore_expiry_mid_use.py"


def test_expiry_mid_use_renews_through_tk_core_console(local_site, isolated_shotgun_home):
    token = local_site.issue_session("alice")
    proc = _spawn(EXPIRY_MID_USE, isolated_shotgun_home, local_site.url, token)
    try:
        assert proc.stdout.readline().strip() == "READY"
        local_site.expire_sessions()
        # go; method 2 (the site offers the app session launcher too); the password.
        out, err = proc.communicate(f"go\n2\n{local_site.password('alice')}\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    result = _result_line(out)
    assert result["before"] == 3
    assert result["after"] == ["Big Buck Bunny", "Sintel", "Tears of Steel"]
    assert result["renewed"] is True
    codes = [(e.rpc, e.auth, e.error_code) for e in local_site.journal if e.rpc]
    assert ("read", "session", 102) in codes
    assert ("get_session_token", "password", None) in codes
    assert codes[-1] == ("read", "session", None)


# ShotgunWrapper's renewal on 102 and on the claims 302 (a token another process saved): in
# every mode x unified login flow x launcher combination, tests/test_site_tkcore_matrix.py.
