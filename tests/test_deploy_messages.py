"""Every "next step" a message names works as written, and doctor's exit code matches its verdict.

- ``whoami`` with a site and no session names ``sgconnect login --site <site>``: the test runs that
  exact command (a headless browser login here, approved on the local site) and it logs in.
- ``whoami`` without any site names a login with ``--site``, which the CLI accepts as written.
- ``doctor`` in an interpreter with no pip package and no tk-core concludes that nothing works,
  and exits 1.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading

from children import run_sgconnect
from fixtures.toolkit import REPO_ROOT

from sgconnect import cli
from sgconnect.testing import approve_next_app_session

TIMEOUT = 120
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "SGCONNECT_NON_INTERACTIVE")


def sgconnect_cli(home, *args: str) -> subprocess.CompletedProcess:
    return run_sgconnect(home, *args, unset=NO_DISPLAY, timeout=TIMEOUT)


def named_command(message: str) -> list[str]:
    """The one backquoted ``sgconnect ...`` command of a message, as argv."""
    commands = re.findall(r"`(sgconnect [^`]+)`", message)
    assert len(commands) == 1, message
    return shlex.split(commands[0])


def test_whoami_hint_logs_in_as_written(local_site, tmp_path):
    result = sgconnect_cli(tmp_path, "whoami", "--site", local_site.url)
    assert result.returncode == 3, result.stderr
    argv = named_command(result.stderr)
    assert argv == ["sgconnect", "login", "--site", local_site.url]

    stop = threading.Event()
    approver = approve_next_app_session(local_site, "alice", stop)
    try:
        login = sgconnect_cli(tmp_path, *argv[1:])
    finally:
        stop.set()
        approver.join()
    assert login.returncode == 0, login.stderr
    assert f"Logged in to {local_site.url} as alice" in login.stdout
    again = sgconnect_cli(tmp_path, "whoami", "--site", local_site.url)
    assert again.returncode == 0 and again.stdout.startswith("alice"), again.stderr


def test_whoami_without_any_site_names_a_login_with_site(tmp_path):
    result = sgconnect_cli(tmp_path, "whoami")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    argv = named_command(result.stderr)
    assert argv[:3] == ["sgconnect", "login", "--site"] and argv[3].startswith("https://")
    parsed = cli.build_parser().parse_args(argv[1:])  # the CLI accepts it as written
    assert parsed.site == argv[3]


def test_doctor_exits_1_when_no_method_can_work(tmp_path):
    """A Python with no pip package and no tk-core: no login method can work."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHOTGUN_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(REPO_ROOT / "python"),
        "PYTHONNOUSERSITE": "1",
    }
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "sgconnect", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "No login method will work in this environment." in result.stdout, result.stderr
    assert result.returncode == 1
    assert "`sgconnect login --site https://" in result.stdout
