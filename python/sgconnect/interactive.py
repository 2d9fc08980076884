"""tk-core's interactive authentication, and the headless browser login.

Every method here ends in tk-core: its Qt login dialog (password, 2FA, SSO / Autodesk Identity web
login, browser login), its console prompts, or its app session launcher. What sgconnect adds:

- ``url``: the headless browser login. tk-core's app session launcher is started with a callback
  that *prints* the approval URL instead of opening a browser, so a person can approve from any
  browser (a laptop, a phone) while an SSH session, a container or a farm node waits, with a
  progress line.
- the choice of a method that can work in this environment (``auto``);
- the session is saved in tk-core's cache and made the current one, where SG Desktop and the next
  process find it, only once the login succeeded: a cancelled login leaves nothing behind;
- the transport's rules on tk-core's requests (:mod:`sgconnect.transport.proxies`): tk-core gets
  the one proxy rule's answer (its ``DefaultsManager.get_http_proxy``, which by itself reads
  ``http_proxy`` and ignores ``NO_PROXY``; the app session launcher's ``http_proxy``), a missing
  ``SHOTGUN_API_CACERTS`` bundle is named before any request, and the headless login is watched
  from this thread: tk-core runs the app session launcher in a worker thread, and sgconnect gives
  up with :class:`~sgconnect.errors.SiteUnreachableError` when its request or a poll gets no
  answer within ``timeout_secs`` (tk-core's requests have no deadline of their own), with
  :class:`~sgconnect.errors.LoginFailedError` when the approval wait passes its limit, and prints
  progress on its own clock, so the elapsed time grows even while a poll hangs. A console login or
  renewal bounds each socket operation of tk-core's requests by ``timeout_secs`` (the default
  socket timeout, for the prompt's duration).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
from contextlib import contextmanager, nullcontext
from http import client as http_client
from pathlib import PurePath
from typing import Any, Callable, Iterator, Optional, TextIO

from . import session_cache, tk
from .cache_lock import cache_lock
from .environ import scoped_environ
from .errors import (
    LoginCancelledError,
    LoginFailedError,
    ProxyError,
    SessionSaveError,
    SgConnectError,
    SiteResponseError,
    SiteUnreachableError,
    UntrustedSessionCacheError,
)
from .transport import api3, exception_chain, network_failure, redirected, unreachable
from .transport.proxies import Proxy, check_ca_bundle, parse_http_proxy, proxy_for

logger = logging.getLogger("sgconnect.interactive")

METHODS = ("auto", "qt", "browser", "web", "password", "url")

#: How long the headless login waits for an approval by default (tk-core's app session launcher
#: stops polling after its own 180 s, so a longer limit ends there).
APPROVAL_TIMEOUT_SECS = 180
#: The environment variable that changes the approval limit (seconds).
APPROVAL_TIMEOUT_VARIABLE = "SGCONNECT_APPROVAL_TIMEOUT_SECS"
#: tk-core's pause between two polls of the app session launcher (seconds).
POLL_INTERVAL_SECS = 2.0
#: How often the headless login's progress line is written (seconds).
PROGRESS_EVERY_SECS = 2.0


def approval_timeout_secs() -> float:
    """The approval limit: ``SGCONNECT_APPROVAL_TIMEOUT_SECS``, else 180 s.

    :raises ConfigurationError: Not a number above 0 and at most 3600.
    """
    from .settings import number_from_environment

    return number_from_environment(APPROVAL_TIMEOUT_VARIABLE, APPROVAL_TIMEOUT_SECS, maximum=3600)


def _proxy_setting(http_proxy: Optional[str]) -> str:
    if http_proxy is not None:
        return http_proxy
    from .settings import Settings

    return Settings.from_environment().http_proxy


def login_proxy(site: Optional[str], http_proxy: Optional[str] = None) -> Optional[Proxy]:
    """The proxy of a login or renewal request to ``site``: the one rule
    (:func:`sgconnect.transport.proxies.proxy_for`) with ``http_proxy``, else the standalone
    ``http_proxy`` setting (``SGCONNECT_HTTP_PROXY``). ``None`` without a site.

    :raises ConfigurationError: The setting or variable is not a proxy address."""
    if not site:
        return None
    return proxy_for(site, _proxy_setting(http_proxy))  # ConfigurationError: named, masked


def defaults_manager(site: Optional[str], http_proxy: Optional[str] = None) -> Any:
    """tk-core's ``DefaultsManager`` for ``site``, answering the one proxy rule's proxy.

    tk-core's own ``get_http_proxy`` reads ``http_proxy`` and ignores ``NO_PROXY``; this one
    answers :func:`login_proxy` (``None``: directly), so tk-core's console login and renewal go
    where REST and the api3 connection go.
    """
    authentication = tk.authentication()
    proxy = login_proxy(site, http_proxy)
    setting = _proxy_setting(http_proxy) if not site else ""

    class RuleDefaultsManager(authentication.DefaultsManager):
        def get_http_proxy(self) -> Optional[str]:
            if not site and not setting:
                # the person types the site: no host to match NO_PROXY against yet
                return super().get_http_proxy()
            if not site:
                return parse_http_proxy(setting).api3()  # the setting wins for any site
            return proxy.api3() if proxy is not None else None

    return RuleDefaultsManager(fixed_host=site)


def _timeout_secs(timeout_secs: Optional[float]) -> Optional[float]:
    if timeout_secs is not None:
        return timeout_secs or None
    from .settings import Settings

    return Settings.from_environment().timeout_secs or None


@contextmanager
def socket_deadline(timeout_secs: Optional[float]) -> Iterator[None]:
    """For a console prompt's duration, sockets opened without a timeout of their own (tk-core's
    shotgun_api3 requests) wait at most ``timeout_secs`` per operation."""
    if not timeout_secs:
        yield
        return
    saved = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_secs)
    try:
        yield
    finally:
        socket.setdefaulttimeout(saved)


def has_display() -> bool:
    """True when a graphical session is reachable (always on Windows and macOS)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def has_local_browser() -> bool:
    """True when ``webbrowser`` would open something a person can see."""
    if not has_display():
        # Text browsers (lynx, w3m) cannot run an SSO login.
        return False
    import webbrowser  # only when a login is about to run

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def qt_application(method: str) -> Any:
    """The QApplication tk-core's login dialog needs, for a login by ``method`` from a command line.

    A command-line process has no QApplication, and without one tk-core falls back to its console
    prompts: ``qt`` and ``web`` would never show the dialog. This creates it, through tk-core's Qt
    importer (``tank.authentication.ui.qt_abstraction``, the binding tk-core's dialog uses), and
    returns it; keep the reference while the login runs. Returns the existing one if there is
    one, and ``None`` when ``method`` shows no dialog (``url``, ``browser``, ``password``) or is
    ``auto`` where no display or no Qt binding is available (``auto`` then picks another method).

    :raises SgConnectError: ``qt`` or ``web`` where no display or no Qt binding is available.
    """
    if method not in ("auto", "qt", "web"):
        return None
    wanted = method != "auto"
    # auto needs a display a person sees; qt and web also run on a platform set by hand
    # (QT_QPA_PLATFORM, e.g. offscreen for tests).
    if not has_display() and not (wanted and os.environ.get("QT_QPA_PLATFORM")):
        if wanted:
            raise SgConnectError(
                f"The {method} login shows a window and this session has no display: log in "
                "with --method url (a URL to approve from any browser) instead."
            )
        return None
    try:
        tk.tank()
        from tank.authentication.ui import qt_abstraction  # noqa: PLC0415 - tk-core's importer
    except Exception:  # noqa: BLE001 - no tk-core or no Qt binding: the same answer
        qt_abstraction = None
    QtCore = getattr(qt_abstraction, "QtCore", None)
    QtGui = getattr(qt_abstraction, "QtGui", None)
    if QtGui is None or QtCore is None:
        if wanted:
            raise SgConnectError(
                f"The {method} login needs a Qt binding that tk-core can use (PySide6, or "
                "PySide2 on Python 3.10 and older): install one, or log in with --method url."
            )
        return None
    if method == "web" and getattr(qt_abstraction, "QtWebEngineWidgets", None) is None:
        raise SgConnectError(
            "The web login needs QtWebEngine, which tk-core could not import here: install "
            "it with the Qt binding, or log in with --method url."
        )
    existing = QtGui.QApplication.instance()
    if existing is not None:
        return existing
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" and "PySide2" in sys.modules:
        # Qt 5's web view needs OpenGL, which the offscreen platform lacks: use Qt Quick's
        # software renderer (read when the first Quick window is made).
        os.environ.setdefault("QT_QUICK_BACKEND", "software")
    QtCore.QCoreApplication.setAttribute(QtCore.Qt.AA_ShareOpenGLContexts)
    return QtGui.QApplication(["sgconnect"])


