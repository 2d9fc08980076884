"""The shotgun_api3 connections sgconnect hands out.

:class:`SessionConnection` is a ``shotgun_api3.Shotgun`` for a human user's session. Like tk-core's
``ShotgunWrapper`` it catches an expired session (error 102, or the 302 to
``/saml/saml_login_request`` when SSO claims expired), renews through tk-core, and retries, so that
a tool's call completes instead of failing halfway through its work. Unlike it, it:

- keeps the token out of ``sg.config`` (it is read from the credential when each request is
  built), so no public attribute of the connection holds it;
- shares one single-flight renewal between all the connections of a credential, whatever the
  thread, and obeys non-interactive mode;
- turns transport faults into typed errors that name the site.

:class:`ScriptConnection` does the same for a script key (service mode), without renewal.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any, Optional

try:
    import shotgun_api3
except ImportError:  # a DCC's bare Python: tk-core up to v0.23.6 brings it only as tank_vendor
    from tank_vendor import shotgun_api3

from .credentials import Credential
from .errors import SgConnectError, SiteResponseError, SiteUnreachableError

AuthenticationFault, ProtocolError = shotgun_api3.AuthenticationFault, shotgun_api3.ProtocolError

#: The attempts a call gets: the first, one after adopting a token another thread or process
#: renewed, one after an interactive renewal.
MAX_AUTH_ATTEMPTS = 3

USER_AGENT = "sgconnect/0.1"


def _is_expired_sso_claims(error: ProtocolError) -> bool:
    """The 302 a SAML site answers once the SSO claims behind a session expired."""
    headers = getattr(error, "headers", None) or {}
    location = headers.get("location") or headers.get("Location") or ""
    return error.errcode == http.client.FOUND and location.endswith("/saml/saml_login_request")


def unreachable(
    site: str, error: BaseException, action: str, timeout: Optional[float]
) -> SiteUnreachableError:
    """The error for a request to ``site`` that got no answer: a timeout, or a transport fault."""
    if isinstance(error, (TimeoutError, socket.timeout)):
        return SiteUnreachableError(
            f"{site} did not answer {action} within {timeout} s (timeout). Check the network, "
            "or raise the timeout in the hook settings.",
            site,
        )
    return SiteUnreachableError(
        f"Cannot reach {site} ({why_unreachable(error)}): check the URL (is it http or https?), "
        f"the network and any proxy (`sgconnect doctor --site {site}`).",
        site,
    )


def why_unreachable(error: BaseException) -> str:
    """A person's words for a transport fault, with the exception's class name."""
    import ssl  # noqa: PLC0415 - already loaded by shotgun_api3

    kind = error.__class__.__name__
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused: nothing listens there ({kind})"
    if isinstance(error, socket.gaierror):
        return f"unknown host name ({kind})"
    if isinstance(error, ssl.SSLError):
        return (
            "TLS failed: an http site given as https, or a certificate problem "
            f"(see SHOTGUN_API_CACERTS) ({kind})"
        )
    return kind


class _SiteFaults:
    """Mixin: typed, secret-free errors for transport faults, and no token on ``config``."""

    _sgc_credential: Credential

    def _decode_response(self, headers: Any, body: Any) -> Any:
        decoded = super()._decode_response(headers, body)  # type: ignore[misc]
        if not isinstance(decoded, dict):
            content_type = (headers or {}).get("content-type", "no content type")
            raise SiteResponseError(
                f"{self._sgc_credential.site} answered with {content_type} instead of ShotGrid's "
                "JSON: check the site URL, or a proxy in the way.",
                self._sgc_credential.site,
            )
        return decoded

    def _sgc_transport_call(self, method: str, params: Any, include_auth_params: bool, first: bool):
        site = self._sgc_credential.site
        try:
            return super()._call_rpc(method, params, include_auth_params, first)  # type: ignore[misc]
        except (AuthenticationFault, SgConnectError):
            raise
        except ProtocolError as exc:
            if _is_expired_sso_claims(exc):
                raise
            raise SiteResponseError(
                f"{site} answered HTTP {exc.errcode} to {method}: the site is failing or "
                "overloaded. Try again later; if it persists, check the site status.",
                site,
                status=exc.errcode,
            ) from None
        except (OSError, shotgun_api3.lib.httplib2.HttpLib2Error) as exc:  # timeouts included
            timeout = self.config.timeout_secs  # type: ignore[attr-defined]
            raise unreachable(site, exc, method, timeout) from None

    def get_session_token(self) -> str:
        """Refused: tools never hold a session token. Use ``sgconnect.rest_session()`` for REST."""
        raise SgConnectError(
            "sgconnect connections do not hand out session tokens. For the REST API use "
            "sgconnect.rest_session(purpose); to run a child process, let it call "
            "sgconnect.connect() itself.",
            self._sgc_credential.site,
        )


class SessionConnection(_SiteFaults, shotgun_api3.Shotgun):
    """A connection acting as a human user's session, renewed through tk-core when it expires."""

    def __init__(
        self,
        credential: Credential,
        *,
        interactive: bool,
        http_proxy: str | None = None,
        timeout_secs: float | None = None,
    ):
        self._sgc_credential = credential
        self._sgc_interactive = interactive
        # No credential reaches shotgun_api3's config: _auth_params() reads the credential.
        super().__init__(credential.site, http_proxy=http_proxy, connect=False)
        self.config.timeout_secs = timeout_secs
        self.add_user_agent(USER_AGENT)

    def __repr__(self) -> str:
        return f"<SessionConnection {self._sgc_credential.login!r} on {self.base_url}>"

    def _auth_params(self) -> dict[str, Any]:
        self.config.session_token = self._sgc_token
        try:
            return super()._auth_params()
        finally:
            self.config.session_token = None

    def _call_rpc(self, method, params, include_auth_params=True, first=False):
        credential = self._sgc_credential
        attempt = 1
        while True:
            self._sgc_token = credential._session_token()
            try:
                return self._sgc_transport_call(method, params, include_auth_params, first)
            except AuthenticationFault:
                if attempt >= MAX_AUTH_ATTEMPTS:
                    raise
            except ProtocolError as exc:  # only the expired-claims 302 gets here
                if attempt >= MAX_AUTH_ATTEMPTS or not _is_expired_sso_claims(exc):
                    raise
            credential._renewed_session_token(self._sgc_token, self._sgc_interactive)
            attempt += 1


