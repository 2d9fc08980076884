"""The site's state: users, scripts, projects, sessions, entities and the request journal."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, Tuple

from .common import (
    ENTITY_TYPES,
    ERR_2FA,
    ERR_AUTH,
    ERR_FAULT,
    ERR_OXYG,
    ERR_SSO,
    SAML_LOGIN_REQUEST,
    ApiError,
    ApiRedirect,
    Ctx,
    ForeignRequest,
)

if TYPE_CHECKING:
    from .app_session import AppSessionRequest
    from .faults import Fault
    from .localsite import LocalSite


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
    :ivar connection: The serial number of the TCP connection it came on (the same number for
        requests on one keep-alive connection), or ``None``.
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
    connection: Optional[int] = None


DEMO_USERS: Tuple[HumanUserSpec, ...] = (
    HumanUserSpec("alice", "Alice Anders", 42),
    HumanUserSpec("bob", "Bob Brown", 43, two_factor=True),
    HumanUserSpec("carol", "Carol Chen", 44),
)


DEMO_SCRIPTS: Tuple[ScriptSpec, ...] = (ScriptSpec("sgconnect_farm", id=101),)


DEMO_PROJECTS: Tuple[str, ...] = ("Big Buck Bunny", "Sintel", "Tears of Steel")


class Session:
    """A session token's life: who it is for, and when it (and its SSO claims) expire."""

    __slots__ = (
        "login",
        "is_script",
        "expires_at",
        "claims_expire_at",
        "uuid",
        "created_at",
        "written_at",
    )

    def __init__(self, login: str, is_script: bool, expires_at: float, claims_at: Optional[float]):
        self.login = login
        self.is_script = is_script
        self.expires_at = expires_at
        self.claims_expire_at = claims_at
        self.uuid = str(uuid.uuid4())
        self.created_at = time.time()
        self.written_at = self.created_at  # when the expiry was last written (at most every 5 min)


class RestToken:
    """A REST Bearer (or refresh) token's life: who it acts for, and when it expires."""

    __slots__ = ("login", "is_script", "sudo", "expires_at")

    def __init__(self, login: str, is_script: bool, sudo: Optional[str], expires_at: float):
        self.login = login
        self.is_script = is_script
        self.sudo = sudo
        self.expires_at = expires_at


