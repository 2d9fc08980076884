"""The HTTP client of REST sessions and of sgconnect's own login requests.

**Why ``http.client``.** It is in every Python, so a bare DCC interpreter needs nothing more, and
it lets sgconnect own the four things that matter here, which urllib and the httplib2 bundled in
shotgun_api3 decide for their callers: urllib opens a new TCP connection (and TLS handshake) per
request and follows redirects; httplib2 follows redirects, re-sends a request (a write too) after a
lost reply, and bounds only each socket read. :class:`HttpClient` keeps these promises, the
shared ones on the one wire of :mod:`sgconnect.transport.wire` (as the api3 surface does):

- **keep-alive** (wire): one persistent connection per thread and per (site, proxy), shared by
  every client of that site on the thread (REST sessions of any purpose, any token);
- **no redirect, ever**: any 3xx to a request carrying a credential is a
  :class:`~sgconnect.errors.SiteRedirectError` naming the site and the ``Location``'s origin
  (never the URL's query, never the secret), and nothing is sent there;
- **a whole-call deadline** (wire's :class:`~sgconnect.transport.wire.Deadline`):
  ``timeout_secs`` bounds connect, TLS, the proxy tunnel, sending and every read together: a
  server trickling one byte every 0.5 s cannot keep a 1 s call alive;
- **idempotency**: a stale or reset keep-alive socket is replaced at once, before sending when
  the socket shows it (closed by the site while idle, or idle longer than
  ``SGCONNECT_KEEPALIVE_SECS``: wire's check, api3's rule), else after: a request that
  cannot have reached the site (the send failed) is sent again on a new connection, and so is a
  request marked ``idempotent`` (``GET``, the REST token request) whose reply was lost, once. A
  request that may not be repeated never goes on a connection idle for
  :data:`~sgconnect.transport.wire.STALE_IDLE_SECS` (a NAT may have forgotten it silently: wire's
  rule, api3's too). Any other request (``POST``/``PUT``/``PATCH``/``DELETE``) whose reply was
  lost or malformed after it was sent is never re-sent:
  :class:`~sgconnect.errors.WriteOutcomeUnknownError`;
- **typed replies**: a bad status line, an over-long or malformed header, a truncated body or one
  over ``max_body_bytes`` is a :class:`~sgconnect.errors.SiteResponseError` saying what was wrong
  (for a request that may not be repeated, :class:`~sgconnect.errors.WriteOutcomeUnknownError`);
- **fork safety** (wire): a forked child never uses a connection of its parent;
- **proxies and TLS** by :mod:`sgconnect.transport.proxies`' one rule: plain http through the
  proxy in absolute form, https through a ``CONNECT`` tunnel (wire); ``Proxy-Authorization`` is
  sent to the proxy only.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from typing import Any, Mapping, Optional

from .. import state
from ..errors import (
    CaBundleError,
    ProxyError,
    SgConnectError,
    SiteResponseError,
    SiteUnreachableError,
    WriteOutcomeUnknownError,
)
from ..sites import DEFAULT_PORTS
from . import is_timeout, redirected, wire, write_outcome_unknown
from .proxies import Proxy, ssl_context
from .wire import STALE_IDLE_SECS, Deadline

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "IDEMPOTENT_METHODS",
    "STALE_IDLE_SECS",
    "Deadline",
    "Reply",
    "HttpClient",
    "connection_count",
    "reset",
]

#: Replies larger than this are refused (bytes); :class:`HttpClient` takes another cap.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: Methods that may be sent again after a lost reply (RFC 9110's safe methods).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Reply:
    """An HTTP answer: ``status`` (int), ``headers`` (``http.client.HTTPMessage``), ``body``
    (bytes, read in full)."""

    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, reason: str, headers: Any, body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters (``""`` when there is none)."""
        raw = self.headers.get("Content-Type") if self.headers is not None else None
        return (raw or "").split(";", 1)[0].strip().lower()

    def __repr__(self) -> str:
        kind = self.content_type or "no content type"
        return f"<Reply {self.status} {kind}, {len(self.body)} bytes>"


# -- the per-thread connections -------------------------------------------------------------------

_pool = wire.Pool()
_connects = 0
_connects_lock = threading.Lock()


def connection_count() -> int:
    """How many connections this process opened so far (for tests and benchmarks)."""
    return _connects


def reset() -> None:
    """Close this thread's connections; every thread opens new ones on its next request."""
    _pool.reset_all()


state.register(__name__, reset)


# -- the client ------------------------------------------------------------------------------------


