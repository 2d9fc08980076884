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

import io
import json
import logging
import os
import pickle
import sys
from contextlib import nullcontext
from typing import Any, Optional

from . import environ, farm, session_cache, state, tk
from . import interactive as interactive_login
from .cache_lock import cache_lock
from .credentials import Credential, SessionCredential, credential_for_tk_user
from .errors import FarmIdentityError, LoginRequiredError
from .service import service_credential
from .settings import Settings
from .sites import normalize_site

logger = logging.getLogger(__name__)

#: Environment variables through which launchers hand a serialized user (with its token) down.
HANDED_DOWN_VARIABLES = environ.HANDED_DOWN


def resolve_credential(site: Optional[str], *, interactive: bool, settings: Settings) -> Credential:
    """Run the chain for ``site`` (``None``: the default site) and return the credential.

    A farm job (:func:`sgconnect.farm.job_identity`) is resolved by :func:`resolve_for_job`
    instead: it acts as exactly the person it names, or fails.
    """
    site = normalize_site(site) if site else default_site()
    job = farm.job_identity()
    if job is not None:
        return resolve_for_job(site, job, interactive=interactive, settings=settings)
    credential = from_current_user(site) or from_handed_down_user(site) or from_saved_session(site)
    if credential is not None:
        return credential
    if interactive:
        return from_interactive_login(site, settings)
    credential = service_credential(site, settings)
    if credential is not None:
        return credential
    raise LoginRequiredError(site, reason="no saved session")


