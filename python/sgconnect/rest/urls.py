"""REST URLs: the token only ever goes to the site's ``/api/v1``.

A path is resolved against the site's ``/api/v1`` before any network access, and anything that
would leave it (another scheme, host or port, ``//host``, ``user@``, ``..``) is refused, so a
tool cannot send the token elsewhere. Pure functions, no network.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Mapping, Sequence, Union

from ..errors import InvalidSiteError
from ..sites import DEFAULT_PORTS, refusal

__all__ = ["API_ROOT", "TOKEN_PATH", "Params", "resolve_url", "with_params", "display"]

API_ROOT = "/api/v1"
TOKEN_PATH = API_ROOT + "/auth/access_token"

Params = Union[Mapping[str, Any], Sequence[tuple[str, Any]], None]


def _refused_path(site: str, reason: str) -> InvalidSiteError:
    return refusal(
        reason,
        site,
        subject=f"REST path refused before any request to {site}",
        advice=f"Pass a path relative to {API_ROOT}, such as '/entity/projects', or a link the "
        "site returned.",
    )


def resolve_url(site: str, path: str) -> str:
    """The absolute URL of ``path`` under ``site``'s ``/api/v1``; no network access.

    Accepts ``"/entity/projects"``, ``"entity/projects"``, ``"/api/v1/entity/projects"`` (a
    ``links`` value) and a full URL on the site's own origin, each with an optional query.

    :raises InvalidSiteError: ``path`` names another scheme, host or port, holds ``//host``,
        ``user@``, a backslash, a control character or a fragment, or leaves ``/api/v1``.
    """
    if not isinstance(path, str):
        raise _refused_path(site, f"a path is a str, not {type(path).__name__}")
    if any(ch <= " " or ch == "\x7f" for ch in path):
        raise _refused_path(site, "the path contains a space or a control character")
    if "\\" in path:
        raise _refused_path(site, "the path contains a backslash")
    if path.startswith("//"):
        raise _refused_path(site, "a path starting with '//' names another host")
    parts = urllib.parse.urlsplit(path)
    if parts.fragment or path.endswith("#"):
        raise _refused_path(site, "the path has a fragment ('#')")
    if parts.scheme or parts.netloc:
        if not (parts.scheme and parts.netloc):
            raise _refused_path(site, "the path has a scheme but no host, or a host but no scheme")
        if "@" in parts.netloc:
            raise _refused_path(site, "the URL has user information ('user@host')")
        if not _same_origin(site, parts):
            raise _refused_path(site, "the URL is on another origin (scheme, host or port)")
        rooted = parts.path
        if not (rooted == API_ROOT or rooted.startswith(API_ROOT + "/")):
            raise _refused_path(site, f"the URL is outside {API_ROOT}")
    elif parts.path == API_ROOT or parts.path.startswith(API_ROOT + "/"):
        rooted = parts.path
    else:
        relative = parts.path.lstrip("/")
        if ":" in relative.split("/", 1)[0]:  # RFC 3986: no ':' there in a relative path
            raise _refused_path(site, "the path starts with a 'host:port' or 'scheme:' form")
        rooted = f"{API_ROOT}/{relative}" if relative else API_ROOT
    if "@" in rooted:
        raise _refused_path(site, "the path has an '@' (a 'user@host' form)")
    for segment in rooted.split("/"):
        decoded = urllib.parse.unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise _refused_path(site, "the path has a '.', '..' or encoded '/' segment")
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
    return (port or DEFAULT_PORTS.get(scheme)) == (own.port or DEFAULT_PORTS.get(own.scheme))


def with_params(url: str, params: Params) -> str:
    if not params:
        return url
    items = params.items() if isinstance(params, Mapping) else params
    query = urllib.parse.urlencode(list(items), doseq=True)
    return url + ("&" if "?" in url else "?") + query


def display(url: str) -> str:
    """The path of ``url`` for a message (no query: it may be long)."""
    return urllib.parse.urlsplit(url).path