def pick_method(method: str) -> str:
    """Resolve ``auto`` to the method that can work here."""
    if method not in METHODS:
        raise SgConnectError(f"Unknown login method {method!r}: use one of {', '.join(METHODS)}.")
    if method != "auto":
        return method
    if tk.qapplication_exists():
        return "qt"
    if not has_local_browser():
        return "url"
    return "password"


def login(
    site: Optional[str],
    method: str = "auto",
    *,
    login_hint: Optional[str] = None,
    out: Optional[TextIO] = None,
    http_proxy: Optional[str] = None,
    timeout_secs: Optional[float] = None,
) -> Any:
    """Log in interactively and return tk-core's ``ShotgunUser``, saved in tk-core's cache.

    :param site: The site; ``None`` lets the person type it (Qt dialog and console only).
    :param method: One of :data:`METHODS`.
    :param login_hint: A login to pre-fill.
    :param out: Where the headless login prints its URL and progress (default: stderr).
    :param http_proxy: The hook's ``http_proxy`` setting (``None``: ``SGCONNECT_HTTP_PROXY``);
        the one proxy rule applies (:func:`login_proxy`).
    :param timeout_secs: Each request's deadline (``None``: ``SGCONNECT_TIMEOUT_SECS``, 60 s).
    :raises LoginCancelledError: The person cancelled (Ctrl-C, or the dialog closed).
    :raises LoginFailedError: The site refused the login, or the approval was denied or did not
        come within :func:`approval_timeout_secs`.
    :raises SiteUnreachableError: A request got no answer within ``timeout_secs``
        (:class:`~sgconnect.errors.ProxyError` when the proxy is the cause).
    :raises CaBundleError: ``SHOTGUN_API_CACERTS`` names no readable file.
    :raises UntrustedSessionCacheError: The new session would be saved where sgconnect does not
        trust (:func:`refuse_untrusted_cache`); nothing was sent.
    """
    chosen = pick_method(method)
    if chosen in ("browser", "url") and site is None:
        raise SgConnectError(f"The {chosen} login needs a site: pass --site URL.")
    refuse_untrusted_cache(site)
    if site:
        check_ca_bundle(site)
    timeout = _timeout_secs(timeout_secs)
    # tk-core writes its cache without a lock: one sgconnect login or renewal at a time per site.
    try:
        with cache_lock(site) if site else nullcontext():
            if chosen in ("browser", "url"):
                opener = (
                    _open_local_browser if chosen == "browser" else _print_url(out or sys.stderr)
                )
                user = _app_session_login(
                    site, opener, out or sys.stderr, login_proxy(site, http_proxy), timeout
                )
            else:
                user = _tk_prompt(site, login_hint, chosen, http_proxy, timeout)
                approved_login(site, user.login)  # never made the current user when refused
            _make_current(user)
            record_saved_session(user)
    except OSError as exc:
        raise save_error(site, exc) from None
    return user


