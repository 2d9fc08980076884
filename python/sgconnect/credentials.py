"""The credential: who a connection acts as, on which site, and how it renews.

One small object per (site, identity), shared by every connection handed out for it in this
process, whatever the thread. The secret it holds (a session token, or a script key) lives in
private attributes only: no public attribute, method, ``repr`` or ``str`` returns it.

Renewal is single-flight. The first thread whose call is rejected renews; the threads that were
rejected with the same token wait on the lock and then use the new one. Renewal itself is tk-core's
(``interactive_authentication.renew_session``): the Qt dialog with a QApplication, the console
without one. A non-interactive process gets :class:`~sgconnect.errors.LoginRequiredError` instead
of a prompt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Optional

from . import session_cache, tk
from .cache_lock import cache_lock
from .errors import LoginCancelledError, LoginFailedError, LoginRequiredError, SgConnectError
from .redaction import register_secret

#: Where a credential came from, in chain order.
SOURCES = ("current_user", "handed_down", "saved", "fresh", "service")


@dataclass(frozen=True)
class UserInfo:
    """What a tool may know about the identity behind its connections. Holds no secret."""

    login: str
    site: str
    auth_method: str
    source: str
    name: Optional[str] = None
    session_expiry: Optional[float] = None
    acting_as: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``sgconnect whoami --json``)."""
        return {
            "login": self.login,
            "name": self.name,
            "site": self.site,
            "auth_method": self.auth_method,
            "source": self.source,
            "session_expiry": self.session_expiry,
            "acting_as": self.acting_as,
        }


