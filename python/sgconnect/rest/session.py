"""REST API sessions: ShotGrid's ``/api/v1`` with a private, single-flight-minted Bearer token.

.. code-block:: python

    rest = sgconnect.rest_session("asset-report")
    rest.get("/entity/projects", params={"page[size]": 50})
    for project in rest.iter_pages("/entity/projects"):
        ...

A :class:`RestSession` acts as the same credential as the api3 connections (the hook's
``create_rest_session`` makes it). Its Bearer token is minted on first need:

- from the user's session token (``grant_type=session_token``), or
- for a script credential (service mode), with ``client_credentials`` (the script name and key),
  plus ``scope=sudo_as_login:<login>`` when the credential acts as a person.

The token is cached until shortly before ``expires_in`` and shared by every ``RestSession`` of the
credential, whatever the thread: N threads needing a token cause one mint. An expired token is
replaced with the ``refresh_token`` grant when a refresh token is held, else minted again. A 401
on a call mints again once and retries once. When the session itself has expired, the credential
renews it (:meth:`sgconnect.credentials.Credential.renew`: a session another process saved,
tk-core's prompt, or :class:`~sgconnect.errors.LoginRequiredError` when the process may not
prompt), then the token is minted again: one auth flow (:mod:`sgconnect.auth_flow`) drives both.

**What stays private.** The access token and the refresh token live in private attributes of the
credential's :class:`~sgconnect.rest.tokens.RestTokens`; the session token and the script key in
the credential, which applies itself to the token request (:meth:`Credential.rest_grant`). None
is ever on a public attribute, in a ``repr``, a log record or an exception; each is registered with
:func:`sgconnect.redaction.register_secret` as soon as it is seen. A path is resolved against the
site's ``/api/v1`` before any network access, and anything that would leave it (another scheme,
host or port, ``//host``, ``user@``, ``..``) is refused, so a tool cannot send the token elsewhere.
Redirects are never followed.

**Transport.** :class:`sgconnect.transport.http.HttpClient` (the standard library's
``http.client``: nothing to install in a DCC): one keep-alive connection per thread and site,
shared by every session and token; ``timeout_secs`` bounds each whole call; a ``GET`` (and the
token request, which mints one more token at worst) is sent again once, at once, when a
keep-alive socket turned out stale; a write whose reply was lost is never re-sent
(:class:`~sgconnect.errors.WriteOutcomeUnknownError`); a redirect is never followed
(:class:`~sgconnect.errors.SiteRedirectError`); a malformed reply (not JSON, not UTF-8,
truncated, over ``max_body_bytes``, not a JSON object) is a
:class:`~sgconnect.errors.SiteResponseError`. The proxy is the one rule's
(:func:`sgconnect.transport.proxies.proxy_for`: the ``http_proxy`` setting, else the environment's
proxies with ``NO_PROXY``), the CA bundle ``SHOTGUN_API_CACERTS``, else shotgun_api3's.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
from typing import Any, Iterator, Mapping, Optional

from ..auth_flow import drive
from ..credentials import Credential
from ..errors import RestError, SiteForbiddenError, SiteResponseError
from ..redaction import redact
from ..secret import RedactedBytes, RedactedText, Secret, form_body
from ..transport import USER_AGENT, write_outcome_unknown
from ..transport.http import DEFAULT_MAX_BODY_BYTES, IDEMPOTENT_METHODS, HttpClient
from ..transport.proxies import Proxy, proxy_for
from .tokens import expires_in
from .urls import TOKEN_PATH, Params, display, resolve_url, with_params

logger = logging.getLogger(__name__)


#: The ShotGrid error code of an authentication failure (bad credentials or expired token).
AUTH_ERROR_CODE = 102
#: The attempts of a REST token request, and of a REST call: the first, one after renewing.
REST_ATTEMPTS = 2

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "host", "content-length", "content-type"}
)


# -- the session ----------------------------------------------------------------------------------


class RestSession:
    """Calls to one site's REST API (``/api/v1``) as one credential.

    Made by the connection hook (``create_rest_session``); tools get one from
    ``sgconnect.rest_session(purpose)`` or ``app.get_rest_session(purpose)``. One per thread is
    handed out; the token behind it is shared by all of them.

    :param credential: Who the calls act as.
    :param interactive: May an expired session be renewed with a prompt?
    :param http_proxy: The hook's ``http_proxy`` setting (``host:port`` or
        ``user:pass@host:port``); ``None``: the environment's proxies, with ``NO_PROXY``.
    :param timeout_secs: The deadline of each whole call in seconds; ``None`` waits forever.
    :param max_body_bytes: Replies larger than this are refused (SiteResponseError).
    """

    def __init__(
        self,
        credential: Credential,
        *,
        interactive: bool = False,
        http_proxy: Optional[str] = None,
        timeout_secs: Optional[float] = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self._credential = credential
        self._interactive = bool(interactive)
        self._proxy: Optional[Proxy] = proxy_for(credential.site, http_proxy)
        self._timeout = timeout_secs or None
        self._http = HttpClient(
            credential.site,
            proxy=self._proxy,
            timeout_secs=self._timeout,
            max_body_bytes=max_body_bytes,
            to="for the REST API",
        )
        self._headers: dict[str, str] = {}
        self._writes_forbidden: Optional[str] = None

    @property
    def site(self) -> str:
        """The site URL."""
        return self._credential.site

    @property
    def login(self) -> str:
        """Who the calls act as (the person, for a script acting through sudo)."""
        return self._credential.person_login

    def __repr__(self) -> str:
        return f"<RestSession {self.login!r} on {self.site}>"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a RestSession cannot be pickled: ask sgconnect.rest_session() again")

    # -- what a hook may change ----------------------------------------------------------------

    def add_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with every call of this session (not with token requests).

        For a hook: tag a tool's calls (``X-Studio-Tool``). Authentication headers are refused.
        """
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError("a header name is a non-empty token such as 'X-Studio-Tool'")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"the {name} header is set by sgconnect and cannot be replaced")
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\x00"):
            raise ValueError(f"the value of the {name} header must be one line of text")
        self._headers[name] = value

    def forbid_writes(self, reason: str = "the connection hook allows reads only") -> None:
        """Make ``post``, ``patch``, ``put`` and ``delete`` raise SiteForbiddenError, unsent.

        For a hook: hand read-only sessions to reporting tools.
        """
        self._writes_forbidden = reason

    def _check_write(self, method: str, path: str) -> None:
        if self._writes_forbidden is not None:
            raise SiteForbiddenError(
                f"REST {method} refused for this tool on {self.site}: {self._writes_forbidden}.",
                self.site,
            )

    # -- the calls ------------------------------------------------------------------------------

    def get(self, path: str, params: Params = None) -> Any:
        """``GET`` ``path`` (relative to ``/api/v1``); return the parsed JSON reply."""
        return self._call("GET", path, params)

    def post(self, path: str, json: Any = None, params: Params = None) -> Any:
        """``POST`` ``json`` to ``path``; return the parsed JSON reply (``None`` for 204)."""
        self._check_write("POST", path)
        return self._call("POST", path, params, json)

    def patch(self, path: str, json: Any = None, params: Params = None) -> Any:
        """``PATCH`` ``path`` with ``json``; return the parsed JSON reply (``None`` for 204)."""
        self._check_write("PATCH", path)
        return self._call("PATCH", path, params, json)

    def put(self, path: str, json: Any = None, params: Params = None) -> Any:
        """``PUT`` ``json`` to ``path``; return the parsed JSON reply (``None`` for 204)."""
        self._check_write("PUT", path)
        return self._call("PUT", path, params, json)

    def delete(self, path: str, params: Params = None) -> Any:
        """``DELETE`` ``path``; return the parsed JSON reply (``None`` for 204)."""
        self._check_write("DELETE", path)
        return self._call("DELETE", path, params)

    def iter_pages(self, path: str, params: Params = None) -> Iterator[Any]:
        """Yield every item of ``data`` over all pages, following ``links.next``.

        The path is checked now; the pages are read as the iterator is consumed.

        :raises InvalidSiteError: ``path`` (now) or a ``links.next`` (later) is refused.
        :raises SiteResponseError: A page has no ``data`` list, or ``links.next`` loops.
        """
        return self._pages(with_params(resolve_url(self.site, path), params))

    def _pages(self, url: str) -> Iterator[Any]:
        seen: set[str] = set()
        while url:
            seen.add(url)
            page = self._call("GET", url, None)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise SiteResponseError(
                    f"{self.site} answered GET {display(url)} without a 'data' list: "
                    "iter_pages() is for collections; use get() for one record.",
                    self.site,
                )
            yield from data
            links = page.get("links") or {}
            next_link = links.get("next") if isinstance(links, dict) else None
            if not next_link:
                return
            url = resolve_url(self.site, next_link)
            if url in seen:
                raise SiteResponseError(
                    f"{self.site} answered a 'links.next' that loops back to a page already read "
                    f"({display(url)}); stopping.",
                    self.site,
                )

    # -- one call ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: Params, payload: Any = None) -> Any:
        url = with_params(resolve_url(self.site, path), params)
        body = None if payload is None else json.dumps(payload).encode("utf-8")

        def rejected(reply: tuple[int, Any, bytes]) -> bool:
            if reply[0] != http.client.UNAUTHORIZED:
                return False
            logger.debug(
                "REST %s %s on %s: 401, minting a new token", method, display(url), self.site
            )
            return True

        status, headers, raw = drive(
            self._credential.rest_tokens.bearer(self),
            lambda token: self._send(method, url, body, token),
            interactive=self._interactive,
            attempts=REST_ATTEMPTS,
            rejects_result=rejected,
        )
        return self._reply(method, url, status, headers, raw)

    def _reply(self, method: str, url: str, status: int, headers: Any, raw: bytes) -> Any:
        site = self.site
        if status == http.client.NO_CONTENT or (not raw.strip() and status < 300):
            return None
        write = method.upper() not in IDEMPOTENT_METHODS
        if write and status in (http.client.BAD_GATEWAY, http.client.GATEWAY_TIMEOUT):
            # A gateway may have passed the write on before it failed (as on api3).
            raise write_outcome_unknown(
                site,
                f"REST {method} {display(url)}",
                f"a gateway answered HTTP {status}",
                method=method,
            )
        write = write and status < 400
        decoded, problem = _decoded_json(headers, raw)
        shape = status < 400 and not problem and not isinstance(decoded, dict)
        if shape:
            problem = f"JSON of an unexpected shape ({type(decoded).__name__}, not an object)"
        if problem and write:
            # The site may have carried the write out before its reply was spoiled: never
            # a plain SiteResponseError, which a caller might retry (a write done twice).
            raise write_outcome_unknown(
                site,
                f"REST {method} {display(url)}",
                f"its reply could not be read ({problem})",
                method=method,
            )
        if shape:
            raise SiteResponseError(
                f"{site} answered REST {method} {display(url)} with {problem}: check the site "
                "URL, or a proxy in the way.",
                site,
                status=status,
            )
        if problem:
            raise self._not_json(f"{method} {display(url)}", status, problem)
        if status >= 400:
            errors = _errors_of(decoded)
            del decoded  # the reply may echo the request (its Bearer): only the redacted errors
            raise RestError(
                f"REST {method} {display(url)} on {site} failed: HTTP {status}"
                f"{_summary(errors)}{_advice(status)}",
                site,
                status=status,
                errors=errors,
            )
        return decoded

    # -- minting the token (for the credential's RestTokens) -------------------------------------

    def refreshed(self, refresh_token: Secret) -> Optional[Mapping[str, Any]]:
        """The reply of the ``refresh_token`` grant, or ``None`` when the site refused it."""
        try:
            reply = self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})
        except RestError as exc:
            if not _is_auth_failure(exc):
                raise
            return None
        return reply

    def minted(self) -> Mapping[str, Any]:
        """The reply of a fresh grant: the credential's own (session token or client
        credentials), renewed once through the auth flow when the site refuses it."""
        credential = self._credential
        return drive(
            credential,
            lambda attempt: self._grant(credential.rest_grant(attempt)),
            interactive=self._interactive,
            attempts=REST_ATTEMPTS,
            rejects_error=_is_auth_failure,
        )

    def _json(self, what: str, status: int, headers: Any, raw: bytes) -> Any:
        """The decoded JSON body of a reply to ``what``; SiteResponseError saying what was wrong
        when it is not JSON (no or another Content-Type, not UTF-8, not valid JSON)."""
        decoded, problem = _decoded_json(headers, raw)
        if problem:
            raise self._not_json(what, status, problem)
        return decoded

    def _not_json(self, what: str, status: int, problem: str) -> SiteResponseError:
        return SiteResponseError(
            f"{self.site} answered {what} with HTTP {status} and {problem} instead of the REST "
            "API's JSON: check the site URL, or a proxy in the way.",
            self.site,
            status=status,
        )

    def _grant(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST a token request; return the reply, or raise RestError (no secret in it).

        The secrets of ``fields`` are :class:`~sgconnect.secret.Secret` values, revealed only in
        the form body (a :class:`~sgconnect.secret.RedactedBytes`); the tokens of the reply are
        wrapped in a ``Secret`` as soon as it is decoded."""
        site = self.site
        url = site + TOKEN_PATH
        # Safe to send again after a lost reply: at worst the site minted one more token.
        status, headers, raw = self._send(
            "POST", url, form_body(fields), None, form=True, idempotent=True
        )
        grant = fields["grant_type"]
        reply = _tokens_hidden(self._json("the REST token request", status, headers, raw))
        del raw
        if status >= 300 or not isinstance(reply, dict):
            errors = _errors_of(reply)
            del reply  # the reply may echo the request's fields: only the redacted errors
            raise RestError(
                f"{site} refused a REST token for {self.login} (grant {grant}): HTTP {status}"
                f"{_summary(errors)}{self._credential.grant_advice()}",
                site,
                status=status,
                errors=errors,
            )
        token = reply.get("access_token")
        if not isinstance(token, Secret) or not token:
            raise SiteResponseError(
                f"{site} answered the REST token request without an access token.", site, status
            )
        logger.debug(
            "REST access token minted for %s on %s (grant %s, lifetime %d s)",
            self.login,
            site,
            grant,
            expires_in(reply),
        )
        return reply

    # -- HTTP -----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        body: Optional[bytes],
        token: Optional[Secret],
        *,
        form: bool = False,
        idempotent: Optional[bool] = None,
    ) -> tuple[int, Any, bytes]:
        """One HTTP request; return ``(status, headers, body)`` for any non-redirect answer."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = (
                "application/x-www-form-urlencoded" if form else "application/json"
            )
        if token is not None:
            headers.update(self._headers)
            # Revealed here only, in a header value whose repr is redacted.
            headers["Authorization"] = RedactedText(f"Bearer {token.reveal()}")
        what = "the REST token request" if form else f"REST {method} {display(url)}"
        reply = self._http.request(method, url, body, headers, what=what, idempotent=idempotent)
        # A reply may echo the request (its token): printed redacted in every frame.
        return reply.status, reply.headers, RedactedBytes(reply.body)


