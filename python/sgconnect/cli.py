"""The ``sgconnect`` command (also ``python -m sgconnect``).

Subcommands: ``login``, ``whoami``, ``logout``, ``doctor``, ``site`` and ``demo``. See
``docs/cli.md`` or ``sgconnect --help``. Bad input gets a one-line error and a non-zero exit,
never a traceback (``--debug`` shows one, through the redacting log filter).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, Callable, Optional, Sequence

from .environ import NON_INTERACTIVE, scoped_environ
from .errors import (
    ConfigurationError,
    FarmIdentityError,
    InvalidSiteError,
    LoginCancelledError,
    LoginFailedError,
    LoginRequiredError,
    ServiceAuthenticationError,
    ServiceKeyError,
    SessionSaveError,
    SgConnectError,
)
from .sitetext import neutralize

#: Exit codes, also listed in ``--help`` and docs/cli.md.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOGIN = 3
EXIT_CONFIG = 4
EXIT_IDENTITY = 5
EXIT_CANCELLED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    error (site unreachable, not a ShotGrid site, doctor found no working login...)
  2    usage error (bad arguments, invalid site URL, no display for demo --interactive)
  3    login required or failed (no saved session, approval denied or expired...)
  4    configuration (a setting or SGCONNECT_HOOK is wrong, SHOTGUN_HOME cannot be written)
  5    service mode or farm identity (script key refused or missing, unknown sudo target,
       a job's person does not match, a farm ticket refused)
  130  cancelled (Ctrl-C); nothing was saved

The site defaults to $SGCONNECT_SITE, else the last site logged in to (tk-core's current host).
"""

_SOURCES = {
    "current_user": "the current sgtk user of this process",
    "handed_down": "handed down by SG Desktop or a launcher",
    "saved": "the session saved in tk-core's cache",
    "fresh": "a login made by this process",
    "service": "service mode (script key)",
    "hook": "a tk-core user the connection hook returned",
    "verified": "service mode, acting as the creator of the farm job's ticket",
}

logger = logging.getLogger("sgconnect.cli")


class UsageError(SgConnectError):
    """Bad command line input (exit 2)."""


# -- helpers --------------------------------------------------------------------------------------


def _pkg():
    """The sgconnect package this module belongs to (whatever name it was imported under)."""
    return sys.modules[__package__]


def _resolve_site(given: Optional[str]) -> Optional[str]:
    """``--site`` (normalised), else the default site (:func:`sgconnect.chain.default_site`)."""
    from .chain import default_site
    from .sites import normalize_site

    return normalize_site(given) if given is not None else default_site()