class Credential:
    """A resolved identity on one site: a session (human user) or a script key (service).

    Build one with :meth:`for_session` or :meth:`for_script`; tools never need to.
    """

    __slots__ = (
        "site",
        "login",
        "auth_method",
        "source",
        "name",
        "sudo_as_login",
        "renewals",
        "_token",
        "_metadata",
        "_script_key",
        "_tk_user",
        "_rejected_tokens",
        "_renewal_lock",
        "__weakref__",
    )

    def __init__(
        self,
        site: str,
        login: str,
        *,
        auth_method: str,
        source: str,
        name: Optional[str] = None,
        sudo_as_login: Optional[str] = None,
    ):
        self.site = site
        #: The human login, or the script name for a service credential.
        self.login = login
        self.auth_method = auth_method
        self.source = source
        self.name = name
        #: Service mode only: the person the script acts as.
        self.sudo_as_login = sudo_as_login
        #: How many times this process renewed the session.
        self.renewals = 0
        self._token: Optional[str] = None
        self._metadata: Optional[str] = None
        self._script_key: Optional[str] = None
        self._tk_user: Any = None
        self._rejected_tokens: set[str] = set()
        self._renewal_lock = threading.Lock()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def for_session(
        cls,
        site: str,
        login: str,
        session_token: str,
        *,
        source: str,
        session_metadata: Optional[str] = None,
        tk_user: Any = None,
        auth_method: Optional[str] = None,
    ) -> Credential:
        """A human user's session, from a token (and tk-core's user object when there is one)."""
        credential = cls(site, login, auth_method=auth_method or "session", source=source)
        credential._token = session_token
        credential._metadata = session_metadata
        credential._tk_user = tk_user
        register_secret(session_token)
        if session_metadata:
            register_secret(session_metadata)
        if auth_method is None:
            credential.auth_method = _auth_method_of(tk_user, session_metadata)
        return credential

    @classmethod
    def for_tk_user(cls, user: Any, *, source: str) -> Credential:
        """Wrap a tk-core ``ShotgunUser`` (session or script)."""
        impl = user.impl
        if hasattr(impl, "get_key"):  # tk-core's ScriptUser
            return cls.for_script(user.host, impl.get_script(), impl.get_key(), source=source)
        return cls.for_session(
            user.host,
            user.login,
            impl.get_session_token(),
            source=source,
            session_metadata=impl.get_session_metadata(),
            tk_user=user,
        )

    @classmethod
    def for_script(
        cls,
        site: str,
        script_name: str,
        script_key: str,
        *,
        source: str = "service",
        sudo_as_login: Optional[str] = None,
    ) -> Credential:
        """A script (API user) credential, optionally acting as a person through sudo."""
        credential = cls(
            site, script_name, auth_method="script", source=source, sudo_as_login=sudo_as_login
        )
        credential._script_key = script_key
        register_secret(script_key)
        return credential

    # -- what tools may see ---------------------------------------------------------------------

    @property
    def is_script(self) -> bool:
        """True for a script-key (service) credential."""
        return self._script_key is not None

    def info(self) -> UserInfo:
        """The secret-free description of this credential."""
        return UserInfo(
            login=self.sudo_as_login or self.login,
            site=self.site,
            auth_method=self.auth_method,
            source=self.source,
            name=self.name,
            session_expiry=self._session_expiry(),
            acting_as=self.login if self.is_script else None,
        )

    def __repr__(self) -> str:
        sudo = f", sudo_as_login={self.sudo_as_login!r}" if self.sudo_as_login else ""
        return (
            f"<Credential {self.login!r} on {self.site} via {self.auth_method} "
            f"({self.source}){sudo}>"
        )

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Credential cannot be pickled: it would carry its secret along")

    # -- private to the package ------------------------------------------------------------------

    def _session_token(self) -> Optional[str]:
        """The current session token (tk-core's user may have renewed it in the background)."""
        if self._tk_user is not None and not self.is_script:
            token = self._tk_user.impl.get_session_token()
            if token and token != self._token:
                register_secret(token)
                self._token = token
        return self._token

    def _renewed_session_token(self, rejected_token: Optional[str], interactive: bool) -> str:
        """Return a session token to retry with after the site rejected ``rejected_token``.

        In order: a token another thread already renewed; a different token another process
        saved in tk-core's cache; tk-core's interactive renewal (or LoginRequiredError).
        """
        with self._renewal_lock:
            current = self._session_token()
            if current and current != rejected_token:
                return current
            if rejected_token:
                self._rejected_tokens.add(rejected_token)

            adopted = self._adopt_saved_session()
            if adopted:
                return adopted

            if not interactive:
                raise LoginRequiredError(self.site, reason=f"the session of {self.login} expired")

            # One renewal across processes too: tk-core writes its cache without a lock.
            with cache_lock(self.site):
                # Another process may have renewed while this one waited for the lock.
                return self._adopt_saved_session() or self._renew_through_tk_core()

    def _adopt_saved_session(self) -> Optional[str]:
        """Adopt the session saved in tk-core's cache if it is one not yet rejected."""
        saved = session_cache.read_saved_session(self.site, self.login)
        if saved is None or saved.session_token in self._rejected_tokens:
            return None
        self._adopt(saved.session_token, saved.session_metadata, save=False)
        return saved.session_token

    def _renew_through_tk_core(self) -> str:
        """tk-core's interactive renewal (its Qt dialog or console prompt); saves the cache."""
        user = self._tk_session_user()
        authentication = tk.authentication()
        try:
            authentication.interactive_authentication.renew_session(user.impl)
        except authentication.AuthenticationCancelled:
            raise LoginCancelledError(
                f"Renewal of {self.login}'s session on {self.site} was cancelled; nothing was "
                "saved. The next call asks again.",
                self.site,
            ) from None
        except authentication.AuthenticationError as exc:
            unreachable = _unreachable(self.site, exc)
            if unreachable is not None:
                raise unreachable from None
            raise LoginFailedError(
                f"Could not renew {self.login}'s session on {self.site}: "
                f"{exc.__class__.__name__}: {exc}",
                self.site,
            ) from None
        except SgConnectError:
            raise
        except Exception as exc:
            # tk-core re-raises a network failure during a password prompt as a bare Exception.
            unreachable = _unreachable(self.site, exc)
            if unreachable is None:
                raise
            raise unreachable from None
        self.renewals += 1
        self._adopt(user.impl.get_session_token(), user.impl.get_session_metadata(), save=False)
        return self._token

    def _adopt(self, token: str, metadata: Optional[str], *, save: bool) -> None:
        register_secret(token)
        if metadata:
            register_secret(metadata)
        self._token = token
        self._metadata = metadata
        if self._tk_user is not None:
            self._tk_user.impl.set_session_token(token, cache=save)
            self._tk_user.impl.set_session_metadata(metadata)

    def _tk_session_user(self) -> Any:
        """tk-core's user for this session, built on first need (it imports tk-core)."""
        if self._tk_user is None:
            authentication = tk.authentication()
            authenticator = authentication.ShotgunAuthenticator(
                authentication.DefaultsManager(fixed_host=self.site)
            )
            self._tk_user = authenticator.create_session_user(
                self.login,
                session_token=self._token,
                host=self.site,
                session_metadata=self._metadata,
            )
        return self._tk_user

    def _session_expiry(self) -> Optional[float]:
        user = self._tk_user
        if user is not None and hasattr(user, "get_claims_expiration"):
            try:
                return float(user.get_claims_expiration())
            except Exception:  # display only
                return None
        return None


def _unreachable(site: str, exc: BaseException) -> Any:
    from .interactive import unreachable_error

    return unreachable_error(site, exc, "renew the session")


def _auth_method_of(tk_user: Any, session_metadata: Optional[str]) -> str:
    """Name the way a session was obtained: ``sso``, ``web`` or ``session``."""
    if tk_user is not None:
        kind = type(tk_user).__name__
        if kind == "ShotgunSamlUser":
            return "sso"
        if kind == "ShotgunWebUser":
            return "web"
    if session_metadata:
        return "web"
    return "session"
