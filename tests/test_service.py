"""Service mode (script key + ``sudo_as_login``) and the farm's submit-side helper.

The acceptance tests run a farm job as a fresh Python process: no session in its own
``SHOTGUN_HOME``, stdin not a terminal, no UI, given the environment that ``job_environment()``
computed in this process, logged in as alice. The local site's journal is the proof of who acted.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest
from children import farm_job_env

import sgconnect
from sgconnect import chain, service
from sgconnect.errors import (
    ConfigurationError,
    InvalidPurposeError,
    ServiceKeyError,
    SgConnectError,
)
from sgconnect.farm import job_environment
from sgconnect.service import key_file_problem, read_key_file, service_credential, validate_login
from sgconnect.settings import Settings
from sgconnect.sites import normalize_site
from sgconnect.testing import save_session

CHILDREN = Path(__file__).parent / "children"

SCRIPT = "sgconnect_farm"
PYTHON_DIR = str(Path(__file__).parents[1] / "python")
POSIX = hasattr(os, "geteuid")


def sent_key(credential) -> str:
    """The script key ``credential`` applies to a REST token request (what it would send)."""
    return credential.rest_grant(credential.attempt())["client_secret"].reveal()


@pytest.fixture(autouse=True)
def _fresh_service(fresh_service):
    """Every test here starts with no SGCONNECT_* variable and no remembered key (conftest)."""
    yield


def _settings(**values: Any) -> Settings:
    values.setdefault("service_script_name", SCRIPT)
    values.setdefault("service_site", "http://127.0.0.1:1")
    values.setdefault("service_key_env", f"SGC_TEST_KEY_{secrets.token_hex(4).upper()}")
    values.setdefault("service_keyring_name", "")
    return Settings(**values)


# -- pure: logins, key-file checks --------------------------------------------------------------


@pytest.mark.parametrize("login", ["alice", "alice@studio.example", "j.doe-2", "x" * 255])
def test_validate_login_accepts_logins(login):
    assert validate_login(f"  {login}\n") == login


@pytest.mark.parametrize(
    "bad", ["", "   ", "al\nice", "al\x00ice", "al ice", "al\u2028ice", "x" * 256, "a\x1b[2J"]
)
def test_validate_login_refuses_without_echoing(bad):
    with pytest.raises(SgConnectError) as caught:
        validate_login(bad)
    message = str(caught.value)
    assert "SGCONNECT_SUDO_AS_LOGIN" in message
    if bad.strip():
        assert bad.strip() not in message


REG = stat.S_IFREG


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o200])
def test_key_file_problem_accepts_private_files(mode):
    assert key_file_problem(REG | mode, 1000, 1000) is None


@pytest.mark.parametrize(
    "mode, who",
    [(0o644, "group and others"), (0o640, "group"), (0o604, "others"), (0o660, "group")],
)
def test_key_file_problem_refuses_shared_modes(mode, who):
    problem = key_file_problem(REG | mode, 1000, 1000)
    assert problem is not None
    assert f"{mode:04o}" in problem and f"{who} can access it" in problem


def test_key_file_problem_refuses_other_owners_and_non_files():
    assert "owned by user id 0" in key_file_problem(REG | 0o600, 0, 1000)
    assert "not a regular file" in key_file_problem(stat.S_IFDIR | 0o700, 1000, 1000)
    assert "not a regular file" in key_file_problem(stat.S_IFIFO | 0o600, 1000, 1000)
    # Where there is no uid (Windows), only the file type is checked.
    assert key_file_problem(REG | 0o644, 0, None) is None


# -- key files on disk ---------------------------------------------------------------------------


def _key_file(tmp_path: Path, mode: int) -> tuple[Path, str]:
    key = secrets.token_urlsafe(24)
    path = tmp_path / "farm.key"
    path.write_text(key + "\n")
    path.chmod(mode)
    return path, key


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_with_shared_mode_is_refused_clearly(tmp_path, mode):
    path, key = _key_file(tmp_path, mode)
    with pytest.raises(ServiceKeyError) as caught:
        read_key_file(str(path), "http://127.0.0.1:1")
    message = str(caught.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert key not in message and key not in repr(caught.value)


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_key_file_0600_is_accepted(tmp_path):
    path, key = _key_file(tmp_path, 0o600)
    assert read_key_file(str(path)) == key
    link = tmp_path / "link.key"
    link.symlink_to(path)
    assert read_key_file(str(link)) == key  # a symlink to a private file is fine


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_key_file_not_regular_or_foreign_is_refused(tmp_path):
    with pytest.raises(ServiceKeyError, match="not a regular file"):
        read_key_file(str(tmp_path))
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ServiceKeyError, match="not a regular file"):  # and no hang
        read_key_file(str(fifo))
    if os.geteuid() == 0:
        path, _ = _key_file(tmp_path, 0o600)
        os.chown(path, 4242, -1)
        with pytest.raises(ServiceKeyError, match="owned by user id 4242"):
            read_key_file(str(path))


def test_key_file_missing_or_empty(tmp_path):
    with pytest.raises(ServiceKeyError, match="does not exist"):
        read_key_file(str(tmp_path / "nope.key"))
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(ServiceKeyError, match="is empty"):
        read_key_file(str(empty))


# -- service_credential --------------------------------------------------------------------------


def test_no_script_name_means_no_service_mode(monkeypatch):
    monkeypatch.setenv("SGCONNECT_SCRIPT_KEY", "k" * 20)
    assert service_credential("http://127.0.0.1:1", Settings()) is None
    assert os.environ["SGCONNECT_SCRIPT_KEY"] == "k" * 20  # not consulted, not touched


def test_key_from_environment_is_removed_from_it(monkeypatch):
    settings = _settings()
    key = secrets.token_urlsafe(24)
    monkeypatch.setenv(settings.service_key_env, key)
    monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", "alice")
    monkeypatch.setenv("SGCONNECT_SITE", "http://127.0.0.1:1")
    credential = service_credential(None, settings)
    assert (credential.auth_method, credential.source) == ("script", "service")
    assert (credential.site, credential.script_name, credential.sudo_as_login) == (
        "http://127.0.0.1:1",
        SCRIPT,
        "alice",
    )
    assert settings.service_key_env not in os.environ
    assert key not in repr(credential) and key not in repr(credential.info())
    # A second resolution (after sgconnect.reset(), a user switch...) still has the key.
    again = service_credential("http://127.0.0.1:1", settings)
    assert sent_key(again) == key


def test_key_from_file_when_not_in_environment(tmp_path):
    path, key = _key_file(tmp_path, 0o600)
    credential = service_credential("http://127.0.0.1:1", _settings(service_key_file=str(path)))
    assert sent_key(credential) == key and credential.sudo_as_login is None


def _fake_keyring(tmp_path: Path, monkeypatch, body: str) -> None:
    """A stand-in for the optional ``keyring`` package (its one call: get_password)."""
    package = tmp_path / "fake_keyring" / "keyring"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "keyring", raising=False)


@pytest.fixture
def no_keyring_module_after():
    yield
    sys.modules.pop("keyring", None)


def test_key_from_keyring_when_importable(tmp_path, monkeypatch, no_keyring_module_after):
    key = secrets.token_urlsafe(24)
    _fake_keyring(
        tmp_path,
        monkeypatch,
        f"""
        def get_password(service, username):
            return {{("studio-farm", {SCRIPT!r}): {key!r}}}.get((service, username))
        """,
    )
    settings = _settings(service_keyring_name="studio-farm")
    assert sent_key(service_credential("http://127.0.0.1:1", settings)) == key
    # Another keyring service name: not found, and the error says where it looked.
    with pytest.raises(ServiceKeyError) as caught:
        service_credential("http://127.0.0.1:1", _settings(service_keyring_name="other"))
    assert "OS keyring service 'other'" in str(caught.value)


def test_broken_keyring_is_not_found(tmp_path, monkeypatch, no_keyring_module_after):
    _fake_keyring(
        tmp_path,
        monkeypatch,
        """
        class NoKeyringError(RuntimeError):
            pass

        def get_password(service, username):
            raise NoKeyringError("no backend")
        """,
    )
    path, key = _key_file(tmp_path, 0o600)
    settings = _settings(service_keyring_name="studio-farm", service_key_file=str(path))
    assert sent_key(service_credential("http://127.0.0.1:1", settings)) == key


def test_missing_key_names_where_it_looked(tmp_path, monkeypatch):
    settings = _settings(
        service_key_file=str(tmp_path / "farm.key"), service_keyring_name="studio-farm"
    )
    with pytest.raises(ServiceKeyError) as caught:
        service_credential("http://127.0.0.1:1", settings)
    message = str(caught.value)
    assert f"environment variable {settings.service_key_env}" in message
    assert f"key file {tmp_path / 'farm.key'} (does not exist)" in message
    assert "OS keyring" in message and "studio-farm" in message
    assert SCRIPT in message and "http://127.0.0.1:1" in message


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_shared_key_file_is_refused_through_the_settings(tmp_path):
    path, key = _key_file(tmp_path, 0o644)
    with pytest.raises(ServiceKeyError) as caught:
        service_credential("http://127.0.0.1:1", _settings(service_key_file=str(path)))
    assert f"chmod 600 {path}" in str(caught.value) and key not in str(caught.value)


def test_invalid_sudo_login_is_refused(monkeypatch):
    settings = _settings()
    monkeypatch.setenv(settings.service_key_env, secrets.token_urlsafe(24))
    monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", "alice\nINFO forged audit line")
    with pytest.raises(SgConnectError, match="control or whitespace") as caught:
        service_credential("http://127.0.0.1:1", settings)
    assert "forged" not in str(caught.value)


@pytest.mark.parametrize("name", ["two words", "x" * 300, "farm\x1b[2J"])
def test_a_bad_script_name_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError, match="service_script_name") as caught:
        service_credential("http://127.0.0.1:1", _settings(service_script_name=name))
    assert "x" * 300 not in str(caught.value) and "\x1b" not in str(caught.value)


@pytest.mark.parametrize(
    "name", ["PATH", "HOME", "LD_PRELOAD", "PYTHONPATH", "DYLD_KEY", "my_key", "A KEY", "K" * 200]
)
def test_a_key_variable_that_is_not_a_keys_is_refused_and_never_removed(monkeypatch, name):
    environment = {"SGCONNECT_SERVICE_KEY_ENV": name, name: "/usr/bin", "USER": "x"}
    assert service.take_environment_keys(environment) == []
    assert environment[name] == "/usr/bin" and environment["USER"] == "x"
    monkeypatch.setenv("PATH", os.environ["PATH"])
    with pytest.raises(ConfigurationError, match="service_key_env") as caught:
        service_credential("http://127.0.0.1:1", _settings(service_key_env=name))
    assert caught.value.setting == "service_key_env" and name not in str(caught.value)
    assert os.environ.get("PATH")


def test_importing_sgconnect_with_service_key_env_path_keeps_path(local_site):
    code = (
        "import os, sgconnect\n"
        "print('PATH' in os.environ, 'SGCONNECT_SCRIPT_KEY' in os.environ)\n"
        "sgconnect.connect('render')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGCONNECT_")}
    env.update(
        PYTHONPATH=str(Path(__file__).parents[1] / "python"),
        SGCONNECT_SERVICE_KEY_ENV="PATH",
        SGCONNECT_SCRIPT_KEY="k" * 24,
        SGCONNECT_SERVICE_SCRIPT_NAME=SCRIPT,
        SGCONNECT_SERVICE_SITE=local_site.url,
        SGCONNECT_SITE=local_site.url,
        SGCONNECT_JOB="1",
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert child.stdout.split() == ["True", "False"], child.stderr
    assert "ConfigurationError" in child.stderr and "service_key_env" in child.stderr
    assert local_site.journal == []


def test_service_mode_needs_a_site(monkeypatch):
    settings = _settings(service_site="http://127.0.0.1:1, http://127.0.0.1:2")
    monkeypatch.setenv(settings.service_key_env, secrets.token_urlsafe(24))
    with pytest.raises(SgConnectError, match="SGCONNECT_SITE"):
        service_credential(None, settings)


# -- through sgconnect.connect(), in process -----------------------------------------------------


def _service_env(monkeypatch, site: Any, sudo: Optional[str]) -> None:
    monkeypatch.setenv("SGCONNECT_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")
    monkeypatch.setenv("SGCONNECT_SERVICE_SCRIPT_NAME", SCRIPT)
    monkeypatch.setenv("SGCONNECT_SERVICE_SITE", site.url)
    monkeypatch.setenv("SGCONNECT_SCRIPT_KEY", site.script_key(SCRIPT))
    if sudo:
        monkeypatch.setenv("SGCONNECT_SUDO_AS_LOGIN", sudo)


def test_non_interactive_without_session_uses_service_mode(local_site, monkeypatch, caplog):
    _service_env(monkeypatch, local_site, "carol")
    caplog.set_level(logging.INFO, logger="sgconnect")
    sg = sgconnect.connect("nightly report")
    assert len(sg.find("Project", [], ["name"])) == 3
    reads = [e for e in local_site.journal if e.rpc == "read"]
    assert [(e.auth, e.login, e.sudo) for e in reads] == [("script", SCRIPT, "carol")]
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hand-out")]
    assert audit == [
        f"hand-out api3 purpose='nightly report' login=carol script={SCRIPT} "
        f"site={normalize_site(local_site.url)} via script (service) thread=MainThread"
    ]
    info = sgconnect.current_user()
    assert (info.login, info.script_name, info.sudo_as_login) == ("carol", SCRIPT, "carol")
    assert info.source == "service"
    with pytest.warns(DeprecationWarning, match="UserInfo.acting_as"):
        assert info.acting_as == SCRIPT


def test_service_mode_without_sudo_acts_as_the_script_and_says_so(local_site, monkeypatch, caplog):
    _service_env(monkeypatch, local_site, None)
    caplog.set_level(logging.INFO, logger="sgconnect")
    sgconnect.connect("nightly report").find("Project", [])
    reads = [e for e in local_site.journal if e.rpc == "read"]
    assert [(e.auth, e.login, e.sudo) for e in reads] == [("script", SCRIPT, None)]
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hand-out")]
    assert len(audit) == 1
    assert f"login={SCRIPT} script={SCRIPT} as itself (no sudo_as_login)" in audit[0]
    assert "(service)" in audit[0]
    assert any("acts as itself" in r.getMessage() for r in caplog.records)


def test_interactive_processes_do_not_use_service_mode(local_site, monkeypatch):
    _service_env(monkeypatch, local_site, None)  # not a farm job: no person named
    monkeypatch.delenv("SGCONNECT_NON_INTERACTIVE")
    # interactive=True with no session would prompt: the chain must not fall to service mode.
    monkeypatch.setattr(
        chain.interactive_login,
        "login",
        lambda *a, **k: (_ for _ in ()).throw(sgconnect.LoginCancelledError("no prompt here")),
    )
    with pytest.raises(sgconnect.LoginCancelledError):
        sgconnect.connect("tool", interactive=True)
    assert "SGCONNECT_SCRIPT_KEY" in os.environ  # service mode was never consulted
    assert local_site.journal == []


@pytest.mark.tkcore
def test_outside_a_farm_job_a_saved_session_wins_over_service_mode(local_site, monkeypatch):
    save_session(local_site, "alice")
    _service_env(monkeypatch, local_site, None)  # a workstation: no job variable
    sgconnect.connect("render").find("Project", [])
    reads = [e for e in local_site.journal if e.rpc == "read"]
    assert [(e.auth, e.login, e.sudo) for e in reads] == [("session", "alice", None)]
    assert sgconnect.current_user().source == "saved"


@pytest.mark.tkcore
def test_in_a_farm_job_service_mode_wins_over_a_saved_session(local_site, monkeypatch):
    save_session(local_site, "carol")  # the node's owner
    _service_env(monkeypatch, local_site, "bob")
    sgconnect.connect("render").find("Project", [])
    reads = [e for e in local_site.journal if e.rpc == "read"]
    assert [(e.auth, e.login, e.sudo) for e in reads] == [("script", SCRIPT, "bob")]
    assert sgconnect.current_user().source == "service"


# -- job_environment -----------------------------------------------------------------------------


@pytest.mark.tkcore
def test_job_environment_of_a_logged_in_person(local_site):
    token = save_session(local_site, "alice")
    environment = job_environment("render")
    assert environment == {
        "SGCONNECT_SITE": normalize_site(local_site.url),
        "SGCONNECT_SUDO_AS_LOGIN": "alice",
        "SGCONNECT_JOB": "1",
        "SGCONNECT_NON_INTERACTIVE": "1",
        "SGCONNECT_PURPOSE": "render",
    }
    text = json.dumps(environment)
    assert token not in text
    assert not any(value in text for value in local_site.secrets)
    assert local_site.journal == []  # from the saved session: no request
    assert job_environment("render", site=local_site.url) == environment


@pytest.mark.parametrize("purpose", ["", "two\nlines", "x" * 201, "\x1b[31mred"])
def test_job_environment_validates_the_purpose_first(local_site, purpose):
    with pytest.raises(InvalidPurposeError):
        job_environment(purpose, site=local_site.url)
    assert local_site.journal == []


def test_job_environment_of_a_script_acting_as_itself(local_site, monkeypatch):
    _service_env(monkeypatch, local_site, None)
    environment = job_environment("chain job")
    assert "SGCONNECT_SUDO_AS_LOGIN" not in environment
    assert environment["SGCONNECT_SITE"] == normalize_site(local_site.url)
    assert local_site.script_key(SCRIPT) not in json.dumps(environment)


def test_job_environment_without_a_user_refuses(local_site, monkeypatch):
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")
    with pytest.raises(sgconnect.LoginRequiredError):
        job_environment("render", site=local_site.url)


# -- the farm job: a fresh process -----------------------------------------------------------------

FARM_JOB = CHILDREN / "service_farm_job.py"


def _run_farm_job(
    site: Any, tmp_path: Path, job_env: dict[str, str], rest: bool
) -> tuple[dict, str, str]:
    farm_home = tmp_path / "farm_shotgun_home"
    farm_home.mkdir(mode=0o700)
    env = farm_job_env(
        job_env,
        farm_home,
        SGCONNECT_SERVICE_SCRIPT_NAME=SCRIPT,
        SGCONNECT_SERVICE_SITE=site.url,
        SGCONNECT_SCRIPT_KEY=site.script_key(SCRIPT),
    )
    env.pop("QT_QPA_PLATFORM", None)
    child = subprocess.run(
        [sys.executable, str(FARM_JOB), *(["--rest"] if rest else [])],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,  # no controlling terminal
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, child.stdout
    return json.loads(lines[-1][len("RESULT ") :]), child.stdout, child.stderr


def _submit_as_alice(site: Any) -> dict[str, str]:
    """The submit side: a process logged in as alice computes the job's environment."""
    save_session(site, "alice")
    environment = job_environment("render")
    sgconnect.reset()
    return environment


