"""The app inside a real Toolkit engine, and the studio override of its hook (docs/hook.md).

Each engine runs in its own process (tk-core bootstraps once per process): ``tests/fixtures/
run_engine.py`` bootstraps the test engine with tk-core's ``ToolkitManager`` (which starts it with
``sgtk.platform.start_engine``) from ``tests/fixtures/config``, loads this repository as the app
through a path descriptor, uses the app, and prints what it saw. The sites run in this process, so
their journals show every request the engine made.

Two environments of the fixture configuration: ``project`` (the app's own hook) and ``studio``
(``{self}/connection.py:{config}/studio_connection.py``). Both runs get the same
``STUDIO_FORBIDDEN_SITES``: only the override makes it matter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.toolkit import CONFIG, FIXTURES, REPO_ROOT, tk_core_checkout

from sgconnect.testing import LocalSite, child_environment

CHILDREN = Path(__file__).parent / "children"


pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 120
STUDIO_HOOK = CONFIG / "hooks" / "studio_connection.py"
STUDIO_USER_AGENT = "studio-pipeline/4.2"


@dataclass
class EngineRun:
    site: LocalSite
    result: dict[str, Any]


def child_env(**extra: str) -> dict[str, str]:
    env = child_environment()
    env.pop("SGCONNECT_HOOK", None)
    env.update(SGTK_AUTH_ALLOW_NO_HTTPS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def result_of(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def other_site():
    """A second site, listed in STUDIO_FORBIDDEN_SITES for every run."""
    with LocalSite() as site:
        yield site


def start_engine(
    site: LocalSite, home: Path, core_root: Path, python: str = sys.executable, **env: str
) -> subprocess.Popen:
    """``run_engine.py`` in its own process with ``python``, as alice on ``site``."""
    env.setdefault("SGCONNECT_FIXTURE_ENVIRONMENT", "project")
    env.setdefault("STUDIO_FORBIDDEN_SITES", "")
    proc = subprocess.Popen(
        [python, str(FIXTURES / "run_engine.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=child_env(
            SHOTGUN_HOME=str(home),
            SGCONNECT_TK_CORE_ROOT=str(core_root),
            SGCONNECT_REPO_ROOT=str(REPO_ROOT),
            **env,
        ),
    )
    params = {
        "site": site.url,
        "login": "alice",
        "session_token": site.issue_session("alice"),
        "project_id": 71,
        "config": str(CONFIG),
        "other_site": env["STUDIO_FORBIDDEN_SITES"] or "http://127.0.0.1:1",
    }
    proc.stdin.write(json.dumps(params) + "\n")
    proc.stdin.flush()
    return proc


def finish_engines(procs: dict[str, subprocess.Popen]) -> dict[str, dict[str, Any]]:
    """The RESULT of each engine process (killed if still running when one fails)."""
    try:
        results = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=CHILD_TIMEOUT)
            completed = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            results[name] = result_of(completed)
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def engines(tmp_path_factory, other_site):
    """Both environments, each engine started once in its own process (in parallel)."""
    core_root, why = tk_core_checkout()
    if core_root is None:
        pytest.skip(f"LOUD SKIP: cannot start a Toolkit engine: {why}")
    with LocalSite() as project_site, LocalSite() as studio_site:
        sites = {"project": project_site, "studio": studio_site}
        procs = {
            environment: start_engine(
                site,
                tmp_path_factory.mktemp(f"home_{environment}"),
                core_root,
                SGCONNECT_FIXTURE_ENVIRONMENT=environment,
                STUDIO_FORBIDDEN_SITES=other_site.url,
            )
            for environment, site in sites.items()
        }
        results = finish_engines(procs)
        yield {name: EngineRun(sites[name], result) for name, result in results.items()}


@pytest.fixture(params=["project", "studio"])
def run(request, engines) -> EngineRun:
    return engines[request.param]


def sgconnect_api3_requests(site: LocalSite):
    """The api3 requests made through connections the app handed out (tk-core's own lack it)."""
    return [
        e for e in site.journal if e.path == "/api3/json" and "sgconnect/" in (e.user_agent or "")
    ]


# -- the app in an engine ----------------------------------------------------------------------


def test_handed_down_users_leave_the_environment_inside_the_engine(run):
    # tk-core has a current user in the engine, so the chain never reads the handed-down ones:
    # the app's copy of sgconnect took them out of os.environ when it was imported.
    assert run.result["handed_down_env"] == {
        "desktop_user": False,
        "context_kept": True,
        "token_in_env": False,
    }


def test_engine_starts_with_the_app_loaded(run):
    result = run.result
    assert result["engine"] == "tk-sgconnect-testengine"
    # A failing init_app does not stop the engine: the app must be there.
    assert result["apps"] == ["tk-multi-sgconnect"]
    # The engine runs on the configuration's core (the checkout), not the pip-installed sgtk.
    assert "site-packages" not in result["tank_file"]


def test_get_connection_finds_the_projects(run):
    assert run.result["projects"] == sorted(run.site.projects)
    reads = [e for e in sgconnect_api3_requests(run.site) if e.rpc == "read"]
    assert reads and all(e.auth == "session" and e.login == "alice" for e in reads)


def test_connections_act_as_the_engine_user(run):
    user = run.result["current_user"]
    assert user["source"] == "current_user"
    assert (user["login"], user["site"], user["auth_method"]) == ("alice", run.site.url, "session")


def test_who_am_i_and_switch_user_commands_are_registered(run):
    assert {"Who am I", "Switch user..."} <= set(run.result["commands"])
    lines = run.result["who_am_i"].splitlines()
    assert "User: Alice Anders (alice)" in lines  # the name is read from the site
    assert f"Site: {run.site.url}" in lines
    assert "Method: session (from current user)" in lines
    assert "Qt binding: none" in lines  # a headless engine: tk-core gave it no Qt
    assert not any(secret in run.result["who_am_i"] for secret in run.site.secrets)


def test_rest_session_lists_the_projects(run):
    assert run.result["rest_error"] is None
    assert run.result["rest_projects"] == sorted(run.site.projects)
    gets = [e for e in run.site.journal if e.path == "/api/v1/entity/projects"]
    assert [(e.auth, e.login, e.status) for e in gets] == [("bearer", "alice", 200)]


def test_one_connection_per_thread_reused_on_the_same_thread(run):
    ids = run.result["connection_ids"]
    assert set(ids) == {"main", "t0", "t1"}
    for first, again in ids.values():
        assert first == again
    assert len({pair[0] for pair in ids.values()}) == 3


# -- the studio override (docs/hook.md) ----------------------------------------------------------


def test_studio_override_forbids_its_forbidden_sites(engines, other_site):
    studio, project = engines["studio"].result, engines["project"].result
    assert studio["other_site_forbidden"] is True
    assert studio["other_site_handout"]["type"] == "SiteForbiddenError"
    assert other_site.url in studio["other_site_handout"]["message"]
    # Without the override the same site, same STUDIO_FORBIDDEN_SITES, runs the chain instead.
    assert project["other_site_forbidden"] is False
    assert project["other_site_handout"]["type"] == "LoginRequiredError"
    # Refused before any login or request.
    assert other_site.journal == []


def test_studio_override_tags_every_api3_request(engines):
    studio_requests = sgconnect_api3_requests(engines["studio"].site)
    assert studio_requests
    assert all(e.user_agent.endswith(f"; {STUDIO_USER_AGENT}") for e in studio_requests)
    project_requests = sgconnect_api3_requests(engines["project"].site)
    assert project_requests
    assert not any(STUDIO_USER_AGENT in e.user_agent for e in project_requests)


def test_studio_override_runs_first_and_super_reaches_the_default(engines):
    studio, project = engines["studio"].result, engines["project"].result
    # Most derived last in the setting: the studio class is on top, the app's hook below it.
    assert studio["hook_mro"][:3] == ["StudioConnection", "DefaultConnectionHook", "ConnectionHook"]
    assert project["hook_mro"][0] == "DefaultConnectionHook"
    assert "StudioConnection" not in project["hook_mro"]
    # super() reached the defaults: the chain found the engine user, the default connection
    # (sgconnect's user agent) was made first, then the studio added its own.
    assert studio["current_user"]["source"] == "current_user"
    assert studio["user_agents"][-2:] == ["sgconnect/0.1", STUDIO_USER_AGENT]
    # tk-core derives each file's class from the previous one's: reversed, the app's hook is on top.
    assert studio["mro_studio_last"][:2] == ["StudioConnection", "DefaultConnectionHook"]
    assert studio["mro_studio_first"][:2] == ["DefaultConnectionHook", "StudioConnection"]


# -- the same override in a standalone process (SGCONNECT_HOOK) ---------------------------------

STANDALONE_TOOL = CHILDREN / "app_engine_standalone_tool.py"


def run_standalone(allowed: LocalSite, forbidden: LocalSite, hook: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(STANDALONE_TOOL)],
        input=json.dumps({"allowed": allowed.url, "forbidden": forbidden.url}) + "\n",
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        start_new_session=True,
        env=child_env(
            SGCONNECT_NON_INTERACTIVE="1",
            STUDIO_FORBIDDEN_SITES=forbidden.url,
            **({"SGCONNECT_HOOK": hook} if hook else {}),
        ),
    )
    return result_of(proc)


