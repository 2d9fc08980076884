"""The right person, every time (issue 13): farm identity (unverified and verified), one site per
session, handed-down users scrubbed on import, typed failures, and a session cache trusted only
when it is this user's own.

The farm cases run as fresh processes with their own ``SHOTGUN_HOME`` (a render node that is also
carol's workstation); the local site's journal shows who acted, with which credential, on which
site.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from children import farm_job_env

import sgconnect
from sgconnect import chain, farm, redaction, service, session_cache
from sgconnect.errors import (
    ConfigurationError,
    FarmIdentityError,
    InvalidSiteError,
    LoginRequiredError,
    ServiceAuthenticationError,
)
from sgconnect.secret import Secret
from sgconnect.settings import Settings
from sgconnect.sites import normalize_site
from sgconnect.testing import save_session

CHILDREN = Path(__file__).parent / "children"
PYTHON_DIR = str(Path(__file__).parents[1] / "python")
SCRIPT = "sgconnect_farm"
POSIX = hasattr(os, "geteuid")


@pytest.fixture(autouse=True)
def _fresh_service(fresh_service):
    """No SGCONNECT_* variable from outside, no remembered script key (conftest)."""
    yield


# -- farm jobs as separate processes ---------------------------------------------------------------


def _node_home(tmp_path: Path, site: Any, owner: Optional[str], expired: bool = False) -> Path:
    """A render node's SHOTGUN_HOME, with ``owner``'s session saved (the node is a workstation)."""
    home = tmp_path / "node_home"
    home.mkdir(mode=0o700)
    if owner:
        saved = os.environ["SHOTGUN_HOME"]
        os.environ["SHOTGUN_HOME"] = str(home)
        try:
            save_session(site, owner)
        finally:
            os.environ["SHOTGUN_HOME"] = saved
        if expired:
            site.expire_sessions()
    return home


def _run_job(
    site: Any,
    home: Path,
    job_env: dict[str, str],
    *,
    service_mode: bool = True,
    key: str = "",
    node_file: Optional[Path] = None,
    **node: str,
) -> dict:
    """Run a farm job; ``node`` adds (or, with ``""``, removes) the node's own settings."""
    farm = {}
    if service_mode:
        farm = {
            "SGCONNECT_SERVICE_SCRIPT_NAME": SCRIPT,
            "SGCONNECT_SERVICE_SITE": site.url,
            "SGCONNECT_SCRIPT_KEY": key or site.script_key(SCRIPT),
        }
    farm.update(node)
    env = farm_job_env(job_env, home, **farm)
    for name in [name for name, value in node.items() if value == ""]:
        del env[name]
    child = subprocess.run(
        [sys.executable, str(CHILDREN / "identity_farm_job.py")]
        + (["--node-file", str(node_file)] if node_file else []),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,
        timeout=90,
    )
    assert child.returncode == 0, child.stderr
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, child.stdout + child.stderr
    result = json.loads(lines[-1][len("RESULT ") :])
    result["stderr"] = child.stderr
    return result


def _calls(site: Any) -> list:
    return [(e.auth, e.login, e.sudo) for e in site.journal if e.rpc not in (None, "info")]


def _submit(site: Any, login: str = "alice", verified: bool = False) -> dict[str, str]:
    save_session(site, login)
    env = (farm.verified_job_environment if verified else farm.job_environment)("render")
    sgconnect.reset()
    site.clear_journal()
    return env


@pytest.mark.tkcore
@pytest.mark.parametrize("expired", [False, True], ids=["carol_valid", "carol_expired"])
def test_job_for_alice_on_carols_workstation_acts_as_alice(local_site, tmp_path, expired):
    job = _submit(local_site, "alice")
    home = _node_home(tmp_path, local_site, "carol", expired=expired)
    local_site.clear_journal()
    result = _run_job(local_site, home, job)
    assert "error" not in result, result
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "service"
    assert _calls(local_site) and set(_calls(local_site)) == {("script", SCRIPT, "alice")}
    # The key left the environment at import, and no child inherits it.
    assert result["after_import"]["SGCONNECT_SCRIPT_KEY"] is False
    assert "SGCONNECT_SCRIPT_KEY" not in result["grandchild_env"]


@pytest.mark.tkcore
def test_job_naming_nobody_acts_as_the_script_not_the_node_owner(local_site, tmp_path):
    job = _submit(local_site, "alice")
    del job["SGCONNECT_SUDO_AS_LOGIN"]
    home = _node_home(tmp_path, local_site, "carol")
    local_site.clear_journal()
    result = _run_job(local_site, home, job)
    assert result["user"]["login"] == SCRIPT
    assert set(_calls(local_site)) == {("script", SCRIPT, None)}


