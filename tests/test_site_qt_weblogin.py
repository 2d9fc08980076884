"""Web login (SSO) through tk-core's OWN Qt login dialog, in real QtWebEngine, offscreen.

The hardest end-to-end proof of the local site: nothing on the client side is faked.

- tk-core's public ``ShotgunAuthenticator.get_user_from_prompt()`` opens tk-core's ``LoginDialog``
  for the site (host preset and fixed), which picks web login on its own (site info +
  ``SGTK_DEFAULT_AUTH_METHOD=qt_web_login``);
- a script presses "Sign In"; tk-core opens its web dialog (QWebEngineView) on ``/auth/renew``;
- the site redirects to the identity provider (a second origin); the script types the login and
  the password into the IdP's form, in the page, and submits it;
- the IdP posts back, the site sets its cookies and redirects to ``/auth/landing``; tk-core sees
  the landing URL, reads the cookies from QtWebEngine's cookie store, and returns a user.

The dialog runs in a subprocess (``tests/qt_weblogin_driver.py``) with a hard timeout, so that a
QtWebEngine crash or hang fails this test instead of taking the test session down. Interactive
login has no timeout of its own.

Runs on whichever binding tk-core picks for the interpreter running pytest: PySide6 on
Python 3.11, PySide2 5.15 on Python 3.10::

    cd /work/main && PYTHONPATH=python /root/.pyenv/versions/3.10.13/bin/python \\
        -m pytest tests/test_site_qt_weblogin.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

pytestmark = [pytest.mark.qt, pytest.mark.tkcore]

DRIVER = Path(__file__).with_name("qt_weblogin_driver.py")
DRIVER_TIMEOUT_S = 60  # the driver's own watchdog cancels tk-core's dialogs after this
# 45 s after the driver's watchdog, the test kills the driver's process group.
DEMO_PROJECTS = ["Big Buck Bunny", "Sintel", "Tears of Steel"]

# (site mode, LocalSite options, user class tk-core must return, declare web-login support)
WEB_LOGIN_CASES = [
    pytest.param(
        "saml2",
        {"app_session_launcher": False},
        "ShotgunSamlUser",
        False,
        id="saml2",
    ),
    # Autodesk Identity: tk-core's dialog offers web login only inside Desktop, or when the
    # application declares set_shotgun_authenticator_support_web_login(True) and the site has
    # the unified login flow. The second is what an application can do; the driver does it.
    pytest.param(
        "oxygen",
        {"app_session_launcher": False, "unified_login_flow": True},
        "ShotgunWebUser",
        True,
        id="oxygen-ulf",
    ),
]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


def _run_driver(
    site,
    work: Path,
    *,
    declare_web_support: bool,
    password: str,
    timeout_s: int = DRIVER_TIMEOUT_S,
    entry: str = "tk-core",
    cases: Optional[list] = None,
) -> dict:
    """Run tk-core's interactive login in a subprocess, driven by script; return its report."""
    result_path = work / "weblogin_result.json"
    log_path = work / "tkcore_debug.log"
    env = dict(os.environ)  # conftest: offscreen Qt, Chromium flags, no-https, own SHOTGUN_HOME
    for var in (
        "SGTK_FORCE_STANDARD_LOGIN_DIALOG",
        "TK_SHOTGRID_DEFAULT_LOGIN",
        "TK_SHOTGRID_SSO_DOMAIN",
    ):
        env.pop(var, None)
    env.update(
        SGTK_DEFAULT_AUTH_METHOD="qt_web_login",
        WEBLOGIN_SITE_URL=site.url,
        WEBLOGIN_IDP_URL=site.idp_url,
        WEBLOGIN_LOGIN="alice",
        WEBLOGIN_PASSWORD=password,
        WEBLOGIN_RESULT=str(result_path),
        WEBLOGIN_LOG=str(log_path),
        WEBLOGIN_TIMEOUT=str(timeout_s),
        WEBLOGIN_ULF_SUPPORT="1" if declare_web_support else "0",
        WEBLOGIN_ENTRY=entry,
        WEBLOGIN_CASES=json.dumps(cases or []),
    )
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER)],
        env=env,
        cwd=str(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: QtWebEngine's helpers die with it
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s * len(cases or [1]) + 45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"the web-login driver hung past {timeout_s + 45}s and was killed\n"
            f"--- stderr ---\n{stderr[-4000:]}\n--- tk-core log ---\n{_tail(log_path)}"
        )
    finally:
        if proc.poll() is None:  # pragma: no cover - belt and braces
            os.killpg(proc.pid, signal.SIGKILL)

    diagnostics = (
        f"driver exit code {proc.returncode}\n--- stderr ---\n{stderr[-4000:]}\n"
        f"--- tk-core log ---\n{_tail(log_path)}"
    )
    if not result_path.exists():
        pytest.fail(f"the web-login driver wrote no result (crashed?)\n{diagnostics}")
    result = json.loads(result_path.read_text())
    result["_diagnostics"] = diagnostics
    result["_output"] = (
        stdout + stderr + (log_path.read_text(errors="replace") if log_path.exists() else "")
    )
    return result


