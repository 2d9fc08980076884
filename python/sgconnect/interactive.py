"""tk-core's interactive authentication, and the headless browser login.

Every method here ends in tk-core: its Qt login dialog (password, 2FA, SSO / Autodesk Identity web
login, browser login), its console prompts, or its app session launcher. What sgconnect adds:

- ``url``: the headless browser login. tk-core's app session launcher is started with a callback
  that *prints* the approval URL instead of opening a browser, so a person can approve from any
  browser (a laptop, a phone) while an SSH session, a container or a farm node waits, with a
  progress line.
- the choice of a method that can work in this environment (``auto``);
- the session is saved in tk-core's cache and made the current one, where SG Desktop and the next
  process find it, only once the login succeeded: a cancelled login leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import PurePath
from typing import Any, Callable, Iterator, Optional, TextIO

from . import session_cache, tk
from .cache_lock import cache_lock
from .environ import scoped_environ
from .errors import (
    LoginCancelledError,
    LoginFailedError,
    SessionSaveError,
    SgConnectError,
    SiteUnreachableError,
)
from .transport import network_failure, unreachable

logger = logging.getLogger("sgconnect.interactive")

METHODS = ("auto", "qt", "browser", "web", "password", "url")

#: How long tk-core's app session launcher waits for an approval (its own constant).
APPROVAL_TIMEOUT_SECS = 180


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
) -> Any:
    """Log in interactively and return tk-core's ``ShotgunUser``, saved in tk-core's cache.

    :param site: The site; ``None`` lets the person type it (Qt dialog and console only).
    :param method: One of :data:`METHODS`.
    :param login_hint: A login to pre-fill.
    :param out: Where the headless login prints its URL and progress (default: stderr).
    :raises LoginCancelledError: The person cancelled (Ctrl-C, or the dialog closed).
    :raises LoginFailedError: The site refused the login, or the approval was denied or expired.
    """
    chosen = pick_method(method)
    if chosen in ("browser", "url") and site is None:
        raise SgConnectError(f"The {chosen} login needs a site: pass --site URL.")
    # tk-core writes its cache without a lock: one sgconnect login or renewal at a time per site.
    try:
        with cache_lock(site) if site else nullcontext():
            if chosen in ("browser", "url"):
                opener = (
                    _open_local_browser if chosen == "browser" else _print_url(out or sys.stderr)
                )
                user = _app_session_login(site, opener, out or sys.stderr)
            else:
                user = _tk_prompt(site, login_hint, chosen)
            _make_current(user)
            record_saved_session(user)
    except OSError as exc:
        raise save_error(site, exc) from None
    return user


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


def _tk_prompt(site: Optional[str], login_hint: Optional[str], method: str) -> Any:
    """tk-core's own prompt: the Qt dialog with a QApplication, the console without one."""
    authentication = tk.authentication()
    if method == "web":
        authentication.set_shotgun_authenticator_support_web_login(True)
    forced = {
        "web": {"SGTK_DEFAULT_AUTH_METHOD": "qt_web_login"},
        "password": {"SGTK_FORCE_STANDARD_LOGIN_DIALOG": "1"},
    }.get(method, {})
    authenticator = authentication.ShotgunAuthenticator(
        authentication.DefaultsManager(fixed_host=site)
    )
    tk.keep_qtwebengine_out(method)
    with scoped_environ(forced), _tk_errors(site):
        return authenticator.get_user_from_prompt(host=site, login=login_hint)


def _app_session_login(site: str, open_url: Callable[[str], bool], out: TextIO) -> Any:
    """tk-core's app session launcher, then a session user saved in tk-core's cache."""
    authentication = tk.authentication()
    from tank.authentication import app_session_launcher  # tk-core is loaded

    started = time.monotonic()

    def keep_waiting() -> bool:
        elapsed = time.monotonic() - started
        remaining = max(0, APPROVAL_TIMEOUT_SECS - elapsed)
        if out.isatty():
            out.write(
                f"\r  waiting for approval: {elapsed:4.0f} s elapsed, {remaining:3.0f} s left "
            )
        else:
            out.write(f"  waiting for approval: {elapsed:.0f} s elapsed, {remaining:.0f} s left\n")
        out.flush()
        return True

    with _tk_errors(site):
        try:
            host, login_name, token, metadata = app_session_launcher.process(
                site, browser_open_callback=open_url, keep_waiting_callback=keep_waiting
            )
        finally:
            if out.isatty():
                out.write("\n")
        authenticator = authentication.ShotgunAuthenticator(
            authentication.DefaultsManager(fixed_host=host)
        )
        return authenticator.create_session_user(
            login_name, session_token=token, host=host, session_metadata=metadata
        )


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
def _tk_errors(site: Optional[str]) -> Iterator[None]:
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
        unreachable = unreachable_error(site, exc, "log in")
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
        unreachable = unreachable_error(site, exc, "log in")
        if unreachable is None:
            raise
        raise unreachable from None


_AGAIN = "The next call asks again; `sgconnect login` logs in now."


def unreachable_error(
    site: Optional[str], exc: BaseException, doing: str
) -> Optional[SiteUnreachableError]:
    """A :class:`SiteUnreachableError` when ``exc`` comes from the network, else None."""
    failure = network_failure(exc)
    if failure is None:
        return None
    return unreachable(site, failure, doing, to=f"to {doing}")


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
        user = _app_session_login(site, show_and_log, out)
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
