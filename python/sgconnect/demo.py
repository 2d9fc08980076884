"""``sgconnect demo``: the whole story, on this machine, against an embedded local site.

1. A local ShotGrid site starts in SSO mode (``saml2``) with the app session launcher on, in a
   temporary, empty ``SHOTGUN_HOME``.
2. A new user logs in through the headless browser login (``sgconnect.login(url, method="url")``).
   A simulated person approves it in a "browser": an HTTP client with cookies that opens the
   printed URL, signs in at the identity provider and clicks Approve on the site's page.
3. A tool gets a connection through the hook and lists the projects; a REST session lists them too.
4. The site expires every session. The person renews from another terminal (a new
   ``sgconnect login --method url`` process, approved in the browser: single sign-on, no password
   this time). The tool's next call on its *same* connection is rejected, and sgconnect adopts
   the session that process saved in tk-core's cache and retries: no prompt, no new connection.
5. ``sgconnect whoami`` runs in a new process, from the saved session.
6. The hook's audit lines are printed, and everything printed and logged (at DEBUG, tk-core
   included) is searched for every secret the site issued.

``demo --interactive`` lets a person log in through tk-core's Qt dialog instead (needs a display).
"""

from __future__ import annotations

import html
import http.cookiejar
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, TextIO

from .environ import scoped_environ
from .errors import SgConnectError
from .testing.helpers import PROXY_VARIABLES

_APPROVAL_URL = re.compile(r"https?://[^\s]+/app_session_request/[0-9A-Za-z_-]+")
_RETURN_TO = re.compile(r"name='return_to' value='([^']*)'")
#: Seconds the simulated person takes to notice the URL and open it.
PERSON_DELAY = 1.0
_ISOLATED_VARIABLES = (
    *PROXY_VARIABLES,
    "SGCONNECT_SITE", "SGCONNECT_HOOK", "SGCONNECT_NON_INTERACTIVE", "SGCONNECT_LOGIN_METHOD",
    "TANK_CONTEXT", "SHOTGUN_DESKTOP_CURRENT_USER", "SGTK_DEFAULT_AUTH_METHOD",
    "SGTK_FORCE_STANDARD_LOGIN_DIALOG",
)  # fmt: skip


# -- capturing what the demo prints and logs ------------------------------------------------------


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps a copy; tells watchers about each write."""

    def __init__(self, stream: TextIO, record: List[str], watchers: List[Callable[[str], None]]):
        self._stream = stream
        self._record = record
        self._watchers = watchers

    def write(self, text: str) -> int:
        self._record.append(text)
        self._stream.write(text)
        self._stream.flush()
        for watch in list(self._watchers):
            watch(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


class _Capture(logging.Handler):
    """Keeps every log record's final text (after sgconnect's redaction)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: List[str] = []
        self.audit: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.lines.append(text)
        if record.name.startswith("sgconnect") and record.getMessage().startswith("hand-out"):
            self.audit.append(record.getMessage())


@contextmanager
def _captured_logs() -> Iterator[_Capture]:
    capture = _Capture()
    saved = []
    for name in ("", "sgtk"):  # tk-core's loggers do not propagate to the root logger
        target = logging.getLogger(name)
        saved.append((target, target.level))
        target.addHandler(capture)
        target.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for target, level in saved:
            target.removeHandler(capture)
            target.setLevel(level)


def _isolated_environment(home: str):
    """No proxy, no handed-down user, the demo's own session cache; the local site speaks http."""
    return scoped_environ(
        {
            **dict.fromkeys(_ISOLATED_VARIABLES),
            "SHOTGUN_HOME": home,
            "SGTK_AUTH_ALLOW_NO_HTTPS": "1",
        }
    )


# -- the person with a browser --------------------------------------------------------------------


