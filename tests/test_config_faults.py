"""Wrong configuration is a typed, one-line error naming what to fix, on every path, before
anything is sent: a bad proxy address (its password masked), a timeout out of range, a broken
``current_host`` in tk-core's cache. Driven against the local site over real sockets, in-process
and through the ``sgconnect`` command.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import sgconnect
from sgconnect.connection import ScriptConnection, SessionConnection
from sgconnect.credentials import ScriptCredential, SessionCredential
from sgconnect.errors import ConfigurationError
from sgconnect.settings import Settings
from sgconnect.testing import child_environment, save_session
from sgconnect.transport.proxies import mask_proxy, parse_http_proxy, proxy_for

PASSWORD = "pxpw-7f3q"
#: Values no parser may accept; each holds the password that must never be printed.
BAD_PROXIES = [
    f"bob:{PASSWORD}@host.invalid:abc",  # a port that is not a number
    f"bob:{PASSWORD}@[::1",  # an IPv6 host without its ]
    f"bob:{PASSWORD}@host.invalid:99999",  # a port out of range
    f"bob:{PASSWORD}@:3128",  # no host
    f"socks5://bob:{PASSWORD}@host.invalid:1080",  # a scheme sgconnect does not speak
]


def _cli(home, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = child_environment(SHOTGUN_HOME=str(home), SGTK_AUTH_ALLOW_NO_HTTPS="1", **env)
    for name in list(environment):
        if name.lower().endswith("_proxy") and name not in env:
            environment.pop(name)
    return subprocess.run(
        [sys.executable, "-m", "sgconnect", *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the proxy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_PROXIES)
def test_a_bad_proxy_is_a_configuration_error_with_its_password_masked(value):
    with pytest.raises(ConfigurationError) as caught:
        parse_http_proxy(value)
    assert isinstance(caught.value, ValueError)  # what callers caught before stays caught
    assert PASSWORD not in str(caught.value)
    # masked: ``bob:***@`` (a URL's user info may be shown ``bob:[redacted]@`` by the redaction)
    assert "bob:" in str(caught.value) and caught.value.setting == "http_proxy"
    with pytest.raises(ConfigurationError) as caught:
        proxy_for("http://studio.invalid", None, {"HTTP_PROXY": value})
    assert PASSWORD not in str(caught.value) and caught.value.setting == "HTTP_PROXY"
    with pytest.raises(ConfigurationError) as caught:
        Settings(http_proxy=value)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environment({"SGCONNECT_HTTP_PROXY": value})
    assert caught.value.setting == "SGCONNECT_HTTP_PROXY" and PASSWORD not in str(caught.value)


def test_good_proxies_still_parse_and_the_mask_hides_only_the_password():
    assert parse_http_proxy("h.invalid").port == 8080
    assert parse_http_proxy("[::1]:3128").host == "::1"
    assert parse_http_proxy(f"http://bob:{PASSWORD}@h.invalid:3128/").api3() == (
        f"bob:{PASSWORD}@h.invalid:3128"
    )
    assert mask_proxy(f"http://bob:{PASSWORD}@h:1") == "http://bob:***@h:1"
    assert mask_proxy(f"{PASSWORD}@h:1") == "***@h:1"
    assert mask_proxy("h:1") == "h:1"
    with pytest.raises(ConfigurationError) as caught:  # shotgun_api3 cannot carry an IPv6 host
        parse_http_proxy(f"bob:{PASSWORD}@[::1]:3128").api3()
    assert PASSWORD not in str(caught.value)


def test_shotgun_api3_never_parses_a_bad_proxy_first(local_site):
    for value in BAD_PROXIES:
        for make in (
            lambda value=value: SessionConnection(
                SessionCredential(local_site.url, "alice", "t" * 32, source="saved"),
                interactive=False,
                http_proxy=value,
            ),
            lambda value=value: ScriptConnection(
                ScriptCredential(local_site.url, "sgconnect_farm", "k" * 32), http_proxy=value
            ),
        ):
            with pytest.raises(ConfigurationError) as caught:
                make()
            assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("variable", ["SGCONNECT_HTTP_PROXY", "HTTP_PROXY"])
def test_connect_refuses_a_bad_proxy_before_anything_is_sent(local_site, monkeypatch, variable):
    save_session(local_site, "alice")
    monkeypatch.setenv(variable, BAD_PROXIES[0])
    sgconnect.reset()
    local_site.reset_counters()
    with pytest.raises(ConfigurationError) as caught:
        sgconnect.connect("proxy check", local_site.url).find_one("Project", [])
    assert variable in str(caught.value) and PASSWORD not in str(caught.value)
    assert local_site.counters["requests"] == 0


@pytest.mark.parametrize("value", BAD_PROXIES[:2])
def test_the_cli_names_the_bad_proxy_setting_in_one_line(local_site, isolated_shotgun_home, value):
    save_session(local_site, "alice")
    for args in (["whoami"], ["--debug", "whoami"], ["login", "--method", "url"]):
        result = _cli(
            isolated_shotgun_home, *args, "--site", local_site.url, SGCONNECT_HTTP_PROXY=value
        )
        out = result.stdout + result.stderr
        assert result.returncode == 4, out
        assert PASSWORD not in out and "Traceback" not in out and "unexpected" not in out
        errors = [line for line in result.stderr.splitlines() if line.startswith("sgconnect:")]
        assert len(errors) == 1 and "SGCONNECT_HTTP_PROXY" in errors[0], out
    result = _cli(
        isolated_shotgun_home, "doctor", "--site", local_site.url, SGCONNECT_HTTP_PROXY=value
    )
    out = result.stdout + result.stderr
    assert PASSWORD not in out and "Traceback" not in out
    conclusion = out.split("Conclusion:", 1)[1]
    assert "SGCONNECT_HTTP_PROXY" in conclusion and "bob:***@" in conclusion


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["inf", "1e12", "1e400", "nan", "-1", "3600.5", "abc"])
def test_a_timeout_out_of_range_is_a_configuration_error(raw):
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environment({"SGCONNECT_TIMEOUT_SECS": raw})
    assert caught.value.setting == "SGCONNECT_TIMEOUT_SECS"
    assert "3600" in str(caught.value)
    value = float(raw) if raw != "abc" else "abc"
    with pytest.raises(ConfigurationError):
        Settings(timeout_secs=value)


@pytest.mark.parametrize("raw", ["0", "0.5", "60", "3600"])
def test_a_timeout_in_range_is_taken(raw):
    assert Settings.from_environment({"SGCONNECT_TIMEOUT_SECS": raw}).timeout_secs == float(raw)


def test_the_cli_refuses_an_infinite_timeout_as_configuration(local_site, isolated_shotgun_home):
    save_session(local_site, "alice")
    result = _cli(
        isolated_shotgun_home, "whoami", "--site", local_site.url, SGCONNECT_TIMEOUT_SECS="inf"
    )
    assert result.returncode == 4, result.stderr
    assert "SGCONNECT_TIMEOUT_SECS" in result.stderr and "Traceback" not in result.stderr
