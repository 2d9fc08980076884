#!/usr/bin/env python3
"""Run python-api v3.10.0's own tests, unmodified, against a LocalSite: a CI leg.

    python tests/python_api/run_upstream_tests.py [--tier core|live|all] [--as script|human|both]

It unpacks the python-api snapshot with ``.ci/upstream unpack python-api-v3.10.0`` (nothing of
python-api is committed), copies it to a temporary folder, starts a LocalSite with the test
script user and the test HumanUser, writes python-api's ``tests/config`` pointing at it, and runs
the listed tests with pytest: once as a script user, once as a human (``SG_JENKINS=1``). The exit
status is non-zero when any run fails; each run prints pytest's summary line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "python"))

from sgconnect.testing import HumanUserSpec, LocalSite, ScriptSpec  # noqa: E402

SNAPSHOT = "python-api-v3.10.0"
SCRIPT = ScriptSpec("python_api_tests", key="python-api-tests-throwaway-key", id=201)
HUMAN = HumanUserSpec(
    "sgunittesthuman", "Sg unittest human", 301, password="python-api-tests-throwaway-pw"
)
PROJECT = "PTR unittest project"

CORE = [
    "tests/test_proxy.py::ServerConnectionTest::test_connection",
    "tests/test_api.py::TestErrors::test_bad_auth",
    "tests/test_api.py::TestErrors::test_sanitized_auth_params",
    "tests/test_api.py::TestErrors::test_upload_empty_file",
    "tests/test_api.py::TestErrors::test_upload_missing_file",
    "tests/test_api.py::TestHumanUserSudoAuth::test_human_user_sudo_auth_fails",
]
LIVE = [
    "tests/test_api.py::TestHumanUserAuth::test_humanuser_find",
    "tests/test_api.py::TestSessionTokenAuth::test_humanuser_find",
    "tests/test_api.py::TestShotgunApi::test_get_session_token",
    "tests/test_api.py::TestScriptUserSudoAuth::test_user_is_creator",
    "tests/test_api.py::TestProjectLastAccessedByCurrentUser",
    "tests/test_api.py::TestHumanUserAuth::test_humanuser_upload_thumbnail_for_version",
    "tests/test_api.py::TestSessionTokenAuth::test_humanuser_upload_thumbnail_for_version",
]

CONFIG = """\
[SERVER_INFO]
server_url     : {url}
script_name    : {script}
api_key        : {key}
http_proxy     :
session_uuid   :

[TEST_DATA]
project_name   : {project}
human_name     : {human_name}
human_login    : {human_login}
human_password : {human_password}
asset_code     : Sg unittest asset
version_code   : Sg unittest version
shot_code      : Sg unittest shot
task_content   : Sg unittest task
playlist_code  : Sg unittest playlist
"""


def unpack() -> Path:
    env = dict(os.environ)
    if "SGCONNECT_UPSTREAM" not in env and not (REPO.parent / "shared" / "upstream").is_dir():
        for candidate in (Path("/work/shared/upstream"),):
            if candidate.is_dir():
                env["SGCONNECT_UPSTREAM"] = str(candidate)
    out = subprocess.run(
        [str(REPO / ".ci" / "upstream"), "unpack", SNAPSHOT],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


#: Tests python-api itself skips under ``SG_JENKINS`` (its human pass): they run in the script
#: user's pass only, so that no pass reports a skip.
SKIPPED_BY_UPSTREAM_AS_HUMAN = (
    "tests/test_api.py::TestHumanUserSudoAuth::test_human_user_sudo_auth_fails",
)


def run(tests: list, human: bool, workdir: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SG_", "PYTEST_"))}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if human:
        env["SG_JENKINS"] = "1"
        tests = [test for test in tests if test not in SKIPPED_BY_UPSTREAM_AS_HUMAN]
    env["PYTHONPATH"] = str(workdir)  # python-api's own shotgun_api3, next to its tests
    who = "human (SG_JENKINS=1)" if human else "script user"
    report = os.environ.get("SGCONNECT_PYTHON_API_JUNIT")  # .ci/run counts the tests from it
    junit = [f"--junitxml={report}-{'human' if human else 'script'}.xml"] if report else []
    print(f"== python-api {SNAPSHOT} tests as a {who}: {len(tests)} ids", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *junit, *tests],
        cwd=workdir,
        env=env,
    )
    return result.returncode


def main(argv: list = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=("core", "live", "all"), default="all")
    parser.add_argument("--as", dest="who", choices=("script", "human", "both"), default="both")
    args = parser.parse_args(argv)
    tests = {"core": CORE, "live": LIVE, "all": CORE + LIVE}[args.tier]
    source = unpack()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sgconnect-python-api-") as tmp:
        workdir = Path(tmp) / SNAPSHOT
        shutil.copytree(source, workdir)
        whos = {"script": [False], "human": [True], "both": [False, True]}[args.who]
        for human in whos:
            with LocalSite(users=[HUMAN], scripts=[SCRIPT], projects=[PROJECT]) as site:
                if human:  # python-api's CI human is an admin: its sudo_as_login is honoured
                    site.update_user(HUMAN.login, sudo_allowed=True)
                (workdir / "tests" / "config").write_text(
                    CONFIG.format(
                        url=site.url,
                        script=SCRIPT.name,
                        key=SCRIPT.key,
                        project=PROJECT,
                        human_name=HUMAN.name,
                        human_login=HUMAN.login,
                        human_password=HUMAN.password,
                    )
                )
                failures += run(tests, human, workdir) != 0
    print(f"== python-api {SNAPSHOT}: {'FAILED' if failures else 'passed'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