@pytest.mark.tkcore
def test_job_without_service_mode_refuses_another_persons_session(local_site, tmp_path):
    job = _submit(local_site, "alice")
    home = _node_home(tmp_path, local_site, "carol")
    local_site.clear_journal()
    result = _run_job(local_site, home, job, service_mode=False)
    kind, message = result["error"]
    assert kind == "FarmIdentityError"
    assert "names alice" in message and "acts as carol" in message
    assert _calls(local_site) == []  # carol's session was never sent


@pytest.mark.tkcore
def test_job_without_service_mode_uses_the_persons_own_session(local_site, tmp_path):
    job = _submit(local_site, "alice")
    home = _node_home(tmp_path, local_site, "alice")
    local_site.clear_journal()
    result = _run_job(local_site, home, job, service_mode=False)
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "saved"
    assert set(_calls(local_site)) == {("session", "alice", None)}


@pytest.mark.tkcore
def test_script_key_leaves_the_environment_even_when_a_saved_session_wins(local_site, tmp_path):
    home = _node_home(tmp_path, local_site, "carol")
    local_site.clear_journal()
    env = {"SGCONNECT_SITE": local_site.url, "SGCONNECT_NON_INTERACTIVE": "1"}
    result = _run_job(local_site, home, env)  # not a farm job: the saved session wins
    assert result["user"]["login"] == "carol" and result["user"]["source"] == "saved"
    assert result["after_import"]["SGCONNECT_SCRIPT_KEY"] is False
    assert "SGCONNECT_SCRIPT_KEY" not in result["grandchild_env"]


@pytest.mark.tkcore
def test_a_job_cannot_send_the_script_key_to_a_site_the_node_did_not_pin(make_local_site, tmp_path):
    farm_site, other = make_local_site("default"), make_local_site("default")
    job = _submit(farm_site, "alice")
    home = _node_home(tmp_path, farm_site, None)
    key = farm_site.script_key(SCRIPT)
    spellings = [other.url, farm_site.url.replace("127.0.0.1", "localhost")]
    for url in spellings:  # another site, and the farm's site under another name
        farm_site.clear_journal()
        result = _run_job(farm_site, home, {**job, "SGCONNECT_SITE": url})
        kind, message = result["error"]
        assert kind == "ConfigurationError", result
        assert "refuses to send the key" in message and normalize_site(url) in message
        assert normalize_site(farm_site.url) in message and "service_site" in message
        assert farm_site.journal == []
    assert other.journal == []  # not one request, so the key never went there
    # Without service_site, service mode refuses whatever the job asks for.
    result = _run_job(farm_site, home, job, SGCONNECT_SERVICE_SITE="")
    assert (
        result["error"][0] == "ConfigurationError"
        and "SGCONNECT_SERVICE_SITE" in (result["error"][1])
    )
    assert farm_site.journal == [] and key not in json.dumps(result)


def test_service_site_pins_rest_and_api3_in_process(make_local_site, monkeypatch):
    farm_site, other = make_local_site("default"), make_local_site("default")
    _service(monkeypatch, farm_site, "alice")
    monkeypatch.setenv("SGCONNECT_SITE", other.url)
    for hand_out in (sgconnect.connect, sgconnect.rest_session):
        with pytest.raises(ConfigurationError, match="refuses to send the key") as caught:
            hand_out("render")
        assert caught.value.setting == "service_site"
    # Several sites may be pinned; the one asked for is used.
    assert other.journal == []
    monkeypatch.setenv("SGCONNECT_SERVICE_SITE", f"{other.url}, {farm_site.url}")
    monkeypatch.setenv("SGCONNECT_SITE", farm_site.url)
    sgconnect.reset()
    sgconnect.connect("render").find("Project", [])
    assert {(e.auth, e.sudo) for e in farm_site.journal if e.rpc == "read"} == {("script", "alice")}
    farm_site.clear_journal()
    monkeypatch.setenv("SGCONNECT_SERVICE_SITE", "not a url")
    sgconnect.reset()
    with pytest.raises(ConfigurationError, match="service_site"):
        sgconnect.connect("render")
    assert farm_site.journal == []


# -- typed refusals of service mode ---------------------------------------------------------------


def _service(monkeypatch, site: Any, sudo: Optional[str], key: Optional[str] = None) -> None:
    monkeypatch.setenv("SGCONNECT_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")
    monkeypatch.setenv("SGCONNECT_SERVICE_SCRIPT_NAME", SCRIPT)
    monkeypatch.setenv("SGCONNECT_SERVICE_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_SCRIPT_KEY", key or site.script_key(SCRIPT))
    monkeypatch.setenv("SGCONNECT_JOB", "1")
    if sudo:
        monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", sudo)


def test_wrong_script_key_is_a_typed_error(local_site, monkeypatch):
    _service(monkeypatch, local_site, "alice", key="not-the-key-0123456789")
    with pytest.raises(ServiceAuthenticationError, match=f"refused the key of script {SCRIPT}"):
        sgconnect.connect("render").find("Project", [])
    assert [e.error_code for e in local_site.journal if e.rpc == "read"] == [102]


