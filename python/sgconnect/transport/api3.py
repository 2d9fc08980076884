"""The api3 transport: how an sgconnect api3 connection's requests reach the site.

shotgun_api3 sends every RPC through its bundled httplib2, which follows redirects (re-posting the
whole body, credentials included, on 307/308), retries silently (a write done twice), bounds each
socket read rather than the call, and opens one socket per ``Shotgun`` object. sgconnect's
connections (:mod:`sgconnect.connection`) send through :func:`send` instead, on the one wire of
:mod:`sgconnect.transport.wire` (deadline, sockets, pool, fork safety: shared with REST's
:mod:`sgconnect.transport.http`); this module holds what is api3's own:

- **No redirect is followed.** A 3xx answer is returned as is only for the 302 to
  ``/saml/saml_login_request`` (expired SSO claims: renewal); any other is
  :class:`~sgconnect.errors.SiteRedirectError` naming the site and the Location's origin.
- **One deadline per call** (wire's :class:`~sgconnect.transport.wire.Deadline`): connect,
  TLS, send and every read share ``timeout_secs``; a server trickling bytes cannot stretch it
  (:class:`~sgconnect.errors.SiteTimeoutError`).
- **Reads reconnect once, at once; writes are never re-sent.** An idle keep-alive socket is
  checked before reuse (idle age, readability). A read (:data:`READ_RPCS`) whose reused socket
  turns out dead (closed, reset) is sent again once on a fresh one; a write never goes on a
  socket idle a second or more (wire's :func:`~sgconnect.transport.wire.max_idle`: a NAT may
  have forgotten it), and any other RPC that may have reached the site is
  :class:`~sgconnect.errors.WriteOutcomeUnknownError`.
- **Typed replies**: a bad status line, an over-long header, a truncated or over-size body
  (:func:`max_reply_bytes`) are :class:`~sgconnect.errors.SiteResponseError` for a read, and
  :class:`~sgconnect.errors.WriteOutcomeUnknownError` for a write (so is a reply the connection
  cannot decode: :func:`unreadable_write`). A read whose deadline was spent on shotgun_api3's
  502/504 retries reports the gateway status, not a timeout.
- **One socket per thread and site** (wire's :class:`~sgconnect.transport.wire.Pool`), shared by
  every purpose's ``Shotgun`` object on that thread; a forked child drops the sockets it
  inherited.
- **Server capabilities once per site per process** (:func:`capabilities`), seeded from a
  per-site cache file with a time limit (:func:`capabilities_cache_file`).
- **Attachments** (:func:`download`): the session cookie goes to the site's own origin only; a
  redirect to storage elsewhere is followed without it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from .. import state
from ..environ import CAPABILITIES_TTL_SECS, MAX_REPLY_MIB
from ..errors import (
    CaBundleError,
    SiteRedirectError,
    SiteResponseError,
    SiteTimeoutError,
    SiteUnreachableError,
    WriteOutcomeUnknownError,
)
from ..settings import number_from_environment
from . import (
    NoRedirect,
    is_timeout,
    location_origin,
    proxy_credentials_refused,
    redirected,
    ssl_context,
    timed_out,
    unreachable,
    why_unreachable,
    wire,
    write_outcome_unknown,
)
from .proxies import check_ca_bundle
from .wire import Deadline, keepalive_secs

__all__ = [
    "READ_RPCS",
    "Deadline",
    "Target",
    "send",
    "close",
    "is_read",
    "unreadable_write",
    "max_reply_bytes",
    "keepalive_secs",
    "capabilities",
    "capabilities_cache_file",
    "download",
    "preconnect",
    "NoRedirect",
    "send_form",
    "put_to_storage",
    "transfer_handlers",
    "httplib2_never_redirects",
    "check_no_redirect",
    "stats",
    "reset",
]

#: api3 RPCs that change nothing on the site: sent again once on a fresh socket when a reused one
#: is found dead. Every other RPC (create, update, delete, revive, batch, uploads,
#: update_project_last_accessed_by_current_user, get_session_token...) is never re-sent.
READ_RPCS = frozenset(
    {
        "info",
        "read",
        "summarize",
        "text_search",
        "schema_read",
        "schema_entity_read",
        "schema_field_read",
        "activity_stream",
        "note_thread_contents",
        "preferences_read",
        "followers",
        "following",
        "user_subscriptions_read",
        "work_schedule_read",
        "query_display_name_cache",
        "export_page",
        "nav_expand",
        "nav_search",
    }
)

#: Default cap on one api3 reply body (MiB): a generous bound for a large ``find`` page (a page of
#: 500 entities with many text fields stays far below), small enough that a runaway or hostile
#: reply cannot exhaust a DCC's memory.
DEFAULT_MAX_REPLY_MIB = 256
#: Default seconds a per-site capabilities cache file is trusted.
DEFAULT_CAPABILITIES_TTL_SECS = 3600.0

_SAML_LOGIN = "/saml/saml_login_request"


def max_reply_bytes() -> int:
    """The cap on one api3 reply body, in bytes (``SGCONNECT_MAX_REPLY_MIB``, default 256 MiB)."""
    return int(
        number_from_environment(MAX_REPLY_MIB, DEFAULT_MAX_REPLY_MIB, maximum=4096) * 1024**2
    )


def is_read(rpc: Optional[str]) -> bool:
    """Whether the api3 RPC ``rpc`` changes nothing on the site (it may be sent again)."""
    return rpc in READ_RPCS


# -- connections ----------------------------------------------------------------------------------


class Target:
    """Where an api3 connection's requests go: scheme, ``host:port`` and the api3 proxy settings.

    Built from a ``shotgun_api3`` config (:meth:`of`); equal targets share a socket per thread.
    """

    __slots__ = ("scheme", "server", "proxy", "_proxy_authorization", "key")

    def __init__(
        self,
        scheme: str,
        server: str,
        proxy: Optional[tuple[str, int]] = None,
        proxy_authorization: Optional[str] = None,
    ):
        self.scheme = scheme
        self.server = server
        self.proxy = proxy
        self._proxy_authorization = proxy_authorization
        # The proxy credentials are part of the key (two proxy users never share a socket), as
        # a digest: the key may be shown in a debugger.
        auth_digest = (
            hashlib.sha256(proxy_authorization.encode()).hexdigest() if proxy_authorization else ""
        )
        self.key = (scheme, server, proxy, auth_digest)

    @classmethod
    def of(cls, config: Any, proxy: Any = None) -> Target:
        """The target of a ``shotgun_api3`` config (``scheme``, ``server``), through ``proxy``
        (a :class:`~sgconnect.transport.proxies.Proxy`, which keeps its password private), or
        directly."""
        if proxy is None:
            return cls(config.scheme, config.server)
        return cls(config.scheme, config.server, (proxy.host, proxy.port), proxy.authorization())

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.server}"

    @property
    def proxy_origin(self) -> str:
        """``http://host:port`` of the proxy (never its credentials), or ``""``: none."""
        return f"http://{self.proxy[0]}:{self.proxy[1]}" if self.proxy else ""

    def connect(self, deadline: Deadline, *, tcp_first: bool = False) -> wire.Connection:
        """A new connected socket (TCP, proxy tunnel, TLS) within ``deadline``
        (:func:`sgconnect.transport.wire.open_connection`).

        :param tcp_first: Open the TCP connection before loading the TLS context (which may
            import shotgun_api3 for its CA bundle): a background pre-connect overlaps both.
        """
        host, _, port = self.server.rpartition(":") if ":" in self.server else (self.server, "", "")
        port_number = int(port) if port else (443 if self.scheme == "https" else 80)
        https = self.scheme == "https"
        return wire.open_connection(
            self.scheme,
            host,
            port_number,
            deadline,
            context=(lambda: ssl_context(self.origin)) if https else None,
            proxy=self.proxy,
            tunnel=True,
            proxy_authorization=self._proxy_authorization if self.proxy else None,
            tcp_first=tcp_first,
        )


