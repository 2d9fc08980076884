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
renews it (:meth:`sgconnect.credentials.Credential._renewed_session_token`: a session another
process saved, tk-core's prompt, or :class:`~sgconnect.errors.LoginRequiredError` when the process
may not prompt), then the token is minted again.

**What stays private.** The access token, the refresh token, the session token and the script key
live in private attributes of module-level objects (:class:`_TokenHolder`), never on a public
attribute, in a ``repr``, a log record or an exception; each is registered with
:func:`sgconnect.redaction.register_secret` as soon as it is seen. A path is resolved against the
site's ``/api/v1`` before any network access, and anything that would leave it (another scheme,
host or port, ``//host``, ``user@``, ``..``) is refused, so a tool cannot send the token elsewhere.
Redirects are never followed.

**Transport.** The standard library only (``urllib.request``): no new dependency for a DCC. The
proxy (``host:port`` or ``user:pass@host:port``, port 8080 by default) and the CA bundle
(``SHOTGUN_API_CACERTS``, else the one shipped with shotgun_api3) are the api3 connection's; like
shotgun_api3, the ``http_proxy`` environment variables are ignored.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from .connection import USER_AGENT, why_unreachable
from .credentials import Credential
from .errors import (
    InvalidSiteError,
    RestError,
    SgConnectError,
    SiteForbiddenError,
    SiteResponseError,
    SiteUnreachableError,
)
from .redaction import redact, register_secret

logger = logging.getLogger(__name__)

API_ROOT = "/api/v1"
TOKEN_PATH = API_ROOT + "/auth/access_token"

#: A token is replaced this long before it expires: 10 % of its lifetime, at most 30 s.
MAX_EXPIRY_MARGIN_SECS = 30.0
EXPIRY_MARGIN_FRACTION = 0.1
#: The lifetime assumed when a token reply has no usable ``expires_in`` (ShotGrid's value).
DEFAULT_EXPIRES_IN = 600.0
#: The api3 client's default proxy port.
DEFAULT_PROXY_PORT = 8080
#: The ShotGrid error code of an authentication failure (bad credentials or expired token).
AUTH_ERROR_CODE = 102

Params = Union[Mapping[str, Any], Sequence[tuple[str, Any]], None]


# -- the token shared by every RestSession of a credential ----------------------------------------


class _TokenHolder:
    """The Bearer and refresh tokens of one credential. Private; its ``repr`` shows no token."""

    __slots__ = ("lock", "mints", "_access", "_refresh", "_renew_at")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mints = 0
        self._access: Optional[str] = None
        self._refresh: Optional[str] = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        state = "a token" if self._access else "no token"
        return f"<_TokenHolder with {state}, {self.mints} mint(s)>"

    def __reduce__(self):
        raise TypeError("a REST token holder cannot be pickled")

    def valid_token(self) -> Optional[str]:
        """The access token, unless it is (about to be) expired."""
        token, renew_at = self._access, self._renew_at
        if token is not None and time.monotonic() < renew_at:
            return token
        return None

    def store(self, reply: Mapping[str, Any]) -> float:
        """Keep the tokens of a token reply; return its lifetime in seconds."""
        access = reply["access_token"]
        refresh = reply.get("refresh_token")
        register_secret(access)
        if isinstance(refresh, str) and refresh:
            register_secret(refresh)
            self._refresh = refresh
        lifetime = expires_in(reply)
        self._access = access
        self._renew_at = time.monotonic() + lifetime - expiry_margin(lifetime)
        self.mints += 1
        return lifetime


_holders: weakref.WeakKeyDictionary[Credential, _TokenHolder] = weakref.WeakKeyDictionary()
_holders_lock = threading.Lock()


def _holder_for(credential: Credential) -> _TokenHolder:
    """The token holder of ``credential``, made on first need; it lives as long as it does."""
    holder = _holders.get(credential)
    if holder is None:
        with _holders_lock:
            holder = _holders.get(credential)
            if holder is None:
                holder = _holders[credential] = _TokenHolder()
    return holder