def approved_login(site: Optional[str], login: Any) -> str:
    """The login the site approved, if it is one sgconnect can save and show.

    :raises LoginFailedError: It is not text, is empty or too long, or holds a control or
        whitespace character (it could rewrite the terminal or forge a log line); the login is
        never echoed, and nothing is saved for it.
    """
    from .service import validate_login

    try:
        return validate_login(login, what="the login the site approved")
    except SgConnectError as exc:
        raise LoginFailedError(
            f"{site or 'The site'} approved a login sgconnect refuses: {exc} Nothing was "
            "saved; ask the site's admin to fix that user's login.",
            site,
        ) from None


def refuse_untrusted_cache(site: Optional[str]) -> None:
    """Refuse a login whose session token would be written into a cache file or folder that
    others can change (:func:`sgconnect.session_cache.write_problem`), before anything is sent.

    :raises UntrustedSessionCacheError: Names the file or folder and what to do.
    """
    found = session_cache.write_problem(site)
    if found is None:
        return
    path, why = found
    raise UntrustedSessionCacheError(
        f"Not logging in to {site or 'the site'}: the new session would be saved in {path}, "
        f"which sgconnect does not trust ({why}): fix its permissions (chmod go-w) or remove it, "
        "then log in again.",
        site,
        path=path,
    )


