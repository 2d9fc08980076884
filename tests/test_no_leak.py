"""Never leak: every flow, at DEBUG everywhere, shows no secret the site issued or accepted.

Each flow runs in a child process (``tests/children/leak_<flow>.py``, which imports
``leak_harness.py``) that turns on every debug log there is: the root logger, ``shotgun_api3``
(which logs request and response bodies, passwords and session tokens included),
``sgtk``/``tank`` (tk-core, which does not propagate to the root logger; its
``LogManager().global_debug`` is on too) and ``sgconnect``. What the flow produces is
collected into a corpus:

- every log record, formatted by an ordinary handler (message plus ``exc_text``), and again raw:
  ``repr(record.__dict__)`` and ``exc_info`` formatted when a record still has one;
- the child's stdout and stderr (tk-core's console prompts, the headless login's URL...);
- every exception sgconnect raised: traceback, ``str``, ``repr``, ``args``, public attributes,
  and the same for each chained ``__cause__`` and ``__context__``;
- every object handed out (connections, REST sessions, ``UserInfo``, credentials): ``repr``,
  ``str`` and every public attribute, two levels deep (``sg.config`` included);
- the child's final ``os.environ`` (what its own children would inherit).

The corpus is searched for every secret of the local site (``site.secrets``: passwords, 2FA
codes, script keys, session tokens, Bearer and refresh tokens, IdP tickets and cookies). Flows
that need no outside help run their own ``LocalSite`` inside the child and type into tk-core's
prompts through ``sys.stdin``; the web login drives tk-core's Qt dialog (``qt_weblogin_driver``)
against a site in this process.

The test of the test runs the password flow with ``LEAK_NO_REDACTION=1`` (the child calls
``sgconnect.redaction.uninstall()``) and requires the search to find the password and a session
token: the corpus does capture what shotgun_api3 logs, so a clean result means something.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sgconnect.testing import child_environment

pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 120
DRIVER = Path(__file__).with_name("qt_weblogin_driver.py")
CHILDREN = Path(__file__).parent / "children"
#: The flows, each a program ``tests/children/leak_<flow>.py`` that imports ``leak_harness``.
FLOWS = (
    "password",
    "two_factor",
    "browser_app_session_launcher",
    "headless_url",
    "rest",
    "service_mode",
    "handed_down",
    "renewal",
    "transport_faults",
    "session_faults",
)


# -- the flows ----------------------------------------------------------------------------------


# -- running and searching ----------------------------------------------------------------------


def child_env(work: Path, **extra: str) -> dict:
    env = {k: v for k, v in child_environment().items() if not k.startswith("SGCONNECT_")}
    home = work / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    env.update(
        SHOTGUN_HOME=str(home),
        LEAK_CORPUS=str(work / "corpus.txt"),
        LEAK_SECRETS=str(work / "secrets.json"),
        LEAK_WORK=str(work),
        SGCONNECT_LOGIN_METHOD="password",
    )
    env.update(extra)
    return env


def run_harness(script: Path, env: dict, work: Path, what: str) -> tuple:
    """Run ``script`` (a flow, which imports ``leak_harness``) in a child (in ``work``, stdin
    closed); return (child, stdout, stderr).

    The test fails, naming ``what``, if the child hangs; the child is killed whatever happens.
    """
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(work),
        start_new_session=True,
    )
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        pytest.fail(f"{what} hung\n{err[-3000:]}")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    return child, out, err


def run_flow(name: str, work: Path, *, redaction: bool = True) -> tuple[str, set, str]:
    """Run a flow in a child; return (corpus, secrets of its sites, its STEP lines)."""
    work.mkdir(parents=True, exist_ok=True)
    script = CHILDREN / f"leak_{name}.py"
    if name == "headless_url":
        extra = {"SGCONNECT_LOGIN_METHOD": "url"}
    else:
        extra = {}
    if not redaction:
        extra["LEAK_NO_REDACTION"] = "1"
    child, out, err = run_harness(script, child_env(work, **extra), work, f"the {name} flow")
    assert child.returncode == 0, f"the {name} flow crashed:\n{err[-3000:]}"
    secrets = set(json.loads((work / "secrets.json").read_text()))
    corpus = out + "\n" + err + "\n" + (work / "corpus.txt").read_text(errors="replace")
    steps = "\n".join(line for line in out.splitlines() if line.startswith("STEP "))
    return corpus, secrets, steps


def leaks(corpus: str, secrets: set) -> dict[str, str]:
    """Each secret found in the corpus, with some text around it (the secret itself masked)."""
    found = {}
    for secret in secrets:
        if secret.isdigit():  # a 2FA code: only as a word of its own (not inside a hex token)
            match = re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", corpus)
        else:
            index = corpus.find(secret)
            match = None if index == -1 else (index, index + len(secret))
        if match is None:
            continue
        start, end = match.span() if hasattr(match, "span") else match
        around = corpus[max(0, start - 200) : end + 80].replace(secret, "<SECRET>")
        found[f"{secret[:4]}... ({len(secret)} chars)"] = around
    return found


def assert_no_leak(corpus: str, secrets: set) -> None:
    found = leaks(corpus, secrets)
    assert found == {}, "secrets leaked:\n" + "\n\n".join(f"{k}:\n{v}" for k, v in found.items())


# Each flow's STEP lines: what must have happened (so that a flow that fails early is caught).
EXPECTED_STEPS = {
    "password": ["console login: ok", "find: ok", "rest get: ok", "rest pages: ok", "logout: ok"],
    "two_factor": ["console 2fa login: ok", "find: ok", "wrong code: LoginFailedError"],
    "browser_app_session_launcher": ["browser login: ok", "connect: ok", "find: ok"],
    "headless_url": [
        "url login: ok",
        "find: ok",
        "rest get: ok",
        "denied url login: LoginFailedError",
        "ctrl-c url login: LoginCancelledError",
    ],
    "rest": [
        "get: ok",
        "post: ok",
        "one: ok",
        "missing: RestError",
        "elsewhere: InvalidSiteError",
        "get after token expiry: ok",
        "get after session expiry: ok",
        "get, session gone: ok",
        "get, nothing to adopt: LoginRequiredError",
    ],
    "service_mode": [
        "service connect: ok",
        "find: ok",
        "rest get: ok",
        "job environment: ok",
        "wrong key: ServiceAuthenticationError",
    ],
    "handed_down": ["handed down: ok", "find: ok"],
    "renewal": [
        "thread find: ok",
        "adopted: ok",
        "non-interactive expiry: LoginRequiredError",
        "cancelled renewal: LoginCancelledError",
        "sso adopted: ok",
    ],
    "transport_faults": [
        "api3 http_500 x1: SiteResponseError",
        "rest http_500 x1: SiteResponseError",
        "api3 http_502 x1: ok",
        # shotgun_api3 retries a 502 after 0.75 s and 1.5 s: the 1 s deadline bounds the retries,
        # and the error reports the gateway's 502 that spent it.
        "api3 http_502 x3: SiteResponseError",
        "api3 html x1: SiteResponseError",
        "api3 slow x1: SiteTimeoutError",
        "rest slow x1: SiteTimeoutError",
        "api3 close x2: SiteUnreachableError",
        "site down: SiteUnreachableError",
        "rest site down: SiteUnreachableError",
        "console login, site down: SiteUnreachableError",
    ],
    "session_faults": [
        "find 10: ok",
        "find 19: ok",
        "cancelled login: LoginCancelledError",
        "login again: ok",
        "wrong password: LoginFailedError",
        "corrupt cache: LoginRequiredError",
        "login over a corrupt cache: ok",
        "bad site: InvalidSiteError",
        "bad purpose: InvalidPurposeError",
    ],
}


@pytest.mark.parametrize("flow", list(FLOWS))
def test_flow_leaks_no_secret(flow, tmp_path):
    corpus, secrets, steps = run_flow(flow, tmp_path / flow)
    for step in EXPECTED_STEPS[flow]:
        assert f"STEP {step}" in steps, f"the {flow} flow did not do what it should:\n{steps}"
    assert secrets, "the flow's sites issued no secret"
    assert " DEBUG " in corpus  # debug records were captured
    if flow != "rest":  # shotgun_api3's request bodies held secrets, taken out
        assert "[redacted]" in corpus
    assert_no_leak(corpus, secrets)


def test_the_leak_search_finds_secrets_when_redaction_is_removed(tmp_path):
    """The test of the test: without the redaction, the same flow's corpus shows secrets."""
    corpus, secrets, steps = run_flow("password", tmp_path / "unredacted", redaction=False)
    assert "STEP console login: ok" in steps
    found = leaks(corpus, secrets)
    assert len(found) >= 2, "the corpus does not capture what shotgun_api3 and tk-core log"
    password_line = re.search(r'"user_password": "([^"]+)"', corpus)
    assert password_line and password_line.group(1) in secrets  # the raw password, logged


