"""The app in the REAL tk-shell engine, in a bare interpreter, on the declared tk-core floor and up.

A DCC's Python has no pip package: only what tk-core brings. Each run here starts a venv made
without system site packages and without pip, whose only path entry is the tk-core checkout's
``python/`` (``PYTHONPATH``), bootstraps tk-shell with this app from a path descriptor against the
local site (served by this process, over 127.0.0.1), then gets a connection, runs ``find`` and the
"Who am I" command through the engine (``tests/fixtures/run_bare_engine.py``).

The tk-core checkouts come from ``.ci/upstream unpack`` (the snapshots in ../shared/upstream); the
tk-shell engine is ``tk-shell-bd12cd0``. These runs are how ``requires_core_version`` is proven:
``test_declared_floor_is_a_tested_tk_core`` ties info.yml to the versions run here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml
from fixtures.toolkit import CONFIG, FIXTURES, REPO_ROOT

from sgconnect.testing import LocalSite, approve_next_app_session, child_environment

pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 180
INFO = yaml.safe_load((REPO_ROOT / "info.yml").read_text())

#: The declared floor, the last tk-core that brings shotgun_api3 only as tank_vendor, the newest.
VERSIONS = [INFO["requires_core_version"], "v0.23.6", "v0.24.0"]
TK_SHELL = "tk-shell-bd12cd0"


def upstream(name: str) -> Path:
    """An unpacked upstream snapshot (``.ci/upstream unpack NAME``), or a loud skip."""
    proc = subprocess.run(
        [str(REPO_ROOT / ".ci" / "upstream"), "unpack", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.skip(f"LOUD SKIP: no upstream snapshot {name}: {proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def interpreter(label: str) -> Path:
    """``"current"``: the Python running the tests; ``"3.9"`` etc.: pyenv's, or a loud skip."""
    if label == "current":
        return Path(sys.executable)
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{label}.*/bin/python"))
    if not found:
        pytest.skip(f"LOUD SKIP: no Python {label} under {root} (pyenv install {label})")
    return found[-1]


_bare_venvs: dict = {}


