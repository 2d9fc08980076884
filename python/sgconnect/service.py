"""Service mode: a script key + ``sudo_as_login``, configured in the hook's settings only.

Farm jobs and daemons have no person at a keyboard. Where the credential chain would prompt but
the process is non-interactive, and the ``service_script_name`` setting names a script (API
user), connections authenticate as that script and act, through ``sudo_as_login``, as the person
who submitted the job (``SGCONNECT_SUDO_AS_LOGIN``, set by :func:`sgconnect.farm.job_environment`).
Without a login to act as, the script acts as itself, and the audit record says so.

The script key is looked up, in order, in:

1. the environment variable named by ``service_key_env`` (default ``SGCONNECT_SCRIPT_KEY``),
   which is then **removed from** ``os.environ`` so that this process's children do not inherit
   it (the key stays in memory, in the credential and in a private cache of this module);
2. the OS keyring (service ``service_keyring_name``, username the script name), only when the
   optional ``keyring`` package is importable;
3. the file ``service_key_file``, which must be a regular file owned by this user and neither
   readable nor writable by group or others (``chmod 600``); anything else is refused.

No setting holds the key itself, and no error or log line names it: only where it was looked for.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import unicodedata
from typing import Any, Optional

from . import environ
from .credentials import Credential, ScriptCredential
from .errors import (
    ConfigurationError,
    ServiceAuthenticationError,
    ServiceKeyError,
    SgConnectError,
)
from .secret import Secret
from .settings import Settings
from .sites import normalize_site

logger = logging.getLogger("sgconnect.service")

__all__ = [
    "SUDO_VARIABLE",
    "SITE_VARIABLE",
    "MAX_LOGIN_LENGTH",
    "service_credential",
    "service_sites",
    "validate_login",
    "key_file_problem",
    "read_key_file",
    "forget_environment_keys",
    "take_environment_keys",
    "key_variable_problem",
    "refused_script_error",
]

#: The login of the person a farm job acts as (set on the submit side, never a token).
SUDO_VARIABLE = environ.SUDO_AS_LOGIN
#: The site a standalone process connects to when none is given.
SITE_VARIABLE = environ.SITE
#: Longer logins and script names are refused (ShotGrid logins are far shorter).
MAX_LOGIN_LENGTH = 255

_lock = threading.Lock()
#: Keys taken from (and removed from) the environment: variable -> key.
_env_keys: dict[str, Secret] = {}


def service_credential(
    site: Optional[str], settings: Settings, *, job: Any = None
) -> Optional[Credential]:
    """The service credential when service mode is configured, else None.

    :param site: The site URL; ``None`` for ``SGCONNECT_SITE``, else the one ``service_site``.
        It must be one of the ``service_site`` setting's sites: the key goes nowhere else.
    :param settings: The hook's settings (``service_*``).
    :param job: The farm job (:class:`sgconnect.farm.JobIdentity`), or ``None`` to read
        ``SGCONNECT_SUDO_AS_LOGIN`` alone. A job with a ticket is checked on the site
        (:func:`sgconnect.farm.verified_credential`): a few requests.
    :raises ConfigurationError: ``service_site`` is not set, or does not list the site (the
        message names both; no key was read or sent).
    :raises ServiceKeyError: Service mode is configured but no key can be read safely.
    :raises FarmIdentityError: The job's ticket failed a check, or the ``farm_identity``
        setting is ``verified`` and there is no ticket (a non-job process included).
    :raises ServiceAuthenticationError: The site refused the script key while checking a ticket.
    :raises SgConnectError: No site, or an invalid script name or sudo login.
    """
    script_name = (settings.service_script_name or "").strip()
    if not script_name:
        return None
    script_name = validate_login(script_name, what="service_script_name", error=ConfigurationError)
    from .farm import require_ticket

    require_ticket(settings.farm_identity, job, site)
    site = _service_site(site, script_name, settings)
    key, where = _read_key(script_name, settings, site)
    if job is not None and job.ticket is not None:
        from .farm import verified_credential

        credential = verified_credential(
            site,
            script_name,
            key,
            job,
            timeout_secs=settings.timeout_secs or None,
            http_proxy=settings.http_proxy or None,
        )
        # The ticket is spent: this process's children act as the person it proved.
        os.environ.pop(environ.TICKET, None)
        os.environ[SUDO_VARIABLE] = credential.sudo_as_login
        return credential
    sudo_as_login = job.person if job is not None else _sudo_as_login(site)
    credential = ScriptCredential(
        site, script_name, key, source="service", sudo_as_login=sudo_as_login
    )
    if sudo_as_login:
        logger.info(
            "Service mode on %s: script %s acts as %s (%s); key from %s.",
            site,
            script_name,
            sudo_as_login,
            SUDO_VARIABLE,
            where,
        )
    else:
        logger.info(
            "Service mode on %s: script %s acts as itself (no %s); key from %s.",
            site,
            script_name,
            SUDO_VARIABLE,
            where,
        )
    return credential


def validate_login(
    text: str, what: str = SUDO_VARIABLE, error: type[SgConnectError] = SgConnectError
) -> str:
    """Return ``text`` stripped if it can be a ShotGrid login or script name, else raise.

    Refused: empty, longer than :data:`MAX_LOGIN_LENGTH`, or holding a control character, a
    line separator or inner whitespace. The value is never echoed (it may be a pasted secret).

    :param error: The typed error to raise (``FarmIdentityError`` for a job's login,
        ``ConfigurationError`` for a setting); its first argument is the one-line message.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be a login (text), not {type(text).__name__}.")
    login = text.strip()
    if not login:
        raise error(f"{what} is empty: give a ShotGrid login, or unset it.")
    if len(login) > MAX_LOGIN_LENGTH:
        raise error(
            f"{what} is {len(login)} characters long, more than a login can be "
            f"({MAX_LOGIN_LENGTH}): give a ShotGrid login (never a token)."
        )
    for char in login:
        if char.isspace() or unicodedata.category(char)[0] == "C":
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise error(
                f"{what} holds a control or whitespace character ({name}): "
                "give a plain ShotGrid login."
            )
    return login


