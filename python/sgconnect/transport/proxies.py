"""The one rule for proxies and for the CA bundle, on every path.

**Proxy** (:func:`proxy_for`): the hook's ``http_proxy`` setting (``host[:port]`` or
``user:pass@host[:port]``, shotgun_api3's format, port 8080 by default) when it is set; else the
environment's proxy for the site's scheme (``HTTPS_PROXY``/``https_proxy`` for an https site,
``HTTP_PROXY``/``http_proxy`` for http), unless ``NO_PROXY``/``no_proxy`` names the site's host
(urllib's matching: a suffix, ``*`` for everything). The same answer goes to REST sessions,
doctor, the api3 connection (:meth:`Proxy.api3`), tk-core's console login and renewal (its
``DefaultsManager.get_http_proxy``) and tk-core's app session launcher (its ``http_proxy``).

Why the rule is needed: shotgun_api3 ignores the proxy variables; tk-core's console login reads
``http_proxy`` but not ``NO_PROXY``; urllib reads them all. Without one rule, one path goes
through the proxy while another goes around it.

The proxy's password is kept in a private attribute; the public ones (:attr:`Proxy.display`,
``repr``) mask it, it is registered for redaction, and it is never written to a child's
environment.

**CA bundle** (:func:`ca_file`, :func:`ssl_context`): ``SHOTGUN_API_CACERTS`` when set (it must
name a readable file: :class:`~sgconnect.errors.CaBundleError` names it otherwise), else the one
shotgun_api3 ships. Each bundle is parsed once per process (one :class:`ssl.SSLContext` per path).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import urllib.parse
import urllib.request
from typing import Any, Mapping, Optional

from .. import state
from ..environ import CA_CERTS
from ..errors import CaBundleError, ConfigurationError
from ..redaction import register_secret

__all__ = [
    "DEFAULT_PROXY_PORT",
    "Proxy",
    "parse_http_proxy",
    "mask_proxy",
    "proxy_for",
    "ca_file",
    "check_ca_bundle",
    "ssl_context",
    "reset",
]

#: The api3 client's default proxy port.
DEFAULT_PROXY_PORT = 8080


class Proxy:
    """An HTTP proxy: where it is, and (privately) its credentials.

    :ivar host: The proxy's host name.
    :ivar port: Its port.
    :ivar username: The user name, or ``None``.
    :ivar source: Where the rule found it: ``"http_proxy setting"`` or the variable's name.
    """

    __slots__ = ("host", "port", "username", "source", "_password")

    def __init__(
        self,
        host: str,
        port: int,
        username: Optional[str] = None,
        password: Optional[str] = None,
        source: str = "",
    ):
        self.host = host
        self.port = port
        self.username = username or None
        self.source = source
        self._password = password or None
        if self._password:
            register_secret(self._password)

    @property
    def origin(self) -> str:
        """``http://host:port``: what a message may name."""
        return f"http://{self.host}:{self.port}"

    @property
    def display(self) -> str:
        """The proxy for people: ``http://user:***@host:port`` (never the password)."""
        auth = f"{self.username}:***@" if self.username else ""
        return f"http://{auth}{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<Proxy {self.display} from {self.source or '?'}>"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Proxy cannot be pickled (it may hold a password)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Proxy):
            return NotImplemented
        return self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    @property
    def identity(self) -> tuple:
        """What tells two proxies apart (a key for connection pools): host, port, user name and
        a digest of the password (never the password itself)."""
        digest = hashlib.sha256((self._password or "").encode()).hexdigest()[:16]
        return (self.host, self.port, self.username, digest)

    def authorization(self) -> Optional[str]:
        """The ``Proxy-Authorization`` header value (Basic), or ``None`` without credentials."""
        if not self.username:
            return None
        raw = f"{self.username}:{self._password or ''}".encode()
        value = "Basic " + base64.b64encode(raw).decode("ascii")
        register_secret(value)
        return value

    def api3(self) -> str:
        """The ``http_proxy`` value for shotgun_api3 and tk-core (``user:pass@host:port``).

        It holds the password: hand it to those libraries only, never to a message or a child.

        :raises ConfigurationError: The host is an IPv6 address, which shotgun_api3's
            ``host:port`` format cannot carry (use the proxy's host name).
        """
        if ":" in self.host:
            raise ConfigurationError(
                f"The proxy {self.display} from {self.source or 'the http_proxy setting'} has an "
                "IPv6 address, which shotgun_api3's host:port format cannot carry: name the proxy "
                "by its host name or IPv4 address.",
                setting=_setting_name(self.source),
            )
        auth = f"{self.username}:{self._password or ''}@" if self.username else ""
        if auth:
            register_secret(auth)
        return f"{auth}{self.host}:{self.port}"

    def url(self) -> str:
        """``http://user:pass@host:port`` for urllib's ``ProxyHandler`` (it holds the password)."""
        if not self.username:
            return self.origin
        quote = urllib.parse.quote
        auth = f"{quote(self.username, safe='')}:{quote(self._password or '', safe='')}@"
        register_secret(auth)
        return f"http://{auth}{self.host}:{self.port}"


