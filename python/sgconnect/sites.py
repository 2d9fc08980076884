"""Site URLs and purpose labels: validated before anything reaches the network or a log line.

Pure functions, no network, no heavy import.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any

from . import state
from .errors import InvalidPurposeError, InvalidSiteError

__all__ = [
    "normalize_site",
    "validate_purpose",
    "refusal",
    "DEFAULT_PORTS",
    "MAX_PURPOSE_LENGTH",
    "reset",
]

MAX_PURPOSE_LENGTH = 200

_SITE_EXAMPLE = "A site looks like https://mystudio.shotgrid.autodesk.com (http:// is allowed too)."
#: The port of a URL without one, per scheme (the one table of them; transport re-exports it).
DEFAULT_PORTS = {"https": 443, "http": 80}
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//)?")
#: ``host:port`` without a scheme, e.g. ``localhost:8000`` or ``mystudio.example.com:8080/page``.
#: The port needs a digit: ``javascript:/x`` and ``file:/etc/passwd`` are schemes, not hosts.
_HOST_PORT_RE = re.compile(r"[^:/?#@\\]+:[0-9]+(?:[/?#]|$)")
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
#: A query or fragment with one of these is refused rather than silently dropped.
_SECRET_WORDS = ("token", "password", "passwd", "pwd", "secret", "session", "key", "auth", "jwt")


def refusal(
    reason: str,
    site: Any = None,
    *,
    subject: str = "Invalid ShotGrid site",
    advice: str = _SITE_EXAMPLE,
) -> InvalidSiteError:
    """The error for a site URL (or a REST path, with its own ``subject`` and ``advice``) refused
    before any network access: ``"<subject>: <reason>. <advice>"``."""
    return InvalidSiteError(f"{subject}: {reason}. {advice}", site)


def _has_control(text: str) -> bool:
    """Whether ``text`` holds a control, format or unassigned character, or a line separator."""
    if text.isprintable():  # the fast path: no category C or Z character but the space
        return False
    return any(unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" for char in text)


def _split_scheme(text: str) -> tuple[str, str]:
    """``(scheme, rest)``; the scheme is ``https`` when there is none."""
    match = _SCHEME_RE.match(text)
    if match and (match.group(2) or not _HOST_PORT_RE.match(text)):
        scheme = match.group(1).lower()
        rest = text[match.end() :]
        if scheme not in DEFAULT_PORTS:
            authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
            if not match.group(2) and "@" in authority:
                raise refusal(
                    "credentials in the URL are refused, log in with `sgconnect login` instead"
                )
            raise refusal(f"the scheme {scheme[:20]!r} is not supported, only https and http")
        return scheme, rest.lstrip("/")
    if text.startswith("//"):
        return "https", text[2:]
    return "https", text


def _normalize_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise refusal("the IPv6 address in the host is not closed with ']'")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise refusal("the host is not a valid IPv6 address") from None
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise refusal("the host is empty")
    if any(char.isspace() for char in host):
        raise refusal("the host contains a space")
    try:
        ascii_host = host.lower().encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise refusal("the host is not a valid domain name (IDNA encoding failed)") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise refusal("the host is not a valid domain name: use letters, digits, '-' and '.' only")
    return ascii_host


def normalize_site(url: str) -> str:
    """Return the canonical ``scheme://host[:port]`` of a site URL, or raise InvalidSiteError.

    Adds ``https://`` when there is no scheme, lowercases, IDNA-encodes unicode hosts, drops a
    default port and any path pasted from the browser (``/page/123``, ``/detail/Shot/1``). Refuses
    other schemes, credentials in the URL, control characters, spaces in the host, a bad port, and
    a query or fragment that looks like it carries a secret. Surrounding whitespace (a trailing
    newline read from a file, say) is stripped first; a control character left after that is
    refused. The message never echoes the URL.
    """
    if not isinstance(url, str):
        raise refusal(f"expected a str, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise refusal("the site URL is empty")
    if _has_control(text):
        raise refusal("the URL contains a control character or a line break")

    scheme, rest = _split_scheme(text)
    authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise refusal("credentials in the URL are refused, log in with `sgconnect login` instead")
    marks = [index for index in (rest.find("?"), rest.find("#")) if index != -1]
    query_and_fragment = rest[min(marks) :].lower() if marks else ""
    if any(word in query_and_fragment for word in _SECRET_WORDS):
        raise refusal("the URL has a query or fragment that looks like it carries a secret")

    host, port = authority, ""
    if authority.startswith("["):
        closing = authority.find("]")
        host, after = authority[: closing + 1], authority[closing + 1 :]
        if closing == -1 or (after and not after.startswith(":")):
            raise refusal("the IPv6 address in the host is not closed with ']'")
        port = after[1:]
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    host = _normalize_host(host)
    site_rendering = f"{scheme}://{host}"

    if port:
        if not _PORT_RE.fullmatch(port) or not 0 < int(port) < 65536:
            raise refusal("the port must be a number from 1 to 65535", site_rendering)
        if int(port) != DEFAULT_PORTS[scheme]:
            return f"{site_rendering}:{int(port)}"
    return site_rendering


# -- purposes -----------------------------------------------------------------------------------

_PURPOSE_EXAMPLE = 'A purpose is a short label such as "maya publish" or "farm:render-submit".'
_accepted_purposes: dict[str, str] = {}
_MAX_CACHED_PURPOSES = 4096


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_purpose(purpose: Any) -> str:
    if not isinstance(purpose, str):
        raise InvalidPurposeError(
            f"Invalid purpose: expected a str, got {type(purpose).__name__}. {_PURPOSE_EXAMPLE}"
        )
    if _has_control(purpose):  # before stripping: a trailing line break is refused too
        raise InvalidPurposeError(
            f"Invalid purpose {_preview(purpose)}: it contains a control character or a line "
            f"break, which would let it forge audit log lines. {_PURPOSE_EXAMPLE}"
        )
    stripped = purpose.strip()
    if not stripped:
        raise InvalidPurposeError(f"Invalid purpose: it is empty. {_PURPOSE_EXAMPLE}")
    if len(stripped) > MAX_PURPOSE_LENGTH:
        raise InvalidPurposeError(
            f"Invalid purpose {_preview(stripped)}: it is {len(stripped)} characters long, "
            f"the limit is {MAX_PURPOSE_LENGTH}. {_PURPOSE_EXAMPLE}"
        )
    return stripped


def validate_purpose(purpose: str) -> str:
    """Return ``purpose`` stripped, or raise InvalidPurposeError.

    Refused: not a ``str``, empty, longer than 200 characters, or holding any control character
    anywhere, surrounding whitespace included (C0, C1, DEL, format characters, U+2028/U+2029): a
    purpose goes into audit log lines, and a line break in it could forge one. Accepted purposes
    are cached: repeated calls are cheap.
    """
    if type(purpose) is str:
        cached = _accepted_purposes.get(purpose)
        if cached is not None:
            return cached
    result = _check_purpose(purpose)
    if type(purpose) is str and len(_accepted_purposes) < _MAX_CACHED_PURPOSES:
        _accepted_purposes[purpose] = result
    return result


def reset() -> None:
    """Forget the purposes already accepted (they are checked again on next use)."""
    _accepted_purposes.clear()


state.register(__name__, reset)
