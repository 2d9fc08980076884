"""Renewal by the configured method (``login_method``), and QtWebEngine kept out of the process.

A child process with an expired saved session renews it on its first call (``tests/children/
renewal_by_method.py``):

- ``url`` in a Qt host (a QApplication, offscreen), as in Nuke, Blender or Unreal: renewed headless
  through the app session launcher, approved by the test through the local site, and no
  ``*QtWebEngine*`` module is ever imported, though the binding has one (the control import of
  tk-core's login UI Qt shows it would have been);
- ``password`` on the console: tk-core's console renewal, its login UI Qt imported without
  QtWebEngine (``SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT`` set for that import only); ``auto``
  on the console imports QtWebEngine as tk-core always did (the check can fail).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import pytest
from children import run_child

from sgconnect.testing import approve_next_app_session, save_session

pytestmark = [pytest.mark.tkcore, pytest.mark.qt]

CHILD = Path(__file__).parent / "children" / "renewal_by_method.py"


def qt_binding_with_web_engine() -> str:
    for binding in ("PySide6", "PySide2"):
        try:
            if importlib.util.find_spec(f"{binding}.QtWebEngineWidgets") is not None:
                return binding
        except ImportError:
            continue
    pytest.skip("LOUD SKIP: no Qt binding with QtWebEngine")


def expired_saved_session(site, login: str = "alice") -> None:
    save_session(site, login)
    site.expire_sessions()


def result_of(child) -> dict:
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert child.returncode == 0 and lines, child.stdout[-2000:] + child.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_url_renews_headless_in_a_qt_host_and_never_imports_qtwebengine(
    make_local_site, isolated_shotgun_home
):
    site = make_local_site("saml2", app_session_launcher=True)
    expired_saved_session(site)
    stop = threading.Event()
    approver = approve_next_app_session(site, "alice", stop)
    try:
        child = run_child(
            CHILD,
            {
                "SITE_URL": site.url,
                "SGCONNECT_LOGIN_METHOD": "url",
                "QT_BINDING": qt_binding_with_web_engine(),
                "CONTROL": "1",
            },
        )
    finally:
        stop.set()
        approver.join(5)
    result = result_of(child)
    assert result["error"] is None, result
    assert result["projects"] == len(site.projects)
    assert (result["login"], result["renewals"]) == ("alice", 1)
    assert result["web_engine"] == []
    assert result["tk_login_qt"] is False  # tk-core's login UI never ran
    # The binding has QtWebEngine: tk-core's login UI would have imported it.
    assert any("QtWebEngineWidgets" in name for name in result["web_engine_after_control"])
    # The person saw the URL to approve and the truthful progress, as with `login --method url`.
    assert "The session of alice on" in child.stderr
    assert "/app_session_request/" in child.stderr
    assert "waiting for approval" in child.stderr
    assert [e for e in site.journal if "app_session_request" in e.path]
    assert not any(secret in child.stdout + child.stderr for secret in site.secrets)


def test_url_renewal_approved_by_another_person_is_refused(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2", app_session_launcher=True)
    expired_saved_session(site)
    stop = threading.Event()
    approver = approve_next_app_session(site, "bob", stop)
    try:
        child = run_child(
            CHILD,
            {
                "SITE_URL": site.url,
                "SGCONNECT_LOGIN_METHOD": "url",
                "QT_BINDING": qt_binding_with_web_engine(),
            },
        )
    finally:
        stop.set()
        approver.join(5)
    result = result_of(child)
    assert result["error"].startswith("LoginFailedError: The renewal of alice's session"), result
    assert "approved by bob" in result["error"]
    assert f"sgconnect login --site {site.url}" in result["error"]
    assert result["web_engine"] == []


@pytest.mark.parametrize("method", ["password", "auto"])
def test_console_renewal_imports_qtwebengine_only_where_web_login_is_wanted(
    make_local_site, isolated_shotgun_home, method
):
    qt_binding_with_web_engine()  # the binding tk-core's importer finds has QtWebEngine
    site = make_local_site("default", app_session_launcher=False)
    expired_saved_session(site)
    child = run_child(
        CHILD,
        {"SITE_URL": site.url, "SGCONNECT_LOGIN_METHOD": method},
        stdin=f"{site.password('alice')}\n",
    )
    result = result_of(child)
    assert result["error"] is None, result
    assert (result["login"], result["renewals"]) == ("alice", 1)
    assert result["tk_login_qt"] is True  # tk-core's console renewal runs its Qt importer
    if method == "password":
        assert result["web_engine"] == []
    else:
        assert any("QtWebEngineWidgets" in name for name in result["web_engine"]), result
    assert result["skip_variable"] is None  # set for tk-core's import only: no child inherits it