@pytest.mark.parametrize(
    "target, change, words",
    [
        ("nobody_here", None, "unknown, retired or not impersonable"),
        ("bob", {"sg_status_list": "dis"}, "inactive"),
        ("carol", {"can_impersonate_this_user": False}, "unknown, retired or not impersonable"),
    ],
)
def test_unknown_or_inactive_sudo_target_is_a_typed_error(
    local_site, monkeypatch, target, change, words
):
    if change:
        local_site.update_user(target, **change)
    _service(monkeypatch, local_site, target)
    with pytest.raises(ServiceAuthenticationError) as caught:
        sgconnect.connect("render").find("Project", [])
    assert f"act as {target}" in str(caught.value) and words in str(caught.value)
    assert caught.value.sudo_as_login == target
    assert [(e.sudo, e.error_code) for e in local_site.journal if e.rpc == "read"] == [
        (target, 102)
    ]


# -- verified mode ---------------------------------------------------------------------------------


@pytest.mark.tkcore
def test_verified_job_acts_as_the_tickets_creator(local_site, tmp_path):
    job = _submit(local_site, "alice", verified=True)
    assert "SGCONNECT_SUDO_AS_LOGIN" not in job and "SGCONNECT_TICKET" in job
    ticket_id, nonce = job["SGCONNECT_TICKET"].split(":")
    ticket = local_site.state.table("EventLogEntry")[int(ticket_id)]
    alice = next(user for user in local_site.users if user.login == "alice")
    assert (ticket["created_by"]["type"], ticket["created_by"]["id"]) == ("HumanUser", alice.id)
    assert nonce not in json.dumps(ticket)  # only its digest is on the site
    assert not any(value in json.dumps(job) for value in local_site.secrets)

    home = _node_home(tmp_path, local_site, "carol")
    local_site.clear_journal()
    result = _run_job(local_site, home, job)
    assert "error" not in result, result
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "verified"
    calls = _calls(local_site)
    # Read the ticket and mark it used as the script itself, then act as alice.
    assert calls[:2] == [("script", SCRIPT, None)] * 2
    assert calls[-1] == ("script", SCRIPT, "alice")
    assert "SGCONNECT_TICKET" not in result["grandchild_env"]
    assert result["grandchild_env"]["SGCONNECT_SUDO_AS_LOGIN"] == "alice"
    used = [
        r
        for r in local_site.state.table("EventLogEntry").values()
        if r["event_type"] == farm.TICKET_USED_EVENT_TYPE
    ]
    assert len(used) == 1 and used[0]["created_by"]["type"] == "ApiUser"

    # Single use: the same environment again is refused.
    again = _run_job(local_site, home, job)
    assert again["error"][0] == "FarmIdentityError" and "already used" in again["error"][1]


@pytest.mark.tkcore
def test_a_used_mark_made_by_a_person_does_not_spend_someone_elses_ticket(local_site, tmp_path):
    job = _submit(local_site, "alice", verified=True)
    ticket_id = int(job["SGCONNECT_TICKET"].split(":")[0])
    save_session(local_site, "bob")  # bob marks alice's ticket "used" before her job runs
    sgconnect.reset()
    bobs = sgconnect.connect("render", site=local_site.url, interactive=False).create(
        "EventLogEntry",
        {
            "event_type": farm.TICKET_USED_EVENT_TYPE,
            "description": f"sgconnect farm ticket #{ticket_id} used",
            "meta": {"ticket_id": ticket_id},
        },
    )
    assert local_site.state.table("EventLogEntry")[bobs["id"]]["created_by"]["type"] == "HumanUser"
    sgconnect.reset()
    home = _node_home(tmp_path, local_site, None)
    local_site.clear_journal()
    result = _run_job(local_site, home, job)
    assert "error" not in result, result
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "verified"
    assert _calls(local_site)[-1] == ("script", SCRIPT, "alice")
    # The script's own mark still spends it.
    again = _run_job(local_site, home, job)
    assert again["error"][0] == "FarmIdentityError" and "already used" in again["error"][1]


@pytest.mark.tkcore
def test_a_verified_node_refuses_every_job_without_a_valid_ticket(local_site, tmp_path):
    job = _submit(local_site, "alice", verified=True)
    unticketed = {k: v for k, v in job.items() if k != "SGCONNECT_TICKET"}
    bypasses = {
        "ticket swapped for a login": {**unticketed, "SGCONNECT_SUDO_AS_LOGIN": "carol"},
        "job names nobody": {"SGCONNECT_JOB": "1", "SGCONNECT_SITE": local_site.url},
        "no job variable at all": {
            "SGCONNECT_SITE": local_site.url,
            "SGCONNECT_NON_INTERACTIVE": "1",
        },
    }
    home = _node_home(tmp_path, local_site, None)
    for name, env in bypasses.items():
        for service_mode in (True, False):
            local_site.clear_journal()
            result = _run_job(
                local_site, home, env, service_mode=service_mode, SGCONNECT_FARM_IDENTITY="verified"
            )
            if not service_mode and name == "no job variable at all":
                assert result["error"][0] == "LoginRequiredError", (name, result)
                continue
            assert result.get("error", [None])[0] == "FarmIdentityError", (name, result)
            assert "farm_identity: verified" in result["error"][1]
            assert _calls(local_site) == [], name  # nobody was acted as, not even the script
    # The ticket itself is still accepted there.
    local_site.clear_journal()
    result = _run_job(local_site, home, job, SGCONNECT_FARM_IDENTITY="verified")
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "verified"


