"""The credential chain: who a connection acts as, written once, in order.

1. **The current sgtk user** (``sgtk.get_authenticated_user()``), when tk-core is already loaded:
   inside any engine, or after a bootstrap.
2. **A user handed down by a launcher**: ``TANK_CONTEXT`` (tk-multi-launchapp) or
   ``SHOTGUN_DESKTOP_CURRENT_USER`` (SG Desktop). The user is taken, and the token is removed from
   ``os.environ`` so that this tool's own children do not inherit it (``TANK_CONTEXT`` keeps its
   context, without ``_current_user``).
3. **The saved session** in tk-core's session cache (what SG Desktop and ``sgconnect login``
   save). Read without importing tk-core and without a request: the tool's first call is the
   first request. An expired session is renewed on that call.
4. **Interactive login** through tk-core, when the process may prompt; else **service mode**
   (script key + ``sudo_as_login``) when the hook configures it; else
   :class:`~sgconnect.errors.LoginRequiredError`, which names the command to log in with.

Each step returns a :class:`~sgconnect.credentials.Credential`, or ``None`` to pass to the next.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import nullcontext
from typing import Any, Optional

from . import environ, session_cache, state, tk
from . import interactive as interactive_login
from .cache_lock import cache_lock
from .credentials import Credential, SessionCredential, credential_for_tk_user
from .errors import LoginRequiredError
from .service import service_credential
from .settings import Settings
from .sites import normalize_site

logger = logging.getLogger(__name__)

#: Environment variables through which launchers hand a serialized user (with its token) down.
HANDED_DOWN_VARIABLES = environ.HANDED_DOWN


def resolve_credential(site: Optional[str], *, interactive: bool, settings: Settings) -> Credential:
    """Run the chain for ``site`` (``None``: the default site) and return the credential."""
    site = normalize_site(site) if site else default_site()
    credential = from_current_user(site) or from_handed_down_user(site) or from_saved_session(site)
    if credential is not None:
        return credential
    if interactive:
        return from_interactive_login(site, settings)
    credential = service_credential(site, settings)
    if credential is not None:
        return credential
    raise LoginRequiredError(site, reason="no saved session")


def is_interactive(requested: Optional[bool], settings: Settings) -> bool:
    """May this call prompt? An explicit argument wins, then the settings, then the process.

    A process may prompt when it has a QApplication (tk-core's dialog) or a terminal on stdin
    (tk-core's console prompts). ``SGCONNECT_NON_INTERACTIVE=1`` forbids it, for farm and CI.
    """
    if requested is not None:
        return requested
    if settings.non_interactive:
        return False
    if tk.qapplication_exists():
        return True
    stdin = sys.stdin
    return bool(stdin is not None and stdin.isatty())


# -- 1. the current sgtk user ------------------------------------------------------------------


def from_current_user(site: Optional[str]) -> Optional[Credential]:
    """The user tk-core holds for this process, if tk-core is loaded and it is on ``site``."""
    user = tk.current_sgtk_user()
    if user is None or not _same_site(user.host, site):
        return None
    return credential_for_tk_user(user, source="current_user")


# -- 2. a user handed down by a launcher ---------------------------------------------------------


def from_handed_down_user(site: Optional[str]) -> Optional[Credential]:
    """The user SG Desktop or a launcher serialized into this process's environment.

    The token-bearing variables are removed from ``os.environ`` whether or not the user matches
    ``site``: nothing this process starts inherits them.
    """
    payloads = _take_handed_down_users()
    for payload in payloads:
        try:
            user = tk.authentication().deserialize_user(payload)
        except Exception as exc:  # a bad payload is "no user", not a crash
            logger.warning(
                "Ignoring a handed-down user that tk-core could not read (%s).",
                exc.__class__.__name__,
            )
            continue
        if _same_site(user.host, site):
            credential = credential_for_tk_user(user, source="handed_down")
            _HANDED_DOWN[credential.site] = credential
            return credential
    return _HANDED_DOWN.get(site) if site else next(iter(_HANDED_DOWN.values()), None)


#: Users taken from the environment, kept for later calls (the variables are gone by then).
_HANDED_DOWN: dict[str, Credential] = {}


def _take_handed_down_users() -> list[Any]:
    """Serialized users found in the environment, removing them from it."""
    payloads = []
    desktop_user = os.environ.pop(environ.DESKTOP_CURRENT_USER, None)
    if desktop_user:
        payloads.append(desktop_user)
    context = os.environ.get(environ.TANK_CONTEXT)
    if context and "_current_user" in context:
        try:
            data = json.loads(context)
        except ValueError:
            logger.warning(
                "TANK_CONTEXT is not JSON: its user is ignored and the variable removed."
            )
            del os.environ[environ.TANK_CONTEXT]
        else:
            user = data.pop("_current_user", None) if isinstance(data, dict) else None
            if user:
                payloads.append(user)
            os.environ[environ.TANK_CONTEXT] = json.dumps(data)
    return payloads


# -- 3. the saved session ------------------------------------------------------------------------


def from_saved_session(site: Optional[str]) -> Optional[Credential]:
    """The session saved in tk-core's cache for ``site``'s current user. No request, no tk-core."""
    if site is None:
        return None
    saved = session_cache.read_saved_session(site)
    if saved is None:
        return None
    return SessionCredential(
        site,
        saved.login,
        saved.session_token,
        source="saved",
        session_metadata=saved.session_metadata,
    )


# -- 4. interactive login ------------------------------------------------------------------------


def from_interactive_login(site: Optional[str], settings: Settings) -> Credential:
    """tk-core's interactive login; the session is saved for SG Desktop and the next process.

    Under the site's cache lock, the saved session is looked for once more: another process may
    have logged in while this one waited, and then nobody is asked twice.
    """
    with cache_lock(site) if site else nullcontext():
        credential = from_saved_session(site)  # None without a site
        if credential is not None:
            return credential
        user = interactive_login.login(
            site,
            settings.login_method,
            http_proxy=settings.http_proxy,
            timeout_secs=settings.timeout_secs,
        )
    return credential_for_tk_user(user, source="fresh")


def login_and_adopt(broker: Any, site: Optional[str], method: str) -> tuple[Any, Credential]:
    """tk-core's interactive login now (the session is saved), then ``broker`` uses it.

    The one login flow of ``sgconnect.login()`` and the app's "Switch user" command.

    :param broker: The :class:`~sgconnect.handouts.Broker` that adopts the new credential.
    :param site: The normalised site URL, or ``None`` for tk-core's current host.
    :param method: The login method (``auto``, ``qt``, ``browser``, ``url``, ``password``).
    :returns: tk-core's new user, and the credential wrapping it.
    """
    user = interactive_login.login(site, method)
    credential = credential_for_tk_user(user, source="fresh")
    broker.adopt(credential)
    return user, credential


def reset() -> None:
    """Forget the users handed down by a launcher (their variables are gone from the
    environment; a new one is read from it again)."""
    _HANDED_DOWN.clear()


state.register(__name__, reset)


# -- helpers -------------------------------------------------------------------------------------


def default_site() -> Optional[str]:
    """The site to use when none is given: the current sgtk user's, ``SGCONNECT_SITE``, or
    tk-core's current host (the last site logged in to)."""
    user = tk.current_sgtk_user()
    if user is not None:
        return normalize_site(user.host)
    configured = os.environ.get(environ.SITE)
    if configured:
        return normalize_site(configured)
    if _HANDED_DOWN:
        return next(iter(_HANDED_DOWN))
    for payload_var in HANDED_DOWN_VARIABLES:
        if os.environ.get(payload_var):
            credential = from_handed_down_user(None)
            if credential is not None:
                return credential.site
    host = session_cache.current_host()
    return normalize_site(host) if host else None


def _same_site(host: Optional[str], site: Optional[str]) -> bool:
    if site is None:
        return True
    if not host:
        return False
    try:
        return normalize_site(host) == site
    except ValueError:
        return False