class SiteState:
    """Everything a :class:`LocalSite` knows, shared by the parts of the site package.

    The site's modules (api3, web login, app session launcher, REST, faults, network) read and
    change it through these attributes and methods, always with :attr:`lock` held; tests use
    :class:`LocalSite`'s own methods instead (this is the package's inside, not its contract).

    :ivar site: The :class:`LocalSite` whose settings apply (``mode``, lifetimes, ``url``).
    :ivar lock: The one lock guarding all of this (re-entrant).
    :ivar secrets: Every secret the site issued or accepted.
    :ivar journal: The requests answered so far (:class:`JournalEntry`), in order.
    :ivar mint_count: REST access tokens minted so far.
    :ivar users: Human users (:class:`HumanUserSpec`) by login.
    :ivar passwords: Their passwords, by login.
    :ivar two_factor_codes: The current 2FA code of each 2FA user, by login.
    :ivar user_fields: Admin-set and created fields of human users, by login.
    :ivar scripts: Script users (:class:`ScriptSpec`) by name.
    :ivar keys: Their application keys, by name.
    :ivar projects: Project records, in id order.
    :ivar entities: Records of every other entity type: ``{type: {id: record}}``.
    :ivar retired: The deleted ones, same shape.
    :ivar last_accessed: ``{(login, project id): time}`` written by
        ``update_project_last_accessed_by_current_user``.
    :ivar files: Uploaded bytes: ``{attachment id: (content, content type, name)}``.
    :ivar sessions: Session tokens (:class:`Session`) by token.
    :ivar rest_tokens: Bearer tokens (:class:`RestToken`) by token.
    :ivar refresh_tokens: Refresh tokens (:class:`RestToken`) by token.
    :ivar app_requests: App session requests by id.
    :ivar idp_sessions: The identity provider's sign-in cookies: ``{cookie: login}``.
    :ivar idp_tickets: Its one-use tickets: ``{ticket: (login, issued at)}``.
    :ivar faults: Injected faults not yet used up, in order.
    :ivar stopping: Set while the site stops: every injected wait ends at once.
    :ivar foreign_journal: What the foreign origin received (:class:`ForeignRequest`), in order.
    """

    def __init__(
        self,
        site: LocalSite,
        users: Iterable[HumanUserSpec],
        scripts: Iterable[ScriptSpec],
        projects: Iterable[str],
    ):
        self.site = site
        self.lock = threading.RLock()
        self.secrets: Set[str] = set()
        self.journal: List[JournalEntry] = []
        self.mint_count = 0

        self.users: Dict[str, HumanUserSpec] = {}
        self.user_fields: Dict[str, Dict[str, Any]] = {}
        self.entities: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self.retired: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self.last_accessed: Dict[Tuple[str, int], str] = {}
        self.files: Dict[int, Tuple[bytes, str, str]] = {}
        self.passwords: Dict[str, str] = {}
        self.two_factor_codes: Dict[str, str] = {}
        for spec in users:
            self.add_user(spec)
        self.scripts: Dict[str, ScriptSpec] = {}
        self.keys: Dict[str, str] = {}
        for n, script in enumerate(scripts):
            self.add_script(script, default_id=101 + n)
        self.projects: List[Dict[str, Any]] = []
        for name in projects:
            self.add_project(name)

        self.sessions: Dict[str, Session] = {}
        self.rest_tokens: Dict[str, RestToken] = {}
        self.refresh_tokens: Dict[str, RestToken] = {}
        self.app_requests: Dict[str, AppSessionRequest] = {}
        self.idp_sessions: Dict[str, str] = {}
        self.idp_tickets: Dict[str, Tuple[str, float]] = {}

        self.faults: List[Fault] = []
        self.stopping = threading.Event()
        self.foreign_journal: List[ForeignRequest] = []

    def add_user(self, spec: HumanUserSpec) -> None:
        """Add a human user (a random password unless the spec has one)."""
        password = spec.password or secrets.token_urlsafe(12)
        self.users[spec.login] = spec
        self.passwords[spec.login] = password
        self.secrets.add(password)
        if spec.two_factor:
            self.new_2fa_code(spec.login)

    def new_2fa_code(self, login: str) -> None:
        """Draw the next 2FA code of ``login`` (a code is good for one login)."""
        code = f"{secrets.randbelow(10**6):06d}"
        self.two_factor_codes[login] = code
        self.secrets.add(code)

    def add_script(self, spec: ScriptSpec, default_id: int) -> None:
        """Add a script user (a random key unless the spec has one; ``default_id`` if no id)."""
        key = spec.key or secrets.token_urlsafe(24)
        if spec.id is None:
            spec = ScriptSpec(spec.name, spec.key, default_id)
        self.scripts[spec.name] = spec
        self.keys[spec.name] = key
        self.secrets.add(key)

    def add_project(self, name: str) -> Dict[str, Any]:
        """Add a project; returns its (live) record."""
        retired = self.retired.get("Project", {})
        project = {
            "type": "Project",
            "id": max([70] + [p["id"] for p in self.projects] + list(retired)) + 1,
            "name": name,
            "tank_name": None,
            "sg_status": "Active",
            "archived": False,
            "is_template": False,
        }
        self.projects.append(project)
        return project

    def user_field(self, login: str, name: str, default: Any) -> Any:
        """A field of a human user set by :meth:`LocalSite.update_user` or a create, else
        ``default``."""
        return self.user_fields.get(login, {}).get(name, default)

    def sudo_refusal(self, target: str) -> Optional[str]:
        """Why ``target`` cannot be a ``sudo_as_login`` target, or None (real site's words)."""
        if target not in self.users:
            return f"Cannot 'sudo' - unknown or retired user: '{target}'"
        if self.user_field(target, "sg_status_list", "act") != "act":
            return "Cannot 'sudo' - inactive user account"
        if not self.user_field(target, "can_impersonate_this_user", True):
            return f"Cannot 'sudo' - impersonation of '{target}' is not allowed"
        return None

    def new_session(self, login: str, is_script: bool = False) -> str:
        """A new session token for ``login`` (with SSO claims on a saml2 site, for a person)."""
        token = secrets.token_hex(16)
        now = time.time()
        site = self.site
        claims = now + site.claims_lifetime if site.mode == "saml2" and not is_script else None
        self.sessions[token] = Session(login, is_script, now + site.session_lifetime, claims)
        self.secrets.add(token)
        return token

    def check_password(self, login: str, password: Any) -> None:
        """:raises ApiError: 102, wrong login or password."""
        expected = self.passwords.get(login)
        if (
            expected is None
            or not isinstance(password, str)
            or not secrets.compare_digest(expected.encode(), password.encode())
        ):
            raise ApiError(ERR_AUTH, "Can't authenticate user: invalid login or password.")

    def check_script(self, name: Any, key: Any) -> None:
        """:raises ApiError: 102, wrong script name or key."""
        expected = self.keys.get(name) if isinstance(name, str) else None
        if (
            expected is None
            or not isinstance(key, str)
            or not secrets.compare_digest(expected.encode(), key.encode())
        ):
            raise ApiError(ERR_AUTH, "Can't authenticate script: invalid script name or key.")

    def refuse_password_mode(self) -> None:
        """:raises ApiError: 108 (saml2) or 110 (oxygen): no password logins on this site."""
        if self.site.mode == "saml2":
            raise ApiError(
                ERR_SSO,
                "Authentication using username/password is not allowed for an SSO-enabled site.",
            )
        if self.site.mode == "oxygen":
            raise ApiError(
                ERR_OXYG,
                "Authentication using username/password is not allowed for an Autodesk "
                "Identity enabled site.",
            )

    def check_2fa(self, login: str, auth_token: Any) -> None:
        """Check (and use up) the 2FA code of a 2FA user.

        :raises ApiError: 106 no code given, 102 a wrong one.
        """
        spec = self.users[login]
        if not spec.two_factor:
            return
        if not auth_token:
            raise ApiError(
                ERR_2FA, "This user has two-factor authentication enabled: a code is required."
            )
        if not secrets.compare_digest(
            self.two_factor_codes[login].encode(), str(auth_token).encode()
        ):
            raise ApiError(ERR_AUTH, "Can't authenticate user: invalid two-factor code.")
        self.new_2fa_code(login)  # one code, one login

    def session_for(self, token: Any, *, saml_redirect: bool) -> Session:
        """The live session of ``token``.

        :raises ApiError: 102, unknown or expired.
        :raises ApiRedirect: its SSO claims are over and ``saml_redirect`` (api3's 302).
        """
        session = self.sessions.get(token) if isinstance(token, str) else None
        if session is None:
            raise ApiError(ERR_AUTH, "Can't authenticate user: unknown session.")
        now = time.time()
        if session.expires_at <= now:  # an expired session is a 102 before claims are looked at
            raise ApiError(ERR_AUTH, "Can't authenticate user: session expired.")
        if (
            saml_redirect
            and session.claims_expire_at is not None
            and session.claims_expire_at <= now
        ):
            raise ApiRedirect(self.site.url + SAML_LOGIN_REQUEST)
        return session

    def record(
        self,
        method: str,
        path: str,
        status: int,
        ctx: Ctx,
        user_agent: Optional[str],
        fault: Optional[str] = None,
    ) -> None:
        """Append one answered request to the journal (takes the lock)."""
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
            ctx.connection,
        )
        with self.lock:
            self.journal.append(entry)

    def records(self, entity_type: str) -> List[Dict[str, Any]]:
        """Copies of every record of ``entity_type``.

        :raises ApiError: 103, an entity type the site does not know.
        """
        if entity_type == "Project":
            return [dict(p) for p in self.projects]
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
                    "sg_status_list": self.user_field(u.login, "sg_status_list", "act"),
                    "can_impersonate_this_user": self.user_field(
                        u.login, "can_impersonate_this_user", True
                    ),
                    "locked_until": self.user_field(u.login, "locked_until", None),
                    **{
                        k: v
                        for k, v in self.user_fields.get(u.login, {}).items()
                        if k not in ("sg_status_list", "can_impersonate_this_user", "locked_until")
                    },
                }
                for u in self.users.values()
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
                for s in self.scripts.values()
            ]
        return [dict(r) for r in self.table(self.check_type(entity_type, "read")).values()]

    @staticmethod
    def check_type(entity_type: Any, what: str) -> str:
        """``entity_type`` when the site knows it.

        :raises ApiError: 103 (``what`` names the api3 call in the message).
        """
        if entity_type not in ENTITY_TYPES:
            raise ApiError(
                ERR_FAULT, f"API {what}() invalid/missing string entity 'type': {entity_type}"
            )
        return entity_type

    def table(self, entity_type: str) -> Dict[int, Dict[str, Any]]:
        """The live ``{id: record}`` table of a generic entity type."""
        return self.entities.setdefault(entity_type, {})

    def find_record(self, entity_type: str, entity_id: Any) -> Optional[Dict[str, Any]]:
        """A copy of one record, or None."""
        for record in self.records(entity_type):
            if record["id"] == entity_id:
                return record
        return None

    def person_ref(self, actor: Dict[str, Any]) -> Dict[str, Any]:
        """The acting person: the ``sudo_as_login`` target, else the user or the script."""
        login = actor.get("sudo") or actor["login"]
        if login in self.users:
            spec = self.users[login]
            return {"type": "HumanUser", "id": spec.id, "name": spec.name}
        spec = self.scripts[login]
        return {"type": "ApiUser", "id": spec.id, "name": spec.name}