def record_saved_session(user: Any) -> None:
    """Record which site the session tk-core just saved belongs to (port included)."""
    token = user.impl.get_session_token() if hasattr(user.impl, "get_session_token") else None
    if token:
        session_cache.record_session_site(user.host, token)


def save_error(site: Optional[str], exc: OSError) -> SessionSaveError:
    """The typed error for a session cache that cannot be written (read-only, full, missing)."""
    return SessionSaveError(
        f"The session for {site or 'the site'} could not be saved in tk-core's session cache "
        f"under {session_cache.cache_root()} ({exc.__class__.__name__}"
        f"{': ' + exc.strerror if getattr(exc, 'strerror', None) else ''}): make that folder "
        "writable and not full, or point SHOTGUN_HOME at one that is, then log in again.",
        site,
    )


def _tk_prompt(
    site: Optional[str],
    login_hint: Optional[str],
    method: str,
    http_proxy: Optional[str] = None,
    timeout_secs: Optional[float] = None,
) -> Any:
    """tk-core's own prompt: the Qt dialog with a QApplication, the console without one."""
    authentication = tk.authentication()
    if method == "web":
        authentication.set_shotgun_authenticator_support_web_login(True)
    forced = {
        "web": {"SGTK_DEFAULT_AUTH_METHOD": "qt_web_login"},
        "password": {"SGTK_FORCE_STANDARD_LOGIN_DIALOG": "1"},
    }.get(method, {})
    authenticator = authentication.ShotgunAuthenticator(defaults_manager(site, http_proxy))
    if site and method in ("password", "auto", "qt"):
        # before a password is typed: a redirecting site fails here
        api3.check_no_redirect(site, timeout=timeout_secs or 10.0)
    console = not tk.qapplication_exists()
    tk.keep_qtwebengine_out(method)
    with scoped_environ(forced), _tk_errors(site, timeout_secs if console else None):
        # tk-core sends the typed password through its own shotgun_api3: never redirected.
        with api3.httplib2_never_redirects(timeout_secs):
            with socket_deadline(timeout_secs) if console else nullcontext():
                return authenticator.get_user_from_prompt(host=site, login=login_hint)


def _app_session_login(
    site: str,
    open_url: Callable[[str], bool],
    out: TextIO,
    proxy: Optional[Proxy] = None,
    timeout_secs: Optional[float] = None,
) -> Any:
    """tk-core's app session launcher, watched from this thread; then a session user saved in
    tk-core's cache.

    tk-core's requests have no deadline, so the launcher runs in a daemon worker thread and this
    thread watches it: the request must be answered within ``timeout_secs``, each poll within
    ``timeout_secs`` after tk-core's 2 s pause, and the approval within
    :func:`approval_timeout_secs`. An abandoned worker is told to stop at its next poll.
    """
    authentication = tk.authentication()
    from tank.authentication import app_session_launcher  # tk-core is loaded

    approval_limit = approval_timeout_secs()
    lock = threading.Lock()
    watch: dict[str, Any] = {
        "phase": "request",  # then "approval"
        "since": time.monotonic(),  # when the pending request (or poll) started
        "approval_started": None,
        "abandoned": False,
        "result": None,
        "error": None,
    }

    def opened(url: str) -> bool:
        with lock:
            watch["phase"] = "approval"
            watch["since"] = watch["approval_started"] = time.monotonic()
        return open_url(url)

    def keep_waiting() -> bool:
        with lock:
            watch["since"] = time.monotonic()  # the previous poll was answered
            return not watch["abandoned"]

    def run() -> None:
        try:
            watch["result"] = app_session_launcher.process(
                site,
                http_proxy=proxy.api3() if proxy is not None else None,
                browser_open_callback=opened,
                keep_waiting_callback=keep_waiting,
            )
        except BaseException as exc:  # handed to the watching thread
            watch["error"] = exc

    worker = threading.Thread(target=run, name="sgconnect-app-session-login", daemon=True)
    with _tk_errors(site):
        try:
            worker.start()
            last_progress = 0.0
            while worker.is_alive():
                worker.join(0.2)
                if not worker.is_alive():
                    break
                now = time.monotonic()
                with lock:
                    phase, since = watch["phase"], watch["since"]
                    approval_started = watch["approval_started"]
                if phase == "approval" and now - last_progress >= PROGRESS_EVERY_SECS:
                    last_progress = now
                    _progress(out, now - approval_started, approval_limit)
                pause = POLL_INTERVAL_SECS if phase == "approval" else 0.0
                if timeout_secs and now - since > timeout_secs + pause + 1.0:
                    watch["abandoned"] = True
                    what = (
                        "the app session launcher's request"
                        if phase == "request"
                        else "a poll of the app session launcher"
                    )
                    via = f" through the proxy {proxy.origin}" if proxy is not None else ""
                    raise SiteUnreachableError(
                        f"{site} did not answer {what}{via} within {timeout_secs:g} s "
                        "(timeout): the site stopped answering. Check the network, or raise "
                        "the timeout (SGCONNECT_TIMEOUT_SECS); nothing was saved.",
                        site,
                    )
                if phase == "approval" and now - approval_started > approval_limit:
                    watch["abandoned"] = True
                    raise LoginFailedError(
                        f"Login to {site} was not approved within {approval_limit:g} s; nothing "
                        f"was saved. Run it again (the limit is {APPROVAL_TIMEOUT_VARIABLE}).",
                        site,
                    )
        except BaseException:
            watch["abandoned"] = True
            raise
        finally:
            if out.isatty():
                out.write("\n")
                out.flush()
        if watch["error"] is not None:
            raise watch["error"]
        host, login_name, token, metadata = watch["result"]
        login_name = approved_login(site, login_name)  # before tk-core saves anything
        # tk-core's own defaults: the user it keeps (and may serialize) holds no proxy password
        authenticator = authentication.ShotgunAuthenticator(
            authentication.DefaultsManager(fixed_host=host)
        )
        return authenticator.create_session_user(
            login_name, session_token=token, host=host, session_metadata=metadata
        )


