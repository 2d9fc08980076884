"""tk-core v0.24.0's own code against LocalSite in every mode x unified login flow x app session
launcher combination: SiteInfo, the app session launcher client, tk-core's console login (its
own flow where it offers one, its documented refusal where it does not), ShotgunWrapper's renewal
on 102 and on the claims 302, and (saml2) the expired session that tk-core must see as expired
(the site answers 102 before looking at SSO claims). The web login dialog offscreen is in
tests/test_site_qt_weblogin.py."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from children import run_child

from sgconnect.testing import LocalSite, approve_next_app_session

pytestmark = pytest.mark.tkcore

CHILDREN = Path(__file__).parent / "children"
DEMO_PROJECT_NAMES = ["Big Buck Bunny", "Sintel", "Tears of Steel"]

MATRIX = list(
    itertools.product(("default", "ldap", "saml2", "oxygen"), (False, True), (False, True))
)


@pytest.mark.parametrize(
    "mode, unified, launcher",
    MATRIX,
    ids=[f"{m}-ulf{int(u)}-asl{int(a)}" for m, u, a in MATRIX],
)
def test_tk_core_site_info_and_launcher(mode, unified, launcher):
    from tank.authentication import app_session_launcher
    from tank.authentication.errors import AuthenticationError
    from tank.authentication.site_info import SiteInfo

    with LocalSite(mode, unified_login_flow=unified, app_session_launcher=launcher) as site:
        info = SiteInfo()
        info.reload(site.url)
        assert info.user_authentication_method == mode
        assert info.unified_login_flow_enabled is unified
        assert info.app_session_launcher_enabled is launcher
        assert info.sso_enabled is (mode == "saml2")
        assert info.autodesk_identity_enabled is (mode == "oxygen")
        if launcher:
            approve_next_app_session(site, "carol")
            host, login, token = app_session_launcher.process(
                site.url, browser_open_callback=lambda url: True
            )[:3]
            expected = "carol@example.com" if mode == "oxygen" else "carol"  # the email on oxygen
            assert (host, login) == (site.url, expected)
            assert token in site.secrets
        else:
            with pytest.raises(AuthenticationError):
                app_session_launcher.process(site.url, browser_open_callback=lambda url: True)


def test_tk_core_sees_an_expired_saml2_session_as_expired():
    from tank.authentication import ShotgunAuthenticator

    with LocalSite("saml2") as site:
        user = ShotgunAuthenticator().create_session_user(
            "alice", session_token=site.issue_session("alice"), host=site.url
        )
        assert user.are_credentials_expired() is False
        site.expire_sessions()  # the session and its claims are over
        assert user.are_credentials_expired() is True


# -- console login: tk-core's own console flow, every combination in one child process ----------

CONSOLE_MATRIX = CHILDREN / "site_tkcore_console_matrix.py"


def _console_cases() -> list:
    cases = []
    for mode, unified, launcher in MATRIX:
        if not (mode == "saml2" and launcher):  # tk-core asks no password on an SSO site
            cases.append([mode, unified, launcher, "legacy"])
        if launcher:
            cases.append([mode, unified, launcher, "asl"])
    return cases


@pytest.fixture(scope="module")
def console_results(tmp_path_factory) -> dict:
    """Every case's report, from one child (tk-core imported once for all of them)."""
    home = tmp_path_factory.mktemp("console_matrix_home")
    child = run_child(
        CONSOLE_MATRIX,
        {
            "SHOTGUN_HOME": str(home),
            "SGTK_AUTH_ALLOW_NO_HTTPS": "1",
            "BROWSER": "true",  # webbrowser.open "opens" the approval URL; a thread approves
            "CONSOLE_MATRIX_CASES": json.dumps(_console_cases()),
        },
        stdin="",
        timeout=240,
    )
    reports = [
        json.loads(line[7:]) for line in child.stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert len(reports) == len(_console_cases()), child.stderr[-4000:]
    return {tuple(r["case"]): r for r in reports}


@pytest.mark.parametrize(
    "case", _console_cases(), ids=["{}-ulf{:d}-asl{:d}-{}".format(*c) for c in _console_cases()]
)
def test_tk_core_console_login(console_results, case):
    mode, unified, launcher, method = case
    report = console_results[tuple(case)]
    assert not report["secret_in_report"]
    if mode == "saml2" and not launcher:
        # tk-core's documented refusal: no console login on an SSO site without the launcher.
        assert report["error"] == "ConsoleLoginNotSupportedError", report
        assert "Single Sign-On" in report["message"]
        assert report["grants"] == []  # refused before asking the site for anything
        return
    if mode == "oxygen" and method == "legacy":
        # Autodesk Identity refuses passwords (code 110): tk-core's session_cache maps only
        # AuthenticationFault to AuthenticationError, so the api3 fault of code 110 comes through.
        assert report["error"] == "UserCredentialsNotAllowedForOxygenAuthenticationFault", report
        assert "not allowed for an Autodesk Identity enabled site" in report["message"]
        assert report["grants"] == [["get_session_token", "password"]]
        return
    assert "error" not in report, report
    login = "alice@example.com" if (mode, method) == ("oxygen", "asl") else "alice"
    assert report["login"] == login and report["projects"] == DEMO_PROJECT_NAMES
    if method == "asl":
        assert report["grants"] == [["app_session_request", "POST"], ["app_session_request", "PUT"]]
    else:
        assert report["grants"] == [["get_session_token", "password"]]


# -- ShotgunWrapper renewal: on 102, and on the claims 302 where claims apply ---------------------


@pytest.mark.parametrize(
    "mode, unified, launcher", MATRIX, ids=[f"{m}-ulf{int(u)}-asl{int(a)}" for m, u, a in MATRIX]
)
def test_tk_core_wrapper_renews_on_102_and_on_the_claims_302(mode, unified, launcher):
    """tk-core's ShotgunWrapper takes the site's rejection (102; on saml2 also the 302 of lapsed
    claims) for an expired session and re-reads the session cache: a session another process
    saved is used, without a prompt (the test has no stdin, no Qt application)."""
    from tank.authentication import ShotgunAuthenticator, session_cache

    with LocalSite(mode, unified_login_flow=unified, app_session_launcher=launcher) as site:
        user = ShotgunAuthenticator().create_session_user(
            "alice", session_token=site.issue_session("alice"), host=site.url
        )
        conn = user.create_sg_connection()
        assert len(conn.find("Project", [])) == 3
        expiries = [("expire_sessions", (200, 102))]
        if mode == "saml2":
            expiries.append(("expire_claims", (302, None)))
        for expire, rejection in expiries:
            getattr(site, expire)()
            fresh = site.issue_session("alice")
            session_cache.cache_session_data(site.url, "alice", fresh)  # "another process"
            assert len(conn.find("Project", [])) == 3
            assert user.impl.get_session_token() == fresh
            reads = [(e.status, e.error_code) for e in site.journal if e.rpc == "read"]
            assert reads[-2:] == [rejection, (200, None)], (expire, reads)