def parse_http_proxy(value: str, source: str = "http_proxy setting") -> Proxy:
    """A :class:`Proxy` from ``host[:port]``, ``user:pass@host[:port]`` or ``http://...``.

    Every proxy value sgconnect reads (the ``http_proxy`` setting, a proxy variable) is parsed
    here before any library sees it, so shotgun_api3's and urllib's own errors (which quote the
    value, password and all) are never reached.

    :param source: Where the value comes from (``"http_proxy setting"`` or the variable's name):
        the error names it.
    :raises ConfigurationError: (a ``ValueError``) No host, an unclosed ``[`` IPv6 host, a port
        that is not a number from 1 to 65535, or a scheme other than http. The message names
        ``source`` and shows the value with its password masked (:func:`mask_proxy`).
    """
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() != "http":
            raise _bad_proxy(
                value,
                source,
                f"uses {scheme}://, which sgconnect does not speak: use an http:// proxy "
                "(it tunnels https with CONNECT)",
            )
        text = rest.split("/", 1)[0]
    credentials, _, server = text.rpartition("@")
    host, _, port = server.partition(":")
    if host.startswith("["):  # [::1]:8080
        if "]" not in server:
            raise _bad_proxy(value, source, "has an IPv6 host without its closing ]")
        host, _, port = server[1:].partition("]")
        if port and not port.startswith(":"):
            raise _bad_proxy(value, source, "has text after its IPv6 host that is not :port")
        port = port[1:]
    if not host:
        raise _bad_proxy(value, source, "has no host")
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _bad_proxy(value, source, "has a port that is not a number from 1 to 65535")
    user = password = None
    if credentials:
        user, _, password = credentials.partition(":")
        user = urllib.parse.unquote(user)
        password = urllib.parse.unquote(password)
    return Proxy(host, int(port) if port else DEFAULT_PROXY_PORT, user, password, source)


def mask_proxy(value: str) -> str:
    """A proxy value as people may see it: any password replaced by ``***``.

    Works on any text, even one :func:`parse_http_proxy` refuses (everything between the first
    ``:`` of the credentials and the last ``@`` is masked; a value with ``@`` and no ``:`` before
    it has its whole credentials part masked).
    """
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    prefix = f"{scheme}://" if sep else ""
    body = rest if sep else text
    credentials, at, server = body.rpartition("@")
    if not at:
        return text
    for password in (credentials.partition(":")[2], credentials):
        if password:
            register_secret(password)
    user, colon, _ = credentials.partition(":")
    shown = f"{user}:***" if colon else "***"
    return f"{prefix}{shown}@{server}"


def _setting_name(source: str) -> str:
    return "http_proxy" if source in ("", "http_proxy setting") else source