# -- the web login: tk-core's Qt dialog, driven in a child --------------------------------------


@pytest.mark.qt
def test_web_login_through_tk_core_qt_dialog_leaks_no_secret(make_local_site, tmp_path):
    site = make_local_site("saml2", app_session_launcher=False)
    work = tmp_path / "web"
    work.mkdir()
    env = child_env(
        work,
        LEAK_DRIVER=str(DRIVER),
        SGTK_DEFAULT_AUTH_METHOD="qt_web_login",
        WEBLOGIN_SITE_URL=site.url,
        WEBLOGIN_IDP_URL=site.idp_url,
        WEBLOGIN_LOGIN="alice",
        WEBLOGIN_PASSWORD=site.password("alice"),
        WEBLOGIN_RESULT=str(work / "result.json"),
        WEBLOGIN_TIMEOUT="60",
        WEBLOGIN_ULF_SUPPORT="0",
        WEBLOGIN_ENTRY="sgconnect",
    )
    for variable in ("SGTK_FORCE_STANDARD_LOGIN_DIALOG", "SGCONNECT_LOGIN_METHOD"):
        env.pop(variable, None)
    child, out, err = run_harness(CHILDREN / "leak_web_login.py", env, work, "the web login flow")
    result = json.loads((work / "result.json").read_text())
    assert child.returncode == 0 and result["ok"], f"{result}\n{err[-3000:]}"
    assert (result["login"], result["source"], result["auth_method"]) == ("alice", "fresh", "sso")
    for step in ("same connection: ok", "find: ok", "rest get: ok"):
        assert f"STEP {step}" in out, out
    corpus = out + "\n" + err + "\n" + (work / "corpus.txt").read_text(errors="replace")
    assert "[redacted]" in corpus
    assert_no_leak(corpus, site.secrets)