def test_farm_identity_takes_two_words():
    assert Settings(farm_identity="verified").farm_identity == "verified"
    with pytest.raises(ConfigurationError, match="farm_identity must be unverified or verified"):
        Settings(farm_identity="strict")
    with pytest.raises(ConfigurationError, match="SGCONNECT_FARM_IDENTITY|farm_identity"):
        Settings.from_environment({"SGCONNECT_FARM_IDENTITY": "Yes"})


@pytest.mark.tkcore
@pytest.mark.parametrize("edit", ["nonce", "person", "purpose", "other_ticket"])
def test_an_edited_verified_environment_cannot_change_the_person(local_site, tmp_path, edit):
    job = _submit(local_site, "alice", verified=True)
    ticket_id, nonce = job["SGCONNECT_TICKET"].split(":")
    if edit == "nonce":
        job["SGCONNECT_TICKET"] = f"{ticket_id}:{'A' * len(nonce)}"
    elif edit == "person":
        job["SGCONNECT_SUDO_AS_LOGIN"] = "carol"
    elif edit == "purpose":
        job["SGCONNECT_PURPOSE"] = "publish"
    else:  # carol's own ticket id, with alice's nonce
        carol_job = _submit(local_site, "carol", verified=True)
        job["SGCONNECT_TICKET"] = f"{carol_job['SGCONNECT_TICKET'].split(':')[0]}:{nonce}"
    home = _node_home(tmp_path, local_site, None)
    local_site.clear_journal()
    result = _run_job(local_site, home, job)
    assert result["error"][0] == "FarmIdentityError", result
    assert nonce not in result["error"][1] and nonce not in result["stderr"]
    assert all(sudo is None for _, _, sudo in _calls(local_site))  # nobody was acted as


@pytest.mark.tkcore
def test_expired_or_script_made_tickets_are_refused(local_site, monkeypatch):
    save_session(local_site, "alice")
    sg = sgconnect.connect("render", site=local_site.url, interactive=False)
    nonce = "n" * 40
    digest = farm._digest(nonce)
    expired = sg.create(
        "EventLogEntry",
        {
            "event_type": farm.TICKET_EVENT_TYPE,
            "meta": {
                "purpose": "render",
                "expires_at": int(time.time()) - 60,
                "nonce_sha256": digest,
            },
        },
    )
    sgconnect.reset()
    key = local_site.script_key(SCRIPT)
    script_made = service.ScriptCredential(local_site.url, SCRIPT, key)
    from sgconnect.connection import ScriptConnection

    forged = ScriptConnection(script_made).create(
        "EventLogEntry",
        {
            "event_type": farm.TICKET_EVENT_TYPE,
            "meta": {
                "purpose": "render",
                "expires_at": int(time.time()) + 600,
                "nonce_sha256": digest,
            },
        },
    )
    for ticket, why in ((expired, "it expired"), (forged, "not created by a person")):
        job = farm.JobIdentity(ticket=(ticket["id"], Secret(nonce)), purpose="render")
        with pytest.raises(FarmIdentityError, match=why):
            farm.verified_credential(
                normalize_site(local_site.url), SCRIPT, key, job, timeout_secs=None
            )


@pytest.mark.tkcore
def test_a_refused_tickets_traceback_locals_hold_no_nonce(local_site, monkeypatch):
    import traceback

    job_env = _submit(local_site, "alice", verified=True)
    nonce = job_env["SGCONNECT_TICKET"].split(":")[1]
    monkeypatch.setenv("SGCONNECT_TICKET", job_env["SGCONNECT_TICKET"])
    monkeypatch.setenv("SGCONNECT_PURPOSE", "another purpose")
    _service(monkeypatch, local_site, None)
    with pytest.raises(FarmIdentityError) as caught:
        sgconnect.connect("another purpose")
    error = caught.value  # sgconnect's frames only (this test's own locals hold the nonce)
    text = "".join(
        traceback.TracebackException(
            type(error), error, error.__traceback__.tb_next, capture_locals=True
        ).format()
    )
    assert "verified_credential" in text and "another purpose" in text
    assert nonce not in text


def test_verified_ticket_needs_service_mode_on_the_farm(local_site, monkeypatch):
    monkeypatch.setenv("SGCONNECT_SITE", local_site.url)
    monkeypatch.setenv("SGCONNECT_TICKET", "12:" + "x" * 40)
    with pytest.raises(FarmIdentityError, match="service mode is not configured"):
        sgconnect.connect("render", interactive=False)
    assert local_site.journal == []


