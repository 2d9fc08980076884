"""The errors sgconnect raises.

Every error names the site it is about and says what to do next. None carries a secret:
messages are built from logins, site URLs and error codes only, and
:func:`sgconnect.redaction.redact` is applied to any text that came from elsewhere (a server
reply, a tk-core exception) before it is put in a message.

All of them derive from :class:`SgConnectError`, so ``except sgconnect.SgConnectError`` catches
everything this package raises on purpose.
"""

from __future__ import annotations

from typing import Any, Optional


class SgConnectError(Exception):
    """Base class of every error raised by sgconnect.

    :ivar site: The site URL the error is about, or ``None``.
    """

    def __init__(self, message: str, site: Optional[str] = None):
        from .redaction import redact

        self.site = site
        super().__init__(redact(message))


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


class SiteTimeoutError(SiteUnreachableError):
    """The site did not answer a call within its deadline (``timeout_secs`` bounds the whole
    call: connect, TLS, send, every read and every retry)."""


class SiteRedirectError(SiteResponseError):
    """The site answered a request that carries a credential with a redirect. It is never
    followed; the message names the site and the Location's origin only.

    :ivar location_origin: ``scheme://host[:port]`` of the Location header ("" without one).
    """

    def __init__(
        self,
        message: str,
        site: Optional[str] = None,
        status: Optional[int] = None,
        location_origin: str = "",
    ):
        super().__init__(message, site, status)
        self.location_origin = location_origin


class WriteOutcomeUnknownError(SgConnectError):
    """A write (create, update, delete, revive, batch, upload...) may have reached the site, but
    its reply was lost, late or unreadable. It was not sent again: check whether it happened
    (find the entity) before writing again.

    :ivar method: The api3 method (or request) whose outcome is unknown.
    """

    def __init__(self, message: str, site: Optional[str] = None, method: str = ""):
        super().__init__(message, site)
        self.method = method


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
    "SiteTimeoutError",
    "SiteRedirectError",
    "WriteOutcomeUnknownError",
]
