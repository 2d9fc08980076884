"""Each branch of the credential chain, proven by the local site's journal.

The chain (``sgconnect.chain``): the current sgtk user, a user handed down by a launcher, the saved
session, then an interactive login (console, browser, headless URL), or a clear error when the
process may not prompt. Flows that prompt or change process-wide state run in a subprocess, fed
through stdin like a person typing.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from children import run_child

import sgconnect
from sgconnect.testing import approve_next_app_session, run_python, save_session

CHILDREN = Path(__file__).parent / "children"

pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 90


def rpc_calls(site) -> list[tuple[str, str, str]]:
    return [(e.rpc, e.auth, e.login) for e in site.journal if e.path.startswith("/api3/json")]


# -- 3. saved session --------------------------------------------------------------------------


def test_saved_session_costs_exactly_info_and_read(make_local_site):
    site = make_local_site("saml2")
    save_session(site, "alice")
    site.clear_journal()

    sg = sgconnect.connect("report", site=site.url, interactive=False)
    projects = sg.find("Project", [], ["name"])

    assert sorted(p["name"] for p in projects) == sorted(site.projects)
    assert rpc_calls(site) == [("info", "none", None), ("read", "session", "alice")]
    user = sgconnect.current_user(site.url)
    assert (user.login, user.source, user.site) == ("alice", "saved", site.url)


def test_default_site_is_the_last_site_logged_in_to(make_local_site):
    site = make_local_site("default")
    save_session(site, "carol")
    sg = sgconnect.connect("report", interactive=False)
    assert sg.find_one("Project", [["name", "is", "Sintel"]], ["name"])["name"] == "Sintel"
    assert sgconnect.current_user().login == "carol"


def test_connection_holds_no_token_on_public_attributes(make_local_site):
    site = make_local_site("default")
    token = save_session(site, "alice")
    sg = sgconnect.connect("report", site=site.url, interactive=False)
    sg.find_one("Project", [], ["name"])
    visible = repr(sg) + repr(vars(sg.config)) + repr(sgconnect.current_user(site.url))
    assert token not in visible
    with pytest.raises(sgconnect.SgConnectError, match="do not hand out session tokens"):
        sg.get_session_token()


# -- 1. the current sgtk user --------------------------------------------------------------------


def test_current_sgtk_user_comes_first(make_local_site):
    import sgtk
    from tank.authentication import DefaultsManager, ShotgunAuthenticator

    site = make_local_site("default")
    save_session(site, "carol")  # a saved session that must NOT be used
    authenticator = ShotgunAuthenticator(DefaultsManager(fixed_host=site.url))
    user = authenticator.create_session_user("bob", session_token=site.issue_session("bob"))
    sgtk.set_authenticated_user(user)
    try:
        site.clear_journal()
        sg = sgconnect.connect("engine tool", site=site.url, interactive=False)
        sg.find("Project", [], ["name"])
    finally:
        sgtk.set_authenticated_user(None)
    assert rpc_calls(site) == [("info", "none", None), ("read", "session", "bob")]
    assert sgconnect.current_user(site.url).source == "current_user"


# -- 2. a user handed down by a launcher -----------------------------------------------------------


HANDED_DOWN_CHILD = CHILDREN / "chain_handed_down.py"


@pytest.mark.parametrize("variable", ["SHOTGUN_DESKTOP_CURRENT_USER", "TANK_CONTEXT"])
def test_handed_down_user_is_used_and_removed_from_the_environment(
    make_local_site, tmp_path, variable
):

    from tank.authentication import DefaultsManager, ShotgunAuthenticator, serialize_user

    site = make_local_site("default")
    token = site.issue_session("bob")
    user = ShotgunAuthenticator(DefaultsManager(fixed_host=site.url)).create_session_user(
        "bob", session_token=token
    )
    payload = serialize_user(user, use_json=True)
    if variable == "TANK_CONTEXT":
        payload = json.dumps({"project": {"type": "Project", "id": 71}, "_current_user": payload})
    empty_home = tmp_path / "child_home"
    empty_home.mkdir(mode=0o700)
    site.clear_journal()

    child = run_child(
        HANDED_DOWN_CHILD,
        {"SITE_URL": site.url, variable: payload, "SHOTGUN_HOME": str(empty_home)},
    )

    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert (result["source"], result["login"]) == ("handed_down", "bob")
    assert ("read", "session", "bob") in rpc_calls(site)
    grandchild_env = result["grandchild_env"]
    assert token not in json.dumps(grandchild_env)
    assert "SHOTGUN_DESKTOP_CURRENT_USER" not in grandchild_env
    if variable == "TANK_CONTEXT":  # the context survives, without its user
        assert json.loads(grandchild_env["TANK_CONTEXT"]) == {
            "project": {"type": "Project", "id": 71}
        }
    assert token not in child.stdout + child.stderr


# -- 4. interactive: console, browser, headless URL; and non-interactive ------------------------


CONSOLE_CHILD = CHILDREN / "chain_console.py"


def test_interactive_console_password_login_is_saved_for_the_next_process(make_local_site):
    site = make_local_site("default", app_session_launcher=False)
    child = run_child(
        CONSOLE_CHILD,
        {"SITE_URL": site.url, "SGCONNECT_LOGIN_METHOD": "password"},
        stdin=f"alice\n{site.password('alice')}\n",
    )
    assert child.returncode == 0, child.stderr
    assert "\nPROJECTS 3" in "\n" + child.stdout
    assert "SOURCE fresh" in child.stdout
    assert ("get_session_token", "password", "alice") in rpc_calls(site)

    # The next process finds the session tk-core saved: no prompt (stdin is empty), no password.
    site.clear_journal()
    again = run_child(CONSOLE_CHILD, {"SITE_URL": site.url}, stdin="")
    assert again.returncode == 0, again.stderr
    assert "SOURCE saved" in again.stdout
    assert [c for c in rpc_calls(site) if c[0] == "get_session_token"] == []


URL_LOGIN_CHILD = CHILDREN / "chain_url_login.py"


@pytest.mark.parametrize("method", ["url", "browser"])
def test_browser_logins_through_the_app_session_launcher(make_local_site, method, tmp_path):
    site = make_local_site("saml2", app_session_launcher=True)
    stop = threading.Event()
    approver = approve_next_app_session(site, "carol", stop)
    env = {"SITE_URL": site.url, "SGCONNECT_LOGIN_METHOD": method}
    if method == "browser":
        # The "local browser": a command that records the URL it was asked to open.
        opened = tmp_path / "opened.txt"
        env["BROWSER"] = (
            f"{sys.executable} -c \"import sys; open('{opened}', 'w').write(sys.argv[1])\" %s"
        )
    try:
        child = run_child(URL_LOGIN_CHILD, env)
    finally:
        stop.set()
        approver.join(5)
    assert child.returncode == 0, child.stderr
    assert "USER carol fresh" in child.stdout
    if method == "url":
        assert "/app_session_request/" in child.stderr  # the URL a person opens elsewhere
        assert "waiting for approval" in child.stderr
    else:
        assert "/app_session_request/" in opened.read_text()


def test_non_interactive_without_session_fails_clearly_without_prompting(make_local_site):
    site = make_local_site("default")
    child = run_python(
        'import sgconnect, os; sgconnect.connect("farm", site=os.environ["SITE_URL"])',
        {"SITE_URL": site.url, "SGCONNECT_NON_INTERACTIVE": "1"},
        stdin=f"alice\n{site.password('alice')}\n",  # must not be read
        timeout=60,
    )
    assert child.returncode != 0
    last_line = child.stderr.strip().splitlines()[-1]
    assert "LoginRequiredError" in last_line
    assert f"sgconnect login --site {site.url}" in last_line
    assert "Password" not in child.stdout + child.stderr
    assert rpc_calls(site) == []


def test_non_interactive_in_process_raises_login_required(make_local_site):
    site = make_local_site("default")
    with pytest.raises(sgconnect.LoginRequiredError) as caught:
        sgconnect.connect("farm", site=site.url, interactive=False)
    assert caught.value.site == site.url
    assert "sgconnect login --site" in str(caught.value)


# -- expiry, threads, two sites ------------------------------------------------------------------


# (The console renewal of an expired session across threads: tests/test_concurrency.py.)


def test_two_sites_at_once_each_with_its_own_user(make_local_site):
    first = make_local_site("default")
    second = make_local_site("saml2")
    # tk-core's cache drops the port, so the second site is reached as "localhost".
    second_url = second.url.replace("127.0.0.1", "localhost")
    save_session(first, "alice")
    from tank.authentication import session_cache

    session_cache.cache_session_data(second_url, "bob", second.issue_session("bob"))
    session_cache.set_current_user(second_url, "bob")

    sg_first = sgconnect.connect("compare", site=first.url, interactive=False)
    sg_second = sgconnect.connect("compare", site=second_url, interactive=False)
    assert sg_first is not sg_second
    sg_first.find("Project", [], ["name"])
    sg_second.find("Project", [], ["name"])

    assert ("read", "session", "alice") in rpc_calls(first)
    assert ("read", "session", "bob") in rpc_calls(second)
    assert sgconnect.current_user(first.url).login == "alice"
    assert sgconnect.current_user(second_url).login == "bob"


def test_same_thread_same_purpose_reuses_other_purpose_or_thread_does_not(make_local_site):
    site = make_local_site("default")
    save_session(site, "alice")
    first = sgconnect.connect("tool a", site=site.url, interactive=False)
    assert sgconnect.connect("tool a", site=site.url, interactive=False) is first
    other_tool = sgconnect.connect("tool b", site=site.url, interactive=False)
    assert other_tool is not first
    other_tool.add_user_agent("tool-b/1.0")
    assert "tool-b/1.0" not in first._user_agents  # one tool's settings never bleed

    from_thread = []
    worker = threading.Thread(
        target=lambda: from_thread.append(sgconnect.connect("tool a", site=site.url))
    )
    worker.start()
    worker.join()
    assert from_thread[0] is not first


def test_every_hand_out_is_audited_without_secret(make_local_site, caplog):
    site = make_local_site("default")
    token = save_session(site, "alice")
    with caplog.at_level("INFO", logger="sgconnect"):
        sgconnect.connect("audit check", site=site.url, interactive=False)
        sgconnect.connect("audit check", site=site.url, interactive=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hand-out")]
    assert len(lines) == 2
    assert "purpose='audit check' login=alice" in lines[0]
    assert " reused " in lines[1]
    assert all(token not in line for line in lines)


@pytest.mark.parametrize("purpose", ["", "line\nforged", "tab\there", "\x1b[31mred", "x" * 201])
def test_bad_purposes_are_refused_before_any_request(make_local_site, purpose):
    site = make_local_site("default")
    save_session(site, "alice")
    with pytest.raises(sgconnect.InvalidPurposeError):
        sgconnect.connect(purpose, site=site.url, interactive=False)
    assert rpc_calls(site) == []


def test_a_connection_keeps_the_renewal_policy_it_was_asked_with(make_local_site):
    site = make_local_site("default")
    save_session(site, "alice")
    quiet = sgconnect.connect("policy", site=site.url, interactive=False)
    prompting = sgconnect.connect("policy", site=site.url, interactive=True)
    assert prompting is not quiet
    assert (quiet.may_prompt, prompting.may_prompt) == (False, True)
    assert sgconnect.connect("policy", site=site.url, interactive=False) is quiet
