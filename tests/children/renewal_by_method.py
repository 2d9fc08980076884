"""Child program of tests/test_renewal_method.py (run by path): a tool whose saved session has
expired renews it by the ``login_method`` setting (``SGCONNECT_LOGIN_METHOD``), in a Qt host (a
QApplication of ``QT_BINDING``, offscreen) or on the console (no ``QT_BINDING``), on the tk-core
first on its path. It prints one
``RESULT`` line: what it found, and which QtWebEngine modules the process imported."""

import importlib
import json
import os
import sys
import threading

if os.environ.get("QT_BINDING"):  # a DCC: its QApplication exists before any tool runs
    QtWidgets = importlib.import_module(os.environ["QT_BINDING"] + ".QtWidgets")
    app = QtWidgets.QApplication(["dcc"])

if os.environ.get("IMPORT_TANK_FIRST"):  # as an engine has: what importing tk-core imported
    import tank  # noqa: F401

    web_engine_at_tank_import = sorted(name for name in sys.modules if "QtWebEngine" in name)

import sgconnect  # noqa: E402

site_url = os.environ["SITE_URL"]
result = {"error": None, "projects": None}


def tool() -> None:
    sg = sgconnect.connect("renewal by method", site=site_url, interactive=True)
    try:
        result["projects"] = len(sg.find("Project", [], ["name"]))
    except sgconnect.SgConnectError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"


if os.environ.get("IN_WORKER"):  # the main thread blocks in join(): no Qt event loop runs
    worker = threading.Thread(target=tool)
    worker.start()
    worker.join()
else:
    tool()
credential = sgconnect.broker().credential(site_url)


def web_engine_modules() -> list:
    return sorted(name for name in sys.modules if "QtWebEngine" in name)


result.update(
    login=credential.person_login,
    renewals=credential.renewals,
    web_engine=web_engine_modules(),
    tk_login_qt="tank.authentication.ui.qt_abstraction" in sys.modules,
    skip_variable=os.environ.get("SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT"),
)
if os.environ.get("IMPORT_TANK_FIRST"):
    result["web_engine_at_tank_import"] = web_engine_at_tank_import
if os.environ.get("CHECK_TANK_ROOT"):
    result["tank_file"] = sys.modules["tank"].__file__  # which tk-core ran
if os.environ.get("CONTROL"):
    # What tk-core's own login UI would have imported here (its Qt importer, as its dialog runs it).
    from tank.authentication.ui import qt_abstraction  # noqa: F401

    result["web_engine_after_control"] = web_engine_modules()
print("RESULT", json.dumps(result), flush=True)
