"""Never leak: every flow, at DEBUG everywhere, shows no secret the site issued or accepted.

Each flow runs in a child process (``python -c HARNESS + flow``) that turns on every debug log
there is: the root logger, ``shotgun_api3`` (which logs request and response bodies, passwords and
session tokens included), ``sgtk``/``tank`` (tk-core, which does not propagate to the root logger;
its ``LogManager().global_debug`` is on too) and ``sgconnect``. What the flow produces is
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
import textwrap
from pathlib import Path

import pytest

from sgconnect.testing import child_environment

pytestmark = pytest.mark.tkcore

CHILD_TIMEOUT = 120
DRIVER = Path(__file__).with_name("qt_weblogin_driver.py")

HARNESS = r'''
import io, json, logging, os, sys, threading, time, traceback

_corpus = open(os.environ["LEAK_CORPUS"], "a", encoding="utf-8", errors="backslashreplace")
_corpus_lock = threading.Lock()


def add(label, text):
    with _corpus_lock:
        _corpus.write(f"--- {label}\n{text}\n")
        _corpus.flush()


class FormattedCapture(logging.Handler):
    """What a log file would show: the message and the traceback text (exc_text)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        add("log", self.format(record))


class RawCapture(logging.Handler):
    """Everything the record carries, and its exc_info formatted if it still has one."""

    def __init__(self):
        super().__init__(logging.DEBUG)

    def emit(self, record):
        text = repr(record.__dict__)
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        add("record", text)


import sgconnect  # installs the redaction
import shotgun_api3  # sets its own logger to WARNING at import: set DEBUG after

if os.environ.get("LEAK_NO_REDACTION") == "1":
    sgconnect.redaction.uninstall()
import sgtk

sgtk.LogManager().global_debug = True
for _name in ("", "sgtk"):  # tk-core's "sgtk" logger does not propagate to the root
    logging.getLogger(_name).addHandler(FormattedCapture())
    logging.getLogger(_name).addHandler(RawCapture())
for _name in ("", "sgtk", "tank", "shotgun_api3", "sgconnect", "urllib3"):
    logging.getLogger(_name).setLevel(logging.DEBUG)

from sgconnect.testing import LocalSite, approve_next_app_session, save_session

_sites = []


def local_site(mode="default", **options):
    """A LocalSite in this process; its secrets go to the parent at the end."""
    site = LocalSite(mode, **options).start()
    _sites.append(site)
    return site


def new_home():
    """A fresh tk-core cache (its site folders drop the port: sites would share one)."""
    home = os.path.join(os.environ["LEAK_WORK"], f"home{len(os.listdir(os.environ['LEAK_WORK']))}")
    os.makedirs(home, mode=0o700)
    os.environ["SHOTGUN_HOME"] = home
    sgconnect.reset()


def typed(*lines):
    """What a person types at tk-core's prompts (input() and getpass read sys.stdin)."""
    sys.stdin = io.StringIO("".join(line + "\n" for line in lines))


def approve_soon(site, login):
    """Approve the next app session request, as a person in a browser would."""
    approve_next_app_session(site, login, poll_secs=0.02, attempts=2000)


def _public(obj, depth):
    found = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception as exc:  # a property may refuse
            value = f"<{type(exc).__name__}>"
        if callable(value):
            continue
        if depth > 1 and not isinstance(
            value, (str, bytes, int, float, bool, type(None), list, tuple, dict, set)
        ):
            found[name] = {"repr": repr(value), "public": _public(value, depth - 1)}
        else:
            found[name] = repr(value)
    return found


def show(obj, label):
    """Record what a tool can see of an object handed out to it."""
    add(f"object {label}", f"repr={obj!r}\nstr={obj}\npublic={_public(obj, 2)!r}")


def show_exception(exc, label):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        add(
            f"exception {label}",
            f"{text}\nstr={exc}\nrepr={exc!r}\nargs={exc.args!r}\npublic={_public(exc, 2)!r}",
        )
        exc = exc.__cause__ or exc.__context__


