"""``sgconnect login --method qt|web|auto`` shows tk-core's own login dialog, and completes it.

A command line has no QApplication; without one tk-core falls back to its console. The command
creates it (``sgconnect.interactive.qt_application``), so tk-core shows its dialog. Each login runs
offscreen in a subprocess (``tests/fixtures/run_cli_qt_login.py``) that types what a person would:
a login and password into tk-core's dialog (``qt`` on a password site), or into the identity
provider's form in tk-core's web view (``web`` on an SSO site). The session lands in tk-core's
cache. Marked ``qt``: .ci/run runs these on PySide6 (3.11) and on PySide2 5.15 (3.10).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.toolkit import FIXTURES

from sgconnect.testing import LocalSite, child_environment

pytestmark = [pytest.mark.qt, pytest.mark.tkcore]

DRIVER = FIXTURES / "run_cli_qt_login.py"
TIMEOUT = 60


def run_cli_login(site: LocalSite, method: str, home: Path, tmp_path: Path) -> dict:
    result_path = tmp_path / "result.json"
    env = child_environment()
    env.pop("SGCONNECT_NON_INTERACTIVE", None)
    env.update(
        SHOTGUN_HOME=str(home),
        SGTK_AUTH_ALLOW_NO_HTTPS="1",
        QT_QPA_PLATFORM="offscreen",
        QTWEBENGINE_CHROMIUM_FLAGS=os.environ.get(
            "QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu"
        ),
        CLI_LOGIN_SITE=site.url,
        CLI_LOGIN_IDP=getattr(site, "idp_url", "") or "",
        CLI_LOGIN_METHOD=method,
        CLI_LOGIN_USER="alice",
        CLI_LOGIN_PASSWORD=site.password("alice"),
        CLI_LOGIN_RESULT=str(result_path),
        CLI_LOGIN_TIMEOUT=str(TIMEOUT),
    )
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SGTK_DEFAULT_AUTH_METHOD"):
        env.pop(name, None)
    if method == "auto":
        # auto shows the dialog only where a display exists: declare one (Qt still draws
        # offscreen, the platform set above wins).
        env["DISPLAY"] = ":0"
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT + 45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert result_path.exists(), f"exit {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    result = json.loads(result_path.read_text())
    result["_output"] = out + err + result.get("stdout", "")
    result["_why"] = json.dumps(result, indent=1)[-4000:] + err[-3000:]
    return result


@pytest.mark.parametrize(
    "method, mode, dialog_method",
    [
        ("qt", "default", "credentials"),
        ("web", "saml2", "qt_web_login"),
        # auto, where Qt has a display (here the offscreen platform): the dialog too.
        ("auto", "default", "credentials"),
    ],
)
def test_login_shows_tk_core_dialog_and_saves_the_session(
    method, mode, dialog_method, tmp_path, isolated_shotgun_home
):
    with LocalSite(mode=mode, app_session_launcher=False) as site:
        result = run_cli_login(site, method, isolated_shotgun_home, tmp_path)
        why = result["_why"]
        assert result.get("error") is None, why
        assert result["exit_code"] == 0, why
        # The command made the QApplication, and tk-core showed its own dialog, for this site.
        assert result["qapplication"] == "QApplication", why
        assert result["dialogs"][:1] == [
            {"site": site.url, "method": dialog_method, "class": "LoginDialog"}
        ], why
        assert f"Logged in to {site.url} as alice" in result["stdout"], why
        assert not any(secret in result["_output"] for secret in site.secrets)
        if method == "web":
            assert any(e.path == "/auth/landing" for e in site.journal), why
        else:
            assert any(e.rpc == "authenticate" or e.auth == "password" for e in site.journal)

    from tank.authentication import session_cache

    assert session_cache.get_current_user(site.url) == "alice"
    assert session_cache.get_session_data(site.url, "alice")["session_token"]


def test_qt_login_without_a_display_names_the_method_that_works(monkeypatch):
    from sgconnect import interactive
    from sgconnect.errors import SgConnectError

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    if sys.platform in ("win32", "darwin"):
        pytest.skip("LOUD SKIP: these platforms always have a display")
    with pytest.raises(SgConnectError, match="--method url"):
        interactive.qt_application("qt")
    assert interactive.qt_application("auto") is None
    # A platform set by hand is enough for qt and web, never for auto (nobody would see it).
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert interactive.qt_application("auto") is None
    assert interactive.qt_application("url") is None