def _progress(out: TextIO, elapsed: float, limit: float) -> None:
    remaining = max(0.0, limit - elapsed)
    if out.isatty():
        out.write(f"\r  waiting for approval: {elapsed:4.0f} s elapsed, {remaining:3.0f} s left ")
    else:
        out.write(f"  waiting for approval: {elapsed:.0f} s elapsed, {remaining:.0f} s left\n")
    out.flush()


def _open_local_browser(url: str) -> bool:
    import webbrowser

    return webbrowser.open(url)


def _print_url(out: TextIO) -> Callable[[str], bool]:
    def show(url: str) -> bool:
        width = min(shutil.get_terminal_size((80, 20)).columns, 100)
        out.write(
            "\nTo log in, open this URL in any browser where you can sign in to ShotGrid\n"
            "(this machine needs none), then approve the request:\n\n"
            f"  {url}\n\n"
            "Ctrl-C cancels.\n" + "-" * width + "\n"
        )
        out.flush()
        return True

    return show


def _make_current(user: Any) -> None:
    """Make the user the current host and login, as SG Desktop does, for the next process."""
    authentication = tk.authentication()
    defaults = authentication.DefaultsManager()
    with cache_lock(None):  # the global file (current host) is shared by every site
        defaults.set_host(user.host)
    defaults.set_login(user.login)


@contextmanager
def _tk_errors(site: Optional[str], timeout: Optional[float] = None) -> Iterator[None]:
    """Turn tk-core's login errors into sgconnect's typed, secret-free ones."""
    authentication = tk.authentication()
    where = site or "the site"
    try:
        yield
    except KeyboardInterrupt:
        raise LoginCancelledError(
            f"Login to {where} cancelled (Ctrl-C); nothing was saved. {_AGAIN}", site
        ) from None
    except EOFError:
        raise LoginFailedError(
            f"Login to {where} needs input, but stdin ended (closed or redirected): run it in a "
            "terminal, or use `sgconnect login --method url`.",
            site,
        ) from None
    except authentication.AuthenticationCancelled:
        raise LoginCancelledError(
            f"Login to {where} cancelled; nothing was saved. {_AGAIN}", site
        ) from None
    except authentication.ConsoleLoginNotSupportedError:
        raise LoginFailedError(
            f"{where} only accepts a browser login (SSO / Autodesk Identity) and its app session "
            "launcher is off, so a console cannot log in. Run `sgconnect login --site "
            f"{where} --method web` where a display and Qt WebEngine are available (it shows "
            "tk-core's login window), or log in with SG Desktop.",
            site,
        ) from None
    except authentication.AuthenticationError as exc:
        unreachable = unreachable_error(site, exc, "log in", timeout)
        if unreachable is not None:
            raise unreachable from None
        raise LoginFailedError(f"Login to {where} failed: {_describe(exc)}", site) from None
    except SgConnectError:
        raise
    except Exception as exc:
        refused = old_tk_core_refusal(site, exc, f"Login to {where}")
        if refused is not None:
            raise refused from None
        # tk-core re-raises a network failure during a password login as a bare Exception.
        unreachable = unreachable_error(site, exc, "log in", timeout)
        if unreachable is None:
            raise
        raise unreachable from None


