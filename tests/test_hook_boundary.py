"""The hook boundary (``sgconnect.hook_runner``) and the broker's public state changes.

Real hook classes (subclasses of the standalone hook, as a studio writes them), the real chain,
real connections against the local site.
"""

from __future__ import annotations

import warnings

import pytest

import sgconnect
from sgconnect.base_hooks import HandOut
from sgconnect.credentials import ScriptCredential, SessionCredential
from sgconnect.handouts import Broker
from sgconnect.settings import Settings
from sgconnect.standalone_hook import StandaloneConnectionHook, StandaloneParent
from sgconnect.testing import save_session

pytestmark = pytest.mark.tkcore


def broker_with(hook_class: type) -> Broker:
    return Broker(hook_class(StandaloneParent(Settings.from_environment())))


def reads(site) -> list[tuple[str, str]]:
    return [(e.auth, e.login) for e in site.journal if e.rpc == "read"]


@pytest.mark.parametrize("spelling", ["{url}/", "{url}//", "{upper}"])
def test_one_site_however_spelled_gives_one_connection(local_site, spelling):
    save_session(local_site, "alice")
    url = local_site.url
    upper = url.replace("http://", "HTTP://")
    first = sgconnect.connect("spelling", site=url, interactive=False)
    again = sgconnect.connect(
        "spelling", site=spelling.format(url=url, upper=upper), interactive=False
    )
    assert again is first


class OldStyleHook(StandaloneConnectionHook):
    """A studio hook written before the rename: it overrides ``resolve_user``."""

    def resolve_user(self, site, interactive):
        return super().resolve_user(site, interactive)


def test_a_studio_resolve_user_override_still_works_with_a_deprecation_naming_its_file(
    local_site,
):
    save_session(local_site, "alice")
    broker = broker_with(OldStyleHook)
    local_site.clear_journal()
    with pytest.warns(DeprecationWarning, match=r"test_hook_boundary\.py.*resolve_user"):
        broker.connection("old hook", local_site.url, False).find("Project", [], ["name"])
    assert reads(local_site) == [("session", "alice")]


class TkUserHook(StandaloneConnectionHook):
    """Returns tk-core's own user object, as ``sgtk.get_authenticated_user()`` would."""

    token = ""

    def resolve_credential(self, site, interactive):
        from tank.authentication import DefaultsManager, ShotgunAuthenticator

        authenticator = ShotgunAuthenticator(DefaultsManager(fixed_host=site))
        return authenticator.create_session_user("bob", session_token=self.token, host=site)


def test_a_tk_core_user_from_resolve_credential_is_wrapped(local_site):
    TkUserHook.token = local_site.issue_session("bob")
    broker = broker_with(TkUserHook)
    local_site.clear_journal()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new name warns nothing
        broker.connection("tk user", local_site.url, False).find("Project", [], ["name"])
    assert reads(local_site) == [("session", "bob")]
    info = broker.current_user(local_site.url)
    assert (info.login, info.source) == ("bob", "hook")


class NoConnectionHook(StandaloneConnectionHook):
    def create_connection(self, credential, purpose, interactive):
        super().create_connection(credential, purpose, interactive)  # forgot the return


class NotACredentialHook(StandaloneConnectionHook):
    def resolve_credential(self, site, interactive):
        return site  # a URL is not a credential


@pytest.mark.parametrize(
    ("hook_class", "method", "returned"),
    [
        (NoConnectionHook, "create_connection", "NoneType"),
        (NotACredentialHook, "resolve_credential", "str"),
    ],
)
def test_a_hook_method_returning_the_wrong_thing_is_a_hook_error_naming_file_and_method(
    local_site, hook_class, method, returned
):
    save_session(local_site, "alice")
    broker = broker_with(hook_class)
    with pytest.raises(sgconnect.HookError) as caught:
        broker.connection("wrong return", local_site.url, False)
    error = caught.value
    assert (error.method, error.hook_file) == (method, __file__)
    assert f"returned {returned} from {method}()" in str(error)
    assert __file__ in str(error)


def test_adopt_makes_every_later_hand_out_act_as_the_adopted_credential(local_site):
    save_session(local_site, "alice")
    broker = broker_with(StandaloneConnectionHook)
    before = broker.connection("adopt", local_site.url, False)
    bob = SessionCredential(local_site.url, "bob", local_site.issue_session("bob"), source="fresh")

    broker.adopt(bob)

    after = broker.connection("adopt", local_site.url, False)
    assert after is not before
    local_site.clear_journal()
    after.find("Project", [], ["name"])
    assert reads(local_site) == [("session", "bob")]
    assert broker.credentials() == {local_site.url: bob}


def test_the_old_field_names_still_answer_for_one_release_with_a_warning():
    script = ScriptCredential(
        "https://studio.example.invalid", "farm", "k" * 24, sudo_as_login="al"
    )
    record = HandOut(
        purpose="p",
        kind="api3",
        site=script.site,
        login=script.person_login,
        auth_method=script.auth_method,
        source=script.source,
        reused=False,
        thread="MainThread",
        script_name=script.script_name,
        sudo_as_login=script.sudo_as_login,
    )
    info = script.info()
    for owner, old, value in ((record, "acting_as", "farm"), (info, "acting_as", "farm")):
        with pytest.warns(DeprecationWarning, match=f"{type(owner).__name__}.{old}"):
            assert getattr(owner, old) == value
    with pytest.warns(DeprecationWarning, match="ScriptCredential.login"):
        assert script.login == "farm"
    assert (info.login, info.script_name, info.sudo_as_login) == ("al", "farm", "al")
    assert "script=farm" in record.message() and "as itself" not in record.message()