def key_file_problem(mode: int, owner: int, uid: Optional[int]) -> Optional[str]:
    """Why a key file with this ``st_mode`` and owner may not be used, or ``None`` if it may.

    Pure. ``uid`` is this process's effective user id (``None`` where there is none, on
    Windows: only the file type is checked there).
    """
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if uid is None:
        return None
    if owner != uid:
        return f"it is owned by user id {owner}, not by this user (id {uid})"
    loose = mode & (stat.S_IRWXG | stat.S_IRWXO)
    if loose:
        who = []
        if mode & stat.S_IRWXG:
            who.append("group")
        if mode & stat.S_IRWXO:
            who.append("others")
        return (
            f"its mode is {stat.S_IMODE(mode):04o}: {' and '.join(who)} can access it, so the "
            "key is not private"
        )
    return None


def read_key_file(path: str, site: Optional[str] = None) -> str:
    """Read a script key from ``path``, refusing a file that is not private.

    The file is opened first and checked through its open descriptor (no race with a swap), and
    opened non-blocking so that a FIFO cannot hang the process.

    :raises ServiceKeyError: Missing, unreadable, not private, or empty.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ServiceKeyError(
            f"The service key file {path} does not exist: create it (chmod 600) or fix the "
            "service_key_file setting.",
            site,
        ) from None
    except OSError as exc:
        raise ServiceKeyError(
            f"The service key file {path} cannot be opened ({exc.__class__.__name__}): check "
            "that it exists and is owned by the user running this process.",
            site,
        ) from None
    try:
        info = os.fstat(fd)
        uid = os.geteuid() if hasattr(os, "geteuid") else None
        problem = key_file_problem(info.st_mode, info.st_uid, uid)
        if problem is not None:
            fix = (
                f"chmod 600 {path}"
                if "mode" in problem
                else f"use a regular file owned by this user, with chmod 600 {path}"
            )
            raise ServiceKeyError(
                f"Refusing the service key file {path} because {problem}. Fix: {fix}.", site
            )
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > 65536:
                raise ServiceKeyError(
                    f"The service key file {path} is too large to hold a script key.", site
                )
    finally:
        os.close(fd)
    try:
        key = b"".join(chunks).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ServiceKeyError(
            f"The service key file {path} is not UTF-8 text: it must hold the script key only.",
            site,
        ) from None
    if not key:
        raise ServiceKeyError(
            f"The service key file {path} is empty: put the script key in it.", site
        )
    return key


# -- private -------------------------------------------------------------------------------------


def service_sites(settings: Settings) -> list[str]:
    """The sites the ``service_site`` setting lets the script key go to, normalised, in order.

    :raises ConfigurationError: One of them is not a site URL (the setting is named).
    """
    sites = []
    for text in (settings.service_site or "").replace(",", " ").split():
        try:
            site = normalize_site(text)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "The setting service_site (SGCONNECT_SERVICE_SITE) must hold site URLs such as "
                "https://studio.shotgrid.autodesk.com, comma or space separated; one is not.",
                setting="service_site",
            ) from None
        if site not in sites:
            sites.append(site)
    return sites


def _service_site(site: Optional[str], script_name: str, settings: Settings) -> str:
    """The site service mode may send the key to: the requested one (or ``SGCONNECT_SITE``) if
    the node's ``service_site`` lists it; the one ``service_site`` when nothing is requested."""
    allowed = service_sites(settings)
    if not allowed:
        raise ConfigurationError(
            f"Service mode (script {script_name}) needs the service_site setting "
            "(SGCONNECT_SERVICE_SITE): the site(s) this node may send the script key to. The "
            "job's SGCONNECT_SITE never chooses it.",
            setting="service_site",
        )
    requested = site or os.environ.get(SITE_VARIABLE, "").strip()
    if not requested:
        if len(allowed) == 1:
            return allowed[0]
        raise SgConnectError(
            f"Service mode (script {script_name}) needs a site: set {SITE_VARIABLE} in the job's "
            "environment (sgconnect.farm.job_environment() does), or pass site= to connect()."
        )
    requested = normalize_site(requested)
    if requested not in allowed:
        raise ConfigurationError(
            f"Service mode refuses to send the key of script {script_name} to {requested}: this "
            f"node's service_site setting allows only {', '.join(allowed)}. Connect to that site, "
            "or add this one to service_site (SGCONNECT_SERVICE_SITE) on the node.",
            requested,
            setting="service_site",
        )
    return requested