def _bad_proxy(value: str, source: str, problem: str) -> ConfigurationError:
    setting = _setting_name(source)
    return ConfigurationError(
        f"The proxy {mask_proxy(value)!r} from {source} {problem}: use host:port or "
        f"user:password@host:port, or fix or unset {setting}.",
        setting=setting,
    )


def proxy_for(
    site: str, http_proxy: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> Optional[Proxy]:
    """The proxy a request to ``site`` goes through, by the one rule; ``None``: directly.

    :param site: The site URL (``https://studio.shotgrid.autodesk.com``).
    :param http_proxy: The hook's ``http_proxy`` setting (``""``/``None``: not set).
    :param environ: The environment to read (default: ``os.environ``).
    :raises ConfigurationError: (a ``ValueError``) The setting or the variable is not a proxy
        address (:func:`parse_http_proxy`).
    """
    if http_proxy and http_proxy.strip():
        return parse_http_proxy(http_proxy)
    environ = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(site)
    scheme = (parts.scheme or "https").lower()
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            key = lowered[: -len("_proxy")]
            # the lower-case spelling wins, as in urllib
            if key not in found or name == lowered:
                found[key] = (name, value)
    if scheme not in found:
        return None
    no_proxy = found.get("no", ("", ""))[1]
    host = parts.hostname or ""
    if no_proxy and urllib.request.proxy_bypass_environment(
        parts.netloc.rpartition("@")[2] or host, {"no": no_proxy}
    ):
        return None
    name, value = found[scheme]
    return parse_http_proxy(value, source=name)


# -- the CA bundle --------------------------------------------------------------------------------

_ssl_lock = threading.Lock()
_ssl_contexts: dict[str, Any] = {}


def ca_file(site: Optional[str] = None) -> str:
    """The CA bundle every path trusts: ``SHOTGUN_API_CACERTS``, else shotgun_api3's own.

    :raises CaBundleError: ``SHOTGUN_API_CACERTS`` names no readable file.
    """
    configured = os.environ.get(CA_CERTS)
    if configured:
        check_ca_bundle(site, configured)
        return configured
    from . import shotgun_api3

    return shotgun_api3().Shotgun._get_certs_file(None)


def check_ca_bundle(site: Optional[str], path: Optional[str] = None) -> None:
    """Raise :class:`CaBundleError` naming the bundle when ``SHOTGUN_API_CACERTS`` (or ``path``)
    is set but is not a readable file, for an https site (or no site). A pre-check for paths whose
    library would say less ("Cannot reach ... (FileNotFoundError): check the URL")."""
    path = path if path is not None else os.environ.get(CA_CERTS)
    if not path or (site or "").lower().startswith("http://"):
        return  # nothing to verify on a plain-http site
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        state_ = "does not exist" if not os.path.exists(path) else "is not a readable file"
        raise CaBundleError(
            f"The CA bundle {path} ({CA_CERTS}) {state_}, so no https request to "
            f"{site or 'the site'} can be verified: fix {CA_CERTS} or unset it.",
            site,
            path=path,
        )


def ssl_context(site: Optional[str] = None) -> Any:
    """The :class:`ssl.SSLContext` of :func:`ca_file`: one per bundle path, made on first need.

    :raises CaBundleError: The bundle is missing, unreadable or holds no certificate.
    """
    import ssl

    cafile = ca_file(site)
    with _ssl_lock:
        context = _ssl_contexts.get(cafile)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise CaBundleError(
                    f"Cannot load the CA bundle {cafile} for {site or 'the site'} "
                    f"({exc.__class__.__name__}): fix or unset {CA_CERTS}.",
                    site,
                    path=cafile,
                ) from None
            _ssl_contexts[cafile] = context
    return context


def reset() -> None:
    """Forget the TLS contexts (a changed CA bundle file is read again)."""
    with _ssl_lock:
        _ssl_contexts.clear()


state.register(__name__, reset)