_pool = wire.Pool()
_stats_lock = threading.Lock()
_stats = {"connects": 0, "reconnects": 0, "stale": 0}


def _count(name: str) -> None:
    with _stats_lock:
        _stats[name] += 1


def stats() -> dict[str, int]:
    """Counters since start: ``connects`` (sockets opened), ``stale`` (idle sockets found dead
    or too old before reuse), ``reconnects`` (reads sent again on a fresh socket)."""
    with _stats_lock:
        return dict(_stats)


def _checkout(target: Target, deadline: Deadline, read: bool) -> tuple[wire.Connection, bool]:
    """This thread's socket to ``target`` for a read or a write (:func:`wire.max_idle`), and
    whether it was reused."""
    conn, dropped = _pool.take(target.key, wire.max_idle(read))
    if conn is not None:
        return conn, True
    if dropped:
        _count("stale")
    _count("connects")
    # A socket opened ahead counts as reused: it was opened before this call, so a read lost
    # on it is sent again once on a fresh one.
    conn = _take_pending(target, deadline, read)
    opened_ahead = conn is not None
    if conn is None:
        conn = target.connect(deadline)
    _pool.put(target.key, conn)
    return conn, opened_ahead


_pending_lock = threading.Lock()
#: Sockets being opened ahead of a thread's first request: (thread id, target key) -> result box.
_pending: dict[tuple[int, tuple], dict] = {}


def preconnect(site: str, timeout: Optional[float]) -> None:
    """Open this thread's socket to ``site`` in the background (TCP, then TLS), so that the
    handshakes overlap the work before the first request (imports, building the connection).

    Only for a site reached without a proxy, and only when this thread has no socket to it yet;
    the thread's first :func:`send` to the same target takes the socket (or, if it failed, opens
    its own). A no-op when ``site`` is not an http(s) URL.
    """
    parts = urllib.parse.urlsplit(site)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    try:
        check_ca_bundle(site)  # no socket to a site whose certificate cannot be verified
    except CaBundleError:
        return  # the hand-out itself names the missing bundle, before any request
    target = Target(parts.scheme, parts.netloc.rpartition("@")[2])
    key = (threading.get_ident(), target.key)
    if target.key in _pool:
        return
    with _pending_lock:
        if key in _pending:
            return
        box: dict = {"done": threading.Event()}
        _pending[key] = box

    def run() -> None:
        try:
            box["conn"] = target.connect(Deadline(timeout), tcp_first=True)
            box["at"] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - the request opens its own and reports
            box["error"] = exc
        finally:
            box["done"].set()

    threading.Thread(target=run, name="sgconnect-preconnect", daemon=True).start()


def _take_pending(target: Target, deadline: Deadline, read: bool) -> Optional[wire.Connection]:
    """The socket :func:`preconnect` opened for this thread, if it is ready in time and alive
    (a thread id can be reused: a socket never taken may have idled)."""
    with _pending_lock:
        box = _pending.pop((threading.get_ident(), target.key), None)
    if box is None:
        return None
    box["done"].wait(deadline.remaining())
    conn = box.get("conn")
    if conn is None:
        return None
    conn.idle_since = box["at"]
    if wire.usable(conn, wire.max_idle(read)):
        return conn
    conn.close()
    return None