def _sudo_as_login(site: str) -> Optional[str]:
    raw = os.environ.get(SUDO_VARIABLE)
    if raw is None or not raw.strip():
        return None
    from .errors import FarmIdentityError

    try:
        return validate_login(raw)
    except SgConnectError as exc:
        raise FarmIdentityError(f"{exc} (service mode on {site})", site) from None


def _read_key(script_name: str, settings: Settings, site: str) -> tuple[Secret, str]:
    """``(key, where)``; ``where`` names the source, never the value. The key is a
    :class:`~sgconnect.secret.Secret` from the moment it is read."""
    looked = []
    variable = (settings.service_key_env or "").strip()
    if variable:
        problem = key_variable_problem(variable)
        if problem is not None:
            raise ConfigurationError(
                f"The setting service_key_env (SGCONNECT_SERVICE_KEY_ENV) {problem}: sgconnect "
                "removes that variable from the environment, so it must name the key's own "
                "variable, such as SGCONNECT_SCRIPT_KEY. Nothing was removed.",
                site,
                setting="service_key_env",
            )
        where = f"environment variable {variable}"
        looked.append(where)
        with _lock:
            taken = _taken_from_environment(variable)
            if taken:
                _env_keys[variable] = taken
            else:
                taken = _env_keys.get(variable)
        if taken:
            return taken, where

    keyring_name = (settings.service_keyring_name or "").strip()
    if keyring_name:
        found, where = _keyring_key(keyring_name, script_name)
        looked.append(where)
        if found:
            return Secret(found), where

    path = (settings.service_key_file or "").strip()
    if path:
        path = os.path.expanduser(os.path.expandvars(path))
        where = f"key file {path}"
        if os.path.lexists(path):
            return Secret(read_key_file(path, site)), where
        looked.append(f"{where} (does not exist)")

    raise ServiceKeyError(
        f"Service mode is configured for script {script_name} on {site}, but no script key was "
        f"found. Looked in: {'; '.join(looked) or 'nowhere (no key source configured)'}. Provide "
        "the key through the farm's secret store in that environment variable, the OS keyring, "
        "or a chmod 600 file named by the service_key_file setting.",
        site,
    )


def _taken_from_environment(variable: str) -> Secret | None:
    """The key in ``variable``, removed from the environment, as a Secret (or ``None``)."""
    value = os.environ.pop(variable, None)
    return Secret(value.strip()) if value and value.strip() else None


