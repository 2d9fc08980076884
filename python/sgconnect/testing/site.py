"""A local ShotGrid-like site: the authentication surface of a real site, on 127.0.0.1.

:class:`LocalSite` serves, with Werkzeug, threaded, on a free loopback port:

- the api3 JSON-RPC endpoint (``POST /api3/json``) that shotgun_api3 and tk-core speak;
- the web login of a site (``/auth/renew`` -> identity provider -> ``/auth/landing``), with the
  identity provider on a **second origin** (its own port), as tk-core's QtWebEngine dialog sees it;
- the app session launcher (``/internal_api/app_session_request``);
- a slice of the REST API (``/api/v1``): token minting with every grant, and projects.

It also keeps what tests need: a request journal, controls to expire sessions and tokens, and the
set of every secret it issued or accepted. Wire formats follow the measured behaviour of ShotGrid,
tk-core 0.24.0 and shotgun_api3 3.10.3 (see ``docs/local-site-contract.md``).

Werkzeug is imported lazily, when a site starts: importing :mod:`sgconnect.testing` is cheap.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple
from urllib.parse import quote_plus, urlencode

logger = logging.getLogger(__name__)

MODES = ("default", "saml2", "oxygen")

#: api3 in-band error codes (shotgun_api3.shotgun.Shotgun.ERR_*).
ERR_AUTH = 102
ERR_2FA = 106
ERR_SSO = 108
ERR_OXYG = 110
#: Any other code becomes a plain ``shotgun_api3.Fault`` on the client side.
ERR_FAULT = 103
ERR_PERMISSION = 104

SERVER_VERSION = [8, 50, 0]

_SAML_LOGIN_REQUEST = "/saml/saml_login_request"
_IDP_SESSION_COOKIE = "sgconnect_idp_session"


@dataclass(frozen=True)
class HumanUserSpec:
    """A human user of the site.

    :ivar login: The login (``alice``).
    :ivar name: The display name.
    :ivar id: The HumanUser id.
    :ivar email: The email; defaults to ``<login>@example.com``.
    :ivar password: The password; ``None`` draws a random one per site instance.
    :ivar two_factor: When true, password logins also need the current 2FA code.
    """

    login: str
    name: str
    id: int
    email: Optional[str] = None
    password: Optional[str] = None
    two_factor: bool = False

    def __repr__(self) -> str:  # never show a password
        return (
            f"HumanUserSpec(login={self.login!r}, name={self.name!r}, id={self.id!r}, "
            f"two_factor={self.two_factor!r})"
        )


@dataclass(frozen=True)
class ScriptSpec:
    """A script user (ApiUser) of the site.

    :ivar name: The script name (``script_name`` / REST ``client_id``).
    :ivar key: The application key; ``None`` draws a random one per site instance.
    :ivar id: The ApiUser id; ``None`` assigns one.
    """

    name: str
    key: Optional[str] = None
    id: Optional[int] = None

    def __repr__(self) -> str:  # never show a key
        return f"ScriptSpec(name={self.name!r}, id={self.id!r})"


@dataclass(frozen=True)
class JournalEntry:
    """One request the site answered.

    :ivar method: The HTTP method.
    :ivar path: The URL path (no query string, so no secret).
    :ivar rpc: The api3 method name, or ``None``.
    :ivar auth: ``"none" | "password" | "session" | "script" | "bearer" | "cookie"``.
    :ivar login: The acting login (the user, or the script name), or ``None``.
    :ivar sudo: The ``sudo_as_login``, or ``None``.
    :ivar status: The HTTP status.
    :ivar error_code: The api3 in-band error code, or ``None``.
    :ivar user_agent: The request's ``User-Agent`` header, or ``None``.
    :ivar fault: The injected fault this request got (:meth:`LocalSite.inject_fault`), or
        ``None`` when it was answered normally.
    """

    method: str
    path: str
    rpc: Optional[str]
    auth: str
    login: Optional[str]
    sudo: Optional[str]
    status: int
    error_code: Optional[int]
    user_agent: Optional[str] = None
    fault: Optional[str] = None


DEMO_USERS: Tuple[HumanUserSpec, ...] = (
    HumanUserSpec("alice", "Alice Anders", 42),
    HumanUserSpec("bob", "Bob Brown", 43, two_factor=True),
    HumanUserSpec("carol", "Carol Chen", 44),
)
DEMO_SCRIPTS: Tuple[ScriptSpec, ...] = (ScriptSpec("sgconnect_farm", id=101),)
DEMO_PROJECTS: Tuple[str, ...] = ("Big Buck Bunny", "Sintel", "Tears of Steel")


# --------------------------------------------------------------------------------------------
# State records
# --------------------------------------------------------------------------------------------


class _Session:
    """A session token's life: who it is for, and when it (and its SSO claims) expire."""

    __slots__ = ("login", "is_script", "expires_at", "claims_expire_at")

    def __init__(self, login: str, is_script: bool, expires_at: float, claims_at: Optional[float]):
        self.login = login
        self.is_script = is_script
        self.expires_at = expires_at
        self.claims_expire_at = claims_at


class _RestToken:
    __slots__ = ("login", "is_script", "sudo", "expires_at")

    def __init__(self, login: str, is_script: bool, sudo: Optional[str], expires_at: float):
        self.login = login
        self.is_script = is_script
        self.sudo = sudo
        self.expires_at = expires_at


class _AppSessionRequest:
    __slots__ = ("app_name", "machine_id", "created", "state", "login", "token")

    def __init__(self, app_name: str, machine_id: str, created: float):
        self.app_name = app_name
        self.machine_id = machine_id
        self.created = created
        self.state = "pending"  # pending | approved | delivered | denied
        self.login: Optional[str] = None
        self.token: Optional[str] = None


