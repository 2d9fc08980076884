"""The shotgun_api3 connections sgconnect hands out.

:class:`SessionConnection` is a ``shotgun_api3.Shotgun`` for a human user's session. Like tk-core's
``ShotgunWrapper`` it catches an expired session (error 102, or the 302 to
``/saml/saml_login_request`` when SSO claims expired), renews through tk-core, and retries, so that
a tool's call completes instead of failing halfway through its work. Unlike it, it:

- keeps the token out of ``sg.config`` (it is read from the credential when each request is
  built), so no public attribute of the connection holds it;
- shares one single-flight renewal between all the connections of a credential, whatever the
  thread, and obeys non-interactive mode;
- turns transport faults into typed errors that name the site;
- sends through sgconnect's api3 transport (:mod:`sgconnect.transport.api3`), not httplib2: no
  redirect followed, one deadline per call, reads reconnected once and writes never re-sent, typed
  replies, one socket per thread and site shared by every purpose, server capabilities once per
  site per process;
- downloads attachments without the session token ever reaching the tool.

:class:`ScriptConnection` does the same for a script key (service mode), without renewal.
"""

from __future__ import annotations

import http.client
import json
import logging
from typing import TYPE_CHECKING, Any

from .auth_flow import MAX_AUTH_ATTEMPTS, drive
from .credentials import Attempt, Credential, ScriptCredential, SessionCredential
from .errors import LoginFailedError, SgConnectError, SiteResponseError
from .redaction import redact, register_secret
from .renewal import one_call
from .secret import RedactedText, Secret, json_body
from .sitetext import neutralize
from .transport import DEFAULT_PROXY_PORT, USER_AGENT, api3, unreachable
from .transport import shotgun_api3 as _shotgun_api3

if TYPE_CHECKING:
    from .transport.proxies import Proxy

shotgun_api3 = _shotgun_api3()
AuthenticationFault = shotgun_api3.AuthenticationFault
ProtocolError = shotgun_api3.ProtocolError
#: shotgun_api3's logger: its request and response debug lines stay where tools look for them.
_API3_LOG = logging.getLogger("shotgun_api3")

__all__ = ["SessionConnection", "ScriptConnection", "create_connection", "MAX_AUTH_ATTEMPTS"]


def is_rejection(error: BaseException) -> bool:
    """Whether the site rejected an api3 call's credential: ``AuthenticationFault`` (error 102),
    or the 302 to ``/saml/saml_login_request`` of expired SSO claims."""
    if isinstance(error, AuthenticationFault):
        return True
    return isinstance(error, ProtocolError) and _is_expired_sso_claims(error)


def _is_expired_sso_claims(error: ProtocolError) -> bool:
    """The 302 a SAML site answers once the SSO claims behind a session expired."""
    headers = getattr(error, "headers", None) or {}
    location = headers.get("location") or headers.get("Location") or ""
    return error.errcode == http.client.FOUND and location.endswith("/saml/saml_login_request")