def test_standalone_process_uses_the_studio_hook_from_sgconnect_hook(make_local_site):
    from tank.authentication import session_cache

    allowed, forbidden = make_local_site(), make_local_site()
    session_cache.cache_session_data(allowed.url, "alice", allowed.issue_session("alice"))
    session_cache.set_current_user(allowed.url, "alice")
    session_cache.set_current_host(allowed.url)

    hook = os.pathsep.join([str(REPO_ROOT / "hooks" / "connection.py"), str(STUDIO_HOOK)])
    studio = run_standalone(allowed, forbidden, hook)
    assert studio["hook"] == "StudioConnection"
    assert studio["projects"] == sorted(allowed.projects)
    assert studio["forbidden"] == "SiteForbiddenError"
    assert forbidden.url in studio["message"]
    assert forbidden.journal == []
    tagged = sgconnect_api3_requests(allowed)
    assert tagged and all(STUDIO_USER_AGENT in e.user_agent for e in tagged)

    # Without SGCONNECT_HOOK: the default hook, which lets the tool reach that site.
    allowed.clear_journal()
    default = run_standalone(allowed, forbidden, "")
    assert default["hook"] == "StandaloneConnectionHook"
    assert default["projects"] == sorted(allowed.projects)
    # Not refused by a hook: the chain ran, and found no session of that site (alice's saved
    # session belongs to the other port of the same host; it is never sent there, issue 13).
    assert default["forbidden"] == "LoginRequiredError"
    assert not any(STUDIO_USER_AGENT in e.user_agent for e in sgconnect_api3_requests(allowed))


