"""Drive tk-core's own Qt login dialog through a web (SSO) login, by script, offscreen.

Run by ``tests/test_site_qt_weblogin.py`` in a subprocess, so that a QtWebEngine crash or hang
cannot take the test session down. Nothing here fakes tk-core: the dialog, the QWebEngineView,
the cookie capture and the session cache are all tk-core's. The script only does what a person
would do: press "Sign In" in tk-core's dialog, then type a login and a password into the
identity provider's form when it shows up in tk-core's web view.

Inputs (environment):
    WEBLOGIN_SITE_URL      the site (e.g. http://127.0.0.1:5001)
    WEBLOGIN_IDP_URL       the identity provider's origin (second port)
    WEBLOGIN_LOGIN         the login to type into the IdP form
    WEBLOGIN_PASSWORD      the password to type into the IdP form
    WEBLOGIN_RESULT        path of the JSON result file this script writes
    WEBLOGIN_TIMEOUT       seconds before the watchdog cancels the dialogs (default 60)
    WEBLOGIN_ULF_SUPPORT   "1": declare set_shotgun_authenticator_support_web_login(True)
                           (how Desktop/Create unlock web login for Autodesk Identity sites)
    WEBLOGIN_LOG           optional path of a tk-core DEBUG log file
    WEBLOGIN_ENTRY         "sgconnect": log in through ``sgconnect.connect(..., interactive=True)``
                           (the credential chain's interactive step) instead of calling tk-core
    WEBLOGIN_CASES         optional JSON ``[{"site", "idp", "password"}]``: log in to each site in
                           turn, in this one process (instead of WEBLOGIN_SITE_URL, _IDP_URL and
                           _PASSWORD); each case's report goes in the result's ``cases`` list and
                           WEBLOGIN_TIMEOUT applies to each

The result file holds a JSON object; ``ok`` is true when get_user_from_prompt() returned.
The process always ends with os._exit() once the result is written: QtWebEngine's teardown at
interpreter exit is not what is being tested, and has been seen to crash on some builds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback

RESULT_PATH = os.environ["WEBLOGIN_RESULT"]
SITE_URL = os.environ.get("WEBLOGIN_SITE_URL", "").rstrip("/")
IDP_URL = os.environ.get("WEBLOGIN_IDP_URL", "").rstrip("/")
LOGIN = os.environ["WEBLOGIN_LOGIN"]
PASSWORD = os.environ.get("WEBLOGIN_PASSWORD", "")
#: Several sites, one after the other in this process: ``[{"site", "idp", "password"}]``.
CASES = json.loads(os.environ.get("WEBLOGIN_CASES") or "[]")
TIMEOUT_S = float(os.environ.get("WEBLOGIN_TIMEOUT", "60"))
POLL_MS = 100
MAX_SUBMITS = 3

# What happened, in order; ends up in the result file (never holds the password or tokens).
events: list[str] = []
result: dict = {"ok": False, "events": events}
_t0 = time.monotonic()


def note(message: str) -> None:
    events.append(f"{time.monotonic() - _t0:6.2f}s {message}")


def finish(code: int) -> None:
    """Write the result and end the process without Qt/Python teardown."""
    result["elapsed_s"] = round(time.monotonic() - _t0, 2)
    tmp = RESULT_PATH + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=2, default=str)
    os.replace(tmp, RESULT_PATH)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


# Last line of defence: if the Qt event loop itself is wedged, the watchdog QTimer below cannot
# fire. A plain thread then writes what is known and ends the process.
def _hard_kill():
    note("hard watchdog: Qt event loop did not give control back; killing the process")
    result["error"] = "hard timeout (event loop wedged)"
    finish(3)


_hard = threading.Timer(TIMEOUT_S * max(1, len(CASES)) + 20, _hard_kill)
_hard.daemon = True
_hard.start()


def _setup_logging() -> None:
    log_path = os.environ.get("WEBLOGIN_LOG")
    if not log_path:
        return
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("sgtk", "tank"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)


def run_through_sgconnect() -> None:
    """The chain's interactive step: no session anywhere, a QApplication, so tk-core's dialog."""
    import sgconnect

    note("calling sgconnect.connect(interactive=True)")
    try:
        sg = sgconnect.connect("qt web login", site=SITE_URL, interactive=True)
        projects = sg.find("Project", [], ["name"])
        user = sgconnect.current_user(SITE_URL)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        return
    result.update(
        ok=True,
        login=user.login,
        source=user.source,
        auth_method=user.auth_method,
        projects=sorted(p["name"] for p in projects),
    )


def main() -> None:
    _setup_logging()

    import tank

    # tk-core's own binding choice (PySide2 first, then PySide6). The QtWebEngine modules are
    # imported by this, which must happen before the QApplication exists.
    from tank.authentication.ui.qt_abstraction import (
        QtCore,
        QtGui,
        QtWebEngineWidgets,
        qt_version_tuple,
    )

    if QtWebEngineWidgets is None:
        result["error"] = "tk-core found no QtWebEngineWidgets"
        finish(2)

    # tk-core tries PySide2 first: if it is loaded, it is the binding tk-core took.
    if "PySide2" in sys.modules:
        import PySide2 as binding_module
    else:
        import PySide6 as binding_module
    binding_version = f"{binding_module.__name__} {binding_module.__version__}"
    result["binding"] = binding_version
    result["qt_version"] = ".".join(str(v) for v in qt_version_tuple)
    result["python"] = sys.version.split()[0]
    result["tk_core"] = getattr(tank, "__version__", None)

    if os.environ.get("WEBLOGIN_ULF_SUPPORT") == "1":
        from tank.authentication import set_shotgun_authenticator_support_web_login

        set_shotgun_authenticator_support_web_login(True)
        note("declared set_shotgun_authenticator_support_web_login(True)")

    if binding_module.__name__ == "PySide2":
        # Qt 5's QWebEngineView renders through a QQuickWidget. On the offscreen platform there
        # is no OpenGL context to be had, and Qt 5.15 aborts ("Failed to create OpenGL context")
        # unless Qt Quick uses its software scene graph. Read when the first Quick window is
        # made, so setting it here, before the QApplication, is enough. Qt 6 does not need it.
        os.environ.setdefault("QT_QUICK_BACKEND", "software")
        result["qt_quick_backend"] = os.environ["QT_QUICK_BACKEND"]
    QtCore.QCoreApplication.setAttribute(QtCore.Qt.AA_ShareOpenGLContexts)
    app = QtGui.QApplication.instance() or QtGui.QApplication(["qt_weblogin_driver"])

    from tank.authentication.login_dialog import LoginDialog

    if not CASES:
        login_once(app, LoginDialog, SITE_URL, IDP_URL, PASSWORD, result)
        finish(0 if result["ok"] else 1)
    result["cases"] = []
    for case in CASES:
        report: dict = {"ok": False, "site": case["site"]}
        result["cases"].append(report)
        note(f"case {case['site']}")
        login_once(app, LoginDialog, case["site"], case["idp"], case["password"], report)
    result["ok"] = all(report["ok"] for report in result["cases"])
    finish(0 if result["ok"] else 1)


def login_once(app, LoginDialog, site_url, idp_url, password, result) -> None:  # noqa: N803
    """tk-core's interactive login to ``site_url``, driven as a person would; fills ``result``
    (``ok`` true when get_user_from_prompt() returned and its connection works)."""
    from tank.authentication import ShotgunAuthenticator, ShotgunSamlUser, ShotgunWebUser
    from tank.authentication import constants as auth_constants
    from tank.authentication.defaults_manager import DefaultsManager
    from tank.authentication.ui.qt_abstraction import QtCore, QtGui, QtWebEngineWidgets

    state = {
        "signed_in": False,
        "dialog_seen": False,
        "submits": 0,
        "js_pending": False,
        "last_url": None,
        "idp_seen": False,
        "timed_out": False,
    }

    def _run_js(page, script, callback):
        # PySide6: runJavaScript(str, int worldId, callable); PySide2: runJavaScript(str, callable).
        try:
            page.runJavaScript(script, 0, callback)
        except TypeError:
            page.runJavaScript(script, callback)

    def _web_views():
        return [
            w
            for w in app.allWidgets()
            if isinstance(w, QtWebEngineWidgets.QWebEngineView) and w.isVisible()
        ]

    def _login_dialogs():
        return [w for w in app.topLevelWidgets() if isinstance(w, LoginDialog) and w.isVisible()]

    fill_js = """
    (function () {
        if (document.readyState !== "complete") { return "loading"; }
        var login = document.getElementById("login");
        var password = document.getElementById("password");
        if (!login || !password) { return "no-form:" + document.title; }
        if (window.__weblogin_driver_submitted) { return "already"; }
        window.__weblogin_driver_submitted = true;
        login.value = __LOGIN__;
        password.value = __PASSWORD__;
        var form = login.form || password.form || document.querySelector("form");
        if (!form) { return "no-form-element"; }
        var button = form.querySelector("[type=submit]");
        if (button) { button.click(); } else { form.submit(); }
        return "submitted";
    })();
    """.replace("__LOGIN__", json.dumps(LOGIN)).replace("__PASSWORD__", json.dumps(password))

    def on_js_result(value):
        state["js_pending"] = False
        if value == "submitted":
            state["submits"] += 1
            result["idp_submits"] = state["submits"]
            note(f"IdP form filled and submitted ({state['submits']})")
        elif value != "already":
            note(f"IdP page not ready: {value!r}")

    def poll():
        # 1. tk-core's LoginDialog: check it chose web login for the preset site, press Sign In.
        for dlg in _login_dialogs():
            if not state["dialog_seen"]:
                state["dialog_seen"] = True
                result["dialog_site"] = dlg.ui.site.currentText()
                result["dialog_method"] = auth_constants.method_resolve.get(dlg.method_selected)
                result["dialog_site_editable"] = dlg.ui.site.isEnabled()
                result["dialog_password_visible"] = dlg.ui.password.isVisible()
                site, method = result["dialog_site"], result["dialog_method"]
                note(f"LoginDialog shown: site={site} method={method}")
            if not state["signed_in"] and dlg.method_selected == auth_constants.METHOD_WEB_LOGIN:
                state["signed_in"] = True
                note("pressing Sign In")
                # Later, not now: the click runs tk-core's nested web dialog exec_(), and this
                # poll must return so that its (repeating) timer keeps firing inside it.
                QtCore.QTimer.singleShot(0, dlg.ui.sign_in.click)
            elif not state["signed_in"]:
                result["error"] = "LoginDialog did not pick web login (method {})".format(
                    result["dialog_method"],
                )
                note(result["error"])
                cancel_everything()
                return

        # 2. tk-core's QWebEngineView: wait for the IdP origin, then fill its form.
        for view in _web_views():
            url = view.url().toString()
            if url != state["last_url"]:
                state["last_url"] = url
                # Log without the query string (it may carry a SAML request / relay state).
                note("web view at {}".format(url.split("?")[0]))
                result.setdefault("urls", []).append(url.split("?")[0])
            if url.startswith(idp_url) and not state["js_pending"]:
                state["idp_seen"] = True
                if state["submits"] >= MAX_SUBMITS:
                    continue
                state["js_pending"] = True
                _run_js(view.page(), fill_js, on_js_result)

    def cancel_everything():
        """Reject every dialog still open (nested web dialog first, then the LoginDialog)."""
        for w in list(app.topLevelWidgets()):
            if isinstance(w, QtGui.QDialog) and w.isVisible() and not isinstance(w, LoginDialog):
                w.reject()
        for w in _login_dialogs():
            w.reject()

    def on_timeout():
        state["timed_out"] = True
        result["error"] = "timed out after {}s (last web view URL: {})".format(
            TIMEOUT_S,
            (state["last_url"] or "none").split("?")[0],
        )
        note(result["error"])
        cancel_everything()
        # Dialogs that refuse to go keep being rejected.
        keep_cancelling.start(500)

    poller = QtCore.QTimer()
    poller.setInterval(POLL_MS)
    poller.timeout.connect(poll)
    poller.start()

    watchdog = QtCore.QTimer()
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(on_timeout)
    watchdog.start(int(TIMEOUT_S * 1000))

    keep_cancelling = QtCore.QTimer()
    keep_cancelling.timeout.connect(cancel_everything)

    if os.environ.get("WEBLOGIN_ENTRY") == "sgconnect":
        run_through_sgconnect()
        poller.stop()
        watchdog.stop()
        return

    # The real thing: tk-core's public interactive login, host preset and fixed.
    authenticator = ShotgunAuthenticator(DefaultsManager(fixed_host=site_url))
    note("calling ShotgunAuthenticator.get_user_from_prompt()")
    try:
        user = authenticator.get_user_from_prompt()
    except Exception as exc:  # AuthenticationCancelled on timeout, anything else is reported
        result["error"] = result.get("error") or f"{type(exc).__name__}: {exc}"
        result["exception"] = type(exc).__name__
        result["traceback"] = traceback.format_exc()
        note(f"get_user_from_prompt raised {type(exc).__name__}")
        return
    finally:
        poller.stop()
        watchdog.stop()

    note(f"get_user_from_prompt returned {type(user).__name__}")
    result["user_class"] = type(user).__name__
    result["user_mro"] = [c.__name__ for c in type(user).__mro__]
    result["is_saml_user"] = isinstance(user, ShotgunSamlUser)
    result["is_web_user"] = isinstance(user, ShotgunWebUser)
    result["login"] = user.login
    result["host"] = user.host
    impl = user._impl  # only to report shape, not values
    result["has_session_token"] = bool(impl.get_session_token())
    result["has_session_metadata"] = bool(impl.get_session_metadata())
    if isinstance(user, ShotgunSamlUser):
        result["claims_expiration"] = user.get_claims_expiration()

    # The connection the user gives must work against the site.
    try:
        sg = user.create_sg_connection()
        projects = sg.find("Project", [], ["name"])
        result["projects"] = sorted(p["name"] for p in projects)
        note(f"found {len(projects)} projects")
    except Exception as exc:
        result["error"] = f"create_sg_connection/find failed: {type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        return

    # What tk-core wrote to its session cache (under SHOTGUN_HOME).
    from tank.authentication import session_cache

    data = session_cache.get_session_data(user.host, user.login) or {}
    result["cache"] = {
        "login": data.get("login"),
        "has_session_token": bool(data.get("session_token")),
        "session_token_matches": data.get("session_token") == impl.get_session_token(),
        "has_session_metadata": bool(data.get("session_metadata")),
    }
    result["ok"] = True


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:
        result["error"] = f"driver crashed: {type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        finish(4)
