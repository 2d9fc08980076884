"""Every ```python block of README.md and docs/*.md runs, against the local site.

Each block is run the way its reader would run it:

- a **tool** block (``import sgconnect``...) as a script in a fresh process, after alice logged
  in (tk-core's session cache, as SG Desktop or ``sgconnect login`` leaves it);
- an **engine** block (``engine.apps[...]``) inside the real tk-shell engine, in a Python without
  pip packages (``tests/fixtures/run_bare_engine.py``);
- a **hook** block (``sgtk.get_hook_baseclass()``) as the studio hook of a standalone process
  (``SGCONNECT_HOOK``), with a tool using it.

Two documents are checked elsewhere, and listed in ``CHECKED_ELSEWHERE`` so that no new document
escapes: docs/hook.md's block is the studio hook file tests/test_app_engine.py runs in an engine
(tests/test_app_manifest.py checks it is verbatim), and docs/local-site-contract.md is the
reference of ``sgconnect.testing`` (fragments such as ``site.journal``), tested by its own tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import test_bare_engine
from fixtures.toolkit import REPO_ROOT
from test_bare_engine import TK_SHELL, run_bare, upstream, write_config

from sgconnect.testing import LocalSite, child_environment, save_session

pytestmark = pytest.mark.tkcore

CHECKED_ELSEWHERE = {
    "docs/hook.md": "test_app_manifest.py::test_hook_doc_shows_the_tested_studio_hook_verbatim",
    "docs/local-site-contract.md": "sgconnect.testing's own tests",
}
TIMEOUT = 120


def python_blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        name = path.relative_to(REPO_ROOT).as_posix()
        blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
        found += [(name, index, block) for index, block in enumerate(blocks)]
    return found


BLOCKS = python_blocks()


def kind(block: str) -> str:
    if "get_hook_baseclass" in block:
        return "hook"
    if "engine.apps" in block:
        return "engine"
    return "tool"


TOOL_BLOCKS = [
    pytest.param(block, id=f"{doc}#{index}")
    for doc, index, block in BLOCKS
    if doc not in CHECKED_ELSEWHERE and kind(block) == "tool"
]

#: What a farm submitter's ``job`` is (docs/farm.md): the reader's farm API, not sgconnect's.
FARM_JOB = "class _Job:\n    environment = {}\n\n\njob = _Job()\n"


def run_tool(code: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = child_environment(
        SHOTGUN_HOME=str(home), SGTK_AUTH_ALLOW_NO_HTTPS="1", SGCONNECT_NON_INTERACTIVE="1", **env
    )
    environment.pop("SGCONNECT_HOOK", None) if "SGCONNECT_HOOK" not in env else None
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture
def logged_in(tmp_path):
    """A local site where alice logged in: her session is in tk-core's cache, the current one."""
    with LocalSite() as site:
        save_session(site, "alice")
        yield site, tmp_path / "home"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOTGUN_HOME", str(tmp_path / "home"))


def test_every_document_is_run_or_checked_elsewhere():
    docs = {doc for doc, _, _ in BLOCKS}
    assert set(CHECKED_ELSEWHERE) <= docs
    run_here = docs - set(CHECKED_ELSEWHERE)
    assert {"README.md", "docs/rest.md", "docs/farm.md"} <= run_here
    assert all(kind(block) in ("tool", "engine", "hook") for _, _, block in BLOCKS)


@pytest.mark.parametrize("block", TOOL_BLOCKS)
def test_tool_example_runs(block, logged_in):
    site, home = logged_in
    code = (FARM_JOB if block.lstrip().startswith("from sgconnect.farm") else "") + block
    result = run_tool(code, home, SGCONNECT_SITE=site.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not any(secret in result.stdout + result.stderr for secret in site.secrets)
    if "iter_pages" in block:
        assert set(site.projects) <= set(result.stdout.splitlines())
    if ".patch(" in block:  # created, updated (200) then retired (204) on the site
        writes = [
            (e.method, e.status) for e in site.journal if e.path.startswith("/api/v1/entity/")
        ]
        assert writes == [("POST", 201), ("PATCH", 200), ("DELETE", 204)]
        assert "Big Buck Bunny 2" not in site.projects


def test_readme_login_required_example_prints_one_line_to_act_on(tmp_path):
    """The README's LoginRequiredError example, where nobody is logged in."""
    block = next(b for _, _, b in BLOCKS if "except sgconnect.LoginRequiredError" in b)
    with LocalSite() as site:
        result = run_tool(block, tmp_path / "home", SGCONNECT_SITE=site.url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("asset report: Login required")
    assert f"`sgconnect login --site {site.url}`" in lines[0]


#: A Python without pip packages (the fixture of tests/test_bare_engine.py).
bare = test_bare_engine.bare_python


def test_engine_examples_run_in_the_real_tk_shell(tmp_path, bare):
    snippets = [b for doc, _, b in BLOCKS if doc not in CHECKED_ELSEWHERE and kind(b) == "engine"]
    assert len(snippets) >= 2
    core_root = upstream("tk-core-v0.24.0")
    config = write_config(tmp_path, core_root, upstream(TK_SHELL))
    from sgconnect.testing import approve_next_app_session

    stop = threading.Event()
    with LocalSite() as site:
        approver = approve_next_app_session(site, "alice", stop)  # "Switch user..." in the run
        try:
            result = run_bare(bare, core_root, config, site, tmp_path / "home", snippets)
        finally:
            stop.set()
            approver.join()
    assert [s["error"] for s in result["snippets"]] == [None] * len(snippets), result["snippets"]
    names = [s["names"] for s in result["snippets"]]
    assert {"app": "SgConnectApp", "sg": "SessionConnection"} in names  # a shotgun_api3.Shotgun
    assert {"app": "SgConnectApp", "rest": "RestSession"} in names


def test_rest_hook_example_makes_reporting_tools_read_only(tmp_path):
    hook_block = next(b for doc, _, b in BLOCKS if doc == "docs/rest.md" and kind(b) == "hook")
    hook_file = tmp_path / "studio_connection.py"
    hook_file.write_text(hook_block)
    tool = textwrap.dedent(
        """
        import sgconnect

        rest = sgconnect.rest_session("report: projects")
        print(len(rest.get("/entity/projects")["data"]))
        try:
            rest.post("/entity/projects", json={"name": "Not Made"})
        except sgconnect.SiteForbiddenError as exc:
            print("forbidden:", exc)
        """
    )
    with LocalSite() as site:
        home = tmp_path / "home"
        save_session(site, "alice")
        chain = f"{REPO_ROOT / 'hooks' / 'connection.py'}:{hook_file}"
        result = run_tool(tool, home, SGCONNECT_SITE=site.url, SGCONNECT_HOOK=chain)
        assert result.returncode == 0, result.stderr[-3000:]
        count, forbidden = result.stdout.splitlines()[:2]
        assert int(count) == len(site.projects)
        assert forbidden.startswith("forbidden:") and "reporting tools only read" in forbidden
        assert "Not Made" not in site.projects
