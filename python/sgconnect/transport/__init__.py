"""The transport: how sgconnect's requests reach a site, and what a failed one is called.

One module owns what every request path shares:

- **shotgun_api3 itself** (:func:`shotgun_api3`): the pip-installed package, else tk-core's
  ``tank_vendor.shotgun_api3`` (tk-core up to v0.23.6 ships it only there, and a bare DCC
  interpreter has no pip shotgun_api3). Every other module gets shotgun_api3 through it; it is
  imported on first need only.
- **TLS**: the CA bundle shotgun_api3 trusts (``SHOTGUN_API_CACERTS``, else its own), one
  :class:`ssl.SSLContext` per bundle (:func:`ssl_context`, reset by :func:`reset`).
- **Proxies and the CA bundle**: one rule for every path (:mod:`sgconnect.transport.proxies`);
  :func:`proxy_url` is its urllib spelling of an ``http_proxy`` setting.
- **The wire** (:mod:`sgconnect.transport.wire`): one deadline per call, deadline-bounded
  sockets, one keep-alive connection per thread and target, fork safety; under both surfaces:
  api3 (:mod:`sgconnect.transport.api3`) and REST and sgconnect's own HTTP requests
  (:mod:`sgconnect.transport.http`: no redirects, no duplicate writes, typed replies).
- **Every transport-fault message** (:func:`unreachable`, :func:`why_unreachable`,
  :func:`network_failure`): one wording, whatever the surface (api3, REST, login, renewal).

The issue "One hardened transport on every path" hardens this seam (deadlines, keep-alive).
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from http import client as http_client  # not ``import http``: the submodule .http shadows it
from typing import Any, Iterator, Optional

from .. import state
from ..environ import CA_CERTS
from ..errors import (
    ProxyError,
    SiteRedirectError,
    SiteTimeoutError,
    SiteUnreachableError,
    WriteOutcomeUnknownError,
)
from ..sites import DEFAULT_PORTS

__all__ = [
    "NoRedirect",
    "build_opener",
    "socket_timeout",
    "USER_AGENT",
    "DEFAULT_PORTS",
    "DEFAULT_PROXY_PORT",
    "shotgun_api3",
    "proxy_url",
    "ssl_context",
    "unreachable",
    "proxy_credentials_refused",
    "why_unreachable",
    "network_failure",
    "exception_chain",
    "timed_out",
    "redirected",
    "location_origin",
    "write_outcome_unknown",
    "reset",
]

USER_AGENT = "sgconnect/0.1"
#: The api3 client's default proxy port.
DEFAULT_PROXY_PORT = 8080


# -- shotgun_api3 ---------------------------------------------------------------------------------


def shotgun_api3() -> Any:
    """The ``shotgun_api3`` module: the pip-installed one, else tk-core's vendored copy.

    :raises ImportError: Neither is importable.
    """
    try:
        import shotgun_api3 as module
    except ImportError:
        try:
            from tank_vendor import shotgun_api3 as module
        except ImportError:
            raise ImportError(
                "sgconnect needs shotgun_api3: pip install shotgun_api3, or run inside tk-core "
                "(its tank_vendor.shotgun_api3)"
            ) from None
    return module


# -- proxies, TLS, redirects, timeouts ------------------------------------------------------------


def proxy_url(http_proxy: str) -> str:
    """``host[:port]`` or ``user:pass@host[:port]`` (the api3 format) as a proxy URL for urllib.

    The port defaults to 8080, as in shotgun_api3. The password is registered as a secret.
    (:mod:`sgconnect.transport.proxies` owns the rule; this is its urllib spelling.)

    :raises ValueError: No host, or a port that is not a number.
    """
    from .proxies import parse_http_proxy

    return parse_http_proxy(http_proxy).url()


def ssl_context(site: str) -> Any:
    """The TLS context of every path: ``SHOTGUN_API_CACERTS``, else shotgun_api3's bundle
    (:func:`sgconnect.transport.proxies.ssl_context`: one per bundle, parsed once).

    :raises CaBundleError: The CA bundle cannot be read.
    """
    from .proxies import ssl_context as context

    return context(site)


def reset() -> None:
    """Forget the TLS contexts (a changed ``SHOTGUN_API_CACERTS`` file is read again)."""
    from . import proxies

    proxies.reset()


state.register(__name__, reset)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the Authorization header must not travel to another URL.

    Consulted before urllib's own redirect handler (an opener built by shotgun_api3 has one), it
    raises the 3xx as an ``HTTPError`` rather than letting that handler follow it.
    """

    handler_order = 499

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, msg, headers, fp)