@pytest.mark.parametrize("mode, site_options, user_class, declare_web_support", WEB_LOGIN_CASES)
def test_web_login_through_tk_core_login_dialog(
    mode, site_options, user_class, declare_web_support, tmp_path, isolated_shotgun_home
):
    from sgconnect.testing import LocalSite

    with LocalSite(mode=mode, **site_options) as site:
        password = site.password("alice")
        report = _run_driver(
            site, tmp_path, declare_web_support=declare_web_support, password=password
        )
        why = (
            "\n".join(report.get("events", []))
            + "\n"
            + report.get("error", "")
            + "\n"
            + report.get("traceback", "")
            + "\n"
            + report["_diagnostics"]
        )

        # --- the login itself ------------------------------------------------------------
        assert report["ok"], f"web login did not complete:\n{why}"
        # tk-core's own dialog, for our site, fixed, choosing web login (no password field).
        assert report["dialog_site"] == site.url, why
        assert report["dialog_method"] == "qt_web_login", why
        assert report["dialog_site_editable"] is False, why
        assert report["dialog_password_visible"] is False, why
        # tk-core's web view went to the identity provider, on its own origin, where the
        # form was filled in the page.
        assert f"{site.idp_url}/login" in report["urls"], why
        assert not site.idp_url.startswith(site.url), "the IdP must be a second origin"

        # --- the user tk-core returned -----------------------------------------------------
        assert report["user_class"] == user_class, why
        assert report["is_saml_user"] is (user_class == "ShotgunSamlUser"), why
        assert report["login"] == "alice", why
        assert report["host"] == site.url, why
        assert report["has_session_token"] and report["has_session_metadata"], why
        if user_class == "ShotgunSamlUser":
            assert report["claims_expiration"] and report["claims_expiration"] > 0, why
        # Its connection finds the projects.
        assert report["projects"] == DEMO_PROJECTS, why

        # --- what the site saw ---------------------------------------------------------------
        journal = list(site.journal)
        seen = [(e.method, e.path, e.auth, e.login, e.status) for e in journal]
        assert any(
            e.method == "GET" and e.path == "/auth/renew" and e.status == 302 for e in journal
        ), seen
        # The password went to the IdP only, typed into its form.
        idp_posts = [e for e in journal if e.method == "POST" and e.path == "/login"]
        assert [(e.auth, e.login, e.status) for e in idp_posts] == [("password", "alice", 302)], (
            seen
        )
        assert any(e.path == "/auth/sso_callback" and e.status == 302 for e in journal), seen
        assert any(
            e.path == "/auth/landing" and e.auth == "cookie" and e.login == "alice" for e in journal
        ), seen
        api3 = [e for e in journal if e.path == "/api3/json" and e.rpc not in (None, "info")]
        assert api3, seen
        assert {(e.auth, e.login) for e in api3} == {("session", "alice")}, seen
        assert not any(e.auth == "password" and e.path == "/api3/json" for e in journal), seen
        # The script never printed the password, and tk-core never saw it.
        assert password not in report["_output"]

        # --- the session cache (SHOTGUN_HOME) ----------------------------------------------
        assert report["cache"] == {
            "login": "alice",
            "has_session_token": True,
            "session_token_matches": True,
            "has_session_metadata": True,
        }, why
        cache_files = sorted(
            p.relative_to(isolated_shotgun_home)
            for p in isolated_shotgun_home.rglob("authentication.yml")
        )
        assert cache_files, f"nothing cached under {isolated_shotgun_home}"

        # This process (no Qt dialog) rebuilds the same user from the cache and uses it.
        from tank.authentication import ShotgunAuthenticator, session_cache
        from tank.authentication.defaults_manager import DefaultsManager
        from tank.authentication.sso_saml2.core.utils import get_session_id, get_user_name

        data = session_cache.get_session_data(site.url, "alice")
        assert data and data["login"] == "alice"
        assert data["session_token"] in site.secrets
        # The token is the browser's _session_id cookie, read from QtWebEngine's cookie store.
        assert get_session_id(data["session_metadata"]) == data["session_token"]
        assert get_user_name(data["session_metadata"]) == "alice"
        user = ShotgunAuthenticator(DefaultsManager(fixed_host=site.url)).create_session_user(
            login="alice",
            session_token=data["session_token"],
            host=site.url,
            session_metadata=data["session_metadata"],
        )
        assert type(user).__name__ == user_class
        site.clear_journal()
        projects = user.create_sg_connection().find("Project", [], ["name"])
        assert sorted(p["name"] for p in projects) == DEMO_PROJECTS
        assert {(e.auth, e.login) for e in site.journal if e.rpc == "read"} == {
            ("session", "alice")
        }