def _decoded_json(headers: Any, raw: bytes) -> tuple[Any, str]:
    """``(decoded JSON, "")``, or ``(None, what was wrong)``: no or another Content-Type, not
    UTF-8, not valid JSON."""
    raw_type = headers.get("Content-Type") if headers is not None else None
    content_type = (raw_type or "").split(";", 1)[0].strip().lower()
    if not content_type:
        return None, "no Content-Type"
    if not (content_type == "application/json" or content_type.endswith("+json")):
        return None, f"{content_type[:60]}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "a body that is not UTF-8"
    try:
        return json.loads(text), ""
    except ValueError:
        return None, "invalid JSON"


# -- error details --------------------------------------------------------------------------------


def _tokens_hidden(reply: Any) -> Any:
    """A token reply with its ``access_token`` and ``refresh_token`` as Secrets."""
    if isinstance(reply, dict):
        for name in ("access_token", "refresh_token"):
            value = reply.get(name)
            if isinstance(value, str) and value:
                reply[name] = Secret(value)
    return reply


def _errors_of(reply: Any) -> list[Any]:
    """The ``errors`` list of a REST reply, with any secret-shaped text redacted."""
    errors = reply.get("errors") if isinstance(reply, dict) else None
    if not isinstance(errors, list):
        return []
    return [_redacted(item) for item in errors]


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _summary(errors: list[Any]) -> str:
    texts = []
    for error in errors[:3]:
        if not isinstance(error, dict):
            continue
        title = str(error.get("title") or "").strip()
        detail = str(error.get("detail") or "").strip()
        text = f"{title}: {detail}" if title and detail else title or detail
        if text:
            texts.append(text[:200])
    return f" ({'; '.join(texts)})" if texts else ""


def _advice(status: int) -> str:
    if status == http.client.UNAUTHORIZED:
        return ". The site refused a freshly minted token too: check the user's access."
    if status == http.client.FORBIDDEN:
        return ". The user lacks the permission: ask a site admin."
    if status == http.client.NOT_FOUND:
        return ". Check the path (relative to /api/v1) and the entity id."
    if status >= 500:
        return ". The site is failing: try again later; if it persists, check the site status."
    return "."


def _is_auth_failure(error: BaseException) -> bool:
    """The site refused the credential itself (an expired session, a spent refresh token)."""
    if not isinstance(error, RestError):
        return False
    if error.status == http.client.UNAUTHORIZED:
        return True
    return any(isinstance(e, dict) and e.get("code") == AUTH_ERROR_CODE for e in error.errors)


__all__ = ["RestSession", "AUTH_ERROR_CODE"]
