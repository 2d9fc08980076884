"""Constants, error types and small helpers shared by the parts of :class:`LocalSite`."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from dataclasses import dataclass
from html import escape
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)


MODES = ("default", "saml2", "oxygen", "ldap")


ERR_AUTH = 102


ERR_2FA = 106


ERR_SSO = 108


ERR_OXYG = 110


ERR_FAULT = 103


ERR_PERMISSION = 104


SERVER_VERSION = [8, 50, 0]
#: api3 ``info`` ``full_version``: four ints (major, minor, patch, build).
FULL_VERSION = [8, 50, 0, 9724]
#: REST root ``shotgun_version``: a build string, as a real site shows it.
SHOTGUN_VERSION_STRING = "v8.50.0.9724 (build 47ec49f)"
SITE_ID = 1
#: Entity types a site knows (a real site has more; these are what tests use).
ENTITY_TYPES = (
    "Project",
    "HumanUser",
    "ApiUser",
    "Asset",
    "Version",
    "Shot",
    "Sequence",
    "Note",
    "Playlist",
    "Step",
    "Task",
    "LocalStorage",
    "Page",
    "Attachment",
    "Group",
    "PublishedFile",
    "PublishedFileType",
    "Department",
    "EventLogEntry",
)


#: The path a saml2 site redirects api3 calls to once the SSO claims are over.
SAML_LOGIN_REQUEST = "/saml/saml_login_request"


#: The identity provider's own sign-in cookie (on its origin).
IDP_SESSION_COOKIE = "sgconnect_idp_session"


class ApiError(Exception):
    """An api3 in-band error (HTTP 200, ``{"exception": true, ...}``)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ApiRedirect(Exception):
    """An api3 call answered with an HTTP redirect (expired SSO claims)."""

    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


class RestError(Exception):
    """A REST (``/api/v1``) error: ``status``, JSON:API ``code``, ``title`` and ``detail``."""

    def __init__(self, status: int, code: int, title: str, detail: str = ""):
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail or title
        #: JSON:API ``source`` of the error (``{"pointer": "/<field>"}`` for a bad field).
        self.source: Dict[str, Any] = {}


@dataclass
class Ctx:
    """What the journal records about the request being answered."""

    rpc: Optional[str] = None
    auth: str = "none"
    login: Optional[str] = None
    sudo: Optional[str] = None
    error_code: Optional[int] = None
    connection: Optional[int] = None


@dataclass(frozen=True)
class ForeignRequest:
    """One request the foreign origin (:attr:`LocalSite.foreign_url`) received.

    :ivar method: The HTTP method.
    :ivar path: The URL path.
    :ivar query: The raw query string.
    :ivar headers: Every request header, as sent (``Authorization`` and ``Cookie`` included:
        that is what leak checks look at).
    :ivar body: The request body.
    """

    method: str
    path: str
    query: str
    headers: Dict[str, str]
    body: bytes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_shaped(claims: Dict[str, Any]) -> str:
    """A random token in JWT form (``header.payload.signature``); the payload holds no secret."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims, sort_keys=True).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"


def html_page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body>{body}</body></html>"
    )


def json_response(payload: Any, status: int = 200) -> Any:
    """A Werkzeug JSON response (Werkzeug imported lazily)."""
    from werkzeug.wrappers import Response

    return Response(json.dumps(payload), status=status, mimetype="application/json")


def html_response(title: str, body: str, status: int = 200) -> Any:
    """A Werkzeug HTML page response (Werkzeug imported lazily)."""
    from werkzeug.wrappers import Response

    return Response(html_page(title, body), status=status, mimetype="text/html")


def rest_error_response(exc: RestError) -> Any:
    """A REST error in the JSON:API envelope a real site sends (``{"errors": [...]}``)."""
    return json_response(
        {
            "errors": [
                {
                    "id": secrets.token_hex(8),
                    "status": exc.status,
                    "code": exc.code,
                    "title": exc.title,
                    "detail": exc.detail,
                    "source": exc.source,
                    "meta": {},
                }
            ]
        },
        exc.status,
    )


def rest_not_found() -> Any:
    """``/api/v2``, ``/api/v1.2``, ``GET`` on the app session endpoints...: 404, code 103."""
    return rest_error_response(RestError(404, 103, "Not Found", "Not Found"))


def iso_now() -> str:
    """The current UTC time as api3 writes it (``2026-01-31T12:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