@pytest.mark.parametrize(
    "raw", ["abc", "12", "12:short", "12:" + "x" * 30 + "\x1b", "x:" + "y" * 40]
)
def test_malformed_tickets_are_refused_without_echo(monkeypatch, raw):
    monkeypatch.setenv("SGCONNECT_TICKET", raw)
    with pytest.raises(FarmIdentityError) as caught:
        farm.job_identity()
    assert raw.strip() not in str(caught.value) or len(raw.strip()) < 6


# -- one site per session -------------------------------------------------------------------------


@pytest.mark.tkcore
def test_two_sites_on_one_host_never_share_a_session(make_local_site, monkeypatch):
    site_a, site_b = make_local_site("default"), make_local_site("default")
    assert site_a.url.split(":")[1] == site_b.url.split(":")[1]  # same host, two ports
    # sgconnect saves alice's session for B (what `sgconnect login --site B` records).
    token_b = save_session(site_b, "alice")
    session_cache.record_session_site(site_b.url, token_b)
    with pytest.raises(LoginRequiredError):
        sgconnect.connect("tool", site=site_a.url, interactive=False).find("Project", [])
    assert site_a.journal == []  # B's token never went to A
    sgconnect.connect("tool", site=site_b.url, interactive=False).find("Project", [])
    assert {(e.auth, e.login) for e in site_b.journal if e.rpc == "read"} == {("session", "alice")}

    # A session SG Desktop saved (no sgconnect record) for B, the current host: not sent to A.
    sgconnect.reset()
    save_session(site_b, "alice")
    assert session_cache.read_saved_session(site_a.url) is None
    assert session_cache.read_saved_session(site_b.url) is not None

    # Logging in to A then: A's session is A's; B's stale one is no longer offered to B.
    token_a = save_session(site_a, "alice")
    session_cache.record_session_site(site_a.url, token_a)
    assert session_cache.read_saved_session(site_a.url).session_token == token_a
    assert session_cache.read_saved_session(site_b.url) is None
    assert token_b not in {e.login for e in site_a.journal}


@pytest.mark.tkcore
def test_a_login_to_one_site_is_never_sent_to_the_other_on_the_same_host(make_local_site):
    from sgconnect.testing import approve_next_app_session

    site_a, site_b = make_local_site("default"), make_local_site("default")
    save_session(site_a, "carol")  # SG Desktop saved carol on A before
    approver = approve_next_app_session(site_b, "alice", attempts=600)
    run = _cli("login", "--site", site_b.url, "--method", "url")
    approver.join(timeout=10)
    assert run.returncode == 0, run.stderr
    with pytest.raises(LoginRequiredError):
        sgconnect.connect("tool", site=site_a.url, interactive=False)
    assert [e for e in site_a.journal if e.auth == "session"] == []
    site_b.clear_journal()
    sgconnect.connect("tool", site=site_b.url, interactive=False).find("Project", [])
    assert [(e.auth, e.login) for e in site_b.journal if e.rpc == "read"] == [("session", "alice")]


# -- handed-down users scrubbed on import ---------------------------------------------------------


@pytest.mark.tkcore
@pytest.mark.parametrize("form", ["pickle", "json"])
def test_handed_down_users_are_scrubbed_when_tkcore_has_a_current_user(local_site, form):
    token = local_site.issue_session("alice")
    child = subprocess.run(
        [sys.executable, str(CHILDREN / "identity_scrub.py"), local_site.url, "alice", token, form],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": PYTHON_DIR},
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.split("RESULT ", 1)[1])
    assert result["desktop_user"] is None
    assert result["context"] == {"project": {"type": "Project", "id": 70}, "_pc_path": "/pc"}
    assert result["token_in_env"] is False
    assert result["who"] == "alice"  # the current sgtk user still wins


def test_pickled_context_keeps_its_context_and_loses_only_its_user():
    data = {"project": {"type": "Project", "id": 7}, "_pc_path": "/pc", "_current_user": "U" * 30}
    text = pickle.dumps(data, protocol=0).decode("utf-8")
    kept, user = chain.strip_context_user(text)
    assert user == "U" * 30
    assert pickle.loads(kept.encode("utf-8")) == {
        "project": {"type": "Project", "id": 7},
        "_pc_path": "/pc",
    }


def test_a_planted_pickle_is_not_run(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Planted(str(marker)), protocol=0).decode("latin-1")
    with pytest.raises(ValueError):
        chain.strip_context_user(evil + "_current_user")
    assert not marker.exists()


class _Planted:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- typed failures -------------------------------------------------------------------------------


def test_a_non_number_timeout_is_a_typed_error(monkeypatch):
    monkeypatch.setenv("SGCONNECT_TIMEOUT_SECS", "sixty")
    with pytest.raises(
        ConfigurationError, match="SGCONNECT_TIMEOUT_SECS must be a number"
    ) as caught:
        sgconnect.connect("tool", site="https://x.invalid")
    assert "sixty" not in str(caught.value)


