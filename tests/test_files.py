"""Files: everything sgconnect writes, or makes tk-core write, is 0600 in 0700 folders.

The flows run in a child process whose umask is 022 (the usual one, under which a plain
``open(path, "w")`` makes a 0644 file readable by everyone), with a ``SHOTGUN_HOME`` that does
not exist yet, so that every folder on the way is created by the flow itself.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from children import start_child

from sgconnect import cache_lock
from sgconnect.testing import approve_next_app_session

CHILDREN = Path(__file__).parent / "children"

pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 90

FLOWS_CHILD = CHILDREN / "files_flows.py"


def test_login_renewal_logout_and_url_login_write_0600_files_in_0700_folders(
    make_local_site, tmp_path
):
    console = make_local_site("default", app_session_launcher=False)
    browser = make_local_site("saml2", app_session_launcher=True)
    browser_url = browser.url.replace("127.0.0.1", "localhost")  # its own cache folder
    watched = tmp_path / "fresh"
    env = dict(
        SHOTGUN_HOME=str(watched / "shotgun"),  # does not exist yet
        WATCHED=str(watched),
        CONSOLE_SITE=console.url,
        BROWSER_SITE=browser_url,
        SGCONNECT_LOGIN_METHOD="password",
    )
    stop = threading.Event()
    approver = approve_next_app_session(browser, "carol", stop)
    child = start_child(FLOWS_CHILD, env)
    try:
        password = console.password("alice")
        child.stdin.write(f"alice\n{password}\n")
        child.stdin.flush()
        lines = []
        while True:
            line = child.stdout.readline()
            assert line, "the child ended early:\n" + "".join(lines)
            lines.append(line)
            if line.strip() == "READY":
                break
        console.expire_sessions()
        out, err = child.communicate(f"\n{password}\n", timeout=CHILD_TIMEOUT)
    finally:
        stop.set()
        child.kill()
        approver.join(5)
    assert child.returncode == 0, err
    steps = {}
    for line in ("".join(lines) + out).splitlines():
        if line.startswith("MODES "):
            step, _, found = line[len("MODES ") :].partition("\t")
            steps[step] = json.loads(found)
    assert list(steps) == ["fresh login", "renewal", "logout", "url login"], out + err

    for step, found in steps.items():
        wrong = {
            path: f"{mode:04o}"
            for path, mode in found.items()
            if mode != (0o700 if (watched / path).is_dir() else 0o600)
        }
        assert wrong == {}, f"after {step}: not 0600 files in 0700 folders: {wrong}"
    # What was checked: tk-core's global and per-site caches, and sgconnect's lock files.
    assert {
        "shotgun",
        "shotgun/authentication.yml",
        "shotgun/127.0.0.1",
        "shotgun/127.0.0.1/authentication.yml",
        "shotgun/127.0.0.1/sgconnect.lock",
    } <= set(steps["fresh login"])
    assert {"shotgun/localhost/authentication.yml", "shotgun/localhost/sgconnect.lock"} <= set(
        steps["url login"]
    )


def test_the_cache_lock_file_is_0600_in_0700_folders_under_a_loose_umask(
    tmp_path, monkeypatch, make_local_site
):

    site = make_local_site("default")
    monkeypatch.setenv("SHOTGUN_HOME", str(tmp_path / "a" / "b"))
    previous = os.umask(0o022)
    try:
        with cache_lock.cache_lock(site.url) as held:
            assert held
        with cache_lock.cache_lock(None) as held:
            assert held
    finally:
        os.umask(previous)
    site_lock = cache_lock.lock_path(site.url)
    assert site_lock == str(tmp_path / "a" / "b" / "127.0.0.1" / "sgconnect.lock")
    for path in (site_lock, cache_lock.lock_path(None)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for folder in ("a", "a/b", "a/b/127.0.0.1"):
        assert stat.S_IMODE(os.stat(tmp_path / folder).st_mode) == 0o700
    assert os.path.getsize(site_lock) == 0  # it holds nothing