def close(target: Target) -> None:
    """Close this thread's socket to ``target`` (the next request opens a new one)."""
    _pool.drop(target.key)


def _renew_locks() -> None:
    """In a forked child (after :mod:`~sgconnect.transport.wire` dropped the parent's sockets):
    locks another thread held are made anew, and sockets being opened ahead are forgotten."""
    global _stats_lock, _capabilities_lock, _capabilities_locks, _pending_lock
    _stats_lock = threading.Lock()
    _pending_lock = threading.Lock()
    _capabilities_lock = threading.Lock()
    _capabilities_locks = {}
    _pending.clear()


# -- one request ----------------------------------------------------------------------------------


Reply = tuple[tuple[int, str], dict[str, str], bytes]


def send(
    target: Target,
    verb: str,
    path: str,
    body: Optional[bytes],
    headers: dict[str, str],
    *,
    rpc: Optional[str],
    deadline: Deadline,
    site: str,
) -> Reply:
    """Send one api3 request on this thread's socket to ``target``; return its reply.

    :param rpc: The api3 method (``"read"``...), or ``None`` for another request (treated as a
        write: never re-sent).
    :returns: ``((status, reason), headers with lower-case names, body)``, as shotgun_api3's
        ``_http_request``; 3xx only for the 302 of expired SSO claims.
    :raises SiteTimeoutError: ``deadline`` passed before the reply was read (a read).
        :class:`~sgconnect.errors.SiteResponseError` with the status instead when the call's
        earlier attempts were answered 502/504 (shotgun_api3's retries spent the deadline).
    :raises SiteUnreachableError: No connection, or a read's connection lost twice.
    :raises WriteOutcomeUnknownError: A write's request may have reached the site, and its reply
        was lost, late, cut or unreadable.
    :raises SiteRedirectError: Any redirect but the SSO claims' 302.
    :raises SiteResponseError: A bad status line, an over-long header, a truncated or over-size
        body.
    """
    read = is_read(rpc)
    action = rpc or f"{verb} {path.partition('?')[0]}"
    for attempt in (1, 2):
        try:
            conn, reused = _checkout(target, deadline, read)
            conn.deadline = deadline
            deadline.remaining()
        except (OSError, http.client.HTTPException) as exc:  # nothing was sent
            raise _no_answer(site, exc, action, deadline, target.proxy_origin) from None
        try:
            conn.request(verb, path, body=body, headers=headers)
            response = conn.getresponse()
            status, reason = response.status, response.reason
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            content = _read_body(response, site, action)
        except SiteResponseError:
            _pool.drop(target.key, conn)
            if not read:
                raise write_outcome_unknown(site, action, "its reply was unreadable") from None
            raise
        except (OSError, http.client.HTTPException) as exc:
            _pool.drop(target.key, conn)
            lost = isinstance(
                exc, (ConnectionError, http.client.RemoteDisconnected, BrokenPipeError)
            )
            if read and reused and attempt == 1 and lost:
                _count("reconnects")
                continue
            if not read:
                raise write_outcome_unknown(site, action, _why(exc)) from None
            raise _broken_reply(site, exc, action, deadline) from None
        conn.idle_since = time.monotonic()
        if response.will_close:
            _pool.drop(target.key, conn)
        if 300 <= status < 400:
            location = reply_headers.get("location", "")
            if not (status == http.client.FOUND and _is_saml_login(location)):
                raise redirected(site, status, location, action)
        if status in (http.client.BAD_GATEWAY, http.client.GATEWAY_TIMEOUT):
            if not read:
                # A gateway may have passed the write on: shotgun_api3 would send it again.
                raise write_outcome_unknown(site, action, f"a gateway answered HTTP {status}")
            # shotgun_api3 retries a read: if that spends the deadline, the gateway is the cause.
            deadline.gateway_status = status
            deadline.gateway_answers += 1
        return (status, reason), reply_headers, content
    raise AssertionError("unreachable")  # pragma: no cover


def unreadable_write(site: str, rpc: str, problem: str) -> WriteOutcomeUnknownError:
    """The error for a write (any RPC not in :data:`READ_RPCS`) whose reply arrived but cannot be
    used (``problem``: another Content-Type, not UTF-8, invalid JSON...): the site may have
    carried it out, so it is :class:`~sgconnect.errors.WriteOutcomeUnknownError`, never a plain
    :class:`~sgconnect.errors.SiteResponseError` a caller might retry."""
    return write_outcome_unknown(site, rpc, f"its reply could not be read ({problem})")


def _is_saml_login(location: str) -> bool:
    return urllib.parse.urlsplit(location).path.endswith(_SAML_LOGIN)