def expires_in(reply: Mapping[str, Any]) -> float:
    """The lifetime of a token reply in seconds (``expires_in``; 600 when missing or unusable)."""
    value = reply.get("expires_in")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_EXPIRES_IN
    return float(value)


def expiry_margin(lifetime: float) -> float:
    """How long before its expiry a token of ``lifetime`` seconds is replaced."""
    return min(MAX_EXPIRY_MARGIN_SECS, max(0.0, lifetime) * EXPIRY_MARGIN_FRACTION)


# -- paths: the token only ever goes to the site's /api/v1 ----------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "host", "content-length", "content-type"}
)


def _refuse(site: str, reason: str) -> InvalidSiteError:
    return InvalidSiteError(
        f"REST path refused before any request to {site}: {reason}. Pass a path relative to "
        f"{API_ROOT}, such as '/entity/projects', or a link the site returned.",
        site,
    )


def resolve_url(site: str, path: str) -> str:
    """The absolute URL of ``path`` under ``site``'s ``/api/v1``; no network access.

    Accepts ``"/entity/projects"``, ``"entity/projects"``, ``"/api/v1/entity/projects"`` (a
    ``links`` value) and a full URL on the site's own origin, each with an optional query.

    :raises InvalidSiteError: ``path`` names another scheme, host or port, holds ``//host``,
        ``user@``, a backslash, a control character or a fragment, or leaves ``/api/v1``.
    """
    if not isinstance(path, str):
        raise _refuse(site, f"a path is a str, not {type(path).__name__}")
    if any(ch <= " " or ch == "\x7f" for ch in path):
        raise _refuse(site, "the path contains a space or a control character")
    if "\\" in path:
        raise _refuse(site, "the path contains a backslash")
    if path.startswith("//"):
        raise _refuse(site, "a path starting with '//' names another host")
    parts = urllib.parse.urlsplit(path)
    if parts.fragment or path.endswith("#"):
        raise _refuse(site, "the path has a fragment ('#')")
    if parts.scheme or parts.netloc:
        if not (parts.scheme and parts.netloc):
            raise _refuse(site, "the path has a scheme but no host, or a host but no scheme")
        if "@" in parts.netloc:
            raise _refuse(site, "the URL has user information ('user@host')")
        if not _same_origin(site, parts):
            raise _refuse(site, "the URL is on another origin (scheme, host or port)")
        rooted = parts.path
        if not (rooted == API_ROOT or rooted.startswith(API_ROOT + "/")):
            raise _refuse(site, f"the URL is outside {API_ROOT}")
    elif parts.path == API_ROOT or parts.path.startswith(API_ROOT + "/"):
        rooted = parts.path
    else:
        relative = parts.path.lstrip("/")
        if ":" in relative.split("/", 1)[0]:  # RFC 3986: no ':' there in a relative path
            raise _refuse(site, "the path starts with a 'host:port' or 'scheme:' form")
        rooted = f"{API_ROOT}/{relative}" if relative else API_ROOT
    if "@" in rooted:
        raise _refuse(site, "the path has an '@' (a 'user@host' form)")
    for segment in rooted.split("/"):
        decoded = urllib.parse.unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise _refuse(site, "the path has a '.', '..' or encoded '/' segment")
    return site + rooted + (f"?{parts.query}" if parts.query else "")


def _same_origin(site: str, parts: urllib.parse.SplitResult) -> bool:
    own = urllib.parse.urlsplit(site)
    try:
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme != own.scheme or parts.hostname != own.hostname:
        return False
    return (port or _DEFAULT_PORTS.get(scheme)) == (own.port or _DEFAULT_PORTS.get(own.scheme))


def _with_params(url: str, params: Params) -> str:
    if not params:
        return url
    items = params.items() if isinstance(params, Mapping) else params
    query = urllib.parse.urlencode(list(items), doseq=True)
    return url + ("&" if "?" in url else "?") + query