def build_opener(site: str, proxy: Optional[str]) -> urllib.request.OpenerDirector:
    """A urllib opener for ``site``: through ``proxy`` (a :func:`proxy_url`) or no proxy at all
    (the ``http_proxy`` environment variables are ignored, as by shotgun_api3), never following a
    redirect, with :func:`ssl_context` for https."""
    proxies = {"http": proxy, "https": proxy} if proxy else {}
    handlers: list[Any] = [urllib.request.ProxyHandler(proxies), NoRedirect()]
    if site.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(site)))
    return urllib.request.build_opener(*handlers)


def socket_timeout(timeout_secs: Optional[float]) -> Any:
    """The ``timeout`` argument for a socket-level call: ``None`` or 0 waits forever."""
    return timeout_secs if timeout_secs else socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


# -- transport faults -----------------------------------------------------------------------------


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a timeout (``socket.timeout`` is ``TimeoutError`` since Python 3.10)."""
    return isinstance(error, (TimeoutError, socket.timeout))


def _proxy_failed(error: BaseException) -> bool:
    """Whether a fault on a proxied request is the proxy's: no TCP connection to it, or a
    refused ``CONNECT`` tunnel."""
    import errno

    if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
        return True
    if isinstance(error, OSError) and error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return True
    return "Tunnel connection failed" in str(error)


def proxy_credentials_refused(site: Optional[str], action: str, proxy: str) -> ProxyError:
    """The error for a proxy's 407 to its credentials: ``action`` did not reach ``site``.

    :param proxy: The proxy's origin (``http://host:port``, no password), or ``""``.
    """
    return ProxyError(
        f"The proxy {proxy or 'in the way'} refused its credentials (407 Proxy Authentication "
        f"Required), so {action} did not reach {site or 'the site'}: check the user and password "
        "of the http_proxy setting (or HTTPS_PROXY/HTTP_PROXY).",
        site,
        proxy=proxy,
    )


def why_unreachable(error: BaseException) -> str:
    """A person's words for a transport fault, with the exception's class name."""
    import ssl

    kind = error.__class__.__name__
    if is_timeout(error):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused: nothing listens there ({kind})"
    if isinstance(error, socket.gaierror):
        return f"unknown host name ({kind})"
    if isinstance(error, ssl.SSLError):
        return (
            "TLS failed: an http site given as https, or a certificate problem "
            f"(see {CA_CERTS}) ({kind})"
        )
    return kind


def unreachable(
    site: Optional[str],
    error: BaseException,
    action: str,
    timeout: Optional[float] = None,
    *,
    to: str = "",
    via_proxy: bool = False,
    proxy: str = "",
) -> SiteUnreachableError:
    """The error for a request to ``site`` that got no answer: a timeout, or a transport fault.

    :param site: The site URL (``None``: "the site").
    :param error: The transport exception (or its reason).
    :param action: What did not get an answer, for a timeout ("find", "REST GET /entity/...").
    :param timeout: The timeout in seconds when one applied; a timeout without one is a fault.
    :param to: What the request was for, after the site ("to log in", "for the REST API").
    :param via_proxy: The request went through the configured proxy (the REST client, which
        blames the proxy itself when it could not reach it).
    :param proxy: The proxy the request went through (``http://host:port``, no password), or
        ``""``: a connection that could not be opened (refused, unknown host, no route) or a
        refused tunnel is then the proxy's fault, a :class:`~sgconnect.errors.ProxyError`
        naming it (every TCP connection goes to the proxy).
    """
    where = site or "the site"
    if timeout is not None and is_timeout(error):
        return timed_out(site, action, timeout)
    if proxy and _proxy_failed(error):
        reason = (
            f"it refused the tunnel ({str(error)[:80]})"
            if "Tunnel connection failed" in str(error)
            else why_unreachable(error)
        )
        return ProxyError(
            f"Cannot reach the proxy {proxy} ({reason}), so {action} did not reach {where}: "
            "check the proxy (the http_proxy setting, HTTPS_PROXY/HTTP_PROXY) or NO_PROXY.",
            site,
            proxy=proxy,
        )
    via = " through the proxy" if proxy or via_proxy else ""
    purpose = f" {to}" if to else ""
    doctor = f" (`sgconnect doctor --site {site}`)" if site else ""
    return SiteUnreachableError(
        f"Cannot reach {where}{via}{purpose} ({why_unreachable(error)}): check the URL (is it "
        f"http or https?), the network and any proxy{doctor}.",
        site,
    )


def timed_out(site: Optional[str], action: str, timeout: float) -> SiteTimeoutError:
    """The error for a call to ``site`` whose deadline (``timeout`` seconds) passed."""
    return SiteTimeoutError(
        f"{site or 'the site'} did not answer {action} within {timeout:g} s (timeout). Check the "
        "network, or raise the timeout in the hook settings.",
        site,
    )


def location_origin(location: str) -> str:
    """``scheme://host[:port]`` of a Location header: never its path, query or user info."""
    parts = urllib.parse.urlsplit(location or "")
    if not parts.scheme or not parts.hostname:
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def redirected(site: Optional[str], status: int, location: str, action: str) -> SiteRedirectError:
    """The error for a redirect answered to a credential-bearing request (never followed), on
    every surface (api3, REST, logins). A relative Location is resolved against ``site``."""
    resolved = urllib.parse.urljoin(site + "/", location) if site and location else location
    origin = location_origin(resolved)
    where = f"to {origin}" if origin else "within the site"
    return SiteRedirectError(
        f"{site or 'the site'} answered {action} with a redirect (HTTP {status}) {where}; it was "
        "not followed, so no credential left for another address. Check the site URL (http or "
        "https, the site's current address) or a proxy in the way.",
        site,
        status=status,
        location_origin=origin,
    )


def write_outcome_unknown(
    site: Optional[str], action: str, why: str, *, method: str = ""
) -> WriteOutcomeUnknownError:
    """The error for a write that may have reached ``site`` but whose reply was lost, on every
    surface (api3 ``create``, REST ``POST``...).

    :param action: What was written (``"create"``, ``"REST POST /api/v1/entity/assets"``).
    :param why: Why the outcome is unknown (``"no reply came in time"``).
    :param method: The api3 method or HTTP method; ``action`` when not given.
    """
    return WriteOutcomeUnknownError(
        f"The {action} sent to {site or 'the site'} may have been carried out, but {why}. It was "
        "not sent again: check whether it happened (find the entity, or GET it) before writing "
        "again.",
        site,
        method=method or action,
        what=action,
    )


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes, contexts and tk-core's ``parent_exception``, each once."""
    pending: list[Optional[BaseException]] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending += [error.__cause__, error.__context__, getattr(error, "parent_exception", None)]


def network_failure(exc: BaseException) -> Optional[BaseException]:
    """The transport error behind ``exc`` (its causes, contexts, tk-core's parent), or None."""
    httplib2 = shotgun_api3().lib.httplib2
    for error in exception_chain(exc):
        reason = getattr(error, "reason", None)
        if isinstance(error, urllib.error.URLError) and isinstance(reason, BaseException):
            return reason
        if isinstance(error, (OSError, http_client.HTTPException, httplib2.HttpLib2Error)):
            return error
    return None
