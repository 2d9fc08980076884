"""`sgconnect site` with a site file (fixed secrets) and the mode / launcher / login-flow / TLS /
latency flags, driven as a real process and checked with the real shotgun_api3."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import shotgun_api3

from sgconnect.testing import child_environment
from sgconnect.testing.site import SiteConfigError, load_site_config

TIMEOUT = 60
SITE_FILE = """\
mode: default
users:
  - {login: dana, name: Dana Diaz, id: 501, password: dana-test-password}
  - {login: eli, name: Eli Eng, id: 502}
scripts:
  - {name: peer_tests, key: peer-tests-test-key, id: 601}
projects: [Alpha, Beta]
"""


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sgconnect", "site", *args],
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until_ready(server: subprocess.Popen) -> list:
    lines = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C stops the site."):
            return lines
    raise AssertionError(f"the site did not come up: {lines} {server.stderr.read()}")


def _stop(server: subprocess.Popen) -> str:
    server.send_signal(signal.SIGTERM)
    out, err = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0, err
    return out


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_site_file_fixed_secrets_tls_latency_and_flags(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"site{suffix}"
    if suffix == ".json":
        import yaml

        path.write_text(json.dumps(yaml.safe_load(SITE_FILE)))
    else:
        path.write_text(SITE_FILE)
    server = _start(
        "--config",
        str(path),
        "--tls",
        "--latency",
        "0.01",
        "--unified-login-flow",
        "--no-app-session-launcher",
    )
    try:
        lines = _read_until_ready(server)
        text = "\n".join(lines)
        url = lines[0].rsplit(" ", 1)[1]
        assert lines[0].startswith("Local ShotGrid site (default, app session launcher off): ")
        assert url.startswith("https://127.0.0.1:")
        assert "dana-test-password" not in text and "peer-tests-test-key" not in text
        assert "(password from the site file)" in text and "(key from the site file)" in text
        assert "Projects: Alpha, Beta" in text and "Unified login flow: on" in text
        ca_path = next(line for line in lines if line.startswith("TLS CA")).rsplit(" ", 1)[1]
        monkeypatch.setenv("SHOTGUN_API_CACERTS", ca_path)

        sg = shotgun_api3.Shotgun(url, login="dana", password="dana-test-password")
        info = sg.info()
        assert info["unified_login_flow_enabled"] is True
        assert info["authentication_app_session_launcher_enabled"] is False
        assert sorted(p["name"] for p in sg.find("Project", [], ["name"])) == ["Alpha", "Beta"]
        script = shotgun_api3.Shotgun(url, "peer_tests", "peer-tests-test-key")
        assert script.find_one("HumanUser", [["login", "is", "eli"]], ["id"])["id"] == 502
    finally:
        out = _stop(server)
    assert "Stopped." in out


def test_mode_flag_wins_over_the_site_file(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(SITE_FILE)
    server = _start("--config", str(path), "--mode", "saml2")
    try:
        lines = _read_until_ready(server)
        assert lines[0].startswith("Local ShotGrid site (saml2, ")
    finally:
        _stop(server)


@pytest.mark.parametrize(
    "content, words",
    [
        ("users: nope\n", "users must be a list"),
        ("users:\n  - {login: x}\n", "needs login, name and id"),
        ("colour: blue\n", "unknown keys"),
        ("mode: ftp\n", "mode must be one of"),
        ("users: [\n", "is not valid"),
    ],
)
def test_bad_site_files_are_one_line_errors(tmp_path, content, words):
    path = tmp_path / "site.yaml"
    path.write_text(content)
    with pytest.raises(SiteConfigError, match=words):
        load_site_config(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "sgconnect", "site", "--config", str(path)],
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr


def test_missing_site_file(tmp_path):
    with pytest.raises(SiteConfigError, match="Cannot read the site file"):
        load_site_config(str(tmp_path / "nope.json"))