@pytest.mark.parametrize(
    "values", [{"timeout_secs": "60"}, {"non_interactive": "yes"}, {"service_script_name": 3}]
)
def test_settings_of_the_wrong_type_are_typed_errors(values):
    with pytest.raises(ConfigurationError, match=next(iter(values))):
        Settings(**values)


def test_a_bad_hook_path_is_a_typed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SGCONNECT_HOOK", str(tmp_path / "missing_hook.py"))
    with pytest.raises(ConfigurationError, match="SGCONNECT_HOOK names"):
        sgconnect.connect("tool", site="https://x.invalid")


@pytest.mark.parametrize("site", [["https://a.invalid"], 42, b"https://a.invalid"])
def test_a_site_that_is_not_text_is_a_typed_error(site):
    with pytest.raises(InvalidSiteError):
        sgconnect.connect("tool", site=site)


def _cli(*args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGCONNECT_")}
    env.update(PYTHONPATH=PYTHON_DIR, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "sgconnect", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=90,
    )


def test_cli_maps_typed_errors_to_documented_exit_codes(tmp_path):
    run = _cli("whoami", SGCONNECT_TIMEOUT_SECS="abc", SGCONNECT_SITE="https://x.invalid")
    assert run.returncode == 4, run.stderr
    assert (
        run.stderr.startswith("sgconnect: The setting SGCONNECT_TIMEOUT_SECS")
        and "Traceback" not in run.stderr
    )
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    assert "| 4 | configuration" in docs and "| 5 | service mode or farm identity" in docs


@pytest.mark.parametrize(
    "variable, raw",
    [
        ("SGCONNECT_TICKET", "abc"),
        ("SGCONNECT_SUDO_AS_LOGIN", "alice\nINFO forged"),
        ("SGCONNECT_SUDO_AS_LOGIN", "a" * 300),
    ],
    ids=["ticket", "login_newline", "login_300"],
)
def test_a_malformed_job_identity_is_a_farm_identity_error_exit_5(local_site, variable, raw):
    run = _cli("whoami", SGCONNECT_SITE=local_site.url, **{variable: raw})
    assert run.returncode == 5, run.stderr
    assert run.stderr.startswith("sgconnect: ") and "Traceback" not in run.stderr
    assert variable in run.stderr and "forged" not in run.stderr and "a" * 300 not in run.stderr
    assert local_site.journal == []


def test_a_ticket_life_that_is_not_a_number_is_a_typed_error():
    for ttl in ("10", None, True, float("nan"), 0, farm.MAX_TICKET_TTL_SECS + 1):
        with pytest.raises(FarmIdentityError, match="between 1 second"):
            farm.verified_job_environment("render", ttl_secs=ttl)


def test_password_login_with_stdin_closed_is_a_usage_error(local_site):
    run = _cli("login", "--site", local_site.url, "--method", "password")
    assert run.returncode == 2, run.stderr
    assert "stdin, which is closed" in run.stderr and "Traceback" not in run.stderr
    assert not [e for e in local_site.journal if e.rpc not in (None, "info")]


@pytest.mark.tkcore
def test_a_session_cache_that_cannot_be_written_during_login_is_a_typed_error(local_site, tmp_path):
    from sgconnect.testing import approve_next_app_session

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.environ["SHOTGUN_HOME"], saved = str(home), os.environ["SHOTGUN_HOME"]
    try:  # tk-core's authentication.yml cannot be written (a file is in its folder's place; a
        # folder in the file's place is refused before the login: test_config_faults)
        folder = Path(session_cache.site_cache_file(local_site.url)).parent
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.write_text("")
        folder.chmod(0o600)
    finally:
        os.environ["SHOTGUN_HOME"] = saved
    approver = approve_next_app_session(local_site, "alice", attempts=600)
    run = _cli("login", "--site", local_site.url, "--method", "url", SHOTGUN_HOME=str(home))
    approver.join(timeout=10)
    assert run.returncode == 4, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("sgconnect: The session for") and "could not be saved" in last
    assert "Traceback" not in run.stderr and "unexpected error" not in run.stderr
    assert any(e.path.startswith("/internal_api/app_session_request/") for e in local_site.journal)


@pytest.mark.tkcore
def test_a_login_with_a_control_character_from_the_site_is_refused_before_saving(
    make_local_site, tmp_path
):
    from sgconnect.testing import approve_next_app_session
    from sgconnect.testing.site import DEMO_USERS, HumanUserSpec

    eve = "eve\x1b[2J"
    site = make_local_site(
        "saml2", users=[*DEMO_USERS, HumanUserSpec(login=eve, name="Eve", id=51)]
    )
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.environ["SHOTGUN_HOME"], saved = str(home), os.environ["SHOTGUN_HOME"]
    try:
        save_session(site, "alice")  # another user saved on this machine before
        cache_file = Path(session_cache.site_cache_file(site.url))
        before = cache_file.read_bytes()
    finally:
        os.environ["SHOTGUN_HOME"] = saved
    approver = approve_next_app_session(site, eve, attempts=600)
    run = _cli("login", "--site", site.url, "--method", "url", SHOTGUN_HOME=str(home))
    approver.join(timeout=10)
    assert run.returncode == 3, run.stderr
    assert "approved a login sgconnect refuses" in run.stderr and "\x1b" not in run.stderr
    assert cache_file.read_bytes() == before  # nothing saved, alice untouched
    who = _cli("whoami", "--site", site.url, SHOTGUN_HOME=str(home))
    assert who.returncode == 0 and "alice" in who.stdout, who.stderr


def test_a_saved_login_with_a_control_character_is_skipped_alone(local_site, tmp_path):
    import yaml

    alice_token = save_session(local_site, "alice")
    path = Path(session_cache.site_cache_file(local_site.url))
    document = yaml.safe_load(path.read_text())
    document["users"].insert(0, {"login": "eve\x1b[2J", "session_token": "t" * 30})
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    assert session_cache.read_saved_session(local_site.url).session_token == alice_token
    assert session_cache.read_saved_session(local_site.url, "eve\x1b[2J") is None
    document["current_user"] = "eve\x1b[2J"
    path.write_text(yaml.safe_dump(document))
    assert session_cache.current_login(local_site.url) is None  # unset, not a corrupt file
    saved = session_cache.read_saved_session(local_site.url, "alice")
    assert saved is not None and saved.session_token == alice_token


@pytest.mark.tkcore
def test_interactive_renewal_against_a_site_answering_102_forever_asks_once(make_local_site):
    from children import start_child

    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    child = start_child(CHILDREN / "console_renewal.py", {"SITE_URL": site.url, "THREADS": "1"})
    try:
        assert child.stdout.readline().strip() == "READY"
        site.session_lifetime = 0  # every session the site issues from now on is expired
        site.expire_sessions()
        site.clear_journal()
        password = site.password("alice")
        out, err = child.communicate(f"\n{password}\n{password}\n", timeout=90)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "RESULTS [] 0 ERRORS ['LoginFailedError']" in out, out + err
    logins = [e for e in site.journal if e.rpc == "get_session_token"]
    assert len(logins) == 1  # asked for the password once, not twice


# -- the session cache is trusted only when it is this user's own ---------------------------------

SITE = "https://trust.shotgunstudio.com"


def _cache(body: str) -> Path:
    path = Path(session_cache.site_cache_file(SITE))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(body)
    path.chmod(0o600)
    return path


GOOD = "current_user: ann\nusers:\n- login: ann\n  session_token: tok_0123456789abcdef\n"


def test_a_private_cache_is_read():
    _cache(GOOD)
    assert session_cache.read_saved_session(SITE).login == "ann"


@pytest.mark.skipif(not POSIX, reason="owner and mode bits are POSIX")
def test_a_cache_others_can_write_is_not_trusted(caplog):
    path = _cache(GOOD)
    path.chmod(0o666)
    assert session_cache.read_saved_session(SITE) is None
    assert any("not trusted" in r.getMessage() for r in caplog.records)
    path.chmod(0o600)
    path.parent.chmod(0o777)
    try:
        assert session_cache.read_saved_session(SITE) is None
        assert any("its folder" in r.getMessage() for r in caplog.records)
    finally:
        path.parent.chmod(0o700)


@pytest.mark.skipif(not POSIX, reason="devices and FIFOs are POSIX")
@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "huge"])
def test_devices_fifos_and_huge_files_are_not_read(kind, caplog):
    path = Path(session_cache.site_cache_file(SITE))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.write_bytes(b"#" * (session_cache.MAX_CACHE_BYTES + 10))
        path.chmod(0o600)
    assert session_cache.read_saved_session(SITE) is None  # returns: no hang, no memory blow-up
    assert any("not trusted" in r.getMessage() for r in caplog.records)