class _NeutralOut:
    """A text stream whose every line is neutralised (doctor's report quotes the site)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write("\n".join(neutralize(line) for line in text.split("\n")))

    def flush(self) -> None:
        self._stream.flush()


def _out(text: str = "") -> None:
    # Each line neutralised: site text (a display name, an error detail) cannot hold escapes
    # or a line break that forges another line of output.
    lines = (neutralize(line) for line in str(text).split("\n"))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _describe_expiry(expiry: Optional[float]) -> str:
    if expiry is None:
        return "not known to this client (the site says when it rejects it; sgconnect then renews)"
    left = expiry - time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expiry))
    if left <= 0:
        return f"{when} (expired; renewed on the next call)"
    return f"{when} (in {int(left // 60)} min)"


# -- subcommands ----------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    """Log in interactively and save the session for SG Desktop, tk-core and sgconnect."""
    from . import doctor, interactive, session_cache
    from .settings import Settings

    site = _resolve_site(args.site)
    interactive.pick_method(args.method)  # an unknown method fails before a window opens
    qt_app = interactive.qt_application(args.method)  # tk-core's dialog needs one  # noqa: F841
    method = interactive.pick_method(args.method)
    if method == "password" and not _stdin_readable():
        raise UsageError(
            "The password login reads the login and password on stdin, which is closed here: run "
            "it in a terminal, or use --method url (prints a URL to approve in any browser)."
        )
    if site is None and method in ("url", "browser"):
        raise UsageError(
            f"The {method} login needs a site and none is known yet: pass --site URL "
            "(e.g. https://mystudio.shotgrid.autodesk.com)."
        )
    interactive.refuse_untrusted_cache(site)  # before the site is asked anything
    if site is not None:
        settings = Settings.from_environment()
        facts = doctor.site_facts(
            doctor.read_site_info(
                site,
                http_proxy=settings.http_proxy or None,
                timeout=settings.timeout_secs or 10.0,  # the configured bound, as the login's
            )
        )
        if method in ("url", "browser") and not facts.app_session_launcher:
            picked = (
                f" (--method auto picked it: {_why_method(method)})"
                if args.method == "auto"
                else ""
            )
            raise LoginFailedError(
                f"The app session launcher is disabled on {site}, so the {method} login{picked} "
                f"cannot work. Run `sgconnect doctor --site {site}` to see which login methods "
                "can.",
                site,
            )
        if args.method == "auto":
            _out(f"Logging in to {site} with the {method} login ({_why_method(method)}).")
    info = _pkg().login(site, method)
    try:
        info = _pkg().current_user(info.site, interactive=False, with_name=True)
    except SgConnectError:
        pass  # the login worked; the name is a nicety
    name = f" ({info.name})" if info.name else ""
    _out(f"Logged in to {info.site} as {info.login}{name}.")
    _out(
        f"Session saved in {session_cache.site_cache_file(info.site)}: SG Desktop, tk-core and "
        "the next sgconnect process use it."
    )
    return EXIT_OK


def _stdin_readable() -> bool:
    """Whether stdin can still give input (not absent, closed, or at end of file)."""
    stdin = sys.stdin
    if stdin is None or getattr(stdin, "closed", False):
        return False
    if stdin.isatty():
        return True
    try:
        import select

        ready, _, _ = select.select([stdin], [], [], 0)
        if ready:
            return bool(stdin.buffer.peek(1)) if hasattr(stdin, "buffer") else True
        return True  # a pipe with nothing yet: the writer may still type
    except (OSError, ValueError, AttributeError, TypeError):
        return True


def _why_method(method: str) -> str:
    return {
        "url": "no display and no local browser here: open the printed URL in any browser",
        "qt": "a display and Qt are available: tk-core's login dialog",
        "password": "tk-core's console login",
    }.get(method, "chosen")


class _NoSiteYet(LoginRequiredError):
    """No --site, and no site logged in to yet: the hint names a login that works as written."""

    def __init__(self) -> None:
        SgConnectError.__init__(
            self,
            "No site given, and none logged in to yet. Log in once with your site's URL, e.g. "
            "`sgconnect login --site https://mystudio.shotgrid.autodesk.com`, or pass --site.",
        )
        self.reason = "no site given and none logged in to yet"


def cmd_whoami(args: argparse.Namespace) -> int:
    """Who connections act as; never prompts, never shows a token."""
    # Never prompt, whatever the terminal: a name lookup on an expired session must not ask. The
    # variable is set for this command only; the broker made under it is dropped afterwards.
    _pkg().reset()
    try:
        with scoped_environ({NON_INTERACTIVE: "1"}):
            return _whoami(args)
    finally:
        _pkg().reset()


def _whoami(args: argparse.Namespace) -> int:
    from . import session_cache

    site = _resolve_site(args.site)
    if site is None:
        raise _NoSiteYet()
    info = _pkg().current_user(site, interactive=False, with_name=True)
    if args.json:
        _out(json.dumps(info.as_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    source = _SOURCES.get(info.source, info.source)
    if info.source == "saved":
        source += f" ({session_cache.site_cache_file(info.site)})"
    name = f" ({info.name})" if info.name else ""
    _out(f"{info.login}{name} on {info.site}")
    _out(f"  auth method:    {info.auth_method}")
    if info.script_name:
        _out(f"  acting as:      script {info.script_name} (sudo_as_login)")
    _out(f"  session expiry: {_describe_expiry(info.session_expiry)}")
    _out(f"  source:         {info.source}: {source}")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace) -> int:
    """Forget the saved session of the site's current user (tk-core's cache)."""
    from . import session_cache

    site = _resolve_site(args.site)
    if site is None:
        _out("No site given and none logged in to: nothing to log out of.")
        return EXIT_OK
    path = session_cache.site_cache_file(site)
    removed = _pkg().logout(site)
    if not removed:
        _out(f"No saved session for {site}: nothing removed.")
        return EXIT_OK
    for entry in removed:
        _out(f"Removed the saved session of {entry} (from {path}).")
    _out("SG Desktop, tk-core and sgconnect will ask to log in again.")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the environment and the site; say which login methods will work."""
    from . import doctor

    return doctor.run(_resolve_site(args.site), out=_NeutralOut(sys.stdout))