class HttpClient:
    """HTTP/1.1 requests to one site, on keep-alive connections (one per thread).

    :param site: The site URL (``https://studio.shotgrid.autodesk.com``): every request goes to
        its origin.
    :param proxy: The proxy of :func:`sgconnect.transport.proxies.proxy_for`, or ``None``.
    :param timeout_secs: The whole-call deadline in seconds; ``None`` or 0 waits forever.
    :param max_body_bytes: Larger replies are refused (:class:`SiteResponseError`).
    :param to: What the requests are for, in messages (``"for the REST API"``, ``"to log in"``).
    """

    def __init__(
        self,
        site: str,
        *,
        proxy: Optional[Proxy] = None,
        timeout_secs: Optional[float] = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        to: str = "",
    ):
        parts = urllib.parse.urlsplit(site)
        self.site = site
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = parts.port or DEFAULT_PORTS.get(self.scheme, 443)
        self.proxy = proxy
        self.timeout_secs = timeout_secs or None
        self.max_body_bytes = max_body_bytes
        self.to = to

    def __repr__(self) -> str:
        via = f" via {self.proxy.display}" if self.proxy else ""
        return f"<HttpClient {self.site}{via}>"

    # -- one request ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        *,
        what: str = "",
        idempotent: Optional[bool] = None,
        allow_redirect: bool = False,
    ) -> Reply:
        """Send one request to the site and read its whole reply, within the deadline.

        :param method: ``GET``, ``POST``...
        :param url: An absolute URL on the site's origin.
        :param body: The body, or ``None``.
        :param headers: Extra headers (``Host`` and ``Content-Length`` are set here).
        :param what: The request for messages (``"REST GET /api/v1/entity/projects"``).
        :param idempotent: May it be sent again after a lost reply? Default: GET, HEAD, OPTIONS.
        :param allow_redirect: Return a 3xx reply instead of raising (for requests that carry no
            credential and whose caller reads ``Location`` itself). A 3xx is never followed.
        :returns: The :class:`Reply` (any status but 3xx, unless ``allow_redirect``).
        :raises SiteUnreachableError: No answer: refused, DNS, TLS, or the deadline passed on a
            request that may be repeated. :class:`ProxyError` when the proxy is the cause.
        :raises WriteOutcomeUnknownError: A request that may not be repeated was sent and its
            reply was lost (reset, closed, deadline) or malformed: it may have been carried out.
        :raises SiteRedirectError: A 3xx (without ``allow_redirect``).
        :raises SiteResponseError: A malformed reply (status line, headers, truncated, too big) to
            a request that may be repeated.
        :raises CaBundleError: The CA bundle is missing or unreadable.
        """
        method = method.upper()
        what = what or f"{method} {urllib.parse.urlsplit(url).path}"
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        deadline = Deadline(self.timeout_secs)
        target = self._target(url)
        all_headers = dict(headers or {})
        if self.proxy is not None and self.scheme == "http":
            authorization = self.proxy.authorization()
            if authorization:
                all_headers["Proxy-Authorization"] = authorization
        retried = False
        while True:
            conn, reused = self._connection(deadline, what, repeatable)
            sent = False
            try:
                conn.deadline = deadline
                conn.request(method, target, body=body, headers=all_headers)
                sent = True
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:  # reset, timeout, TLS, malformed
                self._drop(conn)
                malformed = wire.malformed_head(exc)
                if malformed == "headers":
                    problem = f"malformed headers ({exc.__class__.__name__}: {str(exc)[:80]})"
                    raise self._malformed(what, method, repeatable, problem) from None
                if malformed is not None:
                    problem = f"a bad status line ({exc.__class__.__name__})"
                    raise self._malformed(what, method, repeatable, problem) from None
                error: BaseException = exc
            else:
                return self._finish(conn, response, method, what, repeatable, allow_redirect)
            # No reply. Repeat once, at once, when the request cannot have reached the site (the
            # send failed on a reused socket) or may be repeated; else the outcome is unknown.
            timed_out = is_timeout(error)
            if not timed_out and not retried and (repeatable or (reused and not sent)):
                retried = True
                continue
            if sent and not repeatable:
                raise self._outcome_unknown(method, what, error) from None
            raise self._unreachable(what, error, deadline) from None

    # -- connections ----------------------------------------------------------------------------

    def _key(self) -> tuple:
        proxy = self.proxy
        return (self.scheme, self.host, self.port, proxy.identity if proxy else None)

    def _connection(self, deadline: Deadline, what: str, repeatable: bool) -> tuple[Any, bool]:
        key = self._key()
        # api3's idle rule: a socket idle past SGCONNECT_KEEPALIVE_SECS (past STALE_IDLE_SECS
        # for a write) may have been forgotten by a NAT without a FIN or RST; it is closed
        # before anything is sent on it.
        conn, _ = _pool.take(key, wire.max_idle(repeatable))
        if conn is not None:
            return conn, True
        conn = self._open(deadline, what)
        _pool.put(key, conn)
        return conn, False

    def _open(self, deadline: Deadline, what: str) -> Any:
        global _connects
        proxy = self.proxy
        https = self.scheme == "https"
        try:
            conn = wire.open_connection(
                self.scheme,
                self.host,
                self.port,
                deadline,
                context=ssl_context(self.site) if https else None,
                proxy=(proxy.host, proxy.port) if proxy else None,
                proxy_authorization=proxy.authorization() if proxy and https else None,
            )
        except CaBundleError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise self._connect_failed(what, exc, deadline) from None
        with _connects_lock:
            _connects += 1
        return conn

    def _drop(self, conn: Any) -> None:
        _pool.drop(self._key(), conn)

    def _target(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if self.proxy is not None and self.scheme == "http":
            return f"http://{parts.netloc}{path}"  # absolute form, for the proxy
        return path

    # -- the reply ------------------------------------------------------------------------------

    def _finish(
        self,
        conn: Any,
        response: Any,
        method: str,
        what: str,
        repeatable: bool,
        allow_redirect: bool,
    ) -> Reply:
        status = response.status
        if self.proxy is not None and status == http.client.PROXY_AUTHENTICATION_REQUIRED:
            self._drop(conn)
            raise ProxyError(
                f"The proxy {self.proxy.origin} ({self.proxy.source}) refused {what} to "
                f"{self.site}: HTTP 407, its credentials are missing or wrong. Fix the proxy's "
                "user and password.",
                self.site,
                proxy=self.proxy.origin,
            )
        if 300 <= status < 400 and not allow_redirect:
            location = response.getheader("Location") or ""
            self._drop(conn)
            raise redirected(self.site, status, location, what)
        try:
            body = wire.read_body(response, self.max_body_bytes)
        except wire.BodyError as exc:
            self._drop(conn)
            if exc.kind == "truncated":
                of = f"the {exc.announced} announced" if exc.announced else "an unknown length"
                problem = f"a truncated body ({exc.received} bytes of {of})"
            else:
                size = f" of {exc.announced} bytes," if exc.received == 0 else ""
                problem = f"a body{size} over the {self.max_body_bytes}-byte cap"
            raise self._malformed(what, method, repeatable, problem, status) from None
        except http.client.HTTPException as exc:
            self._drop(conn)
            raise self._malformed(
                what, method, repeatable, f"a malformed body ({exc.__class__.__name__})", status
            ) from None
        except OSError as exc:
            self._drop(conn)
            if is_timeout(exc):
                if repeatable:
                    raise self._unreachable(what, exc, conn.deadline) from None
                raise self._outcome_unknown(method, what, exc) from None
            raise self._malformed(
                what, method, repeatable, f"a body cut short ({exc.__class__.__name__})", status
            ) from None
        if response.will_close:
            self._drop(conn)
        else:
            conn.idle_since = time.monotonic()
        return Reply(status, response.reason, response.headers, body)

    # -- errors ---------------------------------------------------------------------------------

    def _malformed(
        self, what: str, method: str, repeatable: bool, problem: str, status: Optional[int] = None
    ) -> SgConnectError:
        """A malformed reply: :class:`SiteResponseError`, or for a request that may not be
        repeated (a write the site may have carried out before its reply was spoiled)
        :class:`WriteOutcomeUnknownError`, never a plain ``SiteResponseError`` a caller might
        retry."""
        if not repeatable:
            return write_outcome_unknown(
                self.site, what, f"its reply could not be read ({problem})", method=method
            )
        return SiteResponseError(
            f"{self.site} answered {what} with {problem}, not a valid HTTP reply: check the site "
            "URL, or a proxy in the way.",
            self.site,
            status=status,
        )

    def _outcome_unknown(
        self, method: str, what: str, error: BaseException
    ) -> WriteOutcomeUnknownError:
        lost = (
            "no reply came in time"
            if is_timeout(error)
            else f"the connection was lost ({error.__class__.__name__})"
        )
        return write_outcome_unknown(self.site, what, lost, method=method)

    def _connect_failed(
        self, what: str, error: BaseException, deadline: Deadline
    ) -> SiteUnreachableError:
        proxy = self.proxy
        if proxy is not None:
            text = str(error)
            if "Tunnel connection failed" in text or isinstance(error, http.client.HTTPException):
                refused = "407" in text
                reason = (
                    "refused its credentials (407): fix the proxy's user and password"
                    if refused
                    else f"refused the tunnel ({text[:80]})"
                )
                return ProxyError(
                    f"The proxy {proxy.origin} ({proxy.source}) {reason}; {what} did not reach "
                    f"{self.site}.",
                    self.site,
                    proxy=proxy.origin,
                )
            if not is_timeout(error) and not self._tls_error(error):
                from . import why_unreachable

                return ProxyError(
                    f"Cannot reach the proxy {proxy.origin} ({proxy.source}) "
                    f"({why_unreachable(error)}): check the proxy setting, or NO_PROXY.",
                    self.site,
                    proxy=proxy.origin,
                )
        return self._unreachable(what, error, deadline)

    @staticmethod
    def _tls_error(error: BaseException) -> bool:
        import ssl

        return isinstance(error, ssl.SSLError)

    def _unreachable(
        self, what: str, error: BaseException, deadline: Deadline
    ) -> SiteUnreachableError:
        from . import unreachable

        return unreachable(
            self.site,
            error,
            what,
            self.timeout_secs if is_timeout(error) else None,
            to=self.to,
            via_proxy=self.proxy is not None,
        )