def _read_body(
    response: http.client.HTTPResponse, site: str, action: str, *, write: bool = False
) -> bytes:
    """The whole reply body, under :func:`max_reply_bytes`.

    :raises SiteResponseError: Truncated or over the cap.
    :raises WriteOutcomeUnknownError: The same, for a ``write`` (it may have been carried out).
    """
    cap = max_reply_bytes()
    try:
        return wire.read_body(response, cap)
    except wire.BodyError as exc:
        if write:
            of = exc.announced if exc.announced is not None else "?"
            short = (
                f"truncated ({exc.received} of {of} bytes)"
                if exc.kind == "truncated"
                else f"over the {cap // (1024 * 1024)} MiB cap ({MAX_REPLY_MIB})"
            )
            raise write_outcome_unknown(site, action, f"its reply was {short}") from None
        if exc.kind == "truncated":
            of = exc.announced if exc.announced is not None else "an unknown number of"
            problem = (
                f"a truncated reply ({exc.received} of {of} bytes): the connection was cut. Try "
                "again; if it persists, check the network or a proxy in the way."
            )
        else:
            size = f"{exc.announced} bytes, " if exc.received == 0 else ""
            problem = (
                f"{size}more than the {cap // (1024 * 1024)} MiB cap ({MAX_REPLY_MIB}): check "
                "the site URL, or a proxy in the way."
            )
        raise SiteResponseError(
            f"{site} answered {action} with {problem}", site, status=response.status
        ) from None


def _why(exc: BaseException) -> str:
    if is_timeout(exc):
        return "no reply came before the timeout"
    if wire.malformed_head(exc) is not None:
        return f"its reply was malformed ({exc.__class__.__name__})"
    return f"the connection was lost before the reply ({exc.__class__.__name__})"


def _no_answer(
    site: str, exc: BaseException, action: str, deadline: Deadline, proxy: str = ""
) -> Exception:
    if is_timeout(exc) and deadline.gateway_status is not None:
        status = deadline.gateway_status
        times = deadline.gateway_answers
        return SiteResponseError(
            f"{site} answered {action} with HTTP {status} ({_GATEWAY[status]}) "
            f"{times} time{'s' if times != 1 else ''}, until the {deadline.timeout:g} s timeout "
            "passed: the site or a gateway in front of it is failing. Try again later; if it "
            "persists, check the site status.",
            site,
            status=status,
        )
    if is_timeout(exc) and deadline.timeout:
        return timed_out(site, action, deadline.timeout)
    return unreachable(site, exc, action, proxy=proxy)


_GATEWAY = {http.client.BAD_GATEWAY: "bad gateway", http.client.GATEWAY_TIMEOUT: "gateway timeout"}

_MALFORMED = {
    "long_line": "an over-long header line: not a ShotGrid site's reply. Check the site URL, or a "
    "proxy in the way.",
    "status_line": "a bad HTTP status line: not a ShotGrid site's reply. Check the site URL, or a "
    "proxy in the way.",
}


def _broken_reply(site: str, exc: BaseException, action: str, deadline: Deadline) -> Exception:
    malformed = wire.malformed_head(exc)
    if malformed is None:
        return _no_answer(site, exc, action, deadline)
    problem = _MALFORMED.get(malformed) or (
        f"a malformed HTTP reply ({exc.__class__.__name__}): check the site URL, or a proxy in "
        "the way."
    )
    return SiteResponseError(f"{site} answered {action} with {problem}", site)


# -- server capabilities --------------------------------------------------------------------------

_capabilities_lock = threading.Lock()
_capabilities: dict[str, dict] = {}
_capabilities_locks: dict[str, threading.Lock] = {}


def capabilities_ttl_secs() -> float:
    """Seconds a capabilities cache file is trusted (``SGCONNECT_CAPABILITIES_TTL_SECS``,
    default 3600; 0 turns the file cache off)."""
    return number_from_environment(
        CAPABILITIES_TTL_SECS,
        DEFAULT_CAPABILITIES_TTL_SECS,
        maximum=7 * 86400,
        zero_means="no file",
    )


def capabilities_cache_file(site: str) -> str:
    """The per-site capabilities cache file: ``<tk-core cache root>/sgconnect/server_info/
    <sha256 of the site URL>.json`` (the root is ``$SHOTGUN_HOME`` when set)."""
    from ..session_cache import cache_root

    digest = hashlib.sha256(site.encode()).hexdigest()[:32]
    return os.path.join(cache_root(), "sgconnect", "server_info", f"{digest}.json")


def _valid_info(info: Any) -> bool:
    version = info.get("version") if isinstance(info, dict) else None
    return isinstance(version, list) and all(isinstance(part, int) for part in version)