def cmd_site(args: argparse.Namespace) -> int:
    """Serve the local site emulator until Ctrl-C."""
    try:
        import werkzeug  # noqa: F401 - checked here for a clear message

        from .testing import LocalSite
        from .testing.site import SiteConfigError, load_site_config
    except ImportError:
        raise SgConnectError("The local site needs Werkzeug: pip install Werkzeug.") from None
    options = {}
    if args.config:
        try:
            options = load_site_config(args.config)
        except SiteConfigError as exc:
            raise SgConnectError(str(exc)) from None
    fixed = {u.login for u in options.get("users", []) if u.password}
    fixed |= {s.name for s in options.get("scripts", []) if s.key}
    if args.mode is not None or "mode" not in options:
        options["mode"] = args.mode or "saml2"
    if args.no_app_session_launcher:
        options["app_session_launcher"] = False
    if args.unified_login_flow:
        options["unified_login_flow"] = True
    if args.tls:
        try:
            import trustme  # noqa: F401 - checked here for a clear message
        except ImportError:
            raise SgConnectError("--tls needs trustme: pip install trustme.") from None
    site = LocalSite(port=args.port, tls=args.tls, latency=args.latency, **options)
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background with &
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        site.start()
    except OSError as exc:
        raise SgConnectError(
            f"Cannot serve the local site on 127.0.0.1:{args.port} ({exc.strerror or exc}): "
            "pick another --port, or 0 for any free one."
        ) from None
    try:
        asl = "on" if site.app_session_launcher else "off"
        _out(f"Local ShotGrid site ({site.mode}, app session launcher {asl}): {site.url}")
        _out(f"Identity provider: {site.idp_url}")
        _out("Users (random passwords, valid for this run only):")
        for user in site.users:
            extra = "  (2FA: the current code is printed below)" if user.two_factor else ""
            shown = (
                "(password from the site file)"
                if user.login in fixed
                else (site.password(user.login))
            )
            _out(f"  {user.login:<8} {shown}  {user.name}{extra}")
        for script in site.scripts:
            shown = (
                "(key from the site file)"
                if script.name in fixed
                else (site.script_key(script.name))
            )
            _out(f"Script {script.name}: key {shown}")
        _out(f"Projects: {', '.join(site.projects)}")
        if site.unified_login_flow:
            _out("Unified login flow: on")
        if site.tls:
            _out(f"TLS CA (for SHOTGUN_API_CACERTS): {site.ca_path}")
        if site.latency:
            _out(f"Injected round-trip time: {site.latency:g} s")
        _out("Try: sgconnect doctor --site " + site.url)
        _out("Ctrl-C stops the site.")
        codes = {u.login: None for u in site.users if u.two_factor}
        while True:
            for login in codes:
                code = site.two_factor_code(login)
                if code != codes[login]:
                    codes[login] = code
                    _out(f"2FA code for {login}: {code}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        _out("Stopped.")
        return EXIT_OK
    finally:
        site.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the end-to-end demo against an embedded local site."""
    from . import demo

    return demo.run(interactive=args.interactive)


# -- parser and main -----------------------------------------------------------------------------


def _bounded(kind: Callable[[str], float], low: float, high: float, shape: str) -> Callable:
    """An argparse ``type``: ``kind(text)`` from ``low`` to ``high``, else a usage error (exit 2)
    saying ``shape``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {shape}")
        return value

    return parse


#: ``--port``: 0 (any free port) to 65535.
_port = _bounded(int, 0, 65535, "a port: use 1-65535, or 0 for any")
#: ``--latency``: seconds from 0 to 60.
_latency = _bounded(float, 0, 60, "a number of seconds from 0 to 60")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with help text for every subcommand."""
    from .interactive import METHODS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log at DEBUG to stderr (secrets are redacted) and show tracebacks",
    )
    site_option = argparse.ArgumentParser(add_help=False)
    site_option.add_argument(
        "--site",
        metavar="URL",
        help="the ShotGrid site (default: $SGCONNECT_SITE, else the last site logged in to)",
    )

    parser = argparse.ArgumentParser(
        prog="sgconnect",
        description="Log in to ShotGrid once, and check who and how pipeline tools connect.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", default=False, help=argparse.SUPPRESS)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"sgconnect {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def add(
        name: str, func: Callable, help_text: str, description: str, parents=()
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common, *parents],
        )
        sub.set_defaults(func=func)
        return sub

    login = add(
        "login",
        cmd_login,
        "log in and save the session for SG Desktop, tk-core and sgconnect",
        "Log in through tk-core and save the session where SG Desktop, tk-core and the next "
        "sgconnect process find it.\n\n"
        "methods:\n"
        "  auto      qt with a Qt application, url without a display or local browser, else\n"
        "            tk-core's console login\n"
        "  qt        tk-core's login dialog\n"
        "  browser   the app session launcher with this machine's browser\n"
        "  web       tk-core's QtWebEngine (SSO / Autodesk Identity) login page\n"
        "  password  tk-core's console login and password\n"
        "  url       headless: prints an approval URL to open in any browser, on any device,\n"
        "            and waits (Ctrl-C cancels, nothing is saved)",
        [site_option],
    )
    login.add_argument(
        "--method", choices=METHODS, default="auto", help="how to log in (default: auto)"
    )

    whoami = add(
        "whoami",
        cmd_whoami,
        "show who connections act as (never a token, never prompts)",
        "Show the login, name, site, auth method, session expiry and where the session comes "
        "from. Never prompts: without a session it exits 3 and says how to log in.",
        [site_option],
    )
    whoami.add_argument("--json", action="store_true", help="machine-readable output")

    add(
        "logout",
        cmd_logout,
        "forget the saved session of a site",
        "Forget the saved session of the site's current user, through tk-core's session cache "
        "(SG Desktop and tk-core then ask to log in again).",
        [site_option],
    )
    add(
        "doctor",
        cmd_doctor,
        "say which login methods will work here, and why",
        "Check Qt and QtWebEngine, display and browser, tk-core, proxy and CA settings, the "
        "session cache permissions, and the site's authentication: then say which login "
        "methods will work in this environment, and what to do if none will. Exits 1 when the "
        "site cannot be checked or no method works.",
        [site_option],
    )
    site = add(
        "site",
        cmd_site,
        "serve a local ShotGrid site emulator until Ctrl-C (for testing tools)",
        "Serve the local ShotGrid site emulator (sgconnect.testing.LocalSite) until Ctrl-C, and "
        "print its URL, its demo users and their passwords (random for each run). Exits 0 when "
        "stopped with Ctrl-C.",
    )
    site.add_argument(
        "--mode",
        choices=("default", "ldap", "saml2", "oxygen"),
        default=None,
        help="authentication: default or ldap (passwords), saml2 (SSO) or oxygen (Autodesk "
        "Identity); default: the site file's mode, else saml2",
    )
    site.add_argument(
        "--config",
        metavar="FILE",
        help="users, scripts and projects with fixed secrets (YAML or JSON; see "
        "docs/local-site-contract.md)",
    )
    site.add_argument(
        "--no-app-session-launcher", action="store_true", help="disable the app session launcher"
    )
    site.add_argument(
        "--unified-login-flow", action="store_true", help="report unified_login_flow_enabled"
    )
    site.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a throw-away CA (its path is printed)"
    )
    site.add_argument(
        "--latency",
        type=_latency,
        default=0.0,
        metavar="SECONDS",
        help="injected round-trip time per handshake and per reply (default 0)",
    )
    site.add_argument(
        "--port", type=_port, default=0, help="the site's port, 1-65535 (default: any free one)"
    )

    demo = add(
        "demo",
        cmd_demo,
        "run the end-to-end demo against an embedded local site (a few seconds)",
        "Start a local SSO site, log in a new user through the headless browser login (the demo "
        "approves it as a person in a browser would), list projects through api3 and REST, "
        "expire the session and see the next call renew, run whoami in a new process, and check "
        "that no secret was printed or logged.",
    )
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="log in yourself through tk-core's Qt dialog instead (needs a display)",
    )
    return parser


class _NeutralFormatter(logging.Formatter):
    """Log lines for a terminal: no escape sequence or control character from the site."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(neutralize(line) for line in super().format(record).split("\n"))


class _OneLineFormatter(_NeutralFormatter):
    """A record on one line (no traceback: that is ``--debug``'s)."""

    def format(self, record: logging.LogRecord) -> str:
        text = logging.Formatter.format(
            self, logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        )
        return " ".join(neutralize(text).split())


def _configure_logging(debug: bool) -> Optional[logging.Handler]:
    """With ``--debug``: every record, on stderr. Without: warnings only, each one line starting
    with ``sgconnect: warning:`` like the errors (returned, for :func:`main` to remove)."""
    from . import redaction

    if not debug:
        redaction.install()
        quiet = logging.StreamHandler(sys.stderr)
        quiet.setLevel(logging.WARNING)
        quiet.setFormatter(_OneLineFormatter("sgconnect: warning: %(message)s"))
        logging.getLogger().addHandler(quiet)
        return quiet

    redaction.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NeutralFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # tk-core's loggers do not propagate to the root logger.
    tk_logger = logging.getLogger("sgtk")
    tk_logger.addHandler(handler)
    tk_logger.setLevel(logging.DEBUG)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    quiet = _configure_logging(debug)
    try:
        return _run(args, debug)
    finally:
        if quiet is not None:
            logging.getLogger().removeHandler(quiet)


def _run(args: argparse.Namespace, debug: bool) -> int:
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _error("cancelled (Ctrl-C); nothing was saved.")
        return EXIT_CANCELLED
    except LoginCancelledError as exc:
        _error(str(exc))
        return EXIT_CANCELLED
    except (LoginRequiredError, LoginFailedError) as exc:
        _error(str(exc))
        return EXIT_LOGIN
    except (UsageError, InvalidSiteError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (ConfigurationError, SessionSaveError) as exc:
        _error(str(exc))
        return EXIT_CONFIG
    except (ServiceAuthenticationError, ServiceKeyError, FarmIdentityError) as exc:
        _error(str(exc))
        return EXIT_IDENTITY
    except SgConnectError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except Exception as exc:  # one line, never a traceback without --debug
        from .redaction import redact

        if debug:
            logger.exception("unexpected error")
        text = redact(f"{exc.__class__.__name__}: {exc}").splitlines()
        _error(f"unexpected error: {text[0] if text else exc.__class__.__name__}")
        if not debug:
            _error("run with --debug for details.")
        return EXIT_ERROR


def _error(text: str) -> None:
    sys.stderr.write(f"sgconnect: {' '.join(neutralize(text).split())}\n")
    sys.stderr.flush()


__all__ = ["main", "build_parser", "EXIT_CODES_HELP"]
