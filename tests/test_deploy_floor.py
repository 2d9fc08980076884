"""The declared floor (info.yml) is honest, and the app checks it, and Python, when it starts.

tk-core checks ``requires_core_version`` and ``minimum_python_version`` only at install and update.
The floor is proven twice: tests/test_bare_engine.py starts the real tk-shell engine with the app on
it in a bare interpreter; here, the floor's own sources (the snapshot ``.ci/upstream`` unpacks: a
shallow clone without history, so no ``git log``) have the API the app calls.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess

import pytest
from fixtures.toolkit import REPO_ROOT
from test_bare_engine import upstream


def _load_app_module():
    """app.py, the Toolkit app's entry file (it imports sgtk, as an engine does)."""
    spec = importlib.util.spec_from_file_location("sgconnect_app_entry", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app_entry = _load_app_module()
check_requirements = app_entry.check_requirements

INFO_TEXT = (REPO_ROOT / "info.yml").read_text()


def declared(key: str) -> str:
    return re.search(rf'^{key}: "([^"]+)"', INFO_TEXT, flags=re.M).group(1)


@pytest.mark.tkcore
def test_floor_has_the_app_session_launcher_api_the_app_uses():
    """``process(..., keep_waiting_callback=...)`` drives the headless browser login."""
    floor = declared("requires_core_version")
    root = upstream(f"tk-core-{floor}")
    source = (root / "python/tank/authentication/app_session_launcher.py").read_text()
    assert re.search(r"def process\([^)]*keep_waiting_callback", source, flags=re.S)
    # The snapshot really is that tag (a shallow clone: one commit, tagged).
    described = subprocess.run(
        ["git", "-c", f"safe.directory={root}", "-C", str(root), "describe", "--tags"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert described.stdout.strip() == floor, described.stderr


def test_declared_versions_are_the_ones_checked():
    assert declared("requires_core_version") == "v0.20.29"
    assert declared("minimum_python_version") == "3.9"


@pytest.mark.parametrize("core", ["v0.20.29", "v0.23.6", "v0.24.0", "v1.0.0", "HEAD", "abc1234"])
def test_floor_and_newer_cores_start(core):
    check_requirements(INFO_TEXT, core, (3, 11, 7))


@pytest.mark.parametrize("core", ["v0.20.28", "v0.19.18", "v0.20.2"])
def test_older_core_is_refused_with_what_to_change(core):
    with pytest.raises(app_entry.RequirementError) as raised:
        check_requirements(INFO_TEXT, core, (3, 11, 7))
    message = str(raised.value)
    assert f"needs tk-core v0.20.29 or newer; this configuration runs {core}" in message
    assert "core_api.yml" in message


def test_older_python_is_refused_with_what_to_change():
    with pytest.raises(app_entry.RequirementError) as raised:
        check_requirements(INFO_TEXT, "v0.24.0", (3, 7, 16))
    assert "needs Python 3.9 or newer; this engine runs Python 3.7.16" in str(raised.value)
    check_requirements(INFO_TEXT, "v0.24.0", (3, 9, 0))
