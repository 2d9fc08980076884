"""Renewal by the configured method (``login_method``), and QtWebEngine kept out of the process.

A child process with an expired saved session renews it on its first call (``tests/children/
renewal_by_method.py``):

- ``url`` in a Qt host (a QApplication, offscreen), as in Nuke, Blender or Unreal: renewed headless
  through the app session launcher, approved by the test through the local site, and no
  ``*QtWebEngine*`` module is ever imported, though the binding has one (the control import of
  tk-core's login UI Qt shows it would have been); from a worker thread too, while the main
  thread blocks in ``join()``; and on tk-core v0.20.29;
- ``password`` on the console: tk-core's console renewal, its login UI Qt imported without
  QtWebEngine (``SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT`` set for that import only); ``auto``
  on the console imports QtWebEngine as tk-core always did (the check can fail).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from children import run_child

from sgconnect import session_cache
from sgconnect.testing import approve_next_app_session, child_environment, save_session

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


def wrong_code(site, login: str) -> str:
    """A six-digit code that is not ``login``'s current 2FA code."""
    return "000000" if site.state.two_factor_codes[login] != "000000" else "111111"


def result_of(child) -> dict:
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert child.returncode == 0 and lines, child.stdout[-2000:] + child.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize(
    "tk_core, thread",
    [("installed", "main"), ("installed", "worker"), ("v0.20.29", "main")],
    ids=["main-thread", "worker-thread-main-blocked-in-join", "tk-core-v0.20.29"],
)
def test_url_renews_headless_in_a_qt_host_and_never_imports_qtwebengine(
    make_local_site, isolated_shotgun_home, tk_core, thread, request
):
    site = make_local_site("saml2", app_session_launcher=True)
    expired_saved_session(site)
    env = {
        "SITE_URL": site.url,
        "SGCONNECT_LOGIN_METHOD": "url",
        "QT_BINDING": qt_binding_with_web_engine(),
        "CONTROL": "1",
        "CHECK_TANK_ROOT": "1",
    }
    if thread == "worker":  # no dialog to draw: the main thread is not needed
        env["IN_WORKER"] = "1"
    if tk_core != "installed":  # the oldest tk-core: its app session launcher, first on the path
        env["PYTHONPATH"] = request.getfixturevalue("old_tk_core_path")
        # tk-core v0.20.29 imports QtWebEngine itself on `import tank` in a Qt host (its SSO
        # module runs its Qt importer, which ignores SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT there).
        env["IMPORT_TANK_FIRST"] = "1"
    stop = threading.Event()
    approver = approve_next_app_session(site, "alice", stop)
    try:
        child = run_child(CHILD, env)
    finally:
        stop.set()
        approver.join(5)
    result = result_of(child)
    assert result["tank_file"].startswith(env.get("PYTHONPATH", "")), result
    assert result["error"] is None, result
    assert result["projects"] == len(site.projects)
    assert (result["login"], result["renewals"]) == ("alice", 1)
    if tk_core == "installed":
        assert result["web_engine"] == []
        assert result["tk_login_qt"] is False  # tk-core's login UI never ran
        # The binding has QtWebEngine: tk-core's login UI would have imported it.
        assert any("QtWebEngineWidgets" in name for name in result["web_engine_after_control"])
    else:  # the renewal imported nothing more than `import tank` did
        assert result["web_engine"] == result["web_engine_at_tank_import"], result
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


# -- tk-core v0.20.29: a refused login or renewal is a typed error, not its raw TypeError --------

#: The oldest tk-core whose console ends a refused password or 2FA code with a raw TypeError.
OLD_TK_CORE = "tk-core-v0.20.29"


@pytest.fixture(scope="module")
def old_tk_core_path() -> str:
    """``PYTHONPATH`` for a child on tk-core v0.20.29 (its ``tank`` before the installed one)."""
    from test_bare_engine import upstream

    return str(upstream(OLD_TK_CORE) / "python")


