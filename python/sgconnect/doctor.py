"""``sgconnect doctor``: can this environment log in to ShotGrid, and how?

It looks at what a login needs and says which of sgconnect's login methods will work here:

- the Qt binding and QtWebEngine (checked with ``importlib.util.find_spec``: Qt is not imported);
- a display and a local browser;
- tk-core (every interactive login goes through it);
- the site's ``user_authentication_method`` and app session launcher (api3 ``info``, no auth);
- the proxy and CA settings in effect;
- the session cache location and its permissions (files 0600, folders 0700).

:func:`conclude` is the pure part (facts in, verdicts out), so it can be tested on its own.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
import sys
from dataclasses import dataclass, field
from typing import Optional, TextIO

from .errors import CaBundleError, ConfigurationError, SiteResponseError, SiteUnreachableError

#: The login methods doctor judges, in the order it recommends them.
JUDGED_METHODS = ("qt", "browser", "web", "password", "url")

_PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
)
_AUTH_METHOD_NAMES = {
    "default": "ShotGrid logins and passwords",
    "ldap": "LDAP logins and passwords",
    "saml2": "SSO (SAML): browser login only",
    "oxygen": "Autodesk Identity: browser login only",
}


# -- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """What this machine and process offer for a login."""

    tk_core: bool
    qt_binding: Optional[str]
    qt_webengine: bool
    display: bool
    local_browser: bool


@dataclass(frozen=True)
class SiteFacts:
    """What the site's api3 ``info`` says about logging in."""

    auth_method: str
    app_session_launcher: bool
    unified_login_flow: bool = False
    version: str = ""


@dataclass(frozen=True)
class Verdict:
    """Whether one login method will work here, and why (or why not)."""

    method: str
    works: Optional[bool]  # None: depends on the site, which could not be read
    why: str


@dataclass
class Report:
    """Everything doctor found; :func:`render` turns it into text."""

    environment: Environment
    site: Optional[str] = None
    site_facts: Optional[SiteFacts] = None
    site_error: Optional[str] = None
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (label, value, mark)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def working(self) -> list[str]:
        return [v.method for v in self.verdicts if v.works]


# -- the pure part: facts in, verdicts out ------------------------------------------------------


def conclude(env: Environment, site: Optional[SiteFacts]) -> list[Verdict]:
    """Which login methods will work, given this environment and (if known) the site."""
    if not env.tk_core:
        reason = "tk-core (sgtk) is not installed: every interactive login goes through it"
        return [Verdict(method, False, reason) for method in JUDGED_METHODS]

    sso = site is not None and site.auth_method in ("saml2", "oxygen")
    passwords = site is not None and site.auth_method in ("default", "ldap")
    asl = site is not None and site.app_session_launcher
    web_site = site is not None and (site.auth_method == "saml2" or site.unified_login_flow)
    webengine_ok = bool(env.qt_binding and env.qt_webengine)

    def site_dependent(env_ok: bool, env_why: str, site_ok: bool, yes: str, no: str) -> tuple:
        if not env_ok:
            return False, env_why
        if site is None:
            return None, f"{yes}, if the site allows it"
        return (True, yes) if site_ok else (False, no)

    verdicts = []
    # web: tk-core's QtWebEngine login page.
    if not webengine_ok:
        env_why = "needs Qt with QtWebEngine" + (
            f" ({env.qt_binding} has no QtWebEngine)" if env.qt_binding else " (no Qt binding)"
        )
        web_env = False
    elif not env.display:
        env_why, web_env = "needs a display for the QtWebEngine login page (none here)", False
    else:
        env_why, web_env = "", True
    works, why = site_dependent(
        web_env,
        env_why,
        web_site,
        "the SSO page opens in tk-core's QtWebEngine dialog",
        "the site does not offer a web login to scripts (it is not an SSO site)",
    )
    web = Verdict("web", works, why)

    # browser: the app session launcher with this machine's browser.
    works, why = site_dependent(
        env.local_browser,
        "needs a local web browser and a display (none here)",
        asl,
        "your browser opens the approval page",
        "the site's app session launcher is off",
    )
    browser = Verdict("browser", works, why)

    # password: tk-core's console (or dialog) login and password.
    if site is None:
        password = Verdict("password", None, "on the console, if the site uses passwords")
    elif passwords:
        password = Verdict(
            "password", True, f"on the console ({site.auth_method} site: logins and passwords)"
        )
    elif sso and asl:
        # tk-core's console login uses the app session launcher on an SSO site: a local browser.
        password = Verdict(
            "password",
            env.local_browser,
            "tk-core's console login sends SSO sites to a local browser"
            + ("" if env.local_browser else " (none here)"),
        )
    else:
        password = Verdict(
            "password", False, f"{site.auth_method} site: it refuses logins with a password"
        )

    # url: the headless browser login; any browser anywhere approves.
    works, why = site_dependent(
        True,
        "",
        asl,
        "prints an approval URL to open in any browser, on any device",
        "the site's app session launcher is off",
    )
    url = Verdict("url", works, why)

    # qt: tk-core's Qt login dialog, offering whichever of the above the site allows.
    if not env.qt_binding:
        qt = Verdict("qt", False, "needs a Qt binding (PySide6 or PySide2; none importable)")
    elif not env.display:
        qt = Verdict("qt", False, "needs a display for tk-core's login dialog (none here)")
    elif site is None:
        qt = Verdict("qt", None, "tk-core's login dialog, if the site allows one of its methods")
    else:
        offers = passwords or (web_site and webengine_ok) or (asl and env.local_browser)
        qt = Verdict(
            "qt",
            offers,
            "tk-core's login dialog"
            if offers
            else "the dialog has no method this site accepts here",
        )

    verdicts = {v.method: v for v in (qt, browser, web, password, url)}
    return [verdicts[method] for method in JUDGED_METHODS]