def test_web_login_wrong_password_is_refused_and_the_dialog_cancels(
    tmp_path, isolated_shotgun_home
):
    """The negative twin: the IdP refuses a wrong password, so tk-core never reaches
    /auth/landing. The driver's watchdog then cancels tk-core's dialogs, and
    get_user_from_prompt() raises AuthenticationCancelled instead of hanging. No session is
    issued and nothing is cached."""
    from sgconnect.testing import LocalSite

    with LocalSite(mode="saml2", app_session_launcher=False) as site:
        wrong = "not-" + site.password("alice")
        report = _run_driver(site, tmp_path, declare_web_support=False, password=wrong, timeout_s=8)
        why = "\n".join(report.get("events", [])) + "\n" + report["_diagnostics"]

        assert report["ok"] is False, why
        assert report.get("exception") == "AuthenticationCancelled", why
        assert "timed out" in report.get("error", ""), why
        assert f"{site.idp_url}/login" in report["urls"], why
        assert report.get("idp_submits", 0) >= 1, why

        journal = list(site.journal)
        seen = [(e.method, e.path, e.auth, e.login, e.status) for e in journal]
        idp_posts = [e for e in journal if e.method == "POST" and e.path == "/login"]
        assert idp_posts and all(e.status == 401 for e in idp_posts), seen
        assert not any(e.path in ("/auth/sso_callback", "/auth/landing") for e in journal), seen
        assert not any(e.auth == "session" for e in journal), seen
        assert wrong not in report["_output"]

        from tank.authentication import session_cache

        assert session_cache.get_session_data(site.url, "alice") is None