class _RedirectLog(urllib.request.HTTPRedirectHandler):
    """Follows redirects as a browser does, and notes every place it was sent to."""

    def __init__(self) -> None:
        self.hops: List[str] = []

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Optional[urllib.request.Request]:
        self.hops.append(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Browser:
    """A person's web browser, as far as the site can tell: cookies, redirects, forms.

    It opens an approval URL; with no site session, the site sends it (302) to
    ``<site>/user/login?return_path=/app_session_request/<id>``, which goes through the site's
    identity provider: the person signs in there with the password they know (or not at all
    when the identity provider still has a session: single sign-on) and lands back on the
    approval page, as on a real site. Then it clicks Approve.
    """

    def __init__(self, login: str, password: str, say: Callable[[str], None]):
        self.login = login
        self._password = password
        self._say = say
        self._cookies = http.cookiejar.CookieJar()
        self._seen: set = set()
        self._lock = threading.Lock()
        self.approved = threading.Event()
        self.error: Optional[str] = None

    def watch(self, text: str) -> None:
        """Called with everything printed: a new approval URL is opened, once, after a pause."""
        for url in _APPROVAL_URL.findall(text):
            with self._lock:
                if url in self._seen:
                    continue
                self._seen.add(url)
            threading.Thread(target=self._approve_later, args=(url,), daemon=True).start()

    def _approve_later(self, url: str) -> None:
        time.sleep(PERSON_DELAY)
        try:
            self.approve(url)
        except Exception as exc:  # reported by the demo
            self.error = f"{exc.__class__.__name__}: {exc}"
            self._say(f"      [browser] could not approve: {self.error}")
        else:
            self.approved.set()

    def _open(self, url: str, form: Optional[dict] = None) -> tuple[int, str, str, List[str]]:
        """GET (or POST ``form`` to) ``url``, following redirects; returns ``(status, final
        URL, page, every URL redirected to)``."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        redirects = _RedirectLog()
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self._cookies),
            redirects,
        )
        try:
            with opener.open(url, data=data, timeout=10) as reply:
                page = reply.read().decode("utf-8", "replace")
                return reply.status, reply.geturl(), page, redirects.hops
        except urllib.error.HTTPError as reply:
            page = reply.read().decode("utf-8", "replace")
            return reply.code, reply.geturl(), page, redirects.hops

    def approve(self, url: str) -> None:
        """Open the approval page, sign in if the site sends the person to, click Approve."""
        site = url.split("/app_session_request/")[0]
        status, where, page, hops = self._open(url)
        if any(hop.startswith(f"{site}/user/login") for hop in hops):
            if where.startswith(f"{site}/app_session_request/"):
                self._say(
                    f"      [browser] the site asked {self.login} to sign in: the identity "
                    "provider still knew them (single sign-on, no password asked)"
                )
            else:
                status, page = self._sign_in(site, status, where, page)
        if status != 200 or "id='approve'" not in page:
            raise SgConnectError(f"the approval page answered HTTP {status}")
        status, _, page, _ = self._open(url, {"decision": "approve"})
        if status != 200 or "approved" not in page:
            raise SgConnectError(f"approving answered HTTP {status}")
        self._say(f"      [browser] {self.login} clicked Approve on {url.split('?')[0]}")

    def _sign_in(self, site: str, status: int, where: str, page: str) -> tuple[int, str]:
        """Fill in the identity provider's sign-in form (the page at ``where``); returns the
        ``(status, page)`` the person lands on back on the site: the approval page."""
        match = _RETURN_TO.search(page)
        if match is None:
            raise SgConnectError(f"no sign-in form at the identity provider (HTTP {status})")
        idp = urllib.parse.urlsplit(where)
        status, where, page, _ = self._open(
            f"{idp.scheme}://{idp.netloc}/login",
            {
                "return_to": html.unescape(match.group(1)),
                "login": self.login,
                "password": self._password,
                "code": "",
            },
        )
        if not where.startswith(f"{site}/app_session_request/"):
            raise SgConnectError(f"signing in at the identity provider failed (HTTP {status})")
        self._say(
            f"      [browser] {self.login} signed in at the identity provider with their password"
        )
        return status, page


# -- the demo ---------------------------------------------------------------------------------


class _Demo:
    def __init__(self, out: TextIO):
        self.out = out
        self.started = time.monotonic()
        self.step = 0
        self.total = 6

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def next(self, text: str) -> None:
        self.step += 1
        self.say(f"\n[{self.step}/{self.total}] {text}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _check_requirements() -> None:
    import importlib.util

    if importlib.util.find_spec("werkzeug") is None:
        raise SgConnectError("The demo's local site needs Werkzeug: pip install Werkzeug.")
    from . import tk

    tk.tank()  # raises with the install hint when tk-core is missing


def _run_cli(
    args: List[str], out: TextIO, watch: Optional[Callable[[str], None]] = None
) -> tuple[int, str]:
    """Run ``python -m sgconnect ARGS`` in a new process; stream its output, indented."""
    package = __package__ or "sgconnect"
    process = subprocess.Popen(
        [sys.executable, "-m", package, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        out.write("      | " + line)
        out.flush()
        if watch is not None:
            watch(line)
    return process.wait(), "".join(lines)


def _project_names(records: List[dict]) -> str:
    return ", ".join(sorted(record["name"] for record in records))


def run(interactive: bool = False, out: Optional[TextIO] = None) -> int:
    """Run the demo; return the exit code (0: every step worked and no secret was printed)."""
    from .interactive import has_display

    if interactive and not has_display():
        sys.stderr.write(
            "sgconnect: demo --interactive needs a display for tk-core's login dialog, and "
            "there is none here (DISPLAY/WAYLAND_DISPLAY unset). Run `sgconnect demo` for the "
            "headless demo.\n"
        )
        return 2
    _check_requirements()
    home = tempfile.mkdtemp(prefix="sgconnect-demo-")
    os.chmod(home, 0o700)
    printed: List[str] = []
    watchers: List[Callable[[str], None]] = []
    real_out = out or sys.stdout
    stdout = _Tee(real_out, printed, watchers)
    stderr = _Tee(real_out, printed, watchers)  # one story: the login's URL goes with it
    saved_streams = sys.stdout, sys.stderr
    try:
        with _isolated_environment(home), _captured_logs() as logs:
            sys.stdout, sys.stderr = stdout, stderr
            try:
                return _story(_Demo(stdout), home, interactive, logs, printed, watchers)
            finally:
                sys.stdout, sys.stderr = saved_streams
    finally:
        from . import reset

        reset()
        shutil.rmtree(home, ignore_errors=True)


def _story(
    demo: _Demo,
    home: str,
    interactive: bool,
    logs: _Capture,
    printed: List[str],
    watchers: List[Callable[[str], None]],
) -> int:
    from . import connect, current_user, login, reset, rest_session, session_cache
    from .testing import LocalSite

    reset()
    say = demo.say
    say("sgconnect demo: log in once, connect everywhere, never print a secret.")
    with LocalSite("saml2", app_session_launcher=True) as site:
        # 1 ------------------------------------------------------------------------------------
        demo.next(
            f"A local ShotGrid site runs at {site.url} (SSO: saml2, app session launcher on); "
            f"SHOTGUN_HOME is an empty temporary folder ({home})."
        )
        say(
            f"      Users: {', '.join(user.login for user in site.users)}; projects: "
            f"{', '.join(site.projects)}."
        )

        # 2 ------------------------------------------------------------------------------------
        browser = _Browser("alice", site.password("alice"), say)
        if interactive:
            demo.next(
                "Log in yourself through tk-core's Qt dialog: sign in as alice with the password "
                "shown below (it is random for this run)."
            )
            # Shown for the person to type, on the real terminal: not part of the secret check.
            sys.__stdout__.write(f"      alice's password: {site.password('alice')}\n")
            app = _qt_application()  # noqa: F841 - kept alive for tk-core's dialogs
            info = login(site.url, method="web")
        else:
            demo.next(
                "alice has no session here and this machine has no browser: she logs in with "
                "the headless browser login, `sgconnect login --method url`."
            )
            watchers.append(browser.watch)
            info = login(site.url, method="url")
        saved = session_cache.read_saved_session(site.url)
        say(
            f"      {info.login} is logged in; the session is saved in "
            f"{saved.path if saved else 'tk-core cache'} for SG Desktop, tk-core and the next "
            "process."
        )

        # 3 ------------------------------------------------------------------------------------
        sg = connect("demo: project report", site.url)
        projects = sg.find("Project", [], ["name"])
        rest = rest_session("demo: project report", site.url)
        rest_projects = [item["attributes"] for item in rest.iter_pages("/entity/projects")]
        demo.next(
            f"A tool calls sgconnect.connect('demo: project report'): the hook hands it a "
            f"connection as {current_user(site.url).login}, and find('Project') lists "
            f"{len(projects)} projects: {_project_names(projects)}."
        )
        say(
            f"      Its REST session (sgconnect.rest_session) lists them too: "
            f"{_project_names(rest_projects)}."
        )

        # 4 ------------------------------------------------------------------------------------
        site.expire_sessions()
        site.expire_rest_tokens()
        if interactive:
            demo.next(
                "The site expires every session and REST token. The tool's next call is "
                "rejected, and tk-core's Qt dialog asks alice to sign in again: do so."
            )
            code = 0
        else:
            demo.next(
                "The site expires every session and REST token. alice renews from another "
                "terminal (a new `sgconnect login --method url` process), and the tool's next "
                "call picks it up:"
            )
            say(
                "      on a rejected call sgconnect first re-reads tk-core's session cache, so a "
                "session renewed by any process (this login, SG Desktop) is adopted, no prompt."
            )
            code, _ = _run_cli(
                ["login", "--site", site.url, "--method", "url"], demo.out, browser.watch
            )
        if code != 0:
            say(f"      The renewal login failed (exit {code}).")
            return 1
        before = len(site.journal)
        projects = sg.find("Project", [], ["name"])
        rejected = [
            entry
            for entry in site.journal[before:]
            if entry.error_code == 102 or entry.status == 302
        ]
        how = (
            "tk-core's dialog renewed it, and sgconnect retried"
            if interactive
            else "then sgconnect found the session renewed in tk-core's cache, adopted it and "
            "retried"
        )
        say(
            f"      The same connection's next find(): rejected by the site "
            f"({len(rejected)}x expired), {how}: {len(projects)} projects"
            + ("." if interactive else ", no prompt.")
        )
        rest_projects = [item["attributes"] for item in rest.iter_pages("/entity/projects")]
        say(
            f"      The REST session's Bearer token had expired too: it got a new one and listed "
            f"{len(rest_projects)} projects ({site.mint_count} REST tokens minted in all)."
        )

        # 5 ------------------------------------------------------------------------------------
        demo.next("`sgconnect whoami` in a new process reads the saved session:")
        code, whoami_text = _run_cli(["whoami", "--site", site.url], demo.out)
        if code != 0:
            say(f"      whoami failed (exit {code}).")
            return 1

        # 6 ------------------------------------------------------------------------------------
        demo.next(f"The hook's audit lines ({len(logs.audit)} hand-outs, logged at INFO):")
        for line in logs.audit:
            say(f"      {line}")
        secrets = site.secrets
        printed_lines = "".join(printed).count("\n")
        leaks = [
            where
            for where, text in (
                ("printed output", "".join(printed)),
                ("logs", "\n".join(logs.lines)),
            )
            for secret in secrets
            if secret in text
        ]
        if leaks:
            say(
                f"      LEAK: {len(leaks)} secret(s) of the site appeared in the "
                f"{', '.join(sorted(set(leaks)))}. This is a bug: please report it."
            )
            return 1
        say(
            f"      No secret printed or logged: checked {len(secrets)} secrets (passwords, "
            f"session and REST tokens, tickets, cookies) against {printed_lines} "
            f"lines of output and {len(logs.lines)} log records at DEBUG, tk-core's included."
        )
    say(f"\nDemo finished in {demo.elapsed():.1f} s. Next: `sgconnect doctor --site <your site>`.")
    return 0


def _qt_application() -> Any:
    """A QApplication, so that tk-core shows its dialog (imported only for --interactive)."""
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        try:
            from PySide2.QtWidgets import QApplication
        except ImportError:
            raise SgConnectError(
                "demo --interactive needs PySide6 or PySide2 with QtWebEngine."
            ) from None
    return QApplication.instance() or QApplication([])


__all__ = ["run"]