def advice_when_none_work(site: Optional[str], facts: Optional[SiteFacts]) -> list[str]:
    """What to do when no login method will work here."""
    # Without a site, an example URL: `sgconnect login` alone fails (no site known yet).
    target = f" --site {site or 'https://mystudio.shotgrid.autodesk.com'}"
    lines = [
        "No login method will work in this environment.",
        "Either log in where one does (SG Desktop, or `sgconnect login"
        + target
        + "` on a machine with a browser or Qt WebEngine) with the same SHOTGUN_HOME, so the "
        "saved session is found here,",
    ]
    if facts is not None and not facts.app_session_launcher:
        lines.append(
            "or ask the site admin to enable the app session launcher (Site Preferences > "
            "Authentication): then `sgconnect login --method url" + target + "` works from here."
        )
    else:
        lines.append("or install what is missing above.")
    return lines


# -- gathering facts ----------------------------------------------------------------------------


def _find_spec(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _distribution_version(*names: str) -> Optional[str]:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def qt_bindings() -> list[tuple[str, Optional[str], bool]]:
    """``(binding, version, has QtWebEngine)`` for each importable binding, tk-core's order."""
    found = []
    for binding in ("PySide2", "PySide6"):
        if _find_spec(binding):
            found.append(
                (
                    binding,
                    _distribution_version(binding),
                    _find_spec(f"{binding}.QtWebEngineWidgets"),
                )
            )
    return found


def environment() -> Environment:
    """The facts about this process and machine (no network, no Qt import)."""
    from .interactive import has_display, has_local_browser

    bindings = qt_bindings()
    with_webengine = [b for b in bindings if b[2]]
    chosen = (with_webengine or bindings or [(None, None, False)])[0]
    return Environment(
        tk_core=_find_spec("tank"),
        qt_binding=chosen[0],
        qt_webengine=chosen[2],
        display=has_display(),
        local_browser=has_local_browser(),
    )


def read_site_info(site: str, *, http_proxy: Optional[str] = None, timeout: float = 10.0) -> dict:
    """The site's api3 ``info`` (no auth needed).

    :raises SiteUnreachableError: Nothing answered (refused, DNS, TLS, timeout).
    :raises SiteResponseError: Something answered, but not as a ShotGrid site.
    :raises ConfigurationError: The proxy setting or variable is not a proxy address (named,
        password masked).
    """
    from . import transport
    from .transport import unreachable
    from .transport.proxies import check_ca_bundle, proxy_for

    shotgun_api3 = transport.shotgun_api3()

    check_ca_bundle(site)  # a missing SHOTGUN_API_CACERTS is named, not "check the URL"
    proxy = proxy_for(site, http_proxy)  # the one rule: setting, else env with NO_PROXY
    try:
        sg = shotgun_api3.Shotgun(
            site, connect=False, http_proxy=proxy.api3() if proxy is not None else None
        )
    except ValueError as exc:
        raise SiteResponseError(f"Cannot use {site}: {exc}", site) from None
    sg.config.timeout_secs = timeout
    sg.config.max_rpc_attempts = 1
    from .transport import api3, redirected

    try:
        # a redirect is reported, never followed; the whole request within the timeout
        with api3.httplib2_never_redirects(timeout):
            info = sg.info()
    except shotgun_api3.ProtocolError as exc:
        if 300 <= exc.errcode < 400:
            location = (getattr(exc, "headers", None) or {}).get("location", "")
            raise redirected(site, exc.errcode, location, "ShotGrid's api3 `info`") from None
        raise SiteResponseError(
            f"{site} answered HTTP {exc.errcode} to ShotGrid's api3 `info`: it is not a ShotGrid "
            "site, or it is failing. Check the URL (https://<studio>.shotgrid.autodesk.com).",
            site,
            status=exc.errcode,
        ) from None
    except (socket.timeout, TimeoutError, OSError, shotgun_api3.lib.httplib2.HttpLib2Error) as exc:
        origin = proxy.origin if proxy is not None else ""
        raise unreachable(site, exc, "ShotGrid's api3 `info`", timeout, proxy=origin) from None
    except shotgun_api3.lib.httplib2.socks.ProxyError as exc:  # the proxy refused (407...)
        from .interactive import proxy_refused

        refused = proxy_refused(site, exc, "ShotGrid's api3 `info`", proxy)
        if refused is None:
            raise unreachable(
                site, exc, "ShotGrid's api3 `info`", timeout, proxy=proxy.origin if proxy else ""
            ) from None
        raise refused from None
    except shotgun_api3.Fault as exc:
        raise SiteResponseError(
            f"{site} refused ShotGrid's api3 `info` ({exc.__class__.__name__}).", site
        ) from None
    if not isinstance(info, dict) or "version" not in info:
        raise SiteResponseError(
            f"{site} is not a ShotGrid site: its /api3/json answered with something other than "
            "ShotGrid's JSON (an HTML page?). Check the URL.",
            site,
        )
    return info


def site_facts(info: dict) -> SiteFacts:
    """The login-related facts of an api3 ``info`` reply."""
    version = info.get("version")
    if isinstance(version, (list, tuple)):
        version = ".".join(str(part) for part in version[:3])
    return SiteFacts(
        auth_method=str(info.get("user_authentication_method") or "default"),
        app_session_launcher=bool(info.get("authentication_app_session_launcher_enabled")),
        unified_login_flow=bool(info.get("unified_login_flow_enabled")),
        version=str(version or "?"),
    )


def _site_proxy(site: str, http_proxy: str) -> str:
    """Where requests to ``site`` go by the one proxy rule (no password)."""
    from .transport.proxies import proxy_for

    try:
        proxy = proxy_for(site, http_proxy or None)
    except ValueError as exc:
        return f"INVALID: {exc}"
    if proxy is not None:
        return f"{proxy.display} (from {proxy.source}), for every path"
    if http_proxy or not any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return "none: direct"
    return "none: direct (no proxy variable for its scheme, or NO_PROXY names it)"


def _mode_line(path: str, want: int) -> tuple[str, str]:
    """``(text, mark)`` for a file's or folder's permissions."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        return f"cannot stat ({exc.__class__.__name__})", "WARN"
    if mode & 0o077:
        return (
            f"{mode:04o}: readable by others, should be {want:04o} (chmod {want:o} {path})",
            "WARN",
        )
    return f"{mode:04o}", "ok"


# -- the command --------------------------------------------------------------------------------


def diagnose(site: Optional[str]) -> Report:
    """Gather every fact doctor reports, for ``site`` (normalised) or no site."""
    from . import __version__
    from .settings import Settings

    env = environment()
    report = Report(environment=env, site=site)
    add = report.lines.append

    add(("Python", f"{sys.version.split()[0]} ({sys.executable})", ""))
    add(("sgconnect", __version__, ""))

    if env.tk_core:
        version = _distribution_version("sgtk", "tk-core") or "version unknown"
        origin = importlib.util.find_spec("tank").origin or ""
        add(("tk-core", f"{version} ({os.path.dirname(os.path.dirname(origin))})", "ok"))
    else:
        add(("tk-core", "NOT installed: no interactive login is possible", "FAIL"))

    bindings = qt_bindings()
    if bindings:
        text = ", ".join(f"{name} {version or ''}".strip() for name, version, _ in bindings)
        add(("Qt binding", text, "ok"))
        webengine = [name for name, _, has in bindings if has]
        add(
            (
                "QtWebEngine",
                f"present ({', '.join(webengine)})" if webengine else "MISSING: no web login page",
                "ok" if webengine else "WARN",
            )
        )
    else:
        add(("Qt binding", "none (PySide6/PySide2 not importable): no login dialog", "--"))
        add(("QtWebEngine", "none", "--"))
    add(("Display", "yes" if env.display else "none (DISPLAY/WAYLAND_DISPLAY unset)", ""))
    add(("Local browser", "yes" if env.local_browser else "none", ""))

    from .transport.proxies import mask_proxy

    try:
        settings = Settings.from_environment()
    except ConfigurationError as exc:  # reported, and the site is not read with a wrong setting
        report.site_error = str(exc)
        add(("Settings", f"INVALID {exc.setting} (see the conclusion)", "FAIL"))
        settings = Settings()
    proxies = [
        f"{name}={mask_proxy(os.environ[name])}"
        for name in _PROXY_VARIABLES
        if os.environ.get(name)
    ]
    add(
        (
            "Proxy (env)",
            ", ".join(proxies) + " (used by every path when the http_proxy setting is empty, "
            "except for the hosts NO_PROXY names)"
            if proxies
            else "none",
            "",
        )
    )
    add(
        (
            "Proxy (hook)",
            mask_proxy(settings.http_proxy)
            if settings.http_proxy
            else "none (http_proxy setting empty)",
            "",
        )
    )
    if site:
        add(("Proxy (site)", _site_proxy(site, settings.http_proxy), ""))
    cacerts = os.environ.get("SHOTGUN_API_CACERTS")
    if cacerts:
        ok = os.path.isfile(cacerts)
        add(
            (
                "CA bundle",
                f"SHOTGUN_API_CACERTS={cacerts}" + ("" if ok else " (file MISSING)"),
                "ok" if ok else "WARN",
            )
        )
    else:
        add(("CA bundle", "shotgun_api3's bundled certificates (SHOTGUN_API_CACERTS unset)", ""))

    _cache_lines(report, site)

    if site and not report.site_error:
        try:
            info = read_site_info(site, http_proxy=settings.http_proxy or None, timeout=10.0)
        except (SiteUnreachableError, SiteResponseError, CaBundleError, ConfigurationError) as exc:
            report.site_error = str(exc)
            add(("Site", f"{site}: could not be read (see the conclusion)", "FAIL"))
        else:
            facts = site_facts(info)
            report.site_facts = facts
            add(("Site", f"{site} (ShotGrid {facts.version})", "ok"))
            add(
                (
                    "  user_authentication_method",
                    f"{facts.auth_method} ({_AUTH_METHOD_NAMES.get(facts.auth_method, 'unknown')})",
                    "",
                )
            )
            add(
                (
                    "  app session launcher",
                    "enabled" if facts.app_session_launcher else "disabled",
                    "",
                )
            )
            add(("  unified login flow", "enabled" if facts.unified_login_flow else "disabled", ""))
    else:
        add(("Site", "none given (pass --site URL to check one)", "--"))

    report.verdicts = conclude(env, report.site_facts)
    return report


def _cache_lines(report: Report, site: Optional[str]) -> None:
    from . import session_cache

    add = report.lines.append
    root = session_cache.cache_root()
    if not os.path.isdir(root):
        add(("Session cache", f"{root} (not created yet: nobody logged in here)", ""))
        return
    text, mark = _mode_line(root, 0o700)
    add(("Session cache", f"{root} {text}", mark))
    paths = []
    global_file = session_cache.global_cache_file()
    if os.path.isfile(global_file):
        paths.append(global_file)
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            candidate = os.path.join(entry.path, "authentication.yml")
            if entry.is_dir() and os.path.isfile(candidate):
                paths.append(entry.path)
                paths.append(candidate)
    for path in paths[:20]:
        want = 0o700 if os.path.isdir(path) else 0o600
        text, mark = _mode_line(path, want)
        add(("  " + os.path.relpath(path, root), text, mark))
    if site:
        login = session_cache.current_login(site)
        saved = session_cache.read_saved_session(site) if login else None
        add(
            (
                "  saved session",
                f"{saved.login} on {site}" if saved else f"none for {site}",
                "",
            )
        )


def render(report: Report, out: TextIO) -> None:
    """Write the report and its conclusion."""
    width = max(len(label) for label, _, _ in report.lines) + 2
    out.write("sgconnect doctor: can this environment log in to ShotGrid?\n\n")
    for label, value, mark in report.lines:
        flag = f"[{mark}] " if mark else "     "
        out.write(f"{flag:<7}{label:<{width}}{value}\n")
    out.write("\nLogin methods here:\n")
    for verdict in report.verdicts:
        word = {True: "works  ", False: "no     ", None: "maybe  "}[verdict.works]
        out.write(f"  {verdict.method:<10}{word}{verdict.why}\n")
    out.write("\nConclusion: ")
    target = f" --site {report.site}" if report.site else ""
    working = report.working
    if report.site_error:
        out.write(f"the site could not be checked. {report.site_error}\n")
        maybe = [v.method for v in report.verdicts if v.works is None]
        if maybe:
            out.write(
                f"  This environment can run: {', '.join(maybe)} (if the site allows them).\n"
            )
    elif working:
        out.write(f"log in with `sgconnect login{target} --method {working[0]}`.\n")
        if len(working) > 1:
            out.write(f"  Also works here: {', '.join(working[1:])}.\n")
    elif report.site is None:
        maybe = [v.method for v in report.verdicts if v.works is None]
        if maybe:
            out.write(
                f"this environment can run {', '.join(maybe)}, depending on the site: pass "
                "--site URL for a definite answer.\n"
            )
        else:
            out.write("\n  " + "\n  ".join(advice_when_none_work(None, None)) + "\n")
    else:
        out.write(
            "\n  " + "\n  ".join(advice_when_none_work(report.site, report.site_facts)) + "\n"
        )
    warnings = [label.strip() for label, _, mark in report.lines if mark == "WARN"]
    if warnings:
        out.write(f"Warnings: {', '.join(warnings)} (see above).\n")


def run(site: Optional[str], out: Optional[TextIO] = None) -> int:
    """``sgconnect doctor``: 0 when a login method works, or may (no site given); else 1."""
    out = out or sys.stdout
    report = diagnose(site)
    render(report, out)
    out.flush()
    if report.site_error:
        return 1
    if report.site is not None and not report.working:
        return 1
    if not any(v.works is not False for v in report.verdicts):
        return 1  # no method can work here, whatever the site
    return 0


__all__ = [
    "Environment",
    "SiteFacts",
    "Verdict",
    "Report",
    "conclude",
    "advice_when_none_work",
    "environment",
    "read_site_info",
    "site_facts",
    "diagnose",
    "render",
    "run",
]