class ScriptConnection(_SiteFaults, shotgun_api3.Shotgun):
    """A connection acting as a script (API user), optionally as a person via ``sudo_as_login``."""

    def __init__(
        self,
        credential: Credential,
        *,
        http_proxy: str | None = None,
        timeout_secs: float | None = None,
    ):
        self._sgc_credential = credential
        super().__init__(
            credential.site,
            http_proxy=http_proxy,
            sudo_as_login=credential.sudo_as_login,
            connect=False,
        )
        self.config.script_name = credential.login
        self.config.timeout_secs = timeout_secs
        self.add_user_agent(USER_AGENT)

    def __repr__(self) -> str:
        sudo = f" as {self.config.sudo_as_login!r}" if self.config.sudo_as_login else ""
        return f"<ScriptConnection {self._sgc_credential.login!r}{sudo} on {self.base_url}>"

    def _auth_params(self) -> dict[str, Any]:
        self.config.api_key = self._sgc_credential._script_key
        try:
            return super()._auth_params()
        finally:
            self.config.api_key = None

    def _call_rpc(self, method, params, include_auth_params=True, first=False):
        return self._sgc_transport_call(method, params, include_auth_params, first)


def create_connection(
    credential: Credential,
    *,
    interactive: bool,
    http_proxy: str | None = None,
    timeout_secs: float | None = None,
) -> shotgun_api3.Shotgun:
    """A new :class:`ScriptConnection` or :class:`SessionConnection` for ``credential``."""
    if credential.is_script:
        return ScriptConnection(credential, http_proxy=http_proxy, timeout_secs=timeout_secs)
    return SessionConnection(
        credential, interactive=interactive, http_proxy=http_proxy, timeout_secs=timeout_secs
    )