def old_tk_core_child_env(old_tk_core_path: str, home: Path) -> dict:
    env = child_environment(
        PYTHONPATH=old_tk_core_path, SHOTGUN_HOME=str(home), SGTK_AUTH_ALLOW_NO_HTTPS="1"
    )
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SGCONNECT_SITE", "SGCONNECT_NON_INTERACTIVE"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("refused", ["password", "2fa code"])
def test_refused_console_login_on_tk_core_0_20_29_is_a_login_failed_error(
    make_local_site, isolated_shotgun_home, old_tk_core_path, refused
):
    site = make_local_site("default", app_session_launcher=False)
    if refused == "password":
        typed = "carol\nnot-the-password\n"
    else:  # bob has 2FA: the right password, a wrong code
        typed = f"bob\n{site.password('bob')}\n{wrong_code(site, 'bob')}\n"
    child = subprocess.run(
        [sys.executable, "-m", "sgconnect", "login", "--site", site.url, "--method", "password"],
        input=typed,
        capture_output=True,
        text=True,
        env=old_tk_core_child_env(old_tk_core_path, isolated_shotgun_home),
        timeout=90,
        start_new_session=True,
    )
    # tk-core v0.20.29 printed why, then returned None to a caller that unpacks it.
    assert "Login failed: Authentication failed" in child.stdout, child.stdout + child.stderr
    assert child.returncode == 3, child.stderr  # docs/cli.md: login failed
    assert "Traceback" not in child.stderr and "TypeError" not in child.stderr
    lines = [line for line in child.stderr.splitlines() if line.startswith("sgconnect:")]
    assert lines == [
        f"sgconnect: Login to {site.url} failed: the site refused the login, the password or the "
        "two-factor code (tk-core printed why just above). Check them, then log in again with "
        f"`sgconnect login --site {site.url}`."
    ], child.stderr
    assert session_cache.read_saved_session(site.url) is None
    assert not any(secret in child.stdout + child.stderr for secret in site.secrets)


def test_refused_console_renewal_on_tk_core_0_20_29_is_a_login_failed_error(
    make_local_site, isolated_shotgun_home, old_tk_core_path
):
    site = make_local_site("default", app_session_launcher=False)
    expired_saved_session(site)
    env = old_tk_core_child_env(old_tk_core_path, isolated_shotgun_home)
    env.update(SITE_URL=site.url, SGCONNECT_LOGIN_METHOD="password", CHECK_TANK_ROOT="1")
    child = subprocess.run(
        [sys.executable, str(CHILD)],
        input="not-the-password\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        start_new_session=True,
    )
    result = result_of(child)
    assert result["tank_file"].startswith(old_tk_core_path), result
    assert result["error"] == (
        f"LoginFailedError: Renewal of alice's session on {site.url} failed: the site refused "
        "the login, the password or the two-factor code (tk-core printed why just above). Check "
        f"them, then log in again with `sgconnect login --site {site.url}`."
    ), result
    assert result["renewals"] == 0
    # (tk-core v0.20.29's Qt importer ignores SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT for its login
    # UI: only the url method keeps QtWebEngine out there, see docs/dcc.md.)


# -- docs/dcc.md's examples ------------------------------------------------------------------------


def test_dcc_doc_examples_name_a_real_setting_and_the_variable_tk_core_reads():
    import tank
    import yaml
    from fixtures.toolkit import REPO_ROOT

    from sgconnect.environ import SKIP_QTWEBENGINE
    from sgconnect.interactive import METHODS

    text = (REPO_ROOT / "docs" / "dcc.md").read_text()
    (settings_block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    app = yaml.safe_load(settings_block)["tk-multi-sgconnect"]
    declared = yaml.safe_load((REPO_ROOT / "info.yml").read_text())["configuration"]
    assert set(app) - {"location"} <= set(declared)
    assert app["login_method"] == "url" and "url" in METHODS
    (shell_block,) = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    assert f"export {SKIP_QTWEBENGINE}=1" in shell_block
    importer = Path(tank.__file__).parent / "util" / "qt_importer.py"
    assert SKIP_QTWEBENGINE in importer.read_text()  # the name tk-core reads
    for dcc in ("Nuke", "Blender", "Unreal"):
        (row,) = [line for line in text.splitlines() if line.startswith(f"| {dcc} |")]
        assert "| `url` |" in row and "`1`, in the launch environment" in row
