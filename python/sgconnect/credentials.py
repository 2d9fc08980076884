"""Credentials: who a connection acts as, on which site, one small object per kind.

- :class:`SessionCredential`: a HumanUser's session token (with tk-core's session metadata for web
  and SSO sessions). Its token and renewal are owned by a :class:`~sgconnect.renewal.SessionState`.
- :class:`ScriptCredential`: a script (ApiUser) key, optionally acting as a person through
  ``sudo_as_login`` (service mode). It cannot be renewed.

Both derive from :class:`Credential` (google-auth style: a small contract per kind). One
credential is shared by every connection handed out for its site in this process, whatever the
thread. The secret lives in private attributes only, as a :class:`~sgconnect.secret.Secret`
(``[redacted]`` in any ``repr``, so in no traceback's locals): no public attribute, method,
``repr`` or ``str`` returns it. Instead a credential **applies itself** to an outgoing request:

- :meth:`Credential.attempt` takes the secret as it is now, in an opaque :class:`Attempt`;
- :meth:`Credential.api3_auth_params` gives shotgun_api3's auth params for an attempt, the
  secret still a ``Secret`` in them (revealed when the request body is encoded);
- :meth:`Credential.rest_grant` gives the fields of the REST token request for an attempt;
- :meth:`Credential.renew` replaces a rejected attempt's secret (single flight, see
  :mod:`sgconnect.renewal`); :attr:`Credential.renewable` says whether that can work.

The REST Bearer and refresh tokens of a credential are owned by it too
(:attr:`Credential.rest_tokens`, a :class:`sgconnect.rest.tokens.RestTokens`).

Wrap a tk-core ``ShotgunUser`` with :func:`credential_for_tk_user`.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, Union

from .errors import RestError
from .renewal import SessionState
from .secret import Secret, secret_or_none
from .sitetext import neutralize

__all__ = [
    "Attempt",
    "Credential",
    "ScriptCredential",
    "SessionCredential",
    "UserInfo",
    "AUTH_METHODS",
    "auth_method_of",
    "credential_for_tk_user",
]


def _deprecated_alias(owner: str, old: str, new: str) -> None:
    warnings.warn(
        f"{owner}.{old} is deprecated (it held the script name): use {owner}.{new}; "
        f"{owner}.{old} goes in the next release.",
        DeprecationWarning,
        stacklevel=3,
    )


@dataclass(frozen=True)
class UserInfo:
    """What a tool may know about the identity behind its connections. Holds no secret.

    :ivar login: The person connections act as: the HumanUser's login, the ``sudo_as_login`` of a
        script, or the script name of a script acting as itself.
    :ivar site: The site URL.
    :ivar auth_method: How the identity signed in, in tk-core's terms (:data:`AUTH_METHODS`):
        ``session`` (login and password: tk-core's ``ShotgunUser``), ``web`` (the Unified Login
        Flow: ``ShotgunWebUser``), ``sso`` (SAML2: ``ShotgunSamlUser``) or ``script`` (a script
        key). Decided from what tk-core saved with the session, so it is the same in every
        process for the same session.
    :ivar source: ``current_user``, ``handed_down``, ``saved``, ``fresh``, ``service``,
        ``verified`` (service mode acting as the creator of a farm ticket), or ``hook`` (a tk-core
        user a studio hook's ``resolve_credential`` returned).
    :ivar name: The person's display name, when it was read from the site.
    :ivar session_expiry: When the SSO claims expire (seconds since the epoch), if known.
    :ivar script_name: Service mode: the script (ApiUser) that acts; else ``None``.
    :ivar sudo_as_login: Service mode: the person the script acts as; else ``None``.
    """

    login: str
    site: str
    auth_method: str
    source: str
    name: Optional[str] = None
    session_expiry: Optional[float] = None
    script_name: Optional[str] = None
    sudo_as_login: Optional[str] = None

    @property
    def acting_as(self) -> Optional[str]:
        """Deprecated alias of :attr:`script_name` (one release)."""
        _deprecated_alias("UserInfo", "acting_as", "script_name")
        return self.script_name

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``sgconnect whoami --json``); ``acting_as`` is kept for one
        release, with the value of ``script_name``."""
        return {
            "login": self.login,
            "name": self.name,
            "site": self.site,
            "auth_method": self.auth_method,
            "source": self.source,
            "session_expiry": self.session_expiry,
            "script_name": self.script_name,
            "sudo_as_login": self.sudo_as_login,
            "acting_as": self.script_name,
        }


#: What sgconnect puts in shotgun_api3's config while it builds the auth params, in place of
#: the secret; the :class:`~sgconnect.secret.Secret` replaces it in the params it returns.
_API3_PLACEHOLDER = "sgconnect-secret-placeholder"


class Attempt:
    """One try with a credential's secret as it was when the try began. Opaque: no public
    attribute, and its ``repr`` shows no secret. Made by :meth:`Credential.attempt`.

    The secret is a :class:`~sgconnect.secret.Secret` (or ``None`` when there is none)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: Optional[Secret]):
        self._secret = secret_or_none(secret)

    def __repr__(self) -> str:
        return "<Attempt>"

    def __reduce__(self):
        raise TypeError("an Attempt cannot be pickled: it would carry its secret along")


class Credential(ABC):
    """A resolved identity on one site. Build a :class:`SessionCredential` or a
    :class:`ScriptCredential` (or wrap a tk-core user with :func:`credential_for_tk_user`); tools
    never need to.

    :ivar site: The site URL.
    :ivar auth_method: ``session``, ``web``, ``sso`` or ``script``.
    :ivar source: Where the credential came from (see :class:`UserInfo`).
    :ivar name: The person's display name, once read from the site.
    """

    #: Service mode only: the script that acts.
    script_name: Optional[str] = None
    #: Service mode only: the person the script acts as.
    sudo_as_login: Optional[str] = None
    #: Whether :meth:`renew` can replace a rejected secret.
    renewable = False

    def __init__(self, site: str, *, auth_method: str, source: str, name: Optional[str] = None):
        self.site = site
        self.auth_method = auth_method
        self.source = source
        self.name = name

    @property
    def name(self) -> Optional[str]:
        """The person's display name as read from the site, neutralised (no escape sequence,
        control character or line break: :func:`sgconnect.sitetext.neutralize`)."""
        return self._name

    @name.setter
    def name(self, value: Optional[str]) -> None:
        self._name = None if value is None else neutralize(value)
        self._lock = threading.Lock()
        self._rest_tokens: Any = None

    # -- who ----------------------------------------------------------------------------------

    @property
    @abstractmethod
    def person_login(self) -> str:
        """Who calls act as: the HumanUser's login, the ``sudo_as_login``, or the script name."""

    @property
    def renewals(self) -> int:
        """How many times this process renewed the secret through tk-core."""
        return 0

    @property
    def adoptions(self) -> int:
        """How many times this process adopted a session another process saved in tk-core's
        cache (instead of renewing it)."""
        return 0

    def user_entity(self) -> tuple[str, str, str]:
        """``(entity type, field, value)`` that finds this identity's user record on the site."""
        return ("HumanUser", "login", self.person_login)

    def info(self) -> UserInfo:
        """The secret-free description of this credential."""
        return UserInfo(
            login=self.person_login,
            site=self.site,
            auth_method=self.auth_method,
            source=self.source,
            name=self.name,
            session_expiry=self._expiry(),
            script_name=self.script_name,
            sudo_as_login=self.sudo_as_login,
        )

    @abstractmethod
    def describe(self) -> str:
        """Who, where, how, in a few words (for ``repr`` and log lines). No secret."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Credential cannot be pickled: it would carry its secret along")

    # -- applying itself to a request -----------------------------------------------------------

    @abstractmethod
    def attempt(self) -> Attempt:
        """The secret as it is now, for one try (see :mod:`sgconnect.auth_flow`)."""

    def renew(self, attempt: Attempt, interactive: bool) -> None:
        """Replace the secret the site rejected in ``attempt`` (single flight).

        :raises LoginRequiredError: (sessions) no other token, and the process may not prompt.
        :raises NotImplementedError: This kind cannot be renewed (:attr:`renewable` is False).
        """
        raise NotImplementedError(f"a {type(self).__name__} cannot be renewed")

    #: The shotgun_api3 config attribute and the auth param that carry this kind's secret.
    _api3_config_field = ""
    _api3_param = ""

    def api3_auth_params(self, config: Any, attempt: Attempt, build: Any) -> dict[str, Any]:
        """shotgun_api3's auth params for one request, with ``attempt``'s secret as a
        :class:`~sgconnect.secret.Secret` (revealed only when the body is encoded).

        :param config: The connection's ``shotgun_api3`` config.
        :param build: shotgun_api3's own ``_auth_params`` (version checks, ``sudo_as_login``,
            ``session_uuid``...). It runs with a placeholder in place of the secret, so the
            secret never reaches shotgun_api3's frames as text.
        :raises ValueError: (shotgun_api3) there is no secret to send.
        """
        self._prepare_api3(config)
        field, secret = self._api3_config_field, attempt._secret
        setattr(config, field, _API3_PLACEHOLDER if secret else None)
        try:
            params = build()
        finally:
            setattr(config, field, None)
        if secret and params.get(self._api3_param) == _API3_PLACEHOLDER:
            params[self._api3_param] = secret
        return params

    def _prepare_api3(self, config: Any) -> None:
        """Set what the kind needs in ``config`` besides its secret."""
        return None

    @abstractmethod
    def rest_grant(self, attempt: Attempt) -> dict[str, Any]:
        """The form fields of the REST token request (``/api/v1/auth/access_token``); the
        secret is a :class:`~sgconnect.secret.Secret`, revealed when the body is encoded.

        :raises RestError: (HTTP 401) there is no secret to send.
        """

    @abstractmethod
    def grant_advice(self) -> str:
        """What a person does when the site refuses this credential a REST token."""

    @property
    def rest_tokens(self) -> Any:
        """The REST Bearer and refresh tokens of this credential
        (:class:`sgconnect.rest.tokens.RestTokens`), made on first need."""
        tokens = self._rest_tokens
        if tokens is None:
            from .rest.tokens import RestTokens

            with self._lock:
                if self._rest_tokens is None:
                    self._rest_tokens = RestTokens()
                tokens = self._rest_tokens
        return tokens

    def _expiry(self) -> Optional[float]:
        return None

    # -- deprecated constructors (kept for callers of the one-class credential) ------------------

    @staticmethod
    def for_session(site: str, login: str, session_token: str, **kwargs: Any) -> SessionCredential:
        """Same as :class:`SessionCredential` (kept for existing callers)."""
        return SessionCredential(site, login, session_token, **kwargs)

    @staticmethod
    def for_script(site: str, script_name: str, script_key: str, **kwargs: Any) -> ScriptCredential:
        """Same as :class:`ScriptCredential` (kept for existing callers)."""
        return ScriptCredential(site, script_name, script_key, **kwargs)

    @staticmethod
    def for_tk_user(user: Any, *, source: str) -> Credential:
        """Same as :func:`credential_for_tk_user` (kept for existing callers)."""
        return credential_for_tk_user(user, source=source)


class SessionCredential(Credential):
    """A HumanUser's session on one site, renewed through tk-core when it expires.

    :param site: The site URL.
    :param login: The HumanUser's login.
    :param session_token: The session token (kept as a :class:`~sgconnect.secret.Secret`).
    :param source: Where it came from (see :class:`UserInfo`).
    :param session_metadata: tk-core's session metadata (web and SSO sessions).
    :param tk_user: tk-core's ``ShotgunUser``, when the session came from tk-core.
    :param auth_method: ``session``, ``web`` or ``sso``; ``None`` tells from
        ``session_metadata`` (:func:`auth_method_of`), the same way in every process.
    """

    renewable = True

    def __init__(
        self,
        site: str,
        login: str,
        session_token: str,
        *,
        source: str,
        session_metadata: Optional[str] = None,
        tk_user: Any = None,
        auth_method: Optional[str] = None,
        name: Optional[str] = None,
    ):
        super().__init__(
            site,
            auth_method=auth_method or auth_method_of(session_metadata),
            source=source,
            name=name,
        )
        #: The HumanUser's login.
        self.login = login
        self._session = SessionState(site, login, session_token, session_metadata, tk_user)

    @property
    def person_login(self) -> str:
        return self.login

    @property
    def renewals(self) -> int:
        return self._session.renewals

    @property
    def adoptions(self) -> int:
        return self._session.adoptions

    @property
    def login_method(self) -> str:
        """How a person renews this session when it expires: the ``login_method`` setting
        (``url`` renews headless, any other through tk-core's ``renew_session``; see
        :mod:`sgconnect.renewal`). The broker handing the credential out sets it."""
        return self._session.login_method

    @login_method.setter
    def login_method(self, method: str) -> None:
        self._session.login_method = method

    def describe(self) -> str:
        return f"{self.login!r} on {self.site} via {self.auth_method} ({self.source})"

    def attempt(self) -> Attempt:
        return Attempt(self._session.current_token())

    def renew(self, attempt: Attempt, interactive: bool) -> None:
        self._session.renewed_token(attempt._secret, interactive)

    _api3_config_field = "session_token"
    _api3_param = "session_token"

    def rest_grant(self, attempt: Attempt) -> dict[str, Any]:
        if not attempt._secret:
            raise RestError("no session token", self.site, status=401)
        return {"grant_type": "session_token", "session_token": attempt._secret}

    def grant_advice(self) -> str:
        return f". Log in again with `sgconnect login --site {self.site}`."

    def _expiry(self) -> Optional[float]:
        return self._session.expiry()


class ScriptCredential(Credential):
    """A script (ApiUser) key, optionally acting as a person through ``sudo_as_login``.

    :param site: The site URL.
    :param script_name: The script's name (``client_id`` for REST).
    :param script_key: The script key (kept as a :class:`~sgconnect.secret.Secret`).
    :param source: Where it came from (``service``).
    :param sudo_as_login: The person the script acts as, or ``None`` for the script itself.
    """

    def __init__(
        self,
        site: str,
        script_name: str,
        script_key: Union[str, Secret],
        *,
        source: str = "service",
        sudo_as_login: Optional[str] = None,
        name: Optional[str] = None,
    ):
        super().__init__(site, auth_method="script", source=source, name=name)
        self.script_name = script_name
        self.sudo_as_login = sudo_as_login
        self._key = Secret(script_key)

    @property
    def person_login(self) -> str:
        return self.sudo_as_login or self.script_name  # type: ignore[return-value]

    @property
    def login(self) -> str:
        """Deprecated: the script name (a script user has no login). Use :attr:`script_name`."""
        _deprecated_alias("ScriptCredential", "login", "script_name")
        return self.script_name  # type: ignore[return-value]

    def user_entity(self) -> tuple[str, str, str]:
        if self.sudo_as_login:
            return ("HumanUser", "login", self.sudo_as_login)
        return ("ApiUser", "firstname", self.script_name)  # type: ignore[return-value]

    def describe(self) -> str:
        sudo = f", sudo_as_login={self.sudo_as_login!r}" if self.sudo_as_login else ""
        return f"script {self.script_name!r} on {self.site} via script ({self.source}){sudo}"

    def attempt(self) -> Attempt:
        return Attempt(self._key)

    _api3_config_field = "api_key"
    _api3_param = "script_key"

    def _prepare_api3(self, config: Any) -> None:
        config.script_name = self.script_name

    def rest_grant(self, attempt: Attempt) -> dict[str, Any]:
        fields = {
            "grant_type": "client_credentials",
            "client_id": self.script_name,
            "client_secret": attempt._secret,
        }
        if self.sudo_as_login:
            fields["scope"] = f"sudo_as_login:{self.sudo_as_login}"
        return fields

    def grant_advice(self) -> str:
        return ". Check the script name and key of the service settings, and the sudo login."


def credential_for_tk_user(user: Any, *, source: str) -> Credential:
    """Wrap a tk-core ``ShotgunUser`` (a session user, or a script user) in a credential.

    :param user: tk-core's ``ShotgunUser`` (``ShotgunSamlUser``, ``ShotgunWebUser``...).
    :param source: Where it came from (see :class:`UserInfo`).
    """
    impl = user.impl
    if hasattr(impl, "get_key"):  # tk-core's ScriptUser
        return ScriptCredential(user.host, impl.get_script(), impl.get_key(), source=source)
    return SessionCredential(
        user.host,
        user.login,
        impl.get_session_token(),
        source=source,
        session_metadata=impl.get_session_metadata(),
        tk_user=user,
    )


#: The ``auth_method`` of each kind of tk-core user, in tk-core's own terms: its
#: ``ShotgunUser`` class (``user.deserialize_user`` and ``ShotgunAuthenticator`` pick it).
AUTH_METHODS = {
    "session": "ShotgunUser with a session token and no web cookies (login and password)",
    "web": "ShotgunWebUser: the Unified Login Flow (the session cookies hold its expiry)",
    "sso": "ShotgunSamlUser: SSO through SAML2 (the session cookies hold the claims' expiry)",
    "script": "a script user (ApiUser): script name and key, service mode",
}


def auth_method_of(session_metadata: Any) -> str:
    """``sso``, ``web`` or ``session``, decided from tk-core's session metadata as tk-core
    decides which user class to make (``tank.authentication.user.deserialize_user``): SAML
    claims in the cookies are ``sso``, a session expiry cookie is ``web``, else ``session``.

    Only what tk-core saves in its cache decides, so every process that reads the same saved
    session names it the same way. Pure: no tk-core import.

    :param session_metadata: The base64 cookie jar tk-core keeps (``str`` or
        :class:`~sgconnect.secret.Secret`), or ``None``.
    """
    cookies = _session_cookies(session_metadata)
    if cookies is None:
        return "session"
    user_ids = [name[len("csrf_token_u") :] for name in cookies if name.startswith("csrf_token_u")]
    claims = [cookies.get("shotgun_current_user_sso_claims_expiration")]
    claims += [cookies.get(f"shotgun_sso_session_expiration_u{uid}") for uid in user_ids[:1]]
    if any(_is_int(morsel) for morsel in claims):
        return "sso"
    if _is_int(cookies.get("shotgun_current_session_expiration")):
        return "web"
    return "session"


def _session_cookies(session_metadata: Any) -> Any:
    import base64
    import binascii
    from http.cookies import CookieError, SimpleCookie

    text = session_metadata.reveal() if isinstance(session_metadata, Secret) else session_metadata
    if not text or not isinstance(text, str):
        return None
    try:
        decoded = base64.b64decode(text).decode("utf-8", "replace")
        cookies = SimpleCookie()
        cookies.load(decoded.replace("Set-Cookie: ", ""))
    except (binascii.Error, ValueError, CookieError):
        return None
    return cookies


def _is_int(morsel: Any) -> bool:
    if morsel is None:
        return False
    try:
        int(morsel.value)
    except ValueError:
        return False
    return True
