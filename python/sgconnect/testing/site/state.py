"""The site's state: users, scripts, projects, sessions, entities and the request journal."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from .common import (
    _SAML_LOGIN_REQUEST,
    ERR_2FA,
    ERR_AUTH,
    ERR_OXYG,
    ERR_SSO,
    _ApiError,
    _Ctx,
    _Redirect,
)


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


class _Session:
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


class _RestToken:
    __slots__ = ("login", "is_script", "sudo", "expires_at")

    def __init__(self, login: str, is_script: bool, sudo: Optional[str], expires_at: float):
        self.login = login
        self.is_script = is_script
        self.sudo = sudo
        self.expires_at = expires_at


class StateMixin:
    """Users, scripts, projects, session tokens and the journal (all under ``self._lock``)."""

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

    def update_user(self, login: str, **fields: Any) -> None:
        """Change fields of a human user as an admin would: ``sg_status_list`` (``"act"`` or
        ``"dis"``), ``can_impersonate_this_user`` (bool), ``locked_until``, ``sudo_allowed``
        (bool, default false: an admin whose api3 ``sudo_as_login`` is honoured)...

        :raises KeyError: no such user.
        """
        with self._lock:
            if login not in self._users:
                raise KeyError(f"no user {login!r} on this site")
            self._user_fields.setdefault(login, {}).update(fields)

    def _user_field(self, login: str, name: str, default: Any) -> Any:
        return self._user_fields.get(login, {}).get(name, default)

    def _sudo_refusal(self, target: str) -> Optional[str]:
        """Why ``target`` cannot be a ``sudo_as_login`` target, or None (real site's words)."""
        if target not in self._users:
            return f"Cannot 'sudo' - unknown or retired user: '{target}'"
        if self._user_field(target, "sg_status_list", "act") != "act":
            return "Cannot 'sudo' - inactive user account"
        if not self._user_field(target, "can_impersonate_this_user", True):
            return f"Cannot 'sudo' - impersonation of '{target}' is not allowed"
        return None

    def _new_session(self, login: str, is_script: bool = False) -> str:
        token = secrets.token_hex(16)
        now = time.time()
        claims = now + self.claims_lifetime if self.mode == "saml2" and not is_script else None
        self._sessions[token] = _Session(login, is_script, now + self.session_lifetime, claims)
        self._secrets.add(token)
        return token

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
        if session.expires_at <= now:  # an expired session is a 102 before claims are looked at
            raise _ApiError(ERR_AUTH, "Can't authenticate user: session expired.")
        if (
            saml_redirect
            and session.claims_expire_at is not None
            and session.claims_expire_at <= now
        ):
            raise _Redirect(self.url + _SAML_LOGIN_REQUEST)
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
            ctx.connection,
        )
        with self._lock:
            self._journal.append(entry)

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
                    "sg_status_list": self._user_field(u.login, "sg_status_list", "act"),
                    "can_impersonate_this_user": self._user_field(
                        u.login, "can_impersonate_this_user", True
                    ),
                    "locked_until": self._user_field(u.login, "locked_until", None),
                    **{
                        k: v
                        for k, v in self._user_fields.get(u.login, {}).items()
                        if k not in ("sg_status_list", "can_impersonate_this_user", "locked_until")
                    },
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
        return self._generic_records(self._check_type(entity_type, "read"))