def make_bare_python(label: str, root: Path) -> Path:
    """A venv of that Python without system site packages and without pip: the stdlib only."""
    if label not in _bare_venvs:
        venv = root / f"bare-{label}"
        subprocess.run(
            [str(interpreter(label)), "-m", "venv", "--without-pip", str(venv)], check=True
        )
        python = venv / "bin" / "python"
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.util as u; "
                "print([u.find_spec(n) is None for n in ('yaml', 'shotgun_api3', 'six')])",
            ],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"},
            check=True,
        )
        assert probe.stdout.strip() == "[True, True, True]", probe.stdout
        _bare_venvs[label] = python
    return _bare_venvs[label]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A bare venv of the Python running the tests."""
    return make_bare_python("current", tmp_path_factory.mktemp("bare"))


def tree_digest(core_root: Path) -> str:
    """A digest of a tk-core's ``python/tank`` sources."""
    digest = hashlib.sha256()
    for path in sorted((core_root / "python" / "tank").rglob("*.py")):
        digest.update(path.relative_to(core_root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def write_config(root: Path, core_root: Path, shell_root: Path) -> Path:
    """A Toolkit configuration: tk-shell with this app, on the tk-core at ``core_root``."""
    config = root / "config"
    (config / "core" / "hooks").mkdir(parents=True)
    (config / "env").mkdir()
    shutil.copy(CONFIG / "core" / "hooks" / "pick_environment.py", config / "core" / "hooks")
    (config / "core" / "core_api.yml").write_text(
        yaml.safe_dump({"location": {"type": "path", "path": str(core_root)}})
    )
    environment = {
        "engines": {
            "tk-shell": {
                "location": {"type": "path", "path": str(shell_root)},
                "apps": {
                    "tk-multi-sgconnect": {
                        "location": {"type": "path", "path": str(REPO_ROOT)},
                        "non_interactive": True,
                    }
                },
            }
        },
        "frameworks": {},
    }
    (config / "env" / "project.yml").write_text(yaml.safe_dump(environment))
    return config


def run_bare(
    python: Path, core_root: Path, config: Path, site: LocalSite, home: Path, snippets=()
) -> dict:
    """Run the engine in ``python``; ``snippets`` (code using ``engine``) run after the checks."""
    env = child_environment()
    for name in ("PYTHONPATH", "PYTHONHOME", "SGCONNECT_HOOK", "VIRTUAL_ENV"):
        env.pop(name, None)
    env.update(
        PYTHONPATH=str(core_root / "python"),
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
        SHOTGUN_HOME=str(home),
        SGTK_AUTH_ALLOW_NO_HTTPS="1",
    )
    params = {
        "site": site.url,
        "login": "alice",
        "session_token": site.issue_session("alice"),
        "project_id": 71,
        "config": str(config),
        "snippets": list(snippets),
    }
    proc = subprocess.run(
        [str(python), str(FIXTURES / "run_bare_engine.py")],
        input=json.dumps(params) + "\n",
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        start_new_session=True,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert not any(secret in proc.stdout + proc.stderr for secret in site.secrets)
    return result


#: The Pythons each tk-core runs on: the one running the tests, and the declared floor.
PYTHONS = ["current", INFO["minimum_python_version"]]


@pytest.fixture(
    scope="module",
    params=[(python, version) for python in PYTHONS for version in VERSIONS],
    ids=lambda param: f"py{param[0]}-{param[1]}",
)
def bare_run(request, tmp_path_factory):
    label, version = request.param
    python = make_bare_python(label, tmp_path_factory.getbasetemp())
    core_root = upstream(f"tk-core-{version}")
    shell_root = upstream(TK_SHELL)
    tmp = tmp_path_factory.mktemp(f"bare-{label}-{version}")
    config = write_config(tmp, core_root, shell_root)
    stop = threading.Event()
    with LocalSite() as site:
        # "Switch user..." runs the headless browser login (no display): bob approves it.
        approver = approve_next_app_session(site, "bob", stop)
        try:
            result = run_bare(python, core_root, config, site, tmp / "home")
        finally:
            stop.set()
            approver.join()
        result["core_root"] = str(core_root)
        yield version, site, result


def test_interpreter_is_bare(bare_run):
    _, _, result = bare_run
    assert result["pip_shotgun_api3"] is False  # only what tk-core brings


def test_real_tk_shell_starts_with_the_app_on_that_tk_core(bare_run):
    version, _, result = bare_run
    assert result["engine"] == TK_SHELL  # a path descriptor: named after its folder
    # The engine runs on a copy of that checkout's core (whose info.yml says "HEAD"): same files.
    installed = Path(result["tank_file"]).parents[2]
    assert tree_digest(installed) == tree_digest(Path(result["core_root"]))
    assert result["apps"] == ["tk-multi-sgconnect"], result.get("log")
    assert {"Who am I", "Switch user..."} <= set(result["commands"])
    assert result["has_ui"] is False


def test_get_connection_finds_the_projects(bare_run):
    _, site, result = bare_run
    assert result["find_error"] is None
    assert result["projects"] == sorted(site.projects)
    reads = [e for e in site.journal if e.rpc == "read" and "sgconnect/" in (e.user_agent or "")]
    assert reads and all(e.login == "alice" for e in reads)


def command_log(result: dict, command: str) -> str:
    """What running ``command`` through the engine wrote to the log; it must not have raised."""
    assert result[command]["error"] is None, result[command]
    return "\n".join(result[command]["log"])


def test_who_am_i_prints_to_the_engine_log_without_qt(bare_run):
    _, site, result = bare_run
    text = command_log(result, "Who am I")
    assert "User: Alice Anders (alice)" in text
    assert f"Site: {site.url}" in text
    assert "Qt binding: none" in text


def test_switch_user_logs_in_again_and_prints_to_the_engine_log(bare_run):
    _, site, result = bare_run
    text = command_log(result, "Switch user...")
    assert "Now connected as:" in text
    assert re.search(r"^User: (.* \()?bob\)?$", text, flags=re.M), text
    approved = [e for e in site.journal if "app_session_request" in e.path]
    assert approved


def test_older_python_than_declared_is_refused_with_a_clear_error(tmp_path):
    """Python 3.8 (below minimum_python_version) on tk-core v0.23.6, which still runs there."""
    python = make_bare_python("3.8", tmp_path)
    core_root = upstream("tk-core-v0.23.6")
    config = write_config(tmp_path, core_root, upstream(TK_SHELL))
    with LocalSite() as site:
        result = run_bare(python, core_root, config, site, tmp_path / "home")
    assert result["python"] == "3.8"
    assert result["apps"] == []  # tk-core starts the engine without the app
    log = "\n".join(result["log"])
    refused = (
        "It will not be loaded: tk-multi-sgconnect needs Python 3.9 or newer; this engine runs"
    )
    assert f"{refused} Python 3.8" in log, log[-3000:]


def test_declared_python_floor_is_a_tested_python():
    assert PYTHONS[-1] == INFO["minimum_python_version"] == "3.9"


def test_declared_floor_is_a_tested_tk_core():
    """info.yml's floor is the oldest tk-core this module runs the engine on (see VERSIONS)."""
    floor = INFO["requires_core_version"]
    assert VERSIONS[0] == floor
    assert floor in textwrap.dedent((REPO_ROOT / "README.md").read_text())