def _read_cache_file(site: str) -> Optional[dict]:
    ttl = capabilities_ttl_secs()
    if ttl <= 0:
        return None
    path = capabilities_cache_file(site)
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if hasattr(os, "getuid") and (status.st_uid != os.getuid() or status.st_mode & 0o077):
                return None  # not ours, or readable by others: not trusted
            if time.time() - status.st_mtime > ttl:
                return None
            document = json.loads(handle.read(1024 * 1024).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("site") != site:
        return None
    info = document.get("info")
    return info if _valid_info(info) else None


def _private_folders(folder: str) -> None:
    """``folder`` and every missing parent, each created ``0700`` whatever the umask."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for path in reversed(missing):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)


def _write_cache_file(site: str, info: dict) -> None:
    if capabilities_ttl_secs() <= 0:
        return
    path = capabilities_cache_file(site)
    folder = os.path.dirname(path)
    try:
        _private_folders(folder)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".info-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump({"site": site, "info": info}, stream)
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except (OSError, TypeError, ValueError):
        pass  # a cache only: the next process asks the site again


def capabilities(site: str, fetch: Callable[[], dict]) -> dict:
    """The site's api3 ``info`` (server capabilities), fetched once per site per process.

    A process that has not fetched them yet first reads :func:`capabilities_cache_file` (owned by
    this user, mode 0600, younger than :func:`capabilities_ttl_secs`); else it calls ``fetch``
    (single flight: concurrent threads wait for one call) and writes the file.
    """
    info = _capabilities.get(site)
    if info is not None:
        return info
    with _capabilities_lock:
        lock = _capabilities_locks.setdefault(site, threading.Lock())
    with lock:
        info = _capabilities.get(site)
        if info is None:
            info = _read_cache_file(site)
            if info is None:
                info = fetch()
                if _valid_info(info):
                    _write_cache_file(site, info)
            _capabilities[site] = info
    return info


# -- attachments ----------------------------------------------------------------------------------


def download(
    url: str,
    *,
    site: str,
    cookie: Callable[[], str],
    proxy: Any,
    timeout: Optional[float],
    user_agent: str,
    file_path: Optional[str] = None,
) -> Any:
    """Download ``url``: with the session cookie (``cookie()``) only when it is on ``site``'s
    origin; a redirect from the site to another origin (storage) is followed once, without it.

    Each hop (the site, then storage) answers within ``timeout`` seconds; the body is bounded by
    progress (:func:`transfer_handlers`: each 64 KiB within ``timeout``), however long it takes.
    A file left incomplete by an error is removed.

    :param proxy: The :class:`~sgconnect.transport.proxies.Proxy` to go through, or ``None``.
    :returns: The bytes, or ``file_path`` once written.
    :raises SiteRedirectError: The site redirected to itself, or storage redirected again.
    :raises SiteResponseError: An HTTP error answer, or a body cut short of its length.
    :raises ProxyError: The proxy refused its credentials or the tunnel.
    :raises SiteUnreachableError: No answer (:class:`SiteTimeoutError`: no answer within
        ``timeout``, or the body stalled or trickled under 64 KiB per ``timeout``).
    """
    from . import build_opener, socket_timeout

    origin = _origin(site)
    proxy_origin = proxy.origin if proxy is not None else ""
    proxy_url = proxy.url() if proxy is not None else None
    destination = _Destination(file_path) if file_path else None  # fails before any request
    try:
        target = url
        for hop in (1, 2):
            if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                # urllib opens file: and data: URLs too (a redirect to the session cache)
                raise SiteResponseError(
                    f"{site} gave an attachment download URL that is not http or https "
                    f"({urllib.parse.urlsplit(target).scheme or 'no'} scheme): it was not opened.",
                    site,
                )
            on_site = _origin(target) == origin
            action = "the attachment download" + (
                "" if on_site else f" from {location_origin(target)}"
            )
            headers = {"User-Agent": user_agent}
            if on_site and hop == 1:
                headers["Cookie"] = f"_session_id={cookie()}"
            opener = build_opener(target, proxy_url)
            for transfer in transfer_handlers(target, stream_body=True):
                opener.add_handler(transfer)
            request = urllib.request.Request(target, headers=headers)
            try:
                reply = opener.open(request, timeout=socket_timeout(timeout))
            except urllib.error.HTTPError as exc:
                location = exc.headers.get("Location", "") if exc.headers else ""
                if 300 <= exc.code < 400 and hop == 1 and on_site:
                    following = urllib.parse.urljoin(target, location)
                    if _origin(following) != origin:
                        target = following  # presigned storage URL: no cookie goes there
                        continue
                refused = _redirect_or_proxy(site, exc, action, proxy_origin)
                if refused is not None:
                    raise refused from None
                raise SiteResponseError(
                    f"{site} answered HTTP {exc.code} to {action}: the attachment may not "
                    "exist, or this user may not read it.",
                    site,
                    status=exc.code,
                ) from None
            except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
                error = _cause(exc)
                refused = _proxy_refusal(site, error, action, proxy_origin)
                raise (refused or _no_answer(site, error, action, Deadline(timeout))) from None
            with reply:
                return _save(reply, destination, site=site, action=action, timeout=timeout)
    except BaseException:
        if destination is not None:
            destination.discard()
        raise
    raise AssertionError("unreachable")  # pragma: no cover


def _redirect_or_proxy(
    site: str, exc: urllib.error.HTTPError, action: str, proxy_origin: str
) -> Optional[Exception]:
    """The error for a transfer's 3xx (:class:`~sgconnect.errors.SiteRedirectError`: never
    followed) or a proxy's 407 (:class:`~sgconnect.errors.ProxyError`), else ``None``."""
    if 300 <= exc.code < 400:
        location = exc.headers.get("Location", "") if exc.headers else ""
        return redirected(site, exc.code, location, action)
    if proxy_origin and exc.code == http.client.PROXY_AUTHENTICATION_REQUIRED:
        return proxy_credentials_refused(site, action, proxy_origin)
    return None


def _proxy_refusal(
    site: str, error: BaseException, action: str, proxy_origin: str
) -> Optional[Exception]:
    """A :class:`~sgconnect.errors.ProxyError` when the proxy refused the ``CONNECT`` tunnel
    (its credentials: 407, or otherwise), else ``None``: nothing reached the site."""
    if not proxy_origin or "Tunnel connection failed" not in str(error):
        return None
    if "407" in str(error):
        return proxy_credentials_refused(site, action, proxy_origin)
    return unreachable(site, error, action, proxy=proxy_origin)