def test_sgconnect_chain_logs_in_through_tk_core_dialog(tmp_path, isolated_shotgun_home):
    """The chain's interactive step on a saml2 site: no session, a QApplication → tk-core's dialog,
    web login, and the tool's connection works; the next process finds the saved session."""
    from sgconnect.testing import LocalSite

    with LocalSite(mode="saml2", app_session_launcher=False) as site:
        report = _run_driver(
            site,
            tmp_path,
            declare_web_support=False,
            password=site.password("alice"),
            entry="sgconnect",
        )
        assert report["ok"], report["_diagnostics"]
        assert (report["login"], report["source"], report["auth_method"]) == (
            "alice",
            "fresh",
            "sso",
        )
        assert report["projects"] == sorted(site.projects)
        for secret in site.secrets:
            assert secret not in report["_output"]

        from sgconnect.session_cache import read_saved_session

        saved = read_saved_session(site.url)
        assert saved is not None and saved.login == "alice"


# -- the matrix: every combination where tk-core offers web login, in one driver process -------

#: (mode, unified login flow, app session launcher) where tk-core v0.24.0's dialog offers web
#: login to an application that declared set_shotgun_authenticator_support_web_login(True):
#: an SSO site always; any other site with the unified login flow (login_dialog._toggle_web).
#: With the launcher on, SGTK_DEFAULT_AUTH_METHOD=qt_web_login picks web login over it.
WEB_MATRIX = [("saml2", u, a) for u in (False, True) for a in (False, True)] + [
    (m, True, a) for m in ("default", "ldap", "oxygen") for a in (False, True)
]
#: The other combinations: tk-core's dialog offers no web login there (the driver sees its
#: choice, then cancels the dialog).
NO_WEB_MATRIX = [(m, False, a) for m in ("default", "ldap", "oxygen") for a in (False, True)]


def test_web_login_in_every_mode_ulf_and_launcher_combination(tmp_path, isolated_shotgun_home):
    """One driver process logs in through tk-core's dialog to each site where it offers web
    login, and sees it choose credentials or the launcher everywhere else."""
    from sgconnect.testing import LocalSite

    combinations = WEB_MATRIX + NO_WEB_MATRIX
    sites = [LocalSite(m, unified_login_flow=u, app_session_launcher=a) for m, u, a in combinations]
    try:
        for site in sites:
            site.start()
        cases = [{"site": s.url, "idp": s.idp_url, "password": s.password("alice")} for s in sites]
        report = _run_driver(
            sites[0],
            tmp_path,
            declare_web_support=True,
            password="",
            timeout_s=DRIVER_TIMEOUT_S,
            cases=cases,
        )
        why = "\n".join(report.get("events", [])) + "\n" + report["_diagnostics"]
        assert [c["site"] for c in report["cases"]] == [s.url for s in sites], why
        for (mode, unified, launcher), site, case in zip(combinations, sites, report["cases"]):
            label = f"{mode} ulf={unified} asl={launcher}: {case.get('error')}\n{why}"
            if (mode, unified, launcher) in NO_WEB_MATRIX:
                assert not case["ok"] and "did not pick web login" in case["error"], label
                expected = "app_session_launcher" if launcher else "credentials"
                assert case["dialog_method"] == expected, label
                assert not [e for e in site.journal if e.path in ("/auth/renew", "/login")], label
                continue
            assert case["ok"], label
            assert case["dialog_method"] == "qt_web_login", label
            assert case["dialog_password_visible"] is False, label
            assert f"{site.idp_url}/login" in case["urls"], label
            user_class = "ShotgunSamlUser" if mode == "saml2" else "ShotgunWebUser"
            assert case["user_class"] == user_class, label
            assert (case["login"], case["host"]) == ("alice", site.url), label
            assert case["projects"] == DEMO_PROJECTS, label
            assert case["cache"]["session_token_matches"], label
            idp_posts = [e for e in site.journal if e.method == "POST" and e.path == "/login"]
            assert [(e.login, e.status) for e in idp_posts] == [("alice", 302)], label
            reads = {(e.auth, e.login) for e in site.journal if e.rpc == "read"}
            assert reads == {("session", "alice")}, label
            assert site.password("alice") not in report["_output"]
    finally:
        for site in sites:
            site.stop()
