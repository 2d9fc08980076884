"""The errors sgconnect raises.

Every error names the site it is about and says what to do next. None carries a secret:
messages are built from logins, site URLs and error codes only, and
:func:`sgconnect.redaction.redact` is applied to any text that came from elsewhere (a server
reply, a tk-core exception) before it is put in a message.

All of them derive from :class:`SgConnectError`, so ``except sgconnect.SgConnectError`` catches
everything this package raises on purpose, in an engine too: the app makes its copy of the package
the process's ``sgconnect`` (see ``python/__init__.py``), so there is one set of classes.

What every error does (:class:`SgConnectError`):

- its message is redacted (:func:`sgconnect.redaction.redact`) and neutralised
  (:func:`sgconnect.sitetext.neutralize`: no escape sequence, no control character, one line),
  whatever site text went into it;
- raised ``from None``, it keeps no ``__context__``: the exception it replaced (a shotgun_api3
  fault whose frames hold a request body, a 403 page that echoes the request, tk-core's prompt
  holding a password) is not reachable from it, not even by code that ignores
  ``__suppress_context__``.
"""

from __future__ import annotations

from typing import Any, Optional

_CONTEXT = BaseException.__dict__["__context__"]


class SgConnectError(Exception):
    """Base class of every error raised by sgconnect.

    :ivar site: The site URL the error is about, or ``None``.
    """

    def __init__(self, message: str, site: Optional[str] = None):
        from .redaction import redact
        from .sitetext import neutralize

        self.site = site
        super().__init__(neutralize(redact(message)))

    # ``raise ... from None`` sets __suppress_context__ but keeps the replaced exception in
    # __context__, where crash reporters and ``traceback`` walkers that ignore the flag find it
    # (and the secrets its frames or message hold). A suppressed context is no context at all.
    @property  # type: ignore[override]
    def __context__(self) -> Optional[BaseException]:  # type: ignore[override]
        if self.__suppress_context__:
            return None
        return _CONTEXT.__get__(self)

    @__context__.setter
    def __context__(self, value: Optional[BaseException]) -> None:
        _CONTEXT.__set__(self, value)


class InvalidSiteError(SgConnectError, ValueError):
    """A site URL was refused before any network access (bad scheme, credentials in it...)."""


class InvalidPurposeError(SgConnectError, ValueError):
    """A purpose label was refused (empty, too long, or with control characters)."""


class SiteForbiddenError(SgConnectError):
    """The connection hook refused to hand out a connection to this site."""


class HookError(SgConnectError, TypeError):
    """A connection hook method returned what sgconnect cannot use (``None``, a wrong type).

    The message names the hook file and the method to fix.

    :ivar hook_file: The file of the hook class whose method misbehaved.
    :ivar method: The method's name (``resolve_credential``, ``create_connection``...).
    """

    def __init__(
        self, message: str, site: Optional[str] = None, *, hook_file: str = "", method: str = ""
    ):
        super().__init__(message, site)
        self.hook_file = hook_file
        self.method = method


class SiteUnreachableError(SgConnectError):
    """The site could not be reached: connection refused, DNS failure or timeout."""


class SiteResponseError(SgConnectError):
    """The site answered, but not as a ShotGrid site should (5xx, HTML instead of JSON...).

    :ivar status: The HTTP status, when there was one.
    """

    def __init__(self, message: str, site: Optional[str] = None, status: Optional[int] = None):
        super().__init__(message, site)
        self.status = status


class LoginRequiredError(SgConnectError):
    """A login is needed, but this process may not prompt (non-interactive mode).

    The message names the command that logs in: ``sgconnect login --site <site>``.
    """

    def __init__(self, site: Optional[str], reason: str = "no saved session"):
        target = f" --site {site}" if site else ""
        super().__init__(
            f"Login required for {site or 'the ShotGrid site'} ({reason}), and this process is "
            f"non-interactive so it will not prompt. Log in once with "
            f"`sgconnect login{target}` (or SG Desktop), then run this again.",
            site,
        )
        self.reason = reason


class LoginCancelledError(SgConnectError):
    """The person cancelled the login. Nothing was saved."""


class LoginFailedError(SgConnectError):
    """The login did not succeed: wrong password, approval denied or expired, and so on."""


class ServiceKeyError(SgConnectError):
    """Service mode is configured, but its script key could not be read safely."""


class RestError(SgConnectError):
    """A REST API call failed.

    :ivar status: The HTTP status of the reply.
    :ivar errors: The ``errors`` list of the REST reply (never holds a token).
    """

    def __init__(
        self,
        message: str,
        site: Optional[str] = None,
        status: Optional[int] = None,
        errors: Optional[list[Any]] = None,
    ):
        super().__init__(message, site)
        self.status = status
        self.errors = errors or []