def attempt(label, call, *args, **kwargs):
    """Run one step of the flow; record an exception instead of stopping."""
    try:
        value = call(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt included
        show_exception(exc, label)
        print(f"\nSTEP {label}: {type(exc).__name__}", flush=True)
        return exc
    print(f"\nSTEP {label}: ok", flush=True)
    return value


def finish():
    add("environment", json.dumps(dict(os.environ), sort_keys=True))
    secrets = set()
    for site in _sites:
        secrets |= site.secrets
    with open(os.environ["LEAK_SECRETS"], "w") as handle:
        json.dump(sorted(secrets), handle)
    for site in _sites:
        site.stop()
'''

# -- the flows ----------------------------------------------------------------------------------

PASSWORD = """
    site = local_site(app_session_launcher=False)
    typed("alice", site.password("alice"))
    sg = attempt("console login", sgconnect.connect, "leak", site=site.url, interactive=True)
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.current_user(site.url, with_name=True), "user")
    show(sgconnect.broker().credential(site.url), "credential")
    rest = attempt("rest", sgconnect.rest_session, "leak rest", site=site.url)
    show(rest, "rest session")
    attempt("rest get", rest.get, "/entity/projects")
    attempt("rest pages", lambda: list(rest.iter_pages("/entity/projects", {"page[size]": 1})))
    attempt("logout", sgconnect.logout, site.url)
"""

TWO_FACTOR = """
    site = local_site(app_session_launcher=False)
    typed("bob", site.password("bob"), site.two_factor_code("bob"))
    sg = attempt("console 2fa login", sgconnect.connect, "leak", site=site.url, interactive=True)
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.current_user(site.url), "user")
    # A wrong code: refused, with a typed error.
    sgconnect.reset()
    typed("bob", site.password("bob"), "000000")
    attempt("wrong code", sgconnect.login, site.url, method="password")
"""

BROWSER = """
    site = local_site("saml2", app_session_launcher=True)
    opened = os.path.join(os.environ["LEAK_WORK"], "opened.txt")
    os.environ["BROWSER"] = (
        f"{sys.executable} -c \\"import sys; open({opened!r}, 'w').write(sys.argv[1])\\" %s"
    )
    approve_soon(site, "carol")
    user = attempt("browser login", sgconnect.login, site.url, method="browser")
    show(user, "user")
    sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.broker().credential(site.url), "credential")
"""

HEADLESS = """
    site = local_site("oxygen", app_session_launcher=True)
    approve_soon(site, "alice")
    sg = attempt("url login", sgconnect.connect, "leak", site=site.url, interactive=True)
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.current_user(site.url), "user")
    rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url)
    attempt("rest get", rest.get, "/entity/projects")
    # Denied, then Ctrl-C: typed errors.
    sgconnect.reset()
    def deny():
        for _ in range(2000):
            pending = site.pending_app_session_requests()
            if pending:
                site.deny_app_session(pending[0])
                return
            time.sleep(0.02)
    threading.Thread(target=deny, daemon=True).start()
    attempt("denied url login", sgconnect.login, site.url, method="url")
    import signal
    def interrupt():
        for _ in range(2000):
            if site.pending_app_session_requests():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)
    threading.Thread(target=interrupt, daemon=True).start()
    attempt("ctrl-c url login", sgconnect.login, site.url, method="url")
"""

REST = """
    site = local_site(rest_token_lifetime=600)
    save_session(site, "alice")
    rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url, interactive=False)
    show(rest, "rest session")
    attempt("get", rest.get, "/entity/projects")
    attempt("post", rest.post, "/entity/projects", {"name": "Leak Test"})
    attempt("one", rest.get, "/entity/projects/71")
    attempt("missing", rest.get, "/entity/projects/9999")
    attempt("elsewhere", rest.get, "http://example.com/api/v1/entity/projects")
    site.expire_rest_tokens()  # refresh grant
    attempt("get after token expiry", rest.get, "/entity/projects")
    site.expire_rest_tokens()
    site.expire_sessions()
    save_session(site, "alice")  # renewed by another process: adopted
    attempt("get after session expiry", rest.get, "/entity/projects")
    site.expire_rest_tokens()
    site.expire_sessions()  # the refresh token still serves
    attempt("get, session gone", rest.get, "/entity/projects")
    sgconnect.reset()  # a new session object: it must mint from the (expired) session
    fresh = attempt("rest again", sgconnect.rest_session, "leak", site=site.url, interactive=False)
    attempt("get, nothing to adopt", fresh.get, "/entity/projects")
    show(sgconnect.broker().credential(site.url), "credential")
"""

SERVICE = """
    site = local_site()
    os.environ.update(
        SGCONNECT_SERVICE_SCRIPT_NAME="sgconnect_farm",
        SGCONNECT_SCRIPT_KEY=site.script_key("sgconnect_farm"),
        SGCONNECT_SUDO_AS_LOGIN="alice",
        SGCONNECT_NON_INTERACTIVE="1",
        SGCONNECT_SITE=site.url,
    )
    sgconnect.reset()
    sg = attempt("service connect", sgconnect.connect, "render")
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.current_user(), "user")
    show(sgconnect.broker().credential(site.url), "credential")
    rest = attempt("service rest", sgconnect.rest_session, "render")
    show(rest, "rest session")
    attempt("rest get", rest.get, "/entity/projects")
    from sgconnect import farm
    show(attempt("job environment", farm.job_environment, "render"), "job environment")
    import subprocess
    grandchild = subprocess.run(
        [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
        capture_output=True, text=True)
    add("grandchild environment", grandchild.stdout)
    # A wrong key: a typed error.
    os.environ["SGCONNECT_SCRIPT_KEY"] = "not-the-key-" + site.script_key("sgconnect_farm")[::-1]
    sgconnect.service.forget_environment_keys()
    sgconnect.reset()
    attempt("wrong key", lambda: sgconnect.connect("render").find("Project", []))
"""

HANDED_DOWN = """
    site = local_site()
    from tank.authentication import DefaultsManager, ShotgunAuthenticator, serialize_user
    token = site.issue_session("bob")
    user = ShotgunAuthenticator(DefaultsManager(fixed_host=site.url)).create_session_user(
        "bob", session_token=token)
    payload = serialize_user(user, use_json=True)
    os.environ["SHOTGUN_DESKTOP_CURRENT_USER"] = payload
    os.environ["TANK_CONTEXT"] = json.dumps({"project": None, "_current_user": payload})
    del user, payload
    sg = attempt("handed down", sgconnect.connect, "launched", site=site.url, interactive=False)
    show(sg, "connection")
    attempt("find", sg.find, "Project", [], ["name"])
    show(sgconnect.current_user(site.url), "user")
    import subprocess
    grandchild = subprocess.run(
        [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
        capture_output=True, text=True)
    add("grandchild environment", grandchild.stdout)
"""

RENEWAL = """
    site = local_site(app_session_launcher=False)
    save_session(site, "alice")
    sg = attempt("saved session", sgconnect.connect, "leak", site=site.url, interactive=True)
    attempt("find", sg.find_one, "Project", [])
    # Console renewal, three threads, one password.
    site.expire_sessions()
    typed(site.password("alice"))
    def worker():
        attempt("thread find", sgconnect.connect("worker", site=site.url, interactive=True).find,
                "Project", [], ["name"])
    workers = [threading.Thread(target=worker) for _ in range(3)]
    for w in workers: w.start()
    for w in workers: w.join()
    show(sgconnect.broker().credential(site.url), "credential")
    # Renewed by another process: adopted, no prompt.
    site.expire_sessions()
    save_session(site, "alice")
    attempt("adopted", sg.find, "Project", [], ["name"])
    # Non-interactive with nothing to adopt: LoginRequiredError.
    site.expire_sessions()
    lone = attempt("no prompt", sgconnect.connect, "farm", site=site.url, interactive=False)
    attempt("non-interactive expiry", lone.find, "Project", [])
    # Cancelled renewal: an empty password.
    typed("")
    attempt("cancelled renewal", sg.find, "Project", [])
    # SSO claims expire (the SAML 302): renewed from the cache.
    sso = local_site("saml2", app_session_launcher=True)
    save_session(sso, "carol", url=sso.url.replace("127.0.0.1", "localhost"))
    sso_url = sso.url.replace("127.0.0.1", "localhost")
    sso_sg = attempt("sso", sgconnect.connect, "leak", site=sso_url, interactive=False)
    attempt("sso find", sso_sg.find, "Project", [])
    sso.expire_claims()
    save_session(sso, "carol", url=sso_url)
    attempt("sso adopted", sso_sg.find, "Project", [])
"""

TRANSPORT_FAULTS = """
    os.environ["SGCONNECT_TIMEOUT_SECS"] = "1"
    sgconnect.reset()
    site = local_site()
    save_session(site, "alice")
    sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
    rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url, interactive=False)
    attempt("find", sg.find, "Project", [])
    attempt("rest get", rest.get, "/entity/projects")
    for kind, count in [("http_500", 1), ("http_502", 1), ("http_502", 3), ("http_503", 1),
                        ("html", 1), ("slow", 1), ("close", 2)]:
        site.inject_fault(kind, count, delay=2)
        attempt(f"api3 {kind} x{count}", sg.find, "Project", [], ["name"])
        site.clear_faults()
        site.inject_fault(kind, count, path_prefix="/api/v1/entity", delay=2)
        attempt(f"rest {kind} x{count}", rest.get, "/entity/projects")
        site.clear_faults()
    site.stop()
    attempt("site down", sg.find, "Project", [])
    attempt("rest site down", rest.get, "/entity/projects")
    down = local_site(app_session_launcher=False)
    password = down.password("alice")
    down.stop()
    new_home()
    typed("alice", password)
    attempt("console login, site down", sgconnect.connect, "x", site=down.url, interactive=True)
"""

SESSION_FAULTS = """
    site = local_site(app_session_launcher=False)
    save_session(site, "alice")
    sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
    for index in range(20):  # expiry in the middle of the work
        if index == 10:
            site.expire_sessions()
            save_session(site, "alice")
        attempt(f"find {index}", sg.find, "Project", [])
    # A cancelled console login (an empty password), then the next call logs in.
    other = local_site(app_session_launcher=False)
    new_home()
    typed("alice", "", "alice", other.password("alice"))
    attempt("cancelled login", sgconnect.connect, "x", site=other.url, interactive=True)
    again = attempt("login again", sgconnect.connect, "x", site=other.url, interactive=True)
    attempt("find", again.find, "Project", [])
    # A wrong password.
    sgconnect.reset()
    typed("alice", "wrong-" + other.password("alice"))
    attempt("wrong password", sgconnect.login, other.url, method="password")
    # Corrupt caches holding real tokens, which tk-core logs line by line at DEBUG.
    from sgconnect import session_cache
    third = local_site(app_session_launcher=False)
    new_home()
    path = session_cache.site_cache_file(third.url)
    os.makedirs(os.path.dirname(path), mode=0o700)
    for broken in (
        "current_user: alice\\nusers:\\n- login: alice\\n  session_token: '{t}\\n  se",
        "users:\\n- {{login: alice, session_token: {t}\\n",
        # Two writers interleaved: a token fragment starts a line. tk-core logs the lines.
        "current_user: alice\\n{t}\\nusers: [\\n",
    ):
        with open(path, "w") as handle:
            handle.write(broken.format(t=third.issue_session("alice")))
        sgconnect.reset()
        attempt("corrupt cache", sgconnect.connect, "x", site=third.url, interactive=False)
    typed("alice", third.password("alice"))
    fresh = attempt("login over a corrupt cache", sgconnect.connect, "x", site=third.url,
                    interactive=True)
    attempt("find", fresh.find, "Project", [])
    attempt("bad site", sgconnect.connect, "x", site="http://alice:" + third.password("alice")
            + "@" + third.url.split("://")[1])
    # (A purpose is a label, logged in every audit line: not a place for secrets.)
    attempt("bad purpose", sgconnect.connect, "x\\nforged audit line", site=third.url)
"""

FLOWS = {
    "password": PASSWORD,
    "two_factor": TWO_FACTOR,
    "browser_app_session_launcher": BROWSER,
    "headless_url": HEADLESS,
    "rest": REST,
    "service_mode": SERVICE,
    "handed_down": HANDED_DOWN,
    "renewal": RENEWAL,
    "transport_faults": TRANSPORT_FAULTS,
    "session_faults": SESSION_FAULTS,
}


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


def run_harness(code: str, env: dict, work: Path, what: str) -> tuple:
    """Run ``code`` in a child (in ``work``, stdin closed); return (child, stdout, stderr).

    The test fails, naming ``what``, if the child hangs; the child is killed whatever happens.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", code],
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
    code = HARNESS + textwrap.dedent(FLOWS[name]) + "\nfinish()\n"
    if name == "headless_url":
        extra = {"SGCONNECT_LOGIN_METHOD": "url"}
    else:
        extra = {}
    if not redaction:
        extra["LEAK_NO_REDACTION"] = "1"
    child, out, err = run_harness(code, child_env(work, **extra), work, f"the {name} flow")
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
        "wrong key: AuthenticationFault",
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
        # shotgun_api3 retries a 502 after 0.75 s and 1.5 s: the 1 s deadline bounds the retries.
        "api3 http_502 x3: SiteTimeoutError",
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

WEB_WRAPPER = """
    import runpy
    from sgconnect import redaction as _redaction
    driver_main = runpy.run_path(os.environ["LEAK_DRIVER"], run_name="weblogin_driver")["main"]
    driver_globals = driver_main.__globals__
    driver_finish = driver_globals["finish"]
    site_url = os.environ["WEBLOGIN_SITE_URL"]
    del os.environ["WEBLOGIN_PASSWORD"]  # what the person types: the driver has read it

    def finish_with_corpus(code):
        try:
            sg = attempt("same connection", sgconnect.connect, "qt web login", site=site_url)
            show(sg, "connection")
            attempt("find", sg.find, "Project", [], ["name"])
            show(sgconnect.current_user(site_url), "user")
            show(sgconnect.broker().credential(site_url), "credential")
            rest = attempt("rest", sgconnect.rest_session, "leak", site=site_url)
            show(rest, "rest session")
            attempt("rest get", rest.get, "/entity/projects")
            add("driver result", json.dumps(driver_globals["result"], default=str))
            finish()
        finally:
            driver_finish(code)

    driver_globals["finish"] = finish_with_corpus
    try:
        driver_main()
    except BaseException as exc:
        show_exception(exc, "driver")
        finish_with_corpus(4)
"""


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
    code = HARNESS + textwrap.dedent(WEB_WRAPPER)
    child, out, err = run_harness(code, env, work, "the web login flow")
    result = json.loads((work / "result.json").read_text())
    assert child.returncode == 0 and result["ok"], f"{result}\n{err[-3000:]}"
    assert (result["login"], result["source"], result["auth_method"]) == ("alice", "fresh", "sso")
    for step in ("same connection: ok", "find: ok", "rest get: ok"):
        assert f"STEP {step}" in out, out
    corpus = out + "\n" + err + "\n" + (work / "corpus.txt").read_text(errors="replace")
    assert "[redacted]" in corpus
    assert_no_leak(corpus, site.secrets)
