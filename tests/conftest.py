"""Test-wide setup: offscreen Qt, an isolated session cache and a fresh sgconnect per test, loud
skips.

Tests marked ``tkcore`` need the real tk-core (``sgtk``); tests marked ``qt`` need a Qt binding
with QtWebEngine. When either is missing they are skipped with a reason that says so, and the
session ends with a banner: a skipped tk-core test is a hole in the proof, never a pass.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from sgconnect.testing.helpers import PROXY_VARIABLES

# Before anything imports Qt or tk-core.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")
if sys.version_info < (3, 11):
    # PySide2 5.15's QtWebEngine aborts offscreen ("Failed to create OpenGL context") without it.
    os.environ.setdefault("QT_QUICK_BACKEND", "software")
os.environ["SGTK_AUTH_ALLOW_NO_HTTPS"] = "1"
# tk-core reads http_proxy and ignores no_proxy: a loopback site must not go through a proxy.
for _proxy_var in PROXY_VARIABLES:
    os.environ.pop(_proxy_var, None)
# Nothing handed down from the machine running the tests.
for _handed_down in ("TANK_CONTEXT", "SHOTGUN_DESKTOP_CURRENT_USER", "SGCONNECT_NON_INTERACTIVE"):
    os.environ.pop(_handed_down, None)


def _tkcore_missing_reason() -> str | None:
    if importlib.util.find_spec("sgtk") is None or importlib.util.find_spec("tank") is None:
        return (
            "tk-core (sgtk) is NOT installed: install it with "
            "pip install 'sgtk @ git+https://github.com/shotgunsoftware/tk-core@v0.24.0'"
        )
    return None


def _qt_missing_reason() -> str | None:
    for binding, webengine in (
        ("PySide2", "PySide2.QtWebEngineWidgets"),
        ("PySide6", "PySide6.QtWebEngineWidgets"),
    ):
        if importlib.util.find_spec(binding) is not None:
            try:
                if importlib.util.find_spec(webengine) is not None:
                    return None
            except ImportError:
                pass
    return "no Qt binding with QtWebEngine (PySide6 or PySide2) is importable"


TKCORE_MISSING = _tkcore_missing_reason()
QT_MISSING = _qt_missing_reason()
_loud_skips: list[str] = []


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TKCORE_MISSING and item.get_closest_marker("tkcore"):
            item.add_marker(pytest.mark.skip(reason=f"LOUD SKIP: {TKCORE_MISSING}"))
            _loud_skips.append(item.nodeid)
        elif QT_MISSING and item.get_closest_marker("qt"):
            item.add_marker(pytest.mark.skip(reason=f"LOUD SKIP: {QT_MISSING}"))
            _loud_skips.append(item.nodeid)


def pytest_report_header(config):
    return [
        f"tk-core: {'MISSING - ' + TKCORE_MISSING if TKCORE_MISSING else 'installed'}",
        f"Qt WebEngine: {'MISSING - ' + QT_MISSING if QT_MISSING else 'available'}",
    ]


def pytest_terminal_summary(terminalreporter):
    if _loud_skips:
        terminalreporter.write_sep(
            "!", "TESTS SKIPPED FOR A MISSING DEPENDENCY", red=True, bold=True
        )
        for reason in filter(None, {TKCORE_MISSING, QT_MISSING}):
            terminalreporter.write_line(f"  {reason}")
        terminalreporter.write_line(
            f"  {len(_loud_skips)} test(s) did not run; this run proves less."
        )


@pytest.fixture(autouse=True)
def isolated_shotgun_home(tmp_path, monkeypatch):
    """Each test gets its own tk-core session cache (``SHOTGUN_HOME``)."""
    home = tmp_path / "shotgun_home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("SHOTGUN_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _fresh_sgconnect(fresh_sgconnect):
    """Each test starts and ends with no standalone broker and no handed-down user (the
    ``fresh_sgconnect`` fixture of sgconnect's pytest plugin)."""
    yield


@pytest.fixture
def fresh_service(monkeypatch, fresh_sgconnect):
    """No SGCONNECT_* variable from outside, a fresh standalone broker, no remembered key."""
    from sgconnect import service

    for name in list(os.environ):
        if name.startswith("SGCONNECT_"):
            monkeypatch.delenv(name)
    service.forget_environment_keys()
    yield
    service.forget_environment_keys()