class ConfigurationError(SgConnectError, ValueError):
    """A setting, a hook path or a file sgconnect needs is wrong: the message names which one
    and the value's expected shape (never the value itself when it may be a secret).

    :ivar setting: The setting or environment variable to fix, or ``""``.
    """

    def __init__(self, message: str, site: Optional[str] = None, *, setting: str = ""):
        super().__init__(message, site)
        self.setting = setting


class ServiceAuthenticationError(SgConnectError):
    """The site refused service mode: a wrong script name or key, or a ``sudo_as_login`` target
    that is unknown, retired, inactive or may not be impersonated.

    :ivar script_name: The script (ApiUser) that tried.
    :ivar sudo_as_login: The person it tried to act as, or ``None``.
    """

    def __init__(
        self,
        message: str,
        site: Optional[str] = None,
        *,
        script_name: str = "",
        sudo_as_login: Optional[str] = None,
    ):
        super().__init__(message, site)
        self.script_name = script_name
        self.sudo_as_login = sudo_as_login


class FarmIdentityError(SgConnectError):
    """A farm job names a person, and this process cannot act as exactly that person: the only
    credential is someone else's, or the job's verified ticket failed a check.

    :ivar expected: The person the job names (or the ticket's creator), or ``None``.
    :ivar actual: Who this process would have acted as, or ``None``.
    """

    def __init__(
        self,
        message: str,
        site: Optional[str] = None,
        *,
        expected: Optional[str] = None,
        actual: Optional[str] = None,
    ):
        super().__init__(message, site)
        self.expected = expected
        self.actual = actual


class SessionSaveError(SgConnectError):
    """The login succeeded, but its session could not be saved in tk-core's session cache
    (``SHOTGUN_HOME`` read-only, full, or not a folder). Nothing is used until it can be saved."""


class WriteOutcomeUnknownError(SgConnectError):
    """A write may or may not have been carried out: the request may have reached the site, then
    the reply was lost (connection reset or closed, timeout) or unusable (malformed, truncated,
    over the size cap, not JSON). It is never re-sent.

    Deliberately neither a :class:`SiteUnreachableError` nor a :class:`SiteResponseError`: code
    that retries those does not write twice. The message says how to check (read the entity back)
    before trying again.

    :ivar method: The HTTP method or api3 method (``POST``, ``create``...).
    :ivar what: What was being written (``REST POST /api/v1/entity/assets``).
    """

    def __init__(
        self, message: str, site: Optional[str] = None, *, method: str = "", what: str = ""
    ):
        super().__init__(message, site)
        self.method = method
        self.what = what


class SiteTimeoutError(SiteUnreachableError):
    """The site did not answer a call within its deadline (``timeout_secs`` bounds the whole
    call: connect, TLS, send, every read and every retry)."""


class SiteRedirectError(SiteResponseError):
    """The site answered a request that carries a credential with a redirect (3xx), which is
    never followed, so the credential cannot travel elsewhere; the message names the site and
    the Location's origin only.

    :ivar location_origin: The origin (``scheme://host:port``) the redirect pointed at, or ``""``.
    """

    def __init__(
        self,
        message: str,
        site: Optional[str] = None,
        status: Optional[int] = None,
        *,
        location_origin: str = "",
    ):
        super().__init__(message, site, status)
        self.location_origin = location_origin


class ProxyError(SiteUnreachableError):
    """The proxy in the way failed: it refused the connection, its credentials, or the tunnel.

    :ivar proxy: The proxy as ``http://host:port`` (never its password).
    """

    def __init__(self, message: str, site: Optional[str] = None, *, proxy: str = ""):
        super().__init__(message, site)
        self.proxy = proxy


class CaBundleError(SgConnectError):
    """The CA bundle (``SHOTGUN_API_CACERTS``) is missing, unreadable or holds no certificate.

    :ivar path: The bundle's path.
    """

    def __init__(self, message: str, site: Optional[str] = None, *, path: str = ""):
        super().__init__(message, site)
        self.path = path


class UntrustedSessionCacheError(SessionSaveError):
    """A login was refused before it started: the session cache file or folder it would write
    the new session token into is one sgconnect refuses to read (writable by others, owned by
    another user, not a regular file). Nothing was sent to the site and nothing was saved.

    :ivar path: The file or folder to fix (its permissions) or remove.
    """

    def __init__(self, message: str, site: Optional[str] = None, *, path: str = ""):
        super().__init__(message, site)
        self.path = path


__all__ = [
    "SgConnectError",
    "InvalidSiteError",
    "InvalidPurposeError",
    "SiteForbiddenError",
    "HookError",
    "SiteUnreachableError",
    "SiteResponseError",
    "LoginRequiredError",
    "LoginCancelledError",
    "LoginFailedError",
    "ServiceKeyError",
    "RestError",
    "ConfigurationError",
    "ServiceAuthenticationError",
    "FarmIdentityError",
    "SessionSaveError",
    "WriteOutcomeUnknownError",
    "SiteTimeoutError",
    "SiteRedirectError",
    "ProxyError",
    "CaBundleError",
    "UntrustedSessionCacheError",
]