_AGAIN = "The next call asks again; `sgconnect login` logs in now."


def unreachable_error(
    site: Optional[str], exc: BaseException, doing: str, timeout: Optional[float] = None
) -> Optional[SgConnectError]:
    """A :class:`SiteUnreachableError` when ``exc`` comes from the network, else None; a
    :class:`~sgconnect.errors.ProxyError` when the one rule's proxy could not be reached or
    refused its credentials (407); a :class:`~sgconnect.errors.SiteResponseError` when the site's
    reply was broken (cut short, or not UTF-8) rather than missing.

    :param timeout: The per-request bound that applied (``timeout_secs``), for a timeout's text.
    """
    try:  # tk-core's requests went through the one rule's proxy (defaults_manager)
        proxy = login_proxy(site)
    except ValueError:  # refused before the login started; nothing to blame here
        proxy = None
    where = site or "the site"
    refused = proxy_refused(site, exc, f"the request to {doing}", proxy)
    if refused is not None:
        return refused
    redirect = _chain_member(exc, _is_redirect)
    if redirect is not None:  # urllib's HTTPError (the launcher) or api3's ProtocolError
        status = getattr(redirect, "code", None) or redirect.errcode  # type: ignore[attr-defined]
        headers = getattr(redirect, "headers", None) or {}
        location = headers.get("Location", "") or headers.get("location", "")
        return redirected(site, int(status), location, f"the request to {doing}")
    cause = _chain_member(exc, _is_broken_reply)
    if cause is not None:
        what = "was cut short" if isinstance(cause, http_client.IncompleteRead) else "is not UTF-8"
        return SiteResponseError(
            f"{where} answered the request to {doing}, but its reply {what} "
            f"({cause.__class__.__name__}): try again; if it persists, check the site and any "
            f"proxy (`sgconnect doctor --site {where}`).",
            site,
        )
    failure = network_failure(exc)
    if failure is None:
        return None
    return unreachable(
        site,
        failure,
        f"the request to {doing}",
        timeout,
        to=f"to {doing}",
        proxy=proxy.origin if proxy is not None else "",
    )


def _is_broken_reply(error: BaseException) -> bool:
    """A reply that came but is unusable (cut short, not UTF-8)."""
    return isinstance(error, (UnicodeDecodeError, http_client.IncompleteRead))


def _is_redirect(error: BaseException) -> bool:
    """A 3xx answer, never followed: urllib's ``HTTPError`` or shotgun_api3's ``ProtocolError``."""
    if isinstance(error, urllib.error.HTTPError):
        status = error.code
    elif type(error).__name__ == "ProtocolError":
        status = getattr(error, "errcode", None)
    else:
        return False
    return isinstance(status, int) and 300 <= status < 400