@pytest.mark.tkcore
def test_farm_job_acts_as_the_submitter_on_every_call(local_site, tmp_path):
    job_env = _submit_as_alice(local_site)
    result, _, stderr = _run_farm_job(local_site, tmp_path, job_env, rest=True)

    names = ["Big Buck Bunny", "Sintel", "Tears of Steel"]
    assert result["projects"] == names
    assert result["user"]["login"] == "alice"
    assert (result["user"]["script_name"], result["user"]["sudo_as_login"]) == (SCRIPT, "alice")
    assert result["user"]["acting_as"] == SCRIPT  # the deprecated key, for one release
    assert result["user"]["source"] == "service"
    assert "hand-out api3 purpose='render' login=alice script=sgconnect_farm" in stderr
    assert "hand-out rest purpose='render' login=alice script=sgconnect_farm" in stderr
    assert "via script (service)" in stderr

    calls = [e for e in local_site.journal if e.rpc != "info"]
    assert calls, local_site.journal
    for entry in calls:
        assert entry.status == 200, entry
        assert entry.login == SCRIPT and entry.sudo == "alice", entry
        if entry.path == "/api/v1/auth/access_token":
            assert entry.auth == "script", entry  # client_credentials + scope sudo
        elif entry.path.startswith("/api/v1"):
            assert entry.auth == "bearer", entry
        else:
            assert entry.auth == "script", entry
    assert result["rest_projects"] == names
    assert local_site.mint_count == 1
    assert any(e.path == "/api/v1/auth/access_token" for e in calls)
    assert any(e.path == "/api/v1/entity/projects" for e in calls)