def resolve_for_job(
    site: Optional[str], job: farm.JobIdentity, *, interactive: bool, settings: Settings
) -> Credential:
    """The credential of a farm job: exactly the person it names, the farm's script, or an error.

    1. Service mode, when configured, comes first: a session saved on the node (someone else's
       workstation, or an expired one) never wins over it. A verified ticket is checked on the
       site and its creator is the person (:func:`sgconnect.farm.verified_credential`); else the
       person is ``SGCONNECT_SUDO_AS_LOGIN``; a job that names nobody acts as the script.
    2. Without service mode, a person's own credential (current user, handed down, saved, or an
       interactive login) is used only when it is that person's.

    :raises FarmIdentityError: The only credential here is someone else's, the job has a
        ticket but the farm has no service mode to check it with, or the node requires a ticket
        (``farm_identity: verified``) and the job has none.
    :raises LoginRequiredError: No credential at all, and the process may not prompt.
    """
    farm.require_ticket(settings.farm_identity, job, site)
    service = service_credential(site, settings, job=job)
    if service is not None:
        return service
    if job.ticket is not None:
        raise FarmIdentityError(
            f"This job carries a verified farm ticket ({environ.TICKET}) but service mode is not "
            "configured on this node, so the ticket cannot be checked: set "
            "SGCONNECT_SERVICE_SCRIPT_NAME and the script key on the farm.",
            site,
        )
    credential = from_current_user(site) or from_handed_down_user(site) or from_saved_session(site)
    if credential is None and interactive:
        credential = from_interactive_login(site, settings)
    if credential is None:
        raise LoginRequiredError(
            site, reason="no saved session, and service mode is not configured"
        )
    if job.person is not None and credential.person_login.lower() != job.person.lower():
        raise FarmIdentityError(
            f"This job names {job.person} ({environ.SUDO_AS_LOGIN}) but the only credential on "
            f"this node acts as {credential.person_login} ({credential.source}): configure "
            "service mode on the farm (SGCONNECT_SERVICE_SCRIPT_NAME and its key) so the job "
            f"acts as {job.person}.",
            site,
            expected=job.person,
            actual=credential.person_login,
        )
    return credential


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

    The token-bearing variables left ``os.environ`` when sgconnect was imported
    (:func:`take_handed_down_users`), whether or not the user matches ``site``: nothing this
    process starts inherits them. Each user is read once (through tk-core) and kept per site.
    """
    payloads = take_handed_down_users()
    _PENDING.clear()
    for payload in payloads:
        try:
            user = tk.authentication().deserialize_user(payload)
        except Exception as exc:  # a bad payload is "no user", not a crash
            logger.warning(
                "Ignoring a handed-down user that tk-core could not read (%s).",
                exc.__class__.__name__,
            )
            continue
        try:
            key = normalize_site(user.host)
        except (ValueError, TypeError):
            logger.warning("Ignoring a handed-down user whose site URL is invalid.")
            continue
        _HANDED_DOWN.setdefault(key, credential_for_tk_user(user, source="handed_down"))
    return _HANDED_DOWN.get(site) if site else next(iter(_HANDED_DOWN.values()), None)


#: Users taken from the environment, kept for later calls (the variables are gone by then).
_HANDED_DOWN: dict[str, Credential] = {}
#: Serialized users taken from the environment and not yet read through tk-core.
_PENDING: list[Any] = []


def take_handed_down_users() -> list[Any]:
    """Move the serialized users out of ``os.environ``; return every one not yet read.

    Runs when sgconnect is imported (inside an engine too, where the current sgtk user wins and
    the handed-down user is never read) and again before each read. ``SHOTGUN_DESKTOP_CURRENT_USER``
    is removed; ``TANK_CONTEXT`` keeps its context without ``_current_user``, in the form it came
    in: JSON (``Context.serialize(use_json=True)``) or tk-core's pickle (the default). No tk-core
    import, no request.
    """
    desktop_user = os.environ.pop(environ.DESKTOP_CURRENT_USER, None)
    if desktop_user:
        _PENDING.append(desktop_user)
    context = os.environ.get(environ.TANK_CONTEXT)
    if context and "_current_user" in context:
        try:
            stripped, user = strip_context_user(context)
        except ValueError as exc:
            logger.warning(
                "TANK_CONTEXT cannot be read (%s): the variable is removed, with its user.", exc
            )
            del os.environ[environ.TANK_CONTEXT]
        else:
            if user:
                _PENDING.append(user)
            os.environ[environ.TANK_CONTEXT] = stripped
    return list(_PENDING)


def strip_context_user(context: str) -> tuple[str, Any]:
    """``(context without _current_user, the serialized user or None)`` of a ``TANK_CONTEXT``.

    Mirrors tk-core's ``Context.serialize``/``deserialize``: text starting with ``{`` is JSON,
    anything else tk-core's pickle (protocol 0, UTF-8 text, or ISO-8859-1 when the data says
    ``_payload_encoding``), written back the same way. The pickle is read without resolving any
    class or function (a context is plain dicts, lists and strings), so a planted payload cannot
    run code here.

    :raises ValueError: The text is neither (the reason names no content).
    """
    if context.lstrip().startswith("{"):
        try:
            data = json.loads(context)
        except ValueError:
            raise ValueError("not JSON") from None
        user = data.pop("_current_user", None) if isinstance(data, dict) else None
        return json.dumps(data), user
    data = _safe_unpickle(context.encode("utf-8"))
    encoding = data.get(_PAYLOAD_ENCODING) if isinstance(data, dict) else None
    if isinstance(encoding, str):
        try:
            data = _safe_unpickle(context.encode(encoding))
        except LookupError:
            raise ValueError("unknown payload encoding") from None
    if not isinstance(data, dict):
        raise ValueError("not a serialized context")
    user = data.pop("_current_user", None)
    try:
        return pickle.dumps(data, protocol=0).decode("utf-8"), user
    except UnicodeError:
        data[_PAYLOAD_ENCODING] = "ISO-8859-1"
        return pickle.dumps(data, protocol=0).decode("ISO-8859-1"), user


#: tk-core's ``pickle.FALLBACK_ENCODING_KEY``.
_PAYLOAD_ENCODING = "_payload_encoding"


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError("only plain data is read")


def _safe_unpickle(data: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(f"not tk-core's pickle ({exc.__class__.__name__})") from None


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
    """Forget the users handed down by a launcher once read (their variables are gone from the
    environment; a new one is read from it again). Users taken from the environment on import and
    not read yet stay pending."""
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
    if take_handed_down_users():
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
