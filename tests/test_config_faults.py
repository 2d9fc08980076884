"""Wrong configuration is a typed, one-line error naming what to fix, on every path, before
anything is sent: a bad proxy address (its password masked), a timeout out of range, a broken
``current_host`` in tk-core's cache. Driven against the local site over real sockets, in-process
and through the ``sgconnect`` command.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from test_cli import run_cli

import sgconnect
from sgconnect import doctor, interactive, session_cache
from sgconnect.connection import ScriptConnection, SessionConnection
from sgconnect.credentials import ScriptCredential, SessionCredential
from sgconnect.errors import (
    ConfigurationError,
    ProxyError,
    SessionSaveError,
    UntrustedSessionCacheError,
)
from sgconnect.settings import Settings
from sgconnect.testing import save_session
from sgconnect.transport import api3
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
    """``sgconnect *args`` with ``env`` and no proxy variable but those in ``env``."""
    unset = {name: None for name in os.environ if name.lower().endswith("_proxy")}
    return run_cli(home, *args, env={**unset, **env})


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


# -- a login never writes its token where sgconnect would not read it ----------------------------


def _plant(site, home, what: str) -> str:
    """Make one cache file or folder a login to ``site`` writes untrustworthy; return its path."""
    if what == "site file 0666":
        save_session(site, "bob")
        path = session_cache.site_cache_file(site.url)
        os.chmod(path, 0o666)
        return path
    if what == "site folder 0777":
        save_session(site, "bob")
        path = os.path.dirname(session_cache.site_cache_file(site.url))
        os.chmod(path, 0o777)
        return path
    if what == "global file 0666":
        path = session_cache.global_cache_file()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w") as handle:
            handle.write("current_host: https://elsewhere.invalid\n")
        os.chmod(path, 0o666)
        return path
    if what == "site file a folder":
        path = session_cache.site_cache_file(site.url)
        os.makedirs(path, mode=0o700)
        return path
    raise AssertionError(what)


def _snapshot(root: str) -> dict:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[path] = handle.read()
    return found


UNTRUSTED = ["site file 0666", "site folder 0777", "global file 0666", "site file a folder"]


@pytest.mark.parametrize("what", UNTRUSTED)
def test_login_refuses_an_untrusted_cache_before_sending_anything(
    local_site, isolated_shotgun_home, what
):
    path = _plant(local_site, isolated_shotgun_home, what)
    before = _snapshot(str(isolated_shotgun_home))
    local_site.reset_counters()
    with pytest.raises(UntrustedSessionCacheError) as caught:
        sgconnect.login(local_site.url, "url")
    assert caught.value.path == path and path in str(caught.value)
    assert "chmod go-w" in str(caught.value) and "remove it" in str(caught.value)
    assert isinstance(caught.value, SessionSaveError)
    assert local_site.counters["requests"] == 0
    assert _snapshot(str(isolated_shotgun_home)) == before


@pytest.mark.parametrize("what", UNTRUSTED[:2])
def test_the_cli_login_refuses_an_untrusted_cache_in_one_line(
    local_site, isolated_shotgun_home, what
):
    path = _plant(local_site, isolated_shotgun_home, what)
    before = _snapshot(str(isolated_shotgun_home))
    local_site.reset_counters()
    for method in ("url", "auto"):
        result = _cli(isolated_shotgun_home, "login", "--site", local_site.url, "--method", method)
        assert result.returncode == 4, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("sgconnect: "), result.stderr
        assert path in errors[0] and "Traceback" not in result.stderr
    assert local_site.counters["requests"] == 0
    assert _snapshot(str(isolated_shotgun_home)) == before


def test_a_trusted_cache_is_no_problem(local_site):
    save_session(local_site, "alice")
    assert session_cache.write_problem(local_site.url) is None


# -- a broken current_host is no current host ----------------------------------------------------


def _break_current_host() -> str:
    path = session_cache.global_cache_file()
    with open(path, "w") as handle:
        handle.write("current_host: http://[oops\n")
    os.chmod(path, 0o600)
    return path


def test_a_broken_current_host_is_no_current_host_with_one_warning(local_site, caplog):
    save_session(local_site, "alice")
    path = _break_current_host()
    with caplog.at_level("WARNING", logger="sgconnect"):
        assert session_cache.current_host() is None
        sg = sgconnect.connect("broken host", local_site.url)
        assert sg.find_one("HumanUser", [["login", "is", "alice"]])["id"]
        assert session_cache.current_host() is None
    warnings = [r for r in caplog.records if path in r.getMessage()]
    assert len(warnings) == 1 and "current_host" in warnings[0].getMessage()
    assert "oops" not in warnings[0].getMessage()


def test_the_cli_works_past_a_broken_current_host_and_prefixes_the_warning(
    local_site, isolated_shotgun_home
):
    save_session(local_site, "alice")
    _break_current_host()
    result = _cli(isolated_shotgun_home, "whoami", "--site", local_site.url)
    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sgconnect: warning: "), result.stderr
    result = _cli(isolated_shotgun_home, "whoami")  # no site, and the current one is broken
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(line.startswith("sgconnect: ") for line in lines), result.stderr
    assert "unexpected" not in result.stderr


@pytest.mark.parametrize(
    "name, read",
    [
        ("SGCONNECT_MAX_REPLY_MIB", lambda: api3.max_reply_bytes()),
        ("SGCONNECT_KEEPALIVE_SECS", lambda: api3.keepalive_secs()),
        ("SGCONNECT_CAPABILITIES_TTL_SECS", lambda: api3.capabilities_ttl_secs()),
        ("SGCONNECT_APPROVAL_TIMEOUT_SECS", lambda: interactive.approval_timeout_secs()),
    ],
)
def test_every_numeric_variable_has_a_range(monkeypatch, name, read):
    for raw in ("inf", "1e400", "nan", "-1", "abc", "1e12"):
        monkeypatch.setenv(name, raw)
        with pytest.raises(ConfigurationError) as caught:
            read()
        assert caught.value.setting == name and "at most" in str(caught.value)
    monkeypatch.setenv(name, "2")
    assert read() in (2, 2 * 1024 * 1024)
    monkeypatch.delenv(name)
    assert read() > 0


def test_an_infinite_reply_cap_is_refused_on_the_wire(local_site, monkeypatch):
    save_session(local_site, "alice")
    sg = sgconnect.connect("reply cap", local_site.url)
    assert sg.find_one("Project", [])
    monkeypatch.setenv("SGCONNECT_MAX_REPLY_MIB", "inf")
    with pytest.raises(ConfigurationError) as caught:
        sg.find_one("Project", [])
    assert "SGCONNECT_MAX_REPLY_MIB" in str(caught.value)


@pytest.mark.parametrize(
    "args", [["--port", "99999"], ["--port", "-1"], ["--latency", "-5"], ["--latency", "nan"]]
)
def test_the_site_command_refuses_a_bad_port_or_latency_as_usage(isolated_shotgun_home, args):
    result = _cli(isolated_shotgun_home, "site", *args)
    assert result.returncode == 2, result.stderr
    assert args[0] in result.stderr and "Traceback" not in result.stderr
    assert "unexpected" not in result.stderr


# -- the CLI says who is at fault -----------------------------------------------------------------


def _dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("variable", ["SGCONNECT_HTTP_PROXY", "HTTP_PROXY"])
def test_an_unreachable_proxy_is_blamed_as_the_proxy(local_site, monkeypatch, variable):
    save_session(local_site, "alice")
    proxy = f"127.0.0.1:{_dead_port()}"
    monkeypatch.setenv(variable, f"bob:{PASSWORD}@{proxy}")
    sgconnect.reset()
    local_site.reset_counters()
    with pytest.raises(ProxyError) as caught:
        sgconnect.connect("proxy down", local_site.url).find_one("Project", [])
    assert caught.value.proxy == f"http://{proxy}" and f"proxy http://{proxy}" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ProxyError):
        doctor.read_site_info(local_site.url, http_proxy=f"bob:{PASSWORD}@{proxy}")
    with pytest.raises(ProxyError):
        sgconnect.rest_session("proxy down", local_site.url).get("/entity/projects")
    assert local_site.counters["requests"] == 0


def test_the_cli_blames_an_unreachable_proxy(local_site, isolated_shotgun_home):
    save_session(local_site, "alice")
    proxy = f"127.0.0.1:{_dead_port()}"
    result = _cli(
        isolated_shotgun_home, "whoami", "--site", local_site.url, SGCONNECT_HTTP_PROXY=proxy
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("sgconnect: Cannot reach the proxy http://" + proxy), lines[0]


def test_auto_login_says_it_picked_the_url_login(make_local_site, isolated_shotgun_home):
    site = make_local_site("saml2", app_session_launcher=False)
    result = _cli(isolated_shotgun_home, "login", "--site", site.url)  # auto, no display
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 3 and len(lines) == 1, result.stderr
    assert "url login (--method auto picked it" in lines[0]
    assert "app session launcher is disabled" in lines[0]
    result = _cli(isolated_shotgun_home, "login", "--site", site.url, "--method", "url")
    assert "--method auto" not in result.stderr


# -- docs/cli.md says what the command does ------------------------------------------------------

CLI_DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "cli.md")


def _doc_text() -> str:
    with open(CLI_DOC, encoding="utf-8") as handle:
        return " ".join(handle.read().split())


def test_the_doctor_conclusions_in_the_docs_are_doctors():
    doc = _doc_text()
    facts = doctor.SiteFacts("saml2", app_session_launcher=False)
    advice = " ".join(" ".join(doctor.advice_when_none_work("URL", facts)).split())
    assert advice in doc
    assert "log in with `sgconnect login --site URL --method url`." in doc


def test_the_whoami_json_keys_in_the_docs_are_the_commands(local_site, isolated_shotgun_home):
    save_session(local_site, "alice")
    result = _cli(isolated_shotgun_home, "whoami", "--json", "--site", local_site.url)
    assert result.returncode == 0, result.stderr
    import json
    import re

    keys = set(json.loads(result.stdout))
    section = _doc_text().split("`--json` gives the same information", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section.split(". Its keys are", 1)[1]))
    assert keys == documented - {"null"}, (keys, documented)


def test_a_login_or_renewal_that_cannot_reach_the_proxy_blames_it(monkeypatch):
    proxy = f"127.0.0.1:{_dead_port()}"
    monkeypatch.setenv("SGCONNECT_HTTP_PROXY", proxy)
    import socket

    try:  # a real refusal, as tk-core's request through the proxy meets it
        socket.create_connection(("127.0.0.1", int(proxy.rpartition(":")[2])), 5)
    except ConnectionRefusedError as exc:
        refused = exc
    error = interactive.unreachable_error("http://studio.invalid", refused, "log in", 5)
    assert isinstance(error, ProxyError) and error.proxy == f"http://{proxy}"
    monkeypatch.delenv("SGCONNECT_HTTP_PROXY")
    error = interactive.unreachable_error("http://studio.invalid", refused, "log in", 5)
    assert not isinstance(error, ProxyError) and "Cannot reach http://studio.invalid" in str(error)