# -- one error identity per process (issue 13) ------------------------------------------------


def _base_python() -> str:
    """The interpreter under this venv: it sees tk-core and shotgun_api3, never sgconnect."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _installed_copy(root: Path, version: str | None = None) -> Path:
    """A pip-installed-like sgconnect (a plain copy on PYTHONPATH), optionally another version."""
    import shutil

    target = root / "sgconnect"
    shutil.copytree(REPO_ROOT / "python" / "sgconnect", target)
    if version is not None:
        init = target / "__init__.py"
        text = init.read_text(encoding="utf-8")
        init.write_text(text.replace('__version__ = "', f'__version__ = "{version}+', 1))
    return target


@pytest.fixture(scope="module")
def identity_runs(tmp_path_factory):
    """The engine started three ways: no sgconnect in its Python, one of the app's version,
    one of another version. Each in its own process, in parallel."""
    core_root, why = tk_core_checkout()
    if core_root is None:
        pytest.skip(f"LOUD SKIP: cannot start a Toolkit engine: {why}")
    base = _base_python()
    check = subprocess.run(
        [base, "-c", "import importlib.util as u; print(u.find_spec('sgconnect') is None)"],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert check.stdout.strip() == "True", f"{base} must not see sgconnect: {check.stderr}"
    same = tmp_path_factory.mktemp("same_version")
    other = tmp_path_factory.mktemp("other_version")
    _installed_copy(same)
    _installed_copy(other, version="9.9")
    ways = {"none": (base, None), "same": (sys.executable, same), "other": (sys.executable, other)}
    with LocalSite() as site:
        procs = {}
        for way, (python, path) in ways.items():
            extra = {"PYTHONPATH": str(path)} if path else {}
            home = tmp_path_factory.mktemp(f"home_{way}")
            procs[way] = start_engine(site, home, core_root, python, **extra)
        return {"same_dir": same, "other_dir": other, **finish_engines(procs)}


@pytest.mark.parametrize("way", ["none", "same", "other"])
def test_a_tool_catches_the_apps_errors_with_except_sgconnect_error(identity_runs, way):
    identity = identity_runs[way]["identity"]
    assert identity["caught"] == "InvalidPurposeError"  # sgconnect.connect("") in the tool
    assert identity["app_error"] == "InvalidPurposeError" and identity["app_error_caught"]
    assert identity["errors_module_same"]


def test_without_an_installed_sgconnect_the_apps_copy_is_the_process_sgconnect(identity_runs):
    identity = identity_runs["none"]["identity"]
    assert identity["file"] == str(REPO_ROOT / "python" / "sgconnect" / "__init__.py")
    assert identity["app_package"].startswith("tkimp")  # the copy, now also `sgconnect`
    assert identity["rest_same"]  # sgconnect.rest is the copy's module, not a second load


def test_an_installed_sgconnect_of_the_apps_version_is_the_one_package(identity_runs):
    identity = identity_runs["same"]["identity"]
    assert identity["file"] == str(identity_runs["same_dir"] / "sgconnect" / "__init__.py")
    assert identity["app_package"] == "sgconnect" and identity["rest_same"]


def test_an_installed_sgconnect_of_another_version_lends_the_app_its_errors(identity_runs):
    identity = identity_runs["other"]["identity"]
    assert identity["file"] == str(identity_runs["other_dir"] / "sgconnect" / "__init__.py")
    assert identity["app_package"].startswith("tkimp")  # the app runs its own version
    assert identity["app_error_module"] == "sgconnect.errors"  # with the installed classes