def test_a_corrupt_cache_of_many_token_like_strings_registers_them_in_one_pass(monkeypatch):
    tokens = [f"tok{i:05d}abcdefghijklmnopqrstu" for i in range(5000)]
    _cache("users: [" + ", ".join(f"{t}: [" for t in tokens))  # invalid YAML
    rebuilds = []
    real = redaction._rebuild
    monkeypatch.setattr(redaction, "_rebuild", lambda: (rebuilds.append(1), real())[1])
    assert session_cache.read_saved_session(SITE) is None
    assert len(rebuilds) == 1
    assert redaction.redact(f"x {tokens[4999]} y") == f"x {redaction.REDACTED} y"
    for token in tokens:
        redaction.forget_secret(token)


@pytest.mark.parametrize(
    "body",
    [
        'current_user: ann\nusers:\n- login: "ann\\nhand-out api3 login=root"\n'
        "  session_token: tok_0123456789ab\n",
        'current_user: "ann\\u2028x"\nusers: []\n',
        "current_user: ann\nusers:\n- login: ann\n  session_token: tok_0123456789ab\n"
        "  session_metadata: 12345\n",
    ],
    ids=["login_newline", "current_user_separator", "metadata_number"],
)
def test_forged_logins_and_wrong_types_are_no_saved_session(body, caplog):
    _cache(body)
    caplog.set_level(logging.WARNING)
    assert session_cache.read_saved_session(SITE) is None
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