def _is_407(error: BaseException) -> bool:
    """A proxy's 407: urllib's ``HTTPError`` or httplib2's ``socks.HTTPError((407, reason))``."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 407
    status = error.args[0] if error.args else None
    return (
        type(error).__name__ == "HTTPError"
        and isinstance(status, tuple)
        and bool(status)
        and status[0] == 407
    )


def proxy_refused(
    site: Optional[str], exc: BaseException, action: str, proxy: Optional[Proxy]
) -> Optional[ProxyError]:
    """A :class:`~sgconnect.errors.ProxyError` naming ``proxy`` (no password) when ``exc`` is
    (or was caused by) the proxy's 407 to its credentials, else None.

    :param action: What did not get through (``"the request to log in"``).
    """
    if _chain_member(exc, _is_407) is None:
        return None
    from .transport import proxy_credentials_refused

    return proxy_credentials_refused(site, action, proxy.origin if proxy is not None else "")


def _chain_member(
    exc: BaseException, wanted: Callable[[BaseException], bool]
) -> Optional[BaseException]:
    """The first exception in ``exc``'s chain (:func:`~sgconnect.transport.exception_chain`)
    that is wanted, or None."""
    return next((error for error in exception_chain(exc) if wanted(error)), None)


def old_tk_core_refusal(
    site: Optional[str], exc: BaseException, what: str
) -> Optional[LoginFailedError]:
    """The typed error for tk-core v0.20.29–v0.21.1's raw ``TypeError`` on a refused login.

    Those tk-core versions' console login (``ConsoleLoginHandler.authenticate``, also used to renew)
    prints "Login failed: ..." and returns ``None`` when the site refuses the password or the 2FA
    code; their caller (``get_user_from_prompt``, ``SessionRenewal``) then unpacks ``None`` and
    raises ``TypeError: cannot unpack non-iterable NoneType object``. Recognised by its type, its
    text and where it was raised (a frame of tk-core's ``tank/authentication`` package).

    :param what: What failed, for the message (``"Login to <site>"``).
    :returns: A :class:`LoginFailedError` naming the command to log in again, or ``None`` when
        ``exc`` is not that ``TypeError``.
    """
    if not isinstance(exc, TypeError) or "NoneType" not in str(exc):
        return None
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    parts = PurePath(frame.tb_frame.f_code.co_filename).parts if frame is not None else ()
    if tuple(parts[-3:-1]) != ("tank", "authentication"):
        return None
    target = f" --site {site}" if site else ""
    return LoginFailedError(
        f"{what} failed: the site refused the login, the password or the two-factor code (tk-core "
        "printed why just above). Check them, then log in again with "
        f"`sgconnect login{target}`.",
        site,
    )


def renew_by_url(site: str, login: str, out: Optional[TextIO] = None) -> Any:
    """Renew ``login``'s session on ``site`` headless: the ``url`` method's renewal.

    The same flow as ``sgconnect login --method url`` (tk-core's app session launcher, the approval
    URL and the waiting progress written to ``out``, default stderr; the URL is also logged at
    INFO on ``sgconnect.interactive``). Never imports Qt. The new session is saved in tk-core's
    cache (for the next process), without changing its current user.

    :returns: tk-core's new ``ShotgunUser`` (its session token is the renewed one).
    :raises LoginFailedError: The approval was denied or expired, or was given as another person.
    :raises LoginCancelledError: Ctrl-C while waiting.
    :raises SiteUnreachableError: The site could not be reached.
    :raises SessionSaveError: The session cache could not be written.
    """
    out = out or sys.stderr
    show = _print_url(out)

    def show_and_log(url: str) -> bool:
        logger.info("To renew %s's session on %s, approve this request: %s", login, site, url)
        out.write(f"\nThe session of {login} on {site} expired.")
        return show(url)

    try:
        user = _app_session_login(site, show_and_log, out, login_proxy(site), _timeout_secs(None))
        record_saved_session(user)
    except OSError as exc:
        raise save_error(site, exc) from None
    if user.login != login:
        raise LoginFailedError(
            f"The renewal of {login}'s session on {site} was approved by {user.login}: approve "
            f"it signed in as {login}, or switch user with `sgconnect login --site {site}`.",
            site,
        )
    return user


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    formatter = getattr(exc, "format", None)
    if callable(formatter):
        try:
            text = formatter()
        except Exception:  # keep the plain text
            pass
    return text


def logout(site: Optional[str]) -> list[str]:
    """Forget the saved session of ``site``'s current user in tk-core's cache.

    :param site: The site; ``None`` for tk-core's current host.
    :returns: What was removed, as ``"login on site"`` lines (empty: nothing was saved).
    """
    authentication = tk.authentication()
    defaults = (
        authentication.DefaultsManager(fixed_host=site)
        if site
        else authentication.DefaultsManager()
    )
    host = defaults.get_host()
    if not host:
        return []
    with cache_lock(host):
        user = authentication.ShotgunAuthenticator(defaults).clear_default_user()
    return [f"{user.login} on {user.host}"] if user is not None else []