def _cause(exc: BaseException) -> BaseException:
    """The transport error inside a urllib ``URLError`` (its ``reason``), else ``exc``."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, BaseException) else exc


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class _Destination:
    """Where a download to a file is written. A regular file (new, or existing with one link),
    through a symlink too, is written under a temporary name next to it and moved in place once
    whole, keeping an existing file's mode: an error leaves neither a half file nor a damaged
    existing one. Anything else (a device, a FIFO, a file with several hard links) is written in
    place, as shotgun_api3 does, and never removed.

    :raises OSError: The file or its folder cannot be written, or the file is read-only (before
        any request is sent).
    """

    def __init__(self, file_path: Any):
        import stat

        self.path = file_path
        self.partial: Optional[str] = None
        real = os.path.realpath(os.fsdecode(os.fspath(file_path)))
        try:
            status: Optional[os.stat_result] = os.stat(real)
        except FileNotFoundError:
            status = None
        if status is not None and not os.access(real, os.W_OK):
            raise PermissionError(13, "Permission denied (read-only)", os.fsdecode(file_path))
        if status is None or (stat.S_ISREG(status.st_mode) and status.st_nlink == 1):
            self.target = real
            self.partial = f"{real}.{os.urandom(4).hex()}.part"
            mode = stat.S_IMODE(status.st_mode) if status is not None else 0o666
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            self.handle = os.fdopen(os.open(self.partial, flags, mode), "wb")
            if status is not None:
                os.chmod(self.partial, mode)  # as it was, whatever the umask
        else:
            self.handle = open(file_path, "wb")

    def finish(self) -> Any:
        self.handle.close()
        if self.partial is not None:
            os.replace(self.partial, self.target)
            self.partial = None
        return self.path

    def discard(self) -> None:
        """After an error: close, and remove the temporary file (never the destination)."""
        self.handle.close()
        if self.partial is not None:
            try:
                os.unlink(self.partial)
            except OSError:
                pass
            self.partial = None


def _save(
    reply: Any,
    destination: Optional[_Destination],
    *,
    site: str,
    action: str,
    timeout: Optional[float],
) -> Any:
    """The body of ``reply``, in memory or written to ``destination``: bounded by progress
    (:func:`transfer_handlers`), not as a whole, since a big file on a slow link takes as long
    as it needs; checked against its ``Content-Length``.

    :raises SiteTimeoutError: The body stalled, or trickled under 64 KiB per ``timeout``.
    :raises SiteResponseError: The body was cut short.
    :raises SiteUnreachableError: The connection was lost.
    :raises OSError: The file cannot be written (a full disk).
    """
    length = (reply.headers.get("Content-Length") or "").strip()
    announced = int(length) if length.isdigit() else None
    chunks: list[bytes] = []
    received = 0
    cut = False
    while True:
        try:
            chunk = reply.read(wire.CHUNK)
        except http.client.IncompleteRead as exc:  # a cut chunked body, or short of its length
            received += len(exc.partial)
            cut = True
            break
        except (OSError, http.client.HTTPException) as exc:
            raise _body_failed(site, exc, action, timeout, received) from None
        if not chunk:
            break
        received += len(chunk)
        if destination is not None:
            destination.handle.write(chunk)
        else:
            chunks.append(chunk)
    if cut or (announced is not None and received < announced):
        of = announced if announced is not None else "an unknown number of"
        raise SiteResponseError(
            f"{site}: {action} was cut short ({received} of {of} bytes): the connection was "
            "cut. Try again; if it persists, check the network, or a proxy in the way.",
            site,
        )
    if destination is not None:
        return destination.finish()
    return b"".join(chunks)


def _body_failed(
    site: str, error: BaseException, action: str, timeout: Optional[float], received: int
) -> Exception:
    """The error for a download body that stopped: stalled (a timeout) or lost."""
    if is_timeout(error) and timeout:
        return SiteTimeoutError(
            f"{action.capitalize()} stalled: under 64 KiB came within {timeout:g} s (about "
            f"{received} bytes received). Try again; if it persists, check the network, or "
            "raise the timeout in the hook settings.",
            site,
        )
    return SiteUnreachableError(
        f"{action.capitalize()} lost its connection after about {received} bytes "
        f"({why_unreachable(error)}). Try again; if it persists, check the network, or a proxy "
        "in the way.",
        site,
    )


# -- upload forms ---------------------------------------------------------------------------------


class _TransferHTTPHandler(urllib.request.HTTPHandler):
    handler_order = 499  # before urllib's own

    def __init__(self, stream_body: bool, timeout: Optional[float]):
        super().__init__()
        self._options = {"stream_body": stream_body, "default_timeout": timeout}

    def http_open(self, req: Any) -> Any:
        via_proxy = req.has_proxy()  # absolute-form to the proxy

        def connection(host: str, **kwargs: Any) -> Any:
            return wire.TransferHTTPConnection(host, via_proxy=via_proxy, **self._options, **kwargs)

        return self.do_open(connection, req)


class _TransferHTTPSHandler(urllib.request.HTTPSHandler):
    handler_order = 499

    def __init__(self, tls: Any, stream_body: bool, timeout: Optional[float]):
        super().__init__(context=tls)
        self._tls = tls
        self._options = {"stream_body": stream_body, "default_timeout": timeout}

    def https_open(self, req: Any) -> Any:
        def connection(host: str, **kwargs: Any) -> Any:
            return wire.TransferHTTPSConnection(host, **self._options, **kwargs)

        return self.do_open(connection, req, context=self._tls)


def transfer_handlers(
    site: str, *, stream_body: bool = False, timeout: Optional[float] = None
) -> list[Any]:
    """urllib handlers for a file transfer (wire's :class:`~sgconnect.transport.wire.
    TransferHTTPConnection`): the request body bounded by progress (each 64 KiB within the
    timeout), so that a big file on a slow link takes as long as it needs while a stall ends it;
    the reply within the timeout plus one per 64 KiB still queued on its way; with
    ``stream_body`` (a download), each 64 KiB of the reply's body within the timeout. https uses
    the one CA rule (:func:`~sgconnect.transport.ssl_context`); no redirect is followed.

    :param timeout: Seconds for each step when the opener is called without a timeout
        (shotgun_api3's uploads to cloud storage); ``None``: unbounded.
    :raises CaBundleError: The CA bundle cannot be read (an https site).
    """
    handlers: list[Any] = [NoRedirect(), _TransferHTTPHandler(stream_body, timeout)]
    if site.startswith("https:"):
        handlers.append(_TransferHTTPSHandler(ssl_context(site), stream_body, timeout))
    return handlers


def send_form(
    opener: Any, url: str, params: dict, *, site: str, timeout: Optional[float], proxy: str = ""
) -> bytes:
    """Post shotgun_api3's upload form once through ``opener`` (which follows no redirect; its
    body by progress: :func:`transfer_handlers`), each step within ``timeout`` seconds.

    :param proxy: The origin of the proxy the opener goes through (no password), or ``""``.
    :raises ProxyError: The proxy refused the tunnel or its credentials (nothing reached the
        site).
    :raises SiteRedirectError: A redirect.
    :raises SiteResponseError: An HTTP error answer (the upload may have been carried out).
    :raises SiteUnreachableError: Nothing was sent (refused, DNS, TLS).
    :raises WriteOutcomeUnknownError: The form may have reached the site; its reply was lost.
    """
    from . import socket_timeout

    action = "upload"
    deadline = Deadline(timeout)
    try:
        with opener.open(url, params, timeout=socket_timeout(timeout)) as reply:
            return _read_body(reply, site, action, write=True)
    except urllib.error.HTTPError as exc:
        refused = _redirect_or_proxy(site, exc, "the upload", proxy)
        if refused is not None:
            raise refused from None
        if exc.code in _GATEWAY:  # a gateway may have passed the upload on
            raise write_outcome_unknown(
                site, action, f"a gateway answered HTTP {exc.code}"
            ) from None
        raise SiteResponseError(
            f"{site} answered HTTP {exc.code} to the upload (it may have been carried out: "
            "check before uploading again).",
            site,
            status=exc.code,
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        error = _cause(exc)
        refused = _proxy_refusal(site, error, "the upload", proxy)
        if refused is not None:  # the CONNECT was refused: nothing reached the site
            raise refused from None
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)) or (
            type(error).__name__.startswith("SSL")
        ):
            raise _no_answer(site, error, action, deadline, proxy) from None
        raise write_outcome_unknown(site, action, _why(error)) from None


def put_to_storage(
    opener: Any, request: Any, *, site: str, timeout: Optional[float], proxy: str = ""
) -> str:
    """One PUT of an upload's data to cloud storage (shotgun_api3's ``_upload_data_to_storage``)
    through ``opener`` (:func:`transfer_handlers`: bounded by progress), sent once: shotgun_api3
    would send it again after an error, from a file object already read to its end. Messages
    name storage by its origin only: the presigned URL is a credential for that object.

    :returns: The ``ETag`` storage answered.
    :raises SiteRedirectError: Storage redirected.
    :raises ProxyError: The proxy refused its credentials or the tunnel.
    :raises SiteResponseError: Storage answered an HTTP error (the data was not stored).
    :raises SiteUnreachableError: No answer (:class:`SiteTimeoutError` when it stalled).
    """
    from . import socket_timeout

    action = f"the upload to storage at {location_origin(request.full_url)}"
    try:
        with opener.open(request, timeout=socket_timeout(timeout)) as reply:
            reply.read()
            return reply.headers.get("ETag") or ""
    except urllib.error.HTTPError as exc:
        refused = _redirect_or_proxy(site, exc, action, proxy)
        if refused is not None:
            raise refused from None
        raise SiteResponseError(
            f"Storage answered HTTP {exc.code} to {action} for {site}: the data was not stored. "
            "Try again; if it persists, check the site status.",
            site,
            status=exc.code,
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        error = _cause(exc)
        refused = _proxy_refusal(site, error, action, proxy)
        if refused is not None:
            raise refused from None
        if is_timeout(error) and timeout:
            raise SiteTimeoutError(
                f"Storage did not take {action} for {site} within {timeout:g} s (timeout): "
                "check the network, or raise the timeout in the hook settings.",
                site,
            ) from None
        raise SiteUnreachableError(
            f"{action.capitalize()} for {site} failed ({why_unreachable(error)}): the data may "
            "not be stored. Try again (storage keeps the last copy); if it persists, check the "
            "network, or a proxy in the way.",
            site,
        ) from None


# -- tk-core's own logins ------------------------------------------------------------------------

_guard_lock = threading.Lock()
_guard_depth = 0
_guard_saved: list[tuple[Any, Any]] = []
_guard_classes: list[tuple[Any, Any]] = []
#: The whole-request limit (seconds) of tk-core's requests on this thread, while guarded.
_guard_local = threading.local()
#: How often the watchdog shuts down a request's socket once its deadline passed (seconds): a
#: retry of httplib2's opens a new one, which is shut down in turn.
_WATCHDOG_TICK = 0.05


@contextmanager
def httplib2_never_redirects(timeout: Optional[float] = None) -> Iterator[None]:
    """While the block runs, no httplib2 ``Http`` made by shotgun_api3 follows a redirect, and
    each request made on this thread takes at most ``timeout`` seconds as a whole.

    tk-core's console and Qt password logins and renewals make their own
    ``shotgun_api3.Shotgun`` (tk-core's ``session_cache.generate_session_token``) and send the
    typed password through its httplib2, which re-posts the body on 307/308 and bounds each socket
    read only (a site trickling one byte every 0.5 s keeps it waiting as long as it likes). tk-core
    takes no connection factory, so, in every loaded copy of httplib2 (pip's shotgun_api3's and
    tk-core's vendored one), for the block only:

    - ``REDIRECT_CODES`` (the default of every new ``Http().redirect_codes``) is empty: a redirect
      is answered as shotgun_api3's ``ProtocolError``, which tk-core reports as a failed login;
    - ``Http._conn_request`` (one request with httplib2's own retries) is watched: when
      ``timeout`` seconds have passed (connect, TLS, send, every read, every retry), its socket is
      shut down and the request raises ``socket.timeout``, which tk-core re-raises and sgconnect
      types as :class:`~sgconnect.errors.SiteTimeoutError`. Each socket operation is also bounded
      by ``timeout`` (a connection without a timeout of its own gets it).

    :param timeout: Seconds for each whole request on this thread; ``None`` or 0: unbounded.
    """
    global _guard_depth
    with _guard_lock:
        if _guard_depth == 0:
            modules = [
                module
                for name, module in list(sys.modules.items())
                if name.endswith(("shotgun_api3.lib.httplib2", "shotgun_api3.lib.httplib2.python3"))
                and module is not None
            ]
            _guard_saved[:] = [
                (module, module.REDIRECT_CODES)
                for module in modules
                if hasattr(module, "REDIRECT_CODES")
            ]
            for module, _ in _guard_saved:
                module.REDIRECT_CODES = frozenset()
            classes = {
                id(m.Http): m.Http for m in modules if isinstance(getattr(m, "Http", None), type)
            }
            _guard_classes[:] = [
                (cls, cls.__dict__.get("_conn_request")) for cls in classes.values()
            ]
            for cls, original in _guard_classes:
                if original is not None:
                    cls._conn_request = _watched(original)
        _guard_depth += 1
    outer = getattr(_guard_local, "timeout", None)
    _guard_local.timeout = timeout or None
    try:
        yield
    finally:
        _guard_local.timeout = outer
        with _guard_lock:
            _guard_depth -= 1
            if _guard_depth == 0:
                for module, codes in _guard_saved:
                    module.REDIRECT_CODES = codes
                for cls, original in _guard_classes:
                    if original is not None:
                        cls._conn_request = original
                _guard_saved.clear()
                _guard_classes.clear()


def _watched(original: Callable) -> Callable:
    """httplib2's ``Http._conn_request``, bounded as a whole by this thread's guard timeout."""

    def _conn_request(http: Any, conn: Any, *args: Any, **kwargs: Any) -> Any:
        timeout = getattr(_guard_local, "timeout", None)
        if not timeout:
            return original(http, conn, *args, **kwargs)
        unbounded = getattr(conn, "timeout", None) is None
        if unbounded:  # each socket operation, connect included, for this request only
            conn.timeout = timeout
            if getattr(conn, "sock", None) is not None:
                conn.sock.settimeout(timeout)
        finished = threading.Event()
        expired = threading.Event()

        def watch() -> None:
            if finished.wait(timeout):
                return
            expired.set()
            while not finished.is_set():
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    try:  # the plain socket's shutdown: a blocked read (TLS too) ends at once
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except (OSError, TypeError, ValueError):
                        pass
                finished.wait(_WATCHDOG_TICK)

        connect = conn.connect

        def connect_in_time() -> None:
            if expired.is_set():  # httplib2 retries on a new socket: not past the deadline
                raise socket.timeout(f"no whole reply within {timeout:g} s")
            connect()

        threading.Thread(target=watch, name="sgconnect-login-deadline", daemon=True).start()
        conn.connect = connect_in_time
        try:
            return original(http, conn, *args, **kwargs)
        except Exception:
            if expired.is_set():
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a socket already shut down
                    pass
                raise socket.timeout(f"no whole reply within {timeout:g} s") from None
            raise
        finally:
            finished.set()
            conn.__dict__.pop("connect", None)
            if unbounded:
                conn.timeout = None
                if getattr(conn, "sock", None) is not None:
                    try:
                        conn.sock.settimeout(None)
                    except OSError:
                        pass

    _conn_request.__wrapped__ = original  # type: ignore[attr-defined]
    return _conn_request


def check_no_redirect(site: str, timeout: Optional[float] = 10.0) -> None:
    """Before a password is asked for: the site's api3 ``info`` (no credential), not followed.

    :raises SiteRedirectError: The site answers with a redirect (the password would be sent
        there). Any other outcome is left to the login itself, which reports it.
    """
    parts = urllib.parse.urlsplit(site)
    server = parts.netloc.rpartition("@")[2]
    body = json.dumps({"method_name": "info", "params": []}).encode()
    headers = {"content-type": "application/json; charset=utf-8", "user-agent": "sgconnect"}
    try:
        send(
            Target(parts.scheme, server),
            "POST",
            "/api3/json",
            body,
            headers,
            rpc="info",
            deadline=Deadline(timeout),
            site=site,
        )
    except SiteRedirectError:
        raise
    except Exception:  # noqa: BLE001 - a proxy-only network, a timeout: the login reports it
        pass


# -- process state --------------------------------------------------------------------------------


def reset() -> None:
    """Close this thread's sockets and forget the capabilities fetched so far."""
    _pool.clear()
    with _capabilities_lock:
        _capabilities.clear()
        _capabilities_locks.clear()


state.register(__name__, reset)
wire.after_fork(_renew_locks)