def _keyring_key(service: str, script_name: str) -> tuple[Optional[str], str]:
    """The key from the OS keyring, when the optional ``keyring`` package is importable."""
    try:
        import keyring  # optional, lazy on purpose
    except ImportError:
        return None, f"OS keyring {service!r} (skipped: the keyring package is not installed)"
    where = f"OS keyring service {service!r}, username {script_name!r}"
    try:
        key = keyring.get_password(service, script_name)
    except Exception as exc:  # no backend, locked keyring...: "not found"
        logger.debug("OS keyring lookup failed (%s).", exc.__class__.__name__)
        return None, f"{where} (failed: {exc.__class__.__name__})"
    key = key.strip() if isinstance(key, str) else ""
    return (key or None), where


def forget_environment_keys() -> None:
    """Forget the script keys taken from (and removed from) the environment.

    Not part of :func:`sgconnect.reset`: the variable is gone, so the next resolution would have
    no key. For tests, and for a process that must drop the key.
    """
    with _lock:
        _env_keys.clear()


#: What a variable named by ``service_key_env`` must look like (it is removed from the
#: environment): upper-case letters, digits and ``_``, and ``KEY`` or ``SECRET`` in the name.
_KEY_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
#: Prefixes of variables the loader and the interpreter read: never a key's variable.
_SYSTEM_PREFIXES = ("LD_", "DYLD_", "PYTHON")


def key_variable_problem(name: str) -> Optional[str]:
    """Why ``name`` may not be the variable a script key is taken (and removed) from, or ``None``.

    The rule: upper-case ASCII letters, digits and ``_`` (128 at most, a letter first), with
    ``KEY`` or ``SECRET`` in it, and not starting with ``LD_``, ``DYLD_`` or ``PYTHON``. So
    ``PATH``, ``HOME``, ``LD_PRELOAD`` or ``PYTHONPATH`` can never be removed. Pure; the name is
    never quoted (a key pasted there must not reach a message).
    """
    if not _KEY_VARIABLE.fullmatch(name):
        return "is not an upper-case variable name (A-Z, 0-9 and _, 128 characters at most)"
    if "KEY" not in name and "SECRET" not in name:
        return "names a variable without KEY or SECRET in its name"
    if name.startswith(_SYSTEM_PREFIXES):
        return "names a variable of the loader or of Python (LD_*, DYLD_*, PYTHON*)"
    return None


def take_environment_keys(environment: Optional[dict[str, str]] = None) -> list[str]:
    """Move script keys out of ``os.environ`` into this module's memory; return the variables.

    Runs when sgconnect is imported, whichever credential later wins: the default
    ``SGCONNECT_SCRIPT_KEY`` and the variable ``SGCONNECT_SERVICE_KEY_ENV`` names, if that name
    passes :func:`key_variable_problem` (else nothing of it is removed). A child
    process started afterwards does not inherit the key; service mode still finds it here.
    """
    environment = os.environ if environment is None else environment
    names = [environ.SCRIPT_KEY]
    configured = (environment.get(environ.SERVICE_KEY_ENV) or "").strip()
    if configured and key_variable_problem(configured) is not None:
        # Removed nothing: service mode raises ConfigurationError when it reads the setting.
        logger.warning(
            "%s %s: nothing removed from the environment.",
            environ.SERVICE_KEY_ENV,
            key_variable_problem(configured),
        )
    elif configured and configured not in names:
        names.append(configured)
    taken = []
    with _lock:
        for name in names:
            value = environment.pop(name, None)
            if value and value.strip():
                _env_keys[name] = Secret(value.strip())
                taken.append(name)
    return taken


def refused_script_error(
    error: BaseException, site: str, script_name: str, sudo_as_login: Optional[str]
) -> Optional[ServiceAuthenticationError]:
    """The typed error for the site's refusal of a script (``AuthenticationFault``), else None.

    A refusal that mentions ``sudo`` is about the person (unknown, retired, inactive, or not
    impersonable); any other is about the script name or key.
    """
    if type(error).__name__ != "AuthenticationFault":
        return None
    text = str(error).lower()
    if "sudo" in text and sudo_as_login:
        why = "inactive" if "inactive" in text else "unknown, retired or not impersonable"
        return ServiceAuthenticationError(
            f"{site} refused to let script {script_name} act as {sudo_as_login}: that user is "
            f"{why}. Check the person the job names ({SUDO_VARIABLE}) and their account on the "
            "site.",
            site,
            script_name=script_name,
            sudo_as_login=sudo_as_login,
        )
    return ServiceAuthenticationError(
        f"{site} refused the key of script {script_name}: check the service_script_name setting "
        "(SGCONNECT_SERVICE_SCRIPT_NAME) and the script key the farm provides, then run again.",
        site,
        script_name=script_name,
        sudo_as_login=sudo_as_login,
    )
