"""The renewal engine of a session: one owner of a session token, renewed once for everyone.

A :class:`SessionState` belongs to one :class:`~sgconnect.credentials.SessionCredential` (like
msal's token cache: one owner of token state, one lock). It holds the session token and its
metadata privately, and answers two questions:

- :meth:`SessionState.current_token`: the token to send now (tk-core's user may have renewed it
  in the background: its token wins);
- :meth:`SessionState.renewed_token`: the token to retry with after the site rejected one.

Renewal is single-flight. The first thread whose call is rejected renews; the threads that were
rejected with the same token wait on the lock and then use the new one. In order:

1. a token another thread already renewed;
2. **adoption**: a different token another process saved in tk-core's session cache
   (:func:`sgconnect.session_cache.read_saved_session`), not one rejected before;
3. a person renews it, by the ``login_method`` setting (:attr:`SessionState.login_method`), under
   the site's cross-process :func:`~sgconnect.cache_lock.cache_lock` (tk-core writes its cache
   without a lock), after looking for an adopted session once more:

   - ``url``: headless, through tk-core's app session launcher, as ``sgconnect login --method
     url`` does (:func:`sgconnect.interactive.renew_by_url`): the approval URL and the waiting
     progress are printed, no Qt is imported, QtWebEngine never;
   - any other method: tk-core's ``interactive_authentication.renew_session`` (the Qt dialog with a
     QApplication, the console without one); for ``password`` and ``browser`` its Qt is imported
     without QtWebEngine (:func:`sgconnect.tk.keep_qtwebengine_out`).

A non-interactive process gets :class:`~sgconnect.errors.LoginRequiredError` instead of step 3.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Optional, Union

from . import session_cache, tk
from .cache_lock import cache_lock
from .errors import LoginCancelledError, LoginFailedError, LoginRequiredError, SgConnectError
from .secret import Secret, reveal, secret_or_none

__all__ = ["SessionState", "one_call"]

#: Per thread: the tokens renewed through tk-core during the api3 call in flight (one_call()).
_call = threading.local()


@contextmanager
def one_call() -> Iterator[None]:
    """Mark one api3 call: a token renewed through tk-core during it and rejected at once ends
    the call with :class:`~sgconnect.errors.LoginFailedError` instead of a second prompt (a site
    that answers 102 forever is asked once)."""
    outer = getattr(_call, "renewed", None)
    if outer is None:
        _call.renewed = set()
    try:
        yield
    finally:
        if outer is None:
            _call.renewed = None


logger = logging.getLogger("sgconnect.renewal")


class SessionState:
    """The session token of one credential and its single-flight renewal. No public secret.

    :param site: The site URL.
    :param login: The HumanUser's login.
    :param token: The session token (kept as a :class:`~sgconnect.secret.Secret`).
    :param metadata: tk-core's session metadata (web and SSO sessions), or ``None`` (kept as a
        :class:`~sgconnect.secret.Secret` too: its cookies hold the session).
    :param tk_user: tk-core's ``ShotgunUser`` when the session came from tk-core, else ``None``
        (one is built on the first interactive renewal).
    """

    __slots__ = (
        "site",
        "login",
        "renewals",
        "adoptions",
        "login_method",
        "_token",
        "_metadata",
        "_tk_user",
        "_rejected",
        "_lock",
    )

    def __init__(
        self,
        site: str,
        login: str,
        token: Union[str, Secret],
        metadata: Union[str, Secret, None] = None,
        tk_user: Any = None,
    ):
        self.site = site
        self.login = login
        #: How many times this process renewed the session through tk-core.
        self.renewals = 0
        #: How many times this process adopted a session another process saved.
        self.adoptions = 0
        #: How a person renews the session (the ``login_method`` setting: ``url`` renews
        #: headless; every other method through tk-core's ``renew_session``). The broker sets it
        #: from its settings.
        self.login_method = "auto"
        self._token: Optional[Secret] = None
        self._metadata: Optional[Secret] = None
        self._tk_user = tk_user
        self._rejected: set[Secret] = set()
        self._lock = threading.Lock()
        self._keep(token, metadata)

    def __repr__(self) -> str:
        return f"<SessionState {self.login!r} on {self.site}, {self.renewals} renewal(s)>"

    def __reduce__(self):
        raise TypeError("a session state cannot be pickled: it would carry its secret along")

    @property
    def tk_user(self) -> Any:
        """tk-core's user behind the session, or ``None`` when none was needed yet."""
        return self._tk_user

    def current_token(self) -> Optional[Secret]:
        """The token to send now (tk-core's user may have renewed it in the background)."""
        if self._tk_user is not None:
            token = secret_or_none(self._tk_user.impl.get_session_token())
            if token and token != self._token:
                self._token = token
        return self._token

    def renewed_token(self, rejected_token: Optional[Secret], interactive: bool) -> Secret:
        """Return a session token to retry with after the site rejected ``rejected_token``.

        :raises LoginRequiredError: No other token, and the process may not prompt.
        :raises LoginCancelledError: The person cancelled tk-core's renewal prompt.
        :raises LoginFailedError: tk-core's renewal failed.
        :raises SiteUnreachableError: The site could not be reached to renew.
        """
        with self._lock:
            current = self.current_token()
            if current and current != rejected_token:
                return current
            if rejected_token:
                self._rejected.add(rejected_token)
                if rejected_token in (getattr(_call, "renewed", None) or ()):
                    # Renewed during this very call and rejected at once: asking again cannot help.
                    raise LoginFailedError(
                        f"{self.site} rejected the session of {self.login} it had just renewed: "
                        "the site refuses this account's sessions. Check the account on the site "
                        "(or ask its admin), then log in again with `sgconnect login`.",
                        self.site,
                    )

            adopted = self._adopt_saved_session()
            if adopted:
                return adopted

            if not interactive:
                raise LoginRequiredError(self.site, reason=f"the session of {self.login} expired")

            # One renewal across processes too: tk-core writes its cache without a lock.
            with cache_lock(self.site):
                # Another process may have renewed while this one waited for the lock.
                return self._adopt_saved_session() or self._renew_by_person()

    def expiry(self) -> Optional[float]:
        """When the SSO claims behind the session expire (seconds since the epoch), if known."""
        user = self._tk_user
        if user is not None and hasattr(user, "get_claims_expiration"):
            try:
                return float(user.get_claims_expiration())
            except Exception:  # display only
                return None
        return None

    # -- inside the engine -------------------------------------------------------------------------

    def _keep(self, token: Union[str, Secret], metadata: Union[str, Secret, None]) -> None:
        self._token = Secret(token)
        self._metadata = secret_or_none(metadata)

    def _adopt_saved_session(self) -> Optional[Secret]:
        """Adopt the session saved in tk-core's cache if it is one not yet rejected."""
        saved = session_cache.read_saved_session(self.site, self.login)
        if saved is None:
            return None
        token = Secret(saved.session_token)
        if token in self._rejected:
            return None
        self._adopt(token, saved.session_metadata)
        self.adoptions += 1
        return token

    def _adopt(self, token: Union[str, Secret], metadata: Union[str, Secret, None]) -> None:
        self._keep(token, metadata)
        if self._tk_user is not None:
            # tk-core holds its user's token as text: revealed in the call that hands it over.
            self._tk_user.impl.set_session_token(reveal(self._token), cache=False)
            self._tk_user.impl.set_session_metadata(reveal(self._metadata))

    def _renew_by_person(self) -> Secret:
        """A person renews the session, by :attr:`login_method`; tk-core saves it in its cache."""
        if self.login_method == "url":
            from .interactive import renew_by_url

            logger.info(
                "Renewing %s's session on %s headless (login_method url).", self.login, self.site
            )
            renewed = renew_by_url(self.site, self.login)
            return self._renewed(
                renewed.impl.get_session_token(), renewed.impl.get_session_metadata()
            )
        return self._renew_through_tk_core()

    def _renew_through_tk_core(self) -> Secret:
        """tk-core's interactive renewal (its Qt dialog or console prompt); saves the cache."""
        from .interactive import socket_deadline
        from .transport import api3
        from .transport.proxies import check_ca_bundle

        check_ca_bundle(self.site)
        user = self._tk_session_user()
        authentication = tk.authentication()
        console = not tk.qapplication_exists()
        tk.keep_qtwebengine_out(self.login_method)
        try:
            # tk-core sends the typed password through its own shotgun_api3: never redirected.
            with api3.httplib2_never_redirects(_timeout_secs()):
                with socket_deadline(_timeout_secs()) if console else nullcontext():
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
        except OSError as exc:
            if _unreachable(self.site, exc) is None:  # the cache could not be written
                from .interactive import save_error

                raise save_error(self.site, exc) from None
            raise _unreachable(self.site, exc) from None
        except Exception as exc:
            from .interactive import old_tk_core_refusal

            refused = old_tk_core_refusal(
                self.site, exc, f"Renewal of {self.login}'s session on {self.site}"
            )
            if refused is not None:
                raise refused from None
            # tk-core re-raises a network failure during a password prompt as a bare Exception.
            unreachable = _unreachable(self.site, exc)
            if unreachable is None:
                raise
            raise unreachable from None
        return self._renewed(user.impl.get_session_token(), user.impl.get_session_metadata())

    def _renewed(self, token: str, metadata: Optional[str]) -> Secret:
        """Keep the session a person just renewed (tk-core saved it in its cache)."""
        self.renewals += 1
        self._adopt(token, metadata)
        renewed = getattr(_call, "renewed", None)
        if renewed is not None:
            renewed.add(self._token)
        try:
            session_cache.record_session_site(self.site, self._token)
        except OSError as exc:
            logger.warning(
                "Could not record the site of the renewed session (%s).", exc.__class__.__name__
            )
        return self._token  # type: ignore[return-value]

    def _tk_session_user(self) -> Any:
        """tk-core's user for this session, built on first need (it imports tk-core)."""
        if self._tk_user is None:
            authentication = tk.authentication()
            from .interactive import defaults_manager

            # the one proxy rule for tk-core's renewal requests (tk-core ignores NO_PROXY)
            authenticator = authentication.ShotgunAuthenticator(defaults_manager(self.site))
            self._tk_user = authenticator.create_session_user(
                self.login,
                session_token=reveal(self._token),
                host=self.site,
                session_metadata=reveal(self._metadata),
            )
        return self._tk_user


def _timeout_secs() -> Optional[float]:
    from .settings import Settings

    return Settings.from_environment().timeout_secs or None


def _unreachable(site: str, exc: BaseException) -> Any:
    from .interactive import unreachable_error

    return unreachable_error(site, exc, "renew the session", _timeout_secs())