class _SiteFaults:
    """Mixin: the credential applied to each request through the auth flow, typed and
    secret-free errors for transport faults, and no secret on ``config`` between requests."""

    _sgc_credential: Credential
    _sgc_interactive = False
    _sgc_attempt: Attempt
    #: The api3 proxy with its credentials (private: shotgun_api3's config only names it).
    _sgc_proxy: Proxy | None = None

    @property
    def may_prompt(self) -> bool:
        """Whether renewing this connection's expired session may show a login prompt (it keeps
        the policy it was handed out with)."""
        return self._sgc_interactive

    def _sgc_auth_params(self) -> dict[str, Any]:
        """The auth params of the call in flight, the secret a :class:`Secret` in them."""
        # The attempt of the call in flight; outside one (uploads), the secret as it is now.
        attempt = getattr(self, "_sgc_attempt", None) or self._sgc_credential.attempt()
        config = self.config  # type: ignore[attr-defined]
        build = super()._auth_params  # type: ignore[misc]
        return self._sgc_credential.api3_auth_params(config, attempt, build)

    def _auth_params(self) -> dict[str, Any]:
        # Only shotgun_api3's uploads and form posts ask for these: they need text, so the
        # secret is revealed in a str whose repr is redacted (their params dicts print it so).
        return {
            key: RedactedText(value.reveal()) if isinstance(value, Secret) else value
            for key, value in self._sgc_auth_params().items()
        }

    def _build_payload(self, method: str, params: Any, include_auth_params: bool = True) -> Any:
        # The auth params go in with their secret as a Secret: the payload's repr (in
        # shotgun_api3's _call_rpc frame) shows [redacted]; _encode_payload reveals it.
        payload = super()._build_payload(method, params, include_auth_params=False)  # type: ignore[misc]
        if include_auth_params:
            payload["params"].insert(0, self._sgc_auth_params())
        return payload

    def _encode_payload(self, payload: Any) -> bytes:
        # The body as shotgun_api3 encodes it, in bytes whose repr redacts the secret (the
        # frames of _call_rpc, _make_call and _http_request, and its "Request body is" log).
        return json_body(payload)

    def _call_rpc(self, method, params, include_auth_params=True, first=False):
        def send(attempt: Attempt) -> Any:
            self._sgc_attempt = attempt
            return self._sgc_transport_call(method, params, include_auth_params, first)

        try:
            with one_call():
                return drive(
                    self._sgc_credential,
                    send,
                    interactive=self._sgc_interactive,
                    attempts=MAX_AUTH_ATTEMPTS,
                    rejects_error=is_rejection,
                )
        except AuthenticationFault as exc:
            credential = self._sgc_credential
            if not isinstance(credential, ScriptCredential):
                raise LoginFailedError(
                    f"{credential.site} kept rejecting the session of {credential.person_login} "
                    f"after {MAX_AUTH_ATTEMPTS} attempts: log in again with `sgconnect login "
                    f"--site {credential.site}`, or ask the site's admin about the account.",
                    credential.site,
                ) from None
            from .service import refused_script_error

            typed = refused_script_error(
                exc, credential.site, credential.script_name, credential.sudo_as_login
            )
            raise (typed or exc) from None

    def _response_errors(self, sg_response: Any) -> Any:
        try:
            return super()._response_errors(sg_response)  # type: ignore[misc]
        except shotgun_api3.ShotgunError as exc:
            # The site's fault message reaches the tool's terminal: no escapes, one line.
            exc.args = tuple(
                neutralize(redact(arg)) if isinstance(arg, str) else arg for arg in exc.args
            )
            raise

    def _decode_response(self, headers: Any, body: Any) -> Any:
        """The reply as JSON, or :class:`SiteResponseError` saying what was wrong with it."""
        site = self._sgc_credential.site
        rpc = getattr(self, "_sgc_rpc", None) or "the call"

        def wrong(what: str) -> SgConnectError:
            if not api3.is_read(rpc):  # it may have been carried out: never re-sent
                return api3.unreadable_write(site, rpc, what)
            return SiteResponseError(
                f"{site} answered {rpc} with {what} instead of ShotGrid's JSON: check the "
                "site URL, or a proxy in the way.",
                site,
            )

        content_type = (headers or {}).get("content-type")
        if not content_type:
            raise wrong("no Content-Type")
        if not content_type.lower().startswith(("application/json", "text/javascript")):
            raise wrong(content_type)
        if not body:
            raise wrong("an empty body")
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise wrong("a body that is not UTF-8") from None
        try:
            decoded = json.loads(text)
        except ValueError:
            raise wrong("invalid JSON") from None
        if not isinstance(decoded, dict):
            raise wrong(f"JSON of an unexpected shape (a {type(decoded).__name__})")
        return decoded

    def _make_call(self, verb: str, path: str, body: Any, headers: Any) -> Any:
        """One request through sgconnect's api3 transport (replaces shotgun_api3's retry loop:
        reads reconnect once there, writes are never re-sent)."""
        config = self.config  # type: ignore[attr-defined]
        req_headers = {"user-agent": "; ".join(self._user_agents)}  # type: ignore[attr-defined]
        if config.authorization:
            req_headers["Authorization"] = config.authorization
        req_headers.update(headers or {})
        deadline = getattr(self, "_sgc_deadline", None) or api3.Deadline(config.timeout_secs)
        debug = _API3_LOG.isEnabledFor(logging.DEBUG)
        if debug:  # shotgun_api3's own debug lines (the redaction filter cleans them)
            _API3_LOG.debug("Request is %s:%s://%s%s", verb, config.scheme, config.server, path)
            _API3_LOG.debug("Request headers are %s", req_headers)
            _API3_LOG.debug("Request body is %s", body)
        reply = api3.send(
            api3.Target.of(config, self._sgc_proxy_in_use()),
            verb,
            path,
            body or None,
            req_headers,
            rpc=getattr(self, "_sgc_rpc", None),
            deadline=deadline,
            site=self._sgc_credential.site,
        )
        if debug:
            _API3_LOG.debug("Response status is %s %s", *reply[0])
            _API3_LOG.debug("Response headers are %s", reply[1])
            _API3_LOG.debug("Response body is %s", reply[2])
        return reply

    def _close_connection(self) -> None:
        api3.close(api3.Target.of(self.config, self._sgc_proxy_in_use()))  # type: ignore[attr-defined]
        super()._close_connection()  # type: ignore[misc]

    @property
    def server_caps(self) -> Any:
        """The site's capabilities, from its ``info`` fetched once per site per process
        (:func:`sgconnect.transport.api3.capabilities`)."""
        caps = self._server_caps  # type: ignore[has-type]
        config = self.config  # type: ignore[attr-defined]
        if caps is None or caps.host != config.server:
            info = api3.capabilities(self.base_url, self.info)  # type: ignore[attr-defined]
            caps = shotgun_api3.shotgun.ServerCapabilities(config.server, info)
            self._server_caps = caps
        return caps

    def _sgc_transport_call(self, method: str, params: Any, include_auth_params: bool, first: bool):
        site = self._sgc_credential.site
        # One deadline for the whole call: connect, TLS, send, every read, every retry. A call
        # made inside it (the capabilities' info) has its own, and the outer one is restored.
        outer = getattr(self, "_sgc_rpc", None), getattr(self, "_sgc_deadline", None)
        self._sgc_rpc = method
        self._sgc_deadline = api3.Deadline(self.config.timeout_secs)  # type: ignore[attr-defined]
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
            config = self.config  # type: ignore[attr-defined]
            proxy = self._sgc_proxy_in_use()
            raise unreachable(
                site, exc, method, config.timeout_secs, proxy=proxy.origin if proxy else ""
            ) from None
        finally:
            self._sgc_rpc, self._sgc_deadline = outer

    def get_session_token(self) -> str:
        """Refused: tools never hold a session token. Use ``sgconnect.rest_session()`` for REST."""
        raise SgConnectError(
            "sgconnect connections do not hand out session tokens. For the REST API use "
            "sgconnect.rest_session(purpose); to run a child process, let it call "
            "sgconnect.connect() itself.",
            self._sgc_credential.site,
        )

    def get_auth_cookie_handler(self) -> Any:
        """Refused: the handler holds the session token. ``download_attachment()`` works."""
        return self.get_session_token()

    def download_attachment(
        self, attachment: Any = False, file_path: Any = None, attachment_id: Any = None
    ) -> Any:
        """shotgun_api3's ``download_attachment``, with the session cookie sent to the site's own
        origin only (a redirect to storage elsewhere is followed without it), the answer within
        ``timeout_secs`` and the body bounded by progress (no stall of ``timeout_secs``), and
        typed errors (:func:`sgconnect.transport.api3.download`)."""
        if attachment is False:
            if not isinstance(attachment_id, int):
                raise TypeError("Missing parameter 'attachment': a dict, an int or None")
            attachment = attachment_id
        url = self.get_attachment_download_url(attachment)  # type: ignore[attr-defined]
        if url is None:
            return None
        config = self.config  # type: ignore[attr-defined]
        return api3.download(
            url,
            site=self._sgc_credential.site,
            cookie=self._sgc_cookie_token,
            proxy=self._sgc_proxy_in_use(),
            timeout=config.timeout_secs,
            user_agent="; ".join(self._user_agents),  # type: ignore[attr-defined]
            file_path=file_path,
        )

    def _build_opener(self, handler: Any) -> Any:
        """shotgun_api3's urllib opener (uploads, thumbnails), never following a redirect, with
        the one CA rule, and bodies sent in blocks (:func:`sgconnect.transport.api3.
        transfer_handlers`: an upload is bounded by progress, not as a whole); its proxy handler
        holds the proxy's credentials only while the opener is in use."""
        config = self.config  # type: ignore[attr-defined]
        public = config.proxy_handler
        if self._sgc_proxy is not None:
            import urllib.request

            config.proxy_handler = urllib.request.ProxyHandler(
                {config.scheme: self._sgc_proxy.url()}
            )
        try:
            opener = super()._build_opener(handler)  # type: ignore[misc]
        finally:
            config.proxy_handler = public
        site = self.base_url  # type: ignore[attr-defined]
        for transfer in api3.transfer_handlers(site, timeout=config.timeout_secs):
            opener.add_handler(transfer)
        return opener

    def _sgc_proxy_in_use(self) -> Proxy | None:
        """The proxy requests go through: the one this connection was made with, else one a
        tool set on ``sg.config`` itself (``proxy_server``, ``proxy_port``, ``proxy_user``,
        ``proxy_pass``), else ``None``."""
        if self._sgc_proxy is not None:
            return self._sgc_proxy
        config = self.config  # type: ignore[attr-defined]
        if not config.proxy_server:
            return None
        from .transport.proxies import Proxy

        return Proxy(
            config.proxy_server,
            int(config.proxy_port or DEFAULT_PROXY_PORT),
            config.proxy_user,
            config.proxy_pass,
            source="sg.config",
        )

    def _sgc_use_proxy(self, proxy: Proxy | None) -> None:
        """Keep ``proxy`` (its password) privately; shotgun_api3's config only names it."""
        self._sgc_proxy = proxy
        if proxy is not None:
            self.config.proxy_user = proxy.username  # type: ignore[attr-defined]

    def _send_form(self, url: str, params: dict) -> str:
        """An upload form, sent once: shotgun_api3 would send it up to three times, following
        redirects with no deadline. A lost reply is :class:`WriteOutcomeUnknownError`."""
        params.update(self._auth_params())
        opener = self._build_opener(shotgun_api3.shotgun.FormPostHandler)
        config = self.config  # type: ignore[attr-defined]
        proxy = self._sgc_proxy
        result = api3.send_form(
            opener,
            url,
            params,
            site=self._sgc_credential.site,
            timeout=config.timeout_secs,
            proxy=proxy.origin if proxy is not None else "",
        )
        site = self._sgc_credential.site
        try:
            text = result.decode("utf-8") if isinstance(result, bytes) else result
        except UnicodeDecodeError:  # it may have been carried out: never a plain SiteResponseError
            raise api3.unreadable_write(site, "upload", "a body that is not UTF-8") from None
        if not text[:1].isdigit():  # ShotGrid answers "1..." (done) or "0..." (refused)
            raise api3.unreadable_write(
                site, "upload", "not ShotGrid's answer (an HTML page from a proxy or gateway?)"
            )
        return text

    def _upload_data_to_storage(
        self, data: Any, content_type: str, size: int, storage_url: str
    ) -> str:
        """shotgun_api3's PUT of an upload's data to cloud storage, sent once under the transfer
        bounds, with typed errors that never show the presigned URL
        (:func:`sgconnect.transport.api3.put_to_storage`)."""
        import urllib.request

        opener = self._build_opener(urllib.request.HTTPHandler)
        request = urllib.request.Request(storage_url, data=data, method="PUT")
        request.add_header("Content-Type", content_type)
        request.add_header("Content-Length", str(size))
        proxy = self._sgc_proxy
        return api3.put_to_storage(
            opener,
            request,
            site=self._sgc_credential.site,
            timeout=self.config.timeout_secs,  # type: ignore[attr-defined]
            proxy=proxy.origin if proxy is not None else "",
        )

    def _sgc_cookie_token(self) -> str:
        """The session token for the site's download cookie, asked of the site with this
        connection's own credential (``get_session_token``); never kept on ``config``."""
        config = self.config  # type: ignore[attr-defined]
        try:
            token = shotgun_api3.Shotgun.get_session_token(self)
            register_secret(token)
            return token
        finally:
            config.session_token = None


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
        # No credential reaches shotgun_api3's config: _auth_params() applies it per request.
        proxy = _api3_proxy(http_proxy)
        super().__init__(credential.site, http_proxy=_proxy_address(proxy), connect=False)
        self._sgc_use_proxy(proxy)
        self.config.timeout_secs = timeout_secs
        self.add_user_agent(USER_AGENT)

    def __repr__(self) -> str:
        return f"<SessionConnection {self._sgc_credential.person_login!r} on {self.base_url}>"


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
        proxy = _api3_proxy(http_proxy)
        super().__init__(
            credential.site,
            http_proxy=_proxy_address(proxy),
            sudo_as_login=credential.sudo_as_login,
            connect=False,
        )
        self._sgc_use_proxy(proxy)
        self.config.script_name = credential.script_name
        self.config.timeout_secs = timeout_secs
        self.add_user_agent(USER_AGENT)

    def __repr__(self) -> str:
        sudo = f" as {self.config.sudo_as_login!r}" if self.config.sudo_as_login else ""
        return f"<ScriptConnection {self._sgc_credential.script_name!r}{sudo} on {self.base_url}>"