def _display(url: str) -> str:
    """The path of ``url`` for a message (no query: it may be long)."""
    return urllib.parse.urlsplit(url).path


# -- transport ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the Authorization header must not travel to another URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def proxy_url(http_proxy: str) -> str:
    """``host[:port]`` or ``user:pass@host[:port]`` (the api3 format) as a proxy URL for urllib.

    The port defaults to 8080, as in shotgun_api3. The password is registered as a secret.
    """
    credentials, _, server = http_proxy.strip().rpartition("@")
    host, _, port = server.partition(":")
    if not host:
        raise ValueError("the http_proxy setting has no host: use host:port or user:pass@host:port")
    if port and not port.isdigit():
        raise ValueError(
            "the port of the http_proxy setting is not a number: use host:port or "
            "user:pass@host:port"
        )
    auth = ""
    if credentials:
        user, _, password = credentials.partition(":")
        register_secret(password)
        quote = urllib.parse.quote
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        register_secret(auth)
    return f"http://{auth}{host}:{int(port) if port else DEFAULT_PROXY_PORT}"


_ssl_contexts: dict[str, ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def ssl_context(site: str) -> ssl.SSLContext:
    """The TLS context of the api3 connection: ``SHOTGUN_API_CACERTS``, else shotgun_api3's bundle.

    :raises SgConnectError: The CA bundle cannot be read.
    """
    from .connection import shotgun_api3

    cafile = shotgun_api3.Shotgun._get_certs_file(None)
    with _ssl_lock:
        context = _ssl_contexts.get(cafile)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise SgConnectError(
                    f"Cannot load the CA certificates for {site} from {cafile} "
                    f"({exc.__class__.__name__}): fix or unset SHOTGUN_API_CACERTS.",
                    site,
                ) from None
            _ssl_contexts[cafile] = context
    return context


# -- the session ----------------------------------------------------------------------------------


class RestSession:
    """Calls to one site's REST API (``/api/v1``) as one credential.

    Made by the connection hook (``create_rest_session``); tools get one from
    ``sgconnect.rest_session(purpose)`` or ``app.get_rest_session(purpose)``. One per thread is
    handed out; the token behind it is shared by all of them.

    :param credential: Who the calls act as.
    :param interactive: May an expired session be renewed with a prompt?
    :param http_proxy: ``host:port`` or ``user:pass@host:port``, as for the api3 connection.
    :param timeout_secs: Seconds before a request is abandoned; ``None`` waits forever.
    """

    def __init__(
        self,
        credential: Credential,
        *,
        interactive: bool = False,
        http_proxy: Optional[str] = None,
        timeout_secs: Optional[float] = None,
    ):
        self._credential = credential
        self._interactive = bool(interactive)
        self._proxy = proxy_url(http_proxy) if http_proxy else None
        self._timeout = timeout_secs
        self._opener: Optional[urllib.request.OpenerDirector] = None
        self._headers: dict[str, str] = {}
        self._writes_forbidden: Optional[str] = None

    @property
    def site(self) -> str:
        """The site URL."""
        return self._credential.site

    @property
    def login(self) -> str:
        """Who the calls act as (the person, for a script acting through sudo)."""
        return self._credential.sudo_as_login or self._credential.login

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
        return self._pages(_with_params(resolve_url(self.site, path), params))

    def _pages(self, url: str) -> Iterator[Any]:
        seen: set[str] = set()
        while url:
            seen.add(url)
            page = self._call("GET", url, None)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise SiteResponseError(
                    f"{self.site} answered GET {_display(url)} without a 'data' list: "
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
                    f"({_display(url)}); stopping.",
                    self.site,
                )

    # -- one call ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: Params, payload: Any = None) -> Any:
        url = _with_params(resolve_url(self.site, path), params)
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        token = self._token()
        status, headers, raw = self._send(method, url, body, token)
        if status == http.client.UNAUTHORIZED:
            logger.debug(
                "REST %s %s on %s: 401, minting a new token", method, _display(url), self.site
            )
            token = self._token(rejected=token)
            status, headers, raw = self._send(method, url, body, token)
        return self._reply(method, url, status, headers, raw)

    def _reply(self, method: str, url: str, status: int, headers: Any, raw: bytes) -> Any:
        site = self.site
        if 300 <= status < 400:
            raise SiteResponseError(
                f"{site} answered {method} {_display(url)} with a redirect (HTTP {status}), which "
                "REST sessions never follow so that the token cannot be sent elsewhere. Check the "
                "site URL (its https:// form?) or a proxy in the way.",
                site,
                status=status,
            )
        if status == http.client.NO_CONTENT or (not raw.strip() and status < 300):
            return None
        decoded = self._json(f"{method} {_display(url)}", status, headers, raw)
        if status >= 400:
            errors = _errors_of(decoded)
            raise RestError(
                f"REST {method} {_display(url)} on {site} failed: HTTP {status}"
                f"{_summary(errors)}{_advice(status)}",
                site,
                status=status,
                errors=errors,
            )
        return decoded

    # -- the token ------------------------------------------------------------------------------

    def _token(self, rejected: Optional[str] = None) -> str:
        """A valid access token: the shared one, or one minted now (single flight).

        :param rejected: A token the site just answered 401 to: replace it, unless another
            thread already has.
        """
        holder = _holder_for(self._credential)
        if rejected is None:
            token = holder.valid_token()
            if token is not None:
                return token
        with holder.lock:
            token = holder.valid_token()
            if token is not None and token != rejected:
                return token
            if rejected is not None and holder._access == rejected:
                holder._access = None
            self._mint(holder)
            return holder._access  # type: ignore[return-value]

    def _mint(self, holder: _TokenHolder) -> None:
        """Mint a token into ``holder`` (its lock held): refresh grant first, else a fresh grant."""
        credential = self._credential
        if holder._refresh is not None:
            try:
                reply = self._grant(
                    {"grant_type": "refresh_token", "refresh_token": holder._refresh}
                )
            except RestError as exc:
                if not _is_auth_failure(exc):
                    raise
                holder._refresh = None  # spent or revoked: mint a fresh one below
            else:
                self._stored(holder, reply, "refresh_token")
                return

        if credential.is_script:
            fields = {
                "grant_type": "client_credentials",
                "client_id": credential.login,
                "client_secret": credential._script_key,
            }
            if credential.sudo_as_login:
                fields["scope"] = f"sudo_as_login:{credential.sudo_as_login}"
            self._stored(holder, self._grant(fields), "client_credentials")
            return

        session_token = credential._session_token()
        try:
            if not session_token:
                raise RestError("no session token", credential.site, status=401)
            reply = self._grant({"grant_type": "session_token", "session_token": session_token})
        except RestError as exc:
            if not _is_auth_failure(exc):
                raise
            logger.debug(
                "REST token for %s on %s: the session was refused, renewing it",
                credential.login,
                credential.site,
            )
            renewed = credential._renewed_session_token(session_token, self._interactive)
            reply = self._grant({"grant_type": "session_token", "session_token": renewed})
        self._stored(holder, reply, "session_token")

    def _stored(self, holder: _TokenHolder, reply: Mapping[str, Any], grant: str) -> None:
        lifetime = holder.store(reply)
        logger.debug(
            "REST access token minted for %s on %s (grant %s, lifetime %d s)",
            self.login,
            self.site,
            grant,
            lifetime,
        )

    def _json(self, what: str, status: int, headers: Any, raw: bytes) -> Any:
        """The decoded JSON body of a reply to ``what``; SiteResponseError when it is not JSON."""
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            content_type = headers.get("Content-Type", "no content type") if headers else "?"
            raise SiteResponseError(
                f"{self.site} answered {what} with HTTP {status} and {content_type} instead of "
                "the REST API's JSON: check the site URL, or a proxy in the way.",
                self.site,
                status=status,
            ) from None

    def _grant(self, fields: Mapping[str, str]) -> Mapping[str, Any]:
        """POST a token request; return the reply, or raise RestError (no secret in it)."""
        site = self.site
        url = site + TOKEN_PATH
        body = urllib.parse.urlencode(fields).encode("ascii")
        status, headers, raw = self._send("POST", url, body, None, form=True)
        grant = fields["grant_type"]
        reply = self._json("the REST token request", status, headers, raw)
        if status >= 300 or not isinstance(reply, dict):
            errors = _errors_of(reply)
            who = self._credential.login
            raise RestError(
                f"{site} refused a REST token for {who} (grant {grant}): HTTP {status}"
                f"{_summary(errors)}{_grant_advice(self._credential, grant)}",
                site,
                status=status,
                errors=errors,
            )
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise SiteResponseError(
                f"{site} answered the REST token request without an access token.", site, status
            )
        return reply

    # -- HTTP -----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        body: Optional[bytes],
        token: Optional[str],
        *,
        form: bool = False,
    ) -> tuple[int, Any, bytes]:
        """One HTTP request; return ``(status, headers, body)`` for any HTTP answer."""
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if body is not None:
            content_type = "application/x-www-form-urlencoded" if form else "application/json"
            request.add_header("Content-Type", content_type)
        if token is not None:
            for name, value in self._headers.items():
                request.add_header(name, value)
            request.add_unredirected_header("Authorization", f"Bearer {token}")
        site = self.site
        timeout = self._timeout if self._timeout else socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]
        try:
            with self._get_opener().open(request, timeout=timeout) as reply:
                return reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    raw = exc.read()
                except (OSError, http.client.HTTPException):
                    raw = b""
            return exc.code, exc.headers, raw
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._timed_out(method, url) from None
            if isinstance(reason, ssl.SSLError):
                raise SiteUnreachableError(
                    f"TLS with {site} failed ({reason.__class__.__name__}): check the site's "
                    "certificate, or point SHOTGUN_API_CACERTS at your CA bundle.",
                    site,
                ) from None
            raise self._unreachable(reason) from None
        except (TimeoutError, socket.timeout):
            raise self._timed_out(method, url) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None

    def _timed_out(self, method: str, url: str) -> SiteUnreachableError:
        return SiteUnreachableError(
            f"{self.site} did not answer REST {method} {_display(url)} within {self._timeout} s "
            "(timeout). Check the network, or raise the timeout in the hook settings.",
            self.site,
        )

    def _unreachable(self, reason: Any) -> SiteUnreachableError:
        via = " through the proxy" if self._proxy else ""
        return SiteUnreachableError(
            f"Cannot reach {self.site}{via} for the REST API ({why_unreachable(reason)}): "
            f"check the URL, the network and any proxy (`sgconnect doctor --site {self.site}`).",
            self.site,
        )

    def _get_opener(self) -> urllib.request.OpenerDirector:
        if self._opener is None:
            proxies = {"http": self._proxy, "https": self._proxy} if self._proxy else {}
            handlers: list[Any] = [urllib.request.ProxyHandler(proxies), _NoRedirect()]
            if self.site.startswith("https:"):
                handlers.append(urllib.request.HTTPSHandler(context=ssl_context(self.site)))
            self._opener = urllib.request.build_opener(*handlers)
        return self._opener


# -- error details --------------------------------------------------------------------------------


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


def _grant_advice(credential: Credential, grant: str) -> str:
    if grant == "client_credentials":
        return ". Check the script name and key of the service settings, and the sudo login."
    return ". Log in again with `sgconnect login --site " + credential.site + "`."


def _is_auth_failure(error: RestError) -> bool:
    """The site refused the credential itself (an expired session, a spent refresh token)."""
    if error.status == http.client.UNAUTHORIZED:
        return True
    return any(isinstance(e, dict) and e.get("code") == AUTH_ERROR_CODE for e in error.errors)


__all__ = ["RestSession", "resolve_url", "proxy_url", "ssl_context", "expires_in", "expiry_margin"]
