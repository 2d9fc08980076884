"""``sgconnect demo``: the README's main job, run exactly as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sgconnect.testing import child_environment

#: A hang guard, not a timing assertion (the demo takes a few seconds).
HANG_GUARD = 120


def demo_env() -> dict:
    env = child_environment()
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    # The demo must isolate itself: a proxy or a site from the caller must not matter.
    env["http_proxy"] = "http://127.0.0.1:9"
    env["SGCONNECT_SITE"] = "https://not-the-demo-site.example.com"
    return env


@pytest.mark.tkcore
def test_demo_passes_and_prints_no_secret(isolated_shotgun_home):
    result = subprocess.run(
        [sys.executable, "-m", "sgconnect", "demo"],
        env=demo_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    # 2: the headless login, approved through the site's page by the simulated browser.
    assert "/app_session_request/" in out
    assert "[browser] alice signed in at the identity provider with their password" in out
    assert "[browser] alice clicked Approve" in out
    # 3: api3 and REST list the projects.
    assert out.count("Big Buck Bunny, Sintel, Tears of Steel") >= 2
    # 4: the expired session is rejected, the renewed one adopted, without a prompt.
    assert "single sign-on, no password asked" in out
    assert re.search(r"rejected by the site \(\dx expired\).*retried: 3 projects", out)
    # 5: whoami in a new process, from the saved session.
    assert "| alice (Alice Anders) on http://127.0.0.1:" in out
    assert "source:         saved" in out
    # 6: audit lines and the secret check.
    assert "hand-out api3 purpose='demo: project report' login=alice" in out
    match = re.search(r"No secret printed or logged: checked (\d+) secrets", out)
    assert match and int(match.group(1)) >= 10
    # The temporary SHOTGUN_HOME is gone, and the caller's was never touched.
    home = re.search(r"empty temporary folder \(([^)]+)\)", out).group(1)
    assert not os.path.exists(home)
    assert os.listdir(isolated_shotgun_home) == []


def test_demo_interactive_needs_a_display(isolated_shotgun_home):
    result = subprocess.run(
        [sys.executable, "-m", "sgconnect", "demo", "--interactive"],
        env=demo_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sgconnect: demo --interactive needs a display")