class StateMixin:
    """The public face of :class:`SiteState`: users, scripts, projects, sessions, the journal."""

    #: Set by :class:`LocalSite`.
    state: SiteState

    @property
    def users(self) -> Tuple[HumanUserSpec, ...]:
        """The human users (passwords through :meth:`password`)."""
        return tuple(self.state.users.values())

    @property
    def scripts(self) -> Tuple[ScriptSpec, ...]:
        """The script users (keys through :meth:`script_key`)."""
        return tuple(self.state.scripts.values())

    @property
    def projects(self) -> List[str]:
        """The project names, in id order."""
        with self.state.lock:
            return [p["name"] for p in self.state.projects]

    def password(self, login: str) -> str:
        """The password of a human user."""
        return self.state.passwords[login]

    def two_factor_code(self, login: str) -> str:
        """The current 2FA code of a 2FA user; a code is good for one login."""
        with self.state.lock:
            return self.state.two_factor_codes[login]

    def script_key(self, name: str) -> str:
        """The application key of a script user."""
        return self.state.keys[name]

    def issue_session(self, login: str) -> str:
        """A new valid session token for ``login``, as a login would give (no HTTP)."""
        state = self.state
        with state.lock:
            if login not in state.users and login not in state.scripts:
                raise KeyError(f"no user or script {login!r} on this site")
            return state.new_session(login, is_script=login not in state.users)

    def expire_sessions(self) -> None:
        """Every session token issued so far now answers 102 (and its SSO claims are over)."""
        with self.state.lock:
            past = time.time() - 1
            for session in self.state.sessions.values():
                session.expires_at = past
                if session.claims_expire_at is not None:
                    session.claims_expire_at = past

    def expire_claims(self) -> None:
        """Every SSO claim issued so far is over (saml2: api3 answers a 302), sessions live on."""
        with self.state.lock:
            for session in self.state.sessions.values():
                if session.claims_expire_at is not None:
                    session.claims_expire_at = time.time() - 1

    def expire_rest_tokens(self) -> None:
        """Every Bearer token issued so far now answers 401 (refresh tokens stay good)."""
        with self.state.lock:
            for token in self.state.rest_tokens.values():
                token.expires_at = time.time() - 1

    @property
    def journal(self) -> List[JournalEntry]:
        """A copy of the requests answered so far, in order."""
        with self.state.lock:
            return list(self.state.journal)

    def clear_journal(self) -> None:
        with self.state.lock:
            self.state.journal.clear()

    @property
    def mint_count(self) -> int:
        """REST access tokens minted so far."""
        with self.state.lock:
            return self.state.mint_count

    @property
    def secrets(self) -> Set[str]:
        """Every password, key, 2FA code, session token, Bearer/refresh token, ticket and
        cookie secret the site issued or accepted (a copy)."""
        with self.state.lock:
            return set(self.state.secrets)

    def update_user(self, login: str, **fields: Any) -> None:
        """Change fields of a human user as an admin would: ``sg_status_list`` (``"act"`` or
        ``"dis"``), ``can_impersonate_this_user`` (bool), ``locked_until``, ``sudo_allowed``
        (bool, default false: an admin whose api3 ``sudo_as_login`` is honoured)...

        :raises KeyError: no such user.
        """
        with self.state.lock:
            if login not in self.state.users:
                raise KeyError(f"no user {login!r} on this site")
            self.state.user_fields.setdefault(login, {}).update(fields)