class _ApiError(Exception):
    """An api3 in-band error (HTTP 200, ``{"exception": true, ...}``)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Redirect(Exception):
    """An api3 call answered with an HTTP redirect (expired SSO claims)."""

    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


class _RestError(Exception):
    def __init__(self, status: int, code: int, title: str, detail: str = ""):
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail or title


@dataclass
class _Ctx:
    """What the journal records about the request being answered."""

    rpc: Optional[str] = None
    auth: str = "none"
    login: Optional[str] = None
    sudo: Optional[str] = None
    error_code: Optional[int] = None


#: What :meth:`LocalSite.inject_fault` can do to a request.
FAULT_KINDS = ("http_500", "http_502", "http_503", "html", "slow", "close")


class _Fault:
    """An injected fault: what, for how many more requests, and which ones."""

    __slots__ = ("kind", "remaining", "path_prefix", "delay", "rpc")

    def __init__(self, kind: str, count: int, path_prefix: str, delay: float, rpc: Optional[str]):
        self.kind = kind
        self.remaining = count
        self.path_prefix = path_prefix
        self.delay = delay
        self.rpc = rpc


class _DropConnection(ConnectionAbortedError):
    """Raised out of the WSGI app to make Werkzeug drop the connection silently."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt_shaped(claims: Dict[str, Any]) -> str:
    """A random token in JWT form (``header.payload.signature``); the payload holds no secret."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims, sort_keys=True).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"


def _html_page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body>{body}</body></html>"
    )


def _match(value: Any, relation: str, values: Sequence[Any]) -> bool:
    """Apply one api3 filter condition to a field value."""

    def norm(v: Any) -> Any:
        if isinstance(v, dict) and "id" in v:
            return (v.get("type"), v["id"])
        return v

    value = norm(value)
    vals = [norm(v) for v in values]
    first = vals[0] if vals else None
    if relation == "is":
        return value == first
    if relation == "is_not":
        return value != first
    if relation == "in":
        flat = vals[0] if len(vals) == 1 and isinstance(vals[0], list) else vals
        return value in [norm(v) for v in flat]
    if relation == "not_in":
        flat = vals[0] if len(vals) == 1 and isinstance(vals[0], list) else vals
        return value not in [norm(v) for v in flat]
    if relation in ("contains", "not_contains", "starts_with", "ends_with"):
        text, needle = str(value or "").lower(), str(first or "").lower()
        result = {
            "contains": needle in text,
            "not_contains": needle not in text,
            "starts_with": text.startswith(needle),
            "ends_with": text.endswith(needle),
        }[relation]
        return result
    if relation in ("greater_than", "less_than"):
        try:
            return value > first if relation == "greater_than" else value < first
        except TypeError:
            return False
    raise _ApiError(ERR_FAULT, f"API read() unsupported filter relation: {relation!r}")


def _matches(record: Dict[str, Any], filters: Any) -> bool:
    """Evaluate api3 ``filters`` (``{"logical_operator", "conditions"}``) against a record."""
    if not filters:
        return True
    if isinstance(filters, list):  # a bare list of conditions
        filters = {"logical_operator": "and", "conditions": filters}
    if not isinstance(filters, dict):
        raise _ApiError(ERR_FAULT, "API read() filters must be a dictionary")
    op = filters.get("logical_operator", "and")
    results: List[bool] = []
    for cond in filters.get("conditions", []):
        if isinstance(cond, dict) and "conditions" in cond:
            results.append(_matches(record, cond))
        elif isinstance(cond, dict) and "path" in cond:
            results.append(
                _match(
                    record.get(cond["path"]), cond.get("relation", "is"), cond.get("values") or []
                )
            )
        elif isinstance(cond, list) and len(cond) >= 3:
            results.append(_match(record.get(cond[0]), cond[1], cond[2:]))
        else:
            raise _ApiError(ERR_FAULT, "API read() malformed filter condition")
    return any(results) if op == "or" else all(results)


# --------------------------------------------------------------------------------------------
# The site
# --------------------------------------------------------------------------------------------


class LocalSite:
    """A ShotGrid-like site on 127.0.0.1, for tests, demos and ``sgconnect site``.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalSite(mode="saml2") as site:
            sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))

    Every password and key is random per instance. All shared state is guarded by one lock, so
    the site can be hit from many threads at once.
    """

    def __init__(
        self,
        mode: str = "default",
        *,
        app_session_launcher: bool = True,
        unified_login_flow: bool = False,
        session_lifetime: float = 3600,
        claims_lifetime: float = 3600,
        rest_token_lifetime: int = 600,
        app_session_request_lifetime: float = 300,
        users: Optional[Iterable[HumanUserSpec]] = None,
        scripts: Optional[Iterable[ScriptSpec]] = None,
        projects: Optional[Iterable[str]] = None,
        api_max_entities_per_page: int = 500,
        port: int = 0,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.app_session_launcher = app_session_launcher
        self.unified_login_flow = unified_login_flow
        self.session_lifetime = float(session_lifetime)
        self.claims_lifetime = float(claims_lifetime)
        self.rest_token_lifetime = int(rest_token_lifetime)
        self.app_session_request_lifetime = float(app_session_request_lifetime)
        self.api_max_entities_per_page = int(api_max_entities_per_page)
        #: The site's port (0: any free port); the identity provider always takes a free one.
        self.port = int(port)

        self._lock = threading.RLock()
        self._secrets: Set[str] = set()
        self._journal: List[JournalEntry] = []
        self._mint_count = 0

        self._users: Dict[str, HumanUserSpec] = {}
        self._passwords: Dict[str, str] = {}
        self._2fa: Dict[str, str] = {}
        for spec in DEMO_USERS if users is None else users:
            self._add_user(spec)
        self._scripts: Dict[str, ScriptSpec] = {}
        self._keys: Dict[str, str] = {}
        for n, spec in enumerate(DEMO_SCRIPTS if scripts is None else scripts):
            self._add_script(spec, default_id=101 + n)
        self._projects: List[Dict[str, Any]] = []
        for name in DEMO_PROJECTS if projects is None else projects:
            self._add_project(name)

        self._sessions: Dict[str, _Session] = {}
        self._rest_tokens: Dict[str, _RestToken] = {}
        self._refresh_tokens: Dict[str, _RestToken] = {}
        self._app_requests: Dict[str, _AppSessionRequest] = {}
        self._idp_sessions: Dict[str, str] = {}
        self._idp_tickets: Dict[str, Tuple[str, float]] = {}

        self._faults: List[_Fault] = []
        self._stopping = threading.Event()

        self._servers: List[Any] = []
        self._threads: List[threading.Thread] = []
        self._url: Optional[str] = None
        self._idp_url: Optional[str] = None

    # ---------------------------------------------------------------- population

    def _add_user(self, spec: HumanUserSpec) -> None:
        password = spec.password or secrets.token_urlsafe(12)
        self._users[spec.login] = spec
        self._passwords[spec.login] = password
        self._secrets.add(password)
        if spec.two_factor:
            self._new_2fa_code(spec.login)

    def _new_2fa_code(self, login: str) -> None:
        code = f"{secrets.randbelow(10**6):06d}"
        self._2fa[login] = code
        self._secrets.add(code)

    def _add_script(self, spec: ScriptSpec, default_id: int) -> None:
        key = spec.key or secrets.token_urlsafe(24)
        if spec.id is None:
            spec = ScriptSpec(spec.name, spec.key, default_id)
        self._scripts[spec.name] = spec
        self._keys[spec.name] = key
        self._secrets.add(key)

    def _add_project(self, name: str) -> Dict[str, Any]:
        project = {
            "type": "Project",
            "id": 70 + len(self._projects) + 1,
            "name": name,
            "tank_name": None,
            "sg_status": "Active",
            "archived": False,
            "is_template": False,
        }
        self._projects.append(project)
        return project

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LocalSite:
        """Start the site and the identity provider servers (idempotent)."""
        if self._servers:
            return self
        self._stopping.clear()
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _QuietHandler(WSGIRequestHandler):
            """No request lines on stderr: URLs may carry tickets and tokens."""

            def log(self, type: str, message: str, *args: Any) -> None:
                logger.debug("local site %s: %s", type, "request log line suppressed")

        self._site_routes = self._site_map()
        self._idp_routes = self._idp_map()
        site_server = make_server(
            "127.0.0.1", self.port, self._site_wsgi, threaded=True, request_handler=_QuietHandler
        )
        idp_server = make_server(
            "127.0.0.1", 0, self._idp_wsgi, threaded=True, request_handler=_QuietHandler
        )
        for server in (site_server, idp_server):
            server.socket.listen(1024)  # many concurrent clients in tests
        self._url = f"http://127.0.0.1:{site_server.server_port}"
        self._idp_url = f"http://127.0.0.1:{idp_server.server_port}"
        self._servers = [site_server, idp_server]
        for server, name in ((site_server, "site"), (idp_server, "idp")):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sgconnect-local-{name}-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers and join their threads (idempotent)."""
        servers, threads = self._servers, self._threads
        self._servers, self._threads = [], []
        self._stopping.set()  # slow faults answer at once
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalSite(mode={self.mode!r}, url={self._url!r})"

    # ---------------------------------------------------------------- public API

    @property
    def url(self) -> str:
        """The site, ``http://127.0.0.1:<port>``."""
        if self._url is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._url

    @property
    def idp_url(self) -> str:
        """The identity provider, a second origin: ``http://127.0.0.1:<other port>``."""
        if self._idp_url is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._idp_url

    @property
    def users(self) -> Tuple[HumanUserSpec, ...]:
        """The human users (passwords through :meth:`password`)."""
        return tuple(self._users.values())

    @property
    def scripts(self) -> Tuple[ScriptSpec, ...]:
        """The script users (keys through :meth:`script_key`)."""
        return tuple(self._scripts.values())

    @property
    def projects(self) -> List[str]:
        """The project names, in id order."""
        with self._lock:
            return [p["name"] for p in self._projects]

    def password(self, login: str) -> str:
        """The password of a human user."""
        return self._passwords[login]

    def two_factor_code(self, login: str) -> str:
        """The current 2FA code of a 2FA user; a code is good for one login."""
        with self._lock:
            return self._2fa[login]

    def script_key(self, name: str) -> str:
        """The application key of a script user."""
        return self._keys[name]

    def issue_session(self, login: str) -> str:
        """A new valid session token for ``login``, as a login would give (no HTTP)."""
        with self._lock:
            if login not in self._users and login not in self._scripts:
                raise KeyError(f"no user or script {login!r} on this site")
            return self._new_session(login, is_script=login not in self._users)

    def expire_sessions(self) -> None:
        """Every session token issued so far now answers 102 (and its SSO claims are over)."""
        with self._lock:
            past = time.time() - 1
            for session in self._sessions.values():
                session.expires_at = past
                if session.claims_expire_at is not None:
                    session.claims_expire_at = past

    def expire_claims(self) -> None:
        """Every SSO claim issued so far is over (saml2: api3 answers a 302), sessions live on."""
        with self._lock:
            for session in self._sessions.values():
                if session.claims_expire_at is not None:
                    session.claims_expire_at = time.time() - 1

    def expire_rest_tokens(self) -> None:
        """Every Bearer token issued so far now answers 401 (refresh tokens stay good)."""
        with self._lock:
            for token in self._rest_tokens.values():
                token.expires_at = time.time() - 1

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str = "/api3/json",
        *,
        delay: float = 3.0,
        rpc: Optional[str] = None,
    ) -> None:
        """Make the next ``count`` requests whose path starts with ``path_prefix`` misbehave.

        :param kind: ``"http_500"``, ``"http_502"``, ``"http_503"`` (that status, an HTML error
            page), ``"html"`` (200 with an HTML page instead of JSON), ``"slow"`` (wait
            ``delay`` seconds, then answer normally) or ``"close"`` (read the request, then drop
            the connection without an answer).
        :param count: How many matching requests get the fault (then the site behaves again).
        :param path_prefix: Which requests: ``"/api3/json"`` (api3), ``"/api/v1"`` (REST),
            ``"/internal_api/app_session_request"``...; ``"/"`` for all.
        :param delay: Seconds a ``slow`` fault waits (cut short when the site stops).
        :param rpc: Only api3 requests calling this method (``"read"``, ``"info"``...).

        Faults queue up in order; each request takes the first that matches it. A faulted
        request is in the journal with ``fault`` set (``status`` 0 for ``close``).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(kind, int(count), path_prefix, float(delay), rpc))

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many faulted answers are still to come."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def pending_app_session_requests(self) -> List[str]:
        """The ids of the app session requests awaiting approval, oldest first."""
        with self._lock:
            now = time.time()
            return [
                rid
                for rid, req in self._app_requests.items()
                if req.state == "pending" and now - req.created < self.app_session_request_lifetime
            ]

    def approve_app_session(self, request_id: str, login: str) -> None:
        """Approve a request as ``login`` would in a browser with a session on the site."""
        with self._lock:
            if login not in self._users:
                raise KeyError(f"no user {login!r} on this site")
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                raise KeyError(f"no pending app session request {request_id!r}")
            req.state = "approved"
            req.login = login
            req.token = self._new_session(login)

    def deny_app_session(self, request_id: str) -> None:
        """Deny a request as a person in a browser would; its next poll answers 404."""
        with self._lock:
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                raise KeyError(f"no pending app session request {request_id!r}")
            req.state = "denied"

    @property
    def journal(self) -> List[JournalEntry]:
        """A copy of the requests answered so far, in order."""
        with self._lock:
            return list(self._journal)

    def clear_journal(self) -> None:
        with self._lock:
            self._journal.clear()

    @property
    def mint_count(self) -> int:
        """REST access tokens minted so far."""
        with self._lock:
            return self._mint_count

    @property
    def secrets(self) -> Set[str]:
        """Every password, key, 2FA code, session token, Bearer/refresh token, ticket and
        cookie secret the site issued or accepted (a copy)."""
        with self._lock:
            return set(self._secrets)

    # ---------------------------------------------------------------- state helpers (locked)

    def _new_session(self, login: str, is_script: bool = False) -> str:
        token = secrets.token_hex(16)
        now = time.time()
        claims = now + self.claims_lifetime if self.mode == "saml2" and not is_script else None
        self._sessions[token] = _Session(login, is_script, now + self.session_lifetime, claims)
        self._secrets.add(token)
        return token

    def _live_app_request(self, request_id: str) -> Optional[_AppSessionRequest]:
        req = self._app_requests.get(request_id)
        if req is None or time.time() - req.created >= self.app_session_request_lifetime:
            return None
        return req

    def _check_password(self, login: str, password: Any) -> None:
        expected = self._passwords.get(login)
        if (
            expected is None
            or not isinstance(password, str)
            or not secrets.compare_digest(expected.encode(), password.encode())
        ):
            raise _ApiError(ERR_AUTH, "Can't authenticate user: invalid login or password.")

    def _check_script(self, name: Any, key: Any) -> None:
        expected = self._keys.get(name) if isinstance(name, str) else None
        if (
            expected is None
            or not isinstance(key, str)
            or not secrets.compare_digest(expected.encode(), key.encode())
        ):
            raise _ApiError(ERR_AUTH, "Can't authenticate script: invalid script name or key.")

    def _refuse_password_mode(self) -> None:
        if self.mode == "saml2":
            raise _ApiError(
                ERR_SSO,
                "Authentication using username/password is not allowed for an SSO-enabled site.",
            )
        if self.mode == "oxygen":
            raise _ApiError(
                ERR_OXYG,
                "Authentication using username/password is not allowed for an Autodesk "
                "Identity enabled site.",
            )

    def _check_2fa(self, login: str, auth_token: Any) -> None:
        spec = self._users[login]
        if not spec.two_factor:
            return
        if not auth_token:
            raise _ApiError(
                ERR_2FA, "This user has two-factor authentication enabled: a code is required."
            )
        if not secrets.compare_digest(self._2fa[login].encode(), str(auth_token).encode()):
            raise _ApiError(ERR_AUTH, "Can't authenticate user: invalid two-factor code.")
        self._new_2fa_code(login)  # one code, one login

    def _session_for(self, token: Any, *, saml_redirect: bool) -> _Session:
        session = self._sessions.get(token) if isinstance(token, str) else None
        if session is None:
            raise _ApiError(ERR_AUTH, "Can't authenticate user: unknown session.")
        now = time.time()
        if (
            saml_redirect
            and session.claims_expire_at is not None
            and session.claims_expire_at <= now
        ):
            raise _Redirect(self.url + _SAML_LOGIN_REQUEST)
        if session.expires_at <= now:
            raise _ApiError(ERR_AUTH, "Can't authenticate user: session expired.")
        return session

    def _record(
        self,
        method: str,
        path: str,
        status: int,
        ctx: _Ctx,
        user_agent: Optional[str],
        fault: Optional[str] = None,
    ) -> None:
        entry = JournalEntry(
            method,
            path,
            ctx.rpc,
            ctx.auth,
            ctx.login,
            ctx.sudo,
            status,
            ctx.error_code,
            user_agent,
            fault,
        )
        with self._lock:
            self._journal.append(entry)

    # ---------------------------------------------------------------- WSGI plumbing

    def _site_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        return Map(
            [
                Rule("/api3/json", endpoint="api3", methods=["POST"]),
                Rule("/api3/track_metrics/", endpoint="track_metrics", methods=["POST"]),
                Rule("/auth/renew", endpoint="renew", methods=["GET"]),
                Rule(_SAML_LOGIN_REQUEST, endpoint="renew", methods=["GET"]),
                Rule("/auth/sso_callback", endpoint="sso_callback", methods=["GET"]),
                Rule("/auth/landing", endpoint="landing", methods=["GET"]),
                Rule("/internal_api/app_session_request", endpoint="asl_create", methods=["POST"]),
                Rule(
                    "/internal_api/app_session_request/<request_id>",
                    endpoint="asl_poll",
                    methods=["PUT"],
                ),
                Rule(
                    "/app_session_request/<request_id>",
                    endpoint="asl_page",
                    methods=["GET", "POST"],
                ),
                Rule("/api/v1", endpoint="rest_root", methods=["GET"]),
                Rule("/api/v1/", endpoint="rest_root", methods=["GET"]),
                Rule("/api/v1/auth/access_token", endpoint="rest_token", methods=["POST"]),
                Rule(
                    "/api/v1/entity/<collection>",
                    endpoint="rest_collection",
                    methods=["GET", "POST"],
                ),
                Rule(
                    "/api/v1/entity/<collection>/<int:entity_id>",
                    endpoint="rest_entity",
                    methods=["GET"],
                ),
            ],
            strict_slashes=False,
        )

    def _idp_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        return Map([Rule("/login", endpoint="idp_login", methods=["GET", "POST"])])

    def _site_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        return self._dispatch(self._site_routes, environ, start_response)

    def _idp_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        return self._dispatch(self._idp_routes, environ, start_response)

    def _dispatch(self, routes: Any, environ: Dict[str, Any], start_response: Callable) -> Any:
        from werkzeug.exceptions import HTTPException
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        ctx = _Ctx()
        fault = self._take_fault(request, ctx) if routes is self._site_routes else None
        if fault is not None:
            faulted = self._faulted(fault, request, environ, ctx)
            if faulted is not None:
                self._record(
                    request.method,
                    request.path,
                    faulted.status_code,
                    ctx,
                    request.headers.get("User-Agent"),
                    fault.kind,
                )
                return faulted(environ, start_response)
        try:
            adapter = routes.bind_to_environ(environ)
            endpoint, args = adapter.match()
            response = getattr(self, f"_h_{endpoint}")(request, ctx, **args)
        except HTTPException as exc:
            response = self._json(
                {"errors": [{"status": exc.code, "title": exc.name}]}, exc.code or 500
            )
        except Exception:  # never kill the server thread
            logger.debug("local site: handler failed", exc_info=True)
            response = Response(
                json.dumps({"errors": [{"status": 500, "title": "Internal"}]}),
                status=500,
                mimetype="application/json",
            )
        self._record(
            request.method,
            request.path,
            response.status_code,
            ctx,
            request.headers.get("User-Agent"),
            fault.kind if fault is not None else None,
        )
        return response(environ, start_response)

    def _take_fault(self, request: Any, ctx: _Ctx) -> Optional[_Fault]:
        """The first injected fault matching ``request`` (one use of it), or None."""
        with self._lock:
            if not self._faults:
                return None
        rpc = None
        if request.path.startswith("/api3/json"):
            try:  # the body stays cached on the request for the handler
                payload = json.loads(request.get_data(as_text=True) or "null")
                rpc = payload.get("method_name") if isinstance(payload, dict) else None
            except ValueError:
                rpc = None
        with self._lock:
            for fault in self._faults:
                if not request.path.startswith(fault.path_prefix):
                    continue
                if fault.rpc is not None and fault.rpc != rpc:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                ctx.rpc = rpc
                return fault
        return None

    def _faulted(self, fault: _Fault, request: Any, environ: Dict[str, Any], ctx: _Ctx) -> Any:
        """The response a fault gives instead of the real one; None to answer normally."""
        from werkzeug.wrappers import Response

        if fault.kind == "slow":
            self._stopping.wait(fault.delay)
            return None
        if fault.kind == "close":
            request.get_data()  # read the request: the client sees a clean end of stream
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._record(
                request.method, request.path, 0, ctx, request.headers.get("User-Agent"), fault.kind
            )
            raise _DropConnection("injected fault: connection closed")
        if fault.kind == "html":
            return Response(
                _html_page("Maintenance", "<h1>Down for maintenance</h1><p>Back soon.</p>"),
                status=200,
                mimetype="text/html",
            )
        status = int(fault.kind.split("_")[1])
        return Response(
            _html_page(f"{status} error", f"<h1>{status}</h1><p>Something went wrong.</p>"),
            status=status,
            mimetype="text/html",
        )

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Any:
        from werkzeug.wrappers import Response

        return Response(json.dumps(payload), status=status, mimetype="application/json")

    @staticmethod
    def _html(title: str, body: str, status: int = 200) -> Any:
        from werkzeug.wrappers import Response

        return Response(_html_page(title, body), status=status, mimetype="text/html")

    # ---------------------------------------------------------------- api3

    def _info(self) -> Dict[str, Any]:
        return {
            "version": list(SERVER_VERSION),
            "full_version": list(SERVER_VERSION) + ["local"],
            "s3_uploads_enabled": False,
            "api_max_entities_per_page": self.api_max_entities_per_page,
            "user_authentication_method": self.mode,
            "unified_login_flow_enabled": self.unified_login_flow,
            "authentication_app_session_launcher_enabled": self.app_session_launcher,
        }

    def _h_track_metrics(self, request: Any, ctx: _Ctx) -> Any:
        return self._json({})

    def _h_api3(self, request: Any, ctx: _Ctx) -> Any:
        from werkzeug.utils import redirect

        try:
            try:
                payload = json.loads(request.get_data(as_text=True) or "null")
            except ValueError:
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: invalid JSON.") from None
            if not isinstance(payload, dict) or not isinstance(payload.get("method_name"), str):
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: no method_name.")
            method = payload["method_name"]
            ctx.rpc = method
            params = payload.get("params") or []
            if not isinstance(params, list):
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: params is not a list.")
            if method == "info":
                return self._json({"results": self._info()})
            handler = getattr(self, f"_rpc_{method}", None)
            if handler is None:
                raise _ApiError(ERR_FAULT, f"Unknown method {method!r}.")
            auth = params[0] if params and isinstance(params[0], dict) else None
            args = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
            if auth is None:
                raise _ApiError(ERR_AUTH, "Can't authenticate: no credentials.")
            with self._lock:
                actor = self._authenticate_api3(auth, ctx)
                results = handler(actor, args)
            return self._json({"results": results})
        except _ApiError as exc:
            ctx.error_code = exc.code
            return self._json({"exception": True, "error_code": exc.code, "message": exc.message})
        except _Redirect as exc:
            return redirect(exc.location, code=302)

    def _authenticate_api3(self, auth: Dict[str, Any], ctx: _Ctx) -> Dict[str, Any]:
        """Check api3 auth params; returns the actor ``{"login", "is_script", "session"}``."""
        if auth.get("user_login") and auth.get("user_password"):
            login = str(auth["user_login"])
            ctx.auth, ctx.login = "password", login
            self._refuse_password_mode()
            self._check_password(login, auth["user_password"])
            self._check_2fa(login, auth.get("auth_token"))
            actor = {"login": login, "is_script": False, "session": None}
        elif auth.get("script_name") and auth.get("script_key"):
            name = str(auth["script_name"])
            ctx.auth, ctx.login = "script", name
            self._check_script(name, auth["script_key"])
            actor = {"login": name, "is_script": True, "session": None}
        elif auth.get("session_token"):
            ctx.auth = "session"
            session = self._session_for(auth["session_token"], saml_redirect=True)
            ctx.login = session.login
            actor = {
                "login": session.login,
                "is_script": session.is_script,
                "session": auth["session_token"],
            }
        else:
            raise _ApiError(ERR_AUTH, "Can't authenticate: no usable credentials.")
        sudo = auth.get("sudo_as_login")
        if sudo:
            ctx.sudo = str(sudo)
            if not actor["is_script"]:
                raise _ApiError(ERR_PERMISSION, "sudo_as_login is only allowed for script users.")
            if sudo not in self._users:
                raise _ApiError(ERR_AUTH, f"sudo_as_login: no active user with login {sudo!r}.")
            actor["sudo"] = sudo
        return actor

    def _rpc_get_session_token(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        if actor["session"]:
            return {"session_id": actor["session"]}
        login = actor.get("sudo") or actor["login"]
        return {"session_id": self._new_session(login, is_script=login in self._scripts)}

    def _records(self, entity_type: str) -> List[Dict[str, Any]]:
        if entity_type == "Project":
            return [dict(p) for p in self._projects]
        if entity_type == "HumanUser":
            return [
                {
                    "type": "HumanUser",
                    "id": u.id,
                    "login": u.login,
                    "name": u.name,
                    "email": u.email or f"{u.login}@example.com",
                    "firstname": u.name.split(" ")[0],
                    "lastname": " ".join(u.name.split(" ")[1:]),
                    "sg_status_list": "act",
                }
                for u in self._users.values()
            ]
        if entity_type == "ApiUser":
            return [
                {
                    "type": "ApiUser",
                    "id": s.id,
                    "firstname": s.name,
                    "lastname": "",
                    "name": s.name,
                    "sg_status_list": "act",
                }
                for s in self._scripts.values()
            ]
        if entity_type == "LocalStorage":
            return []
        raise _ApiError(
            ERR_FAULT, f"API read() invalid/missing string entity 'type': {entity_type}"
        )

    def _rpc_read(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        records = [
            r for r in self._records(str(args.get("type"))) if _matches(r, args.get("filters"))
        ]
        fields = args.get("return_fields") or ["id"]
        paging = args.get("paging") or {}
        try:
            per_page = max(
                1, min(int(paging.get("entities_per_page") or 500), self.api_max_entities_per_page)
            )
            page = max(1, int(paging.get("current_page") or 1))
        except (TypeError, ValueError):
            raise _ApiError(ERR_FAULT, "API read() invalid paging.") from None
        chunk = records[(page - 1) * per_page : page * per_page]
        entities = [
            {
                "type": r["type"],
                "id": r["id"],
                **{f: r.get(f) for f in fields if f not in ("type", "id")},
            }
            for r in chunk
        ]
        return {
            "entities": entities,
            "paging_info": {
                "has_next_page": page * per_page < len(records),
                "entity_count": len(records),
                "current_page": page,
                "entities_per_page": per_page,
                "page_count": max(1, -(-len(records) // per_page)),
            },
        }

    # ---------------------------------------------------------------- web login

    def _h_renew(self, request: Any, ctx: _Ctx) -> Any:
        from werkzeug.utils import redirect

        query = {"return_to": self.url + "/auth/sso_callback"}
        for key in ("product", "email", "sso_domain"):
            if request.args.get(key):
                query[key] = request.args[key]
        return redirect(f"{self.idp_url}/login?{urlencode(query)}", code=302)

    def _h_sso_callback(self, request: Any, ctx: _Ctx) -> Any:
        from werkzeug.utils import redirect

        ticket = request.args.get("ticket", "")
        with self._lock:
            entry = self._idp_tickets.pop(ticket, None)
            if entry is None or time.time() - entry[1] > 60:
                return self._html(
                    "Login failed", "<p id='error'>Unknown or expired ticket.</p>", status=403
                )
            login = entry[0]
            ctx.auth, ctx.login = "cookie", login
            token = self._new_session(login)  # a NEW _session_id on every login and renewal
            session = self._sessions[token]
            csrf = secrets.token_hex(16)
            self._secrets.add(csrf)
            user_id = self._users[login].id
        response = redirect(self.url + "/auth/landing", code=302)
        response.set_cookie("_session_id", token, path="/", httponly=True)
        response.set_cookie("shotgun_current_user_login", quote_plus(login), path="/")
        response.set_cookie(f"csrf_token_u{user_id}", csrf, path="/")
        if session.claims_expire_at is not None:
            response.set_cookie(
                "shotgun_current_user_sso_claims_expiration",
                str(int(session.claims_expire_at)),
                path="/",
            )
        else:
            response.set_cookie(
                "shotgun_current_session_expiration", str(int(session.expires_at)), path="/"
            )
        return response

    def _browser_login(self, request: Any, ctx: _Ctx) -> Optional[str]:
        """The login of the browser's valid site session (``_session_id`` cookie), or None."""
        token = request.cookies.get("_session_id")
        with self._lock:
            try:
                session = self._session_for(token, saml_redirect=False)
            except _ApiError:
                return None
        if session.is_script:
            return None
        ctx.auth, ctx.login = "cookie", session.login
        return session.login

    def _h_landing(self, request: Any, ctx: _Ctx) -> Any:
        login = self._browser_login(request, ctx)
        who = f"<p id='user'>Logged in as {escape(login)}.</p>" if login else ""
        return self._html("Logged in", f"<h1 id='landing'>You are logged in.</h1>{who}")

    def _h_idp_login(self, request: Any, ctx: _Ctx) -> Any:
        from werkzeug.utils import redirect

        source = request.form if request.method == "POST" else request.args
        return_to = source.get("return_to", "")
        if not return_to.startswith(self.url + "/"):
            return self._html("Bad request", "<p id='error'>Unknown relying party.</p>", 400)

        def back_to_site(login: str) -> Any:
            ticket = secrets.token_urlsafe(24)
            self._idp_tickets[ticket] = (login, time.time())
            self._secrets.add(ticket)
            return redirect(f"{return_to}?{urlencode({'ticket': ticket})}", code=302)

        error = ""
        with self._lock:
            if request.method == "GET":
                login = self._idp_sessions.get(request.cookies.get(_IDP_SESSION_COOKIE, ""))
                if login in self._users:  # signed in at the IdP already: no form (renewal)
                    ctx.auth, ctx.login = "cookie", login
                    return back_to_site(login)
            else:
                login = source.get("login", "")
                ctx.auth, ctx.login = "password", login or None
                try:
                    self._check_password(login, source.get("password", ""))
                    self._check_2fa(login, source.get("code"))
                except _ApiError:
                    error = "Invalid login or password."
                else:
                    cookie = secrets.token_urlsafe(24)
                    self._idp_sessions[cookie] = login
                    self._secrets.add(cookie)
                    response = back_to_site(login)
                    response.set_cookie(_IDP_SESSION_COOKIE, cookie, path="/", httponly=True)
                    return response
        email = source.get("email", "") if request.method == "GET" else source.get("login", "")
        if email and "@" in email:
            email = email.split("@")[0]
        body = (
            "<h1>Sign in</h1>"
            + (f"<p id='error'>{escape(error)}</p>" if error else "")
            + "<form id='login_form' method='post' action='/login'>"
            f"<input type='hidden' name='return_to' value='{escape(return_to, quote=True)}'>"
            "<label for='login'>Login</label>"
            f"<input type='text' id='login' name='login' value='{escape(email, quote=True)}'>"
            "<label for='password'>Password</label>"
            "<input type='password' id='password' name='password'>"
            "<label for='code'>2FA code (if enabled)</label>"
            "<input type='text' id='code' name='code'>"
            "<button type='submit' id='submit'>Sign in</button>"
            "</form>"
        )
        return self._html("Sign in", body, status=401 if error else 200)

    # ---------------------------------------------------------------- app session launcher

    def _h_asl_create(self, request: Any, ctx: _Ctx) -> Any:
        if not self.app_session_launcher:
            return self._json(
                {"message": "The app session launcher is disabled on this site."}, 403
            )
        app_name = request.form.get("appName", "")
        if not app_name:
            return self._json({"message": "appName is required."}, 400)
        with self._lock:
            request_id = secrets.token_hex(16)
            self._app_requests[request_id] = _AppSessionRequest(
                app_name, request.form.get("machineId", ""), time.time()
            )
        return self._json(
            {"sessionRequestId": request_id, "url": f"{self.url}/app_session_request/{request_id}"}
        )

    def _h_asl_poll(self, request: Any, ctx: _Ctx, request_id: str) -> Any:
        with self._lock:
            req = self._live_app_request(request_id)
            if req is None or req.state in ("denied", "delivered"):
                return self._json({"message": "Request not found, rejected or expired."}, 404)
            if req.state == "pending":
                return self._json({"approved": False})
            req.state = "delivered"
            ctx.login = req.login
            return self._json({"approved": True, "sessionToken": req.token, "userLogin": req.login})

    def _h_asl_page(self, request: Any, ctx: _Ctx, request_id: str) -> Any:
        login = self._browser_login(request, ctx)
        with self._lock:
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                return self._html(
                    "Unknown request", "<p id='error'>This request is unknown or expired.</p>", 404
                )
            app_name, machine = req.app_name, req.machine_id
        if login is None:
            link = f"{self.url}/auth/renew"
            return self._html(
                "Sign in first",
                f"<p id='error'>Sign in to the site first: <a id='signin' href='{link}'>"
                "sign in</a>, then reload this page.</p>",
                401,
            )
        if request.method == "POST":
            decision = request.form.get("decision")
            try:
                if decision == "approve":
                    self.approve_app_session(request_id, login)
                else:
                    self.deny_app_session(request_id)
            except KeyError:
                return self._html("Unknown request", "<p id='error'>Already decided.</p>", 409)
            word = "approved" if decision == "approve" else "denied"
            return self._html(
                "Done", f"<p id='result'>Request {word}. You may return to your application.</p>"
            )
        body = (
            f"<p>{escape(app_name)} on {escape(machine)} asks to sign in as "
            f"<b id='user'>{escape(login)}</b>.</p>"
            "<form method='post'>"
            "<button type='submit' name='decision' value='approve' id='approve'>Approve</button>"
            "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
            "</form>"
        )
        return self._html("Approve sign in", body)

    # ---------------------------------------------------------------- REST

    @staticmethod
    def _rest_error(exc: _RestError) -> Any:
        return LocalSite._json(
            {
                "errors": [
                    {
                        "id": secrets.token_hex(8),
                        "status": exc.status,
                        "code": exc.code,
                        "title": exc.title,
                        "detail": exc.detail,
                        "source": {},
                        "meta": {},
                    }
                ]
            },
            exc.status,
        )

    def _h_rest_root(self, request: Any, ctx: _Ctx) -> Any:
        return self._json(
            {
                "data": {
                    "shotgun_version": ".".join(str(v) for v in SERVER_VERSION),
                    "api_version": "v1.1",
                    "unified_login_flow_enabled": self.unified_login_flow,
                    "user_authentication_method": self.mode,
                    "authentication_app_session_launcher_enabled": self.app_session_launcher,
                },
                "links": {"self": "/api/v1"},
            }
        )

    def _h_rest_token(self, request: Any, ctx: _Ctx) -> Any:
        fields = request.form.copy()  # the body wins; the query is accepted too
        for key, value in request.args.items():
            fields.setdefault(key, value)
        try:
            with self._lock:
                login, is_script, sudo = self._rest_grant(fields, ctx)
                access = _jwt_shaped(
                    {
                        "sub": login,
                        "jti": secrets.token_hex(8),
                        "exp": int(time.time()) + self.rest_token_lifetime,
                    }
                )
                refresh = secrets.token_urlsafe(32)
                token = _RestToken(login, is_script, sudo, time.time() + self.rest_token_lifetime)
                self._rest_tokens[access] = token
                self._refresh_tokens[refresh] = _RestToken(login, is_script, sudo, float("inf"))
                self._secrets.update((access, refresh))
                self._mint_count += 1
        except _RestError as exc:
            return self._rest_error(exc)
        return self._json(
            {
                "token_type": "Bearer",
                "access_token": access,
                "expires_in": self.rest_token_lifetime,
                "refresh_token": refresh,
            }
        )

    def _rest_grant(self, fields: Any, ctx: _Ctx) -> Tuple[str, bool, Optional[str]]:
        """Check a token request; returns ``(login, is_script, sudo)``. Called locked."""
        grant = fields.get("grant_type", "")
        scope = fields.get("scope", "")
        try:
            if grant == "password":
                login = fields.get("username", "")
                ctx.auth, ctx.login = "password", login or None
                self._refuse_password_mode()
                self._check_password(login, fields.get("password", ""))
                self._check_2fa(login, fields.get("auth_token"))
                principal = (login, False)
            elif grant == "client_credentials":
                name = fields.get("client_id", "")
                ctx.auth, ctx.login = "script", name or None
                self._check_script(name, fields.get("client_secret", ""))
                principal = (name, True)
            elif grant == "session_token":
                ctx.auth = "session"
                token = fields.get("session_token", "")
                session = self._session_for(token, saml_redirect=False)
                if session.claims_expire_at is not None and session.claims_expire_at <= time.time():
                    raise _ApiError(ERR_AUTH, "SSO claims expired.")
                session.expires_at = max(session.expires_at, time.time() + self.session_lifetime)
                ctx.login = session.login
                principal = (session.login, session.is_script)
            elif grant == "refresh_token":
                ctx.auth = "bearer"
                refreshed = self._refresh_tokens.get(fields.get("refresh_token", ""))
                if refreshed is None:
                    raise _RestError(400, ERR_AUTH, "Invalid refresh token")
                ctx.login, ctx.sudo = refreshed.login, refreshed.sudo
                return refreshed.login, refreshed.is_script, refreshed.sudo
            else:
                raise _RestError(
                    400,
                    103,
                    "Unsupported grant type",
                    f"grant_type must be password, client_credentials, "
                    f"session_token or refresh_token, not {grant!r}",
                )
        except _ApiError as exc:
            raise _RestError(
                401 if exc.code == ERR_AUTH else 400, exc.code, "Authentication failed", exc.message
            ) from None
        sudo = None
        if scope:
            if not scope.startswith("sudo_as_login:"):
                raise _RestError(400, 103, "Invalid scope")
            sudo = scope.split(":", 1)[1]
            ctx.sudo = sudo
            if not principal[1]:
                raise _RestError(
                    403,
                    ERR_PERMISSION,
                    "Forbidden",
                    "sudo_as_login is only allowed for script users",
                )
            if sudo not in self._users:
                raise _RestError(400, ERR_AUTH, "Invalid scope", f"no user with login {sudo!r}")
        return principal[0], principal[1], sudo

    def _bearer(self, request: Any, ctx: _Ctx) -> _RestToken:
        ctx.auth = "bearer"
        header = request.headers.get("Authorization", "")
        token_text = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self._lock:
            token = self._rest_tokens.get(token_text)
            if token is None or token.expires_at <= time.time():
                raise _RestError(
                    401, ERR_AUTH, "Unauthorized", "The access token is unknown or has expired."
                )
        ctx.login, ctx.sudo = token.login, token.sudo
        return token

    _COLLECTIONS = {"projects": "Project", "human_users": "HumanUser", "api_users": "ApiUser"}

    def _rest_record(self, record: Dict[str, Any], collection: str) -> Dict[str, Any]:
        attributes = {k: v for k, v in record.items() if k not in ("type", "id")}
        return {
            "type": record["type"],
            "attributes": attributes,
            "relationships": {},
            "id": record["id"],
            "links": {"self": f"/api/v1/entity/{collection}/{record['id']}"},
        }

    def _h_rest_collection(self, request: Any, ctx: _Ctx, collection: str) -> Any:
        try:
            self._bearer(request, ctx)
            entity_type = self._COLLECTIONS.get(collection)
            if entity_type is None:
                raise _RestError(404, 103, "Not found", f"unknown entity type {collection!r}")
            if request.method == "POST":
                if entity_type != "Project":
                    raise _RestError(403, ERR_PERMISSION, "Forbidden")
                body = request.get_json(silent=True) or {}
                name = body.get("name") or (body.get("data") or {}).get("name")
                if not isinstance(name, str) or not name:
                    raise _RestError(400, 103, "Bad request", "a project needs a name")
                with self._lock:
                    record = dict(self._add_project(name))
                return self._json({"data": self._rest_record(record, collection)}, 201)
            try:
                number = max(1, int(request.args.get("page[number]", 1)))
                size = max(1, min(int(request.args.get("page[size]", 20)), 500))
            except ValueError:
                raise _RestError(400, 103, "Bad request", "invalid page parameters") from None
            with self._lock:
                records = self._records(entity_type)
            chunk = records[(number - 1) * size : number * size]
            base = f"/api/v1/entity/{collection}"
            links: Dict[str, Any] = {"self": f"{base}?page[number]={number}&page[size]={size}"}
            if number * size < len(records):
                links["next"] = f"{base}?page[number]={number + 1}&page[size]={size}"
            if number > 1:
                links["prev"] = f"{base}?page[number]={number - 1}&page[size]={size}"
            return self._json(
                {"data": [self._rest_record(r, collection) for r in chunk], "links": links}
            )
        except _RestError as exc:
            return self._rest_error(exc)

    def _h_rest_entity(self, request: Any, ctx: _Ctx, collection: str, entity_id: int) -> Any:
        try:
            self._bearer(request, ctx)
            entity_type = self._COLLECTIONS.get(collection)
            with self._lock:
                records = self._records(entity_type) if entity_type else []
            for record in records:
                if record["id"] == entity_id:
                    return self._json({"data": self._rest_record(record, collection)})
            raise _RestError(404, 103, "Not found", f"no {collection} with id {entity_id}")
        except _RestError as exc:
            return self._rest_error(exc)