@pytest.mark.tkcore
def test_farm_job_without_a_login_acts_as_the_script(local_site, tmp_path):
    job_env = _submit_as_alice(local_site)
    del job_env["SGCONNECT_SUDO_AS_LOGIN"]
    result, _, stderr = _run_farm_job(local_site, tmp_path, job_env, rest=False)
    assert result["user"]["login"] == SCRIPT and result["user"]["source"] == "service"
    calls = [e for e in local_site.journal if e.rpc != "info"]
    assert calls and all((e.auth, e.login, e.sudo) == ("script", SCRIPT, None) for e in calls)
    assert f"login={SCRIPT} script={SCRIPT} as itself (no sudo_as_login)" in stderr


@pytest.mark.tkcore
def test_farm_job_leaks_no_secret(local_site, tmp_path):
    job_env = _submit_as_alice(local_site)
    result, stdout, stderr = _run_farm_job(local_site, tmp_path, job_env, rest=True)
    key = local_site.script_key(SCRIPT)
    grandchild_env = result.pop("grandchild_env")
    assert "SGCONNECT_SCRIPT_KEY" not in grandchild_env
    assert grandchild_env["SGCONNECT_SUDO_AS_LOGIN"] == "alice"  # the job env itself is passed on
    # DEBUG logging really was on, down to shotgun_api3's request bodies (auth params included).
    assert "DEBUG:shotgun_api3:Request body is" in stderr and '"script_key"' in stderr
    captured = {
        "stdout": stdout,
        "stderr": stderr,
        "grandchild env": json.dumps(grandchild_env),
    }
    secrets_seen = local_site.secrets
    assert key in secrets_seen
    for where, text in captured.items():
        for secret in secrets_seen | {key}:
            assert secret not in text, f"a site secret appears in the farm job's {where}"