def _api3_proxy(http_proxy: str | None) -> Proxy | None:
    """``http_proxy`` checked by the one proxy rule's parser: shotgun_api3's own parser (whose
    ValueError quotes the value, password and all) never sees a value it would refuse.

    :raises ConfigurationError: Not a proxy address, or an IPv6 one shotgun_api3 cannot carry
        (named, password masked).
    """
    if not (http_proxy and http_proxy.strip()):
        return None
    from .transport.proxies import parse_http_proxy

    proxy = parse_http_proxy(http_proxy)
    proxy.api3()  # refuses what shotgun_api3's host:port format cannot carry
    return proxy


def _proxy_address(proxy: Proxy | None) -> str | None:
    """``host:port`` for shotgun_api3's config: no credentials (they stay in the
    :class:`~sgconnect.transport.proxies.Proxy`, out of ``sg.config.proxy_pass`` and
    ``sg.config.proxy_handler``)."""
    return f"{proxy.host}:{proxy.port}" if proxy is not None else None


def _session_connection(credential: Credential, interactive: bool, **kwargs: Any) -> Any:
    return SessionConnection(credential, interactive=interactive, **kwargs)


def _script_connection(credential: Credential, interactive: bool, **kwargs: Any) -> Any:
    return ScriptConnection(credential, **kwargs)


#: The connection class of each credential kind.
_MAKERS = {SessionCredential: _session_connection, ScriptCredential: _script_connection}


def create_connection(
    credential: Credential,
    *,
    interactive: bool,
    http_proxy: str | None = None,
    timeout_secs: float | None = None,
) -> Any:
    """A new :class:`ScriptConnection` or :class:`SessionConnection` for ``credential``."""
    for kind, make in _MAKERS.items():
        if isinstance(credential, kind):
            return make(credential, interactive, http_proxy=http_proxy, timeout_secs=timeout_secs)
    raise TypeError(f"no api3 connection for a {type(credential).__name__}")
