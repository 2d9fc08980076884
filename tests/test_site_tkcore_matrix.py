"""tk-core v0.24.0's own code against LocalSite in every mode x unified login flow x app session
launcher combination: SiteInfo, the app session launcher client, and (saml2) the expired session
that tk-core must see as expired (the site answers 102 before looking at SSO claims)."""

from __future__ import annotations

import itertools

import pytest

from sgconnect.testing import LocalSite, approve_next_app_session

pytestmark = pytest.mark.tkcore

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