# -- the node settings file ------------------------------------------------------------------------


def _node_file(tmp_path: Path, values: dict, mode: int = 0o600) -> Path:
    folder = tmp_path / "etc_sgconnect"
    folder.mkdir(mode=0o755, exist_ok=True)
    path = folder / "node.json"
    path.write_text(json.dumps(values))
    path.chmod(mode)
    return path


@pytest.mark.tkcore
def test_a_job_environment_cannot_undo_the_node_file(make_local_site, tmp_path):
    site_a, site_b = make_local_site("default"), make_local_site("default")
    job = _submit(site_a, "alice", verified=True)
    node_file = _node_file(
        tmp_path,
        {"farm_identity": "verified", "service_site": site_a.url, "service_script_name": SCRIPT},
    )
    home = _node_home(tmp_path, site_a, None)
    edited = {k: v for k, v in job.items() if k != "SGCONNECT_TICKET"}
    edited.update(
        SGCONNECT_SITE=site_b.url,
        SGCONNECT_SUDO_AS_LOGIN="carol",
        SGCONNECT_FARM_IDENTITY="unverified",
        SGCONNECT_SERVICE_SITE=site_b.url,
        SGCONNECT_SERVICE_SCRIPT_NAME="another_script",
        SGCONNECT_SERVICE_KEY_ENV="SGCONNECT_OTHER_KEY",
    )
    key = {"SGCONNECT_SCRIPT_KEY": site_a.script_key(SCRIPT)}
    site_a.clear_journal()
    result = _run_job(site_a, home, edited, service_mode=False, node_file=node_file, **key)
    assert result.get("error", [None])[0] == "FarmIdentityError", result
    assert "farm_identity: verified" in result["error"][1]
    assert site_b.journal == [] and _calls(site_a) == []
    assert "SGCONNECT_SERVICE_SITE is ignored" in result["stderr"]
    # The same edited job on a node without the file (the script named by the node, as its
    # environment did before): the environment chose site B, and the key went there.
    plain = {**edited, "SGCONNECT_SERVICE_SCRIPT_NAME": SCRIPT}
    del plain["SGCONNECT_SERVICE_KEY_ENV"]
    result = _run_job(site_a, home, plain, service_mode=False, **key)
    assert [e.auth for e in site_b.journal if e.rpc not in (None, "info")] == ["script"], result
    # The ticket itself still works on the node, whatever the environment says.
    site_a.clear_journal()
    result = _run_job(
        site_a,
        home,
        {**job, "SGCONNECT_FARM_IDENTITY": "unverified"},
        service_mode=False,
        node_file=node_file,
        **key,
    )
    assert result["user"]["login"] == "alice" and result["user"]["source"] == "verified"


def test_the_node_file_wins_over_the_environment(tmp_path, monkeypatch, caplog):
    from sgconnect import settings as settings_module

    node_file = _node_file(tmp_path, {"farm_identity": "verified", "service_site": "https://a"})
    monkeypatch.setattr(settings_module, "NODE_FILE", str(node_file))
    env = {"SGCONNECT_FARM_IDENTITY": "unverified", "SGCONNECT_TIMEOUT_SECS": "5"}
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_environment(env)
    assert (settings.farm_identity, settings.service_site) == ("verified", "https://a")
    assert settings.timeout_secs == 5  # not a node setting: the environment still sets it
    assert "SGCONNECT_FARM_IDENTITY is ignored" in caplog.text
    monkeypatch.setattr(settings_module, "NODE_FILE", str(tmp_path / "absent.json"))
    assert Settings.from_environment(env).farm_identity == "unverified"


@pytest.mark.parametrize(
    "values, mode, why",
    [
        ({"farm_identity": "verified"}, 0o666, "others can write it"),
        ({"non_interactive": "1"}, 0o600, "holds a key"),
        ({"service_site": 1}, 0o600, "is not a string"),
        (["verified"], 0o600, "not a JSON object"),
    ],
)
def test_an_untrusted_or_malformed_node_file_is_an_error(tmp_path, monkeypatch, values, mode, why):
    from sgconnect import settings as settings_module

    if mode & 0o022 and not POSIX:
        pytest.skip("ownership and mode are checked on POSIX only")
    node_file = _node_file(tmp_path, values, mode)
    monkeypatch.setattr(settings_module, "NODE_FILE", str(node_file))
    with pytest.raises(ConfigurationError, match=why):
        Settings.from_environment({})
