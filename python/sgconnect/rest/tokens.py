"""REST Bearer and refresh tokens: one owner per credential, one lock (as msal's token cache).

A :class:`RestTokens` belongs to one credential
(:attr:`sgconnect.credentials.Credential.rest_tokens`) and is shared by every ``RestSession`` of
it, whatever the thread: N threads needing a token cause one mint. A token is kept until shortly
before ``expires_in`` (:func:`expiry_margin`); an expired one is replaced with the
``refresh_token`` grant when a refresh token is held, else minted again. The tokens live in
private attributes only, each a :class:`~sgconnect.secret.Secret` (registered with
:func:`sgconnect.redaction.register_secret` when seen), and no ``repr`` shows them: a token is
revealed only in the ``Authorization`` header (or the refresh grant's form) as it is sent.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Optional, Protocol

from ..secret import Secret, secret_or_none

__all__ = [
    "Bearer",
    "Minter",
    "RestTokens",
    "expires_in",
    "expiry_margin",
    "DEFAULT_EXPIRES_IN",
    "MAX_EXPIRY_MARGIN_SECS",
    "EXPIRY_MARGIN_FRACTION",
]

#: A token is replaced this long before it expires: 10 % of its lifetime, at most 30 s.
MAX_EXPIRY_MARGIN_SECS = 30.0
EXPIRY_MARGIN_FRACTION = 0.1
#: The lifetime assumed when a token reply has no usable ``expires_in`` (ShotGrid's value).
DEFAULT_EXPIRES_IN = 600.0


def expires_in(reply: Mapping[str, Any]) -> float:
    """The lifetime of a token reply in seconds (``expires_in``; 600 when missing or unusable)."""
    value = reply.get("expires_in")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_EXPIRES_IN
    return float(value)


def expiry_margin(lifetime: float) -> float:
    """How long before its expiry a token of ``lifetime`` seconds is replaced."""
    return min(MAX_EXPIRY_MARGIN_SECS, max(0.0, lifetime) * EXPIRY_MARGIN_FRACTION)


class Minter(Protocol):
    """What mints a token reply over the network (a ``RestSession``)."""

    def refreshed(self, refresh_token: Secret) -> Optional[Mapping[str, Any]]:
        """The reply of the ``refresh_token`` grant, or ``None`` when the site refused it."""

    def minted(self) -> Mapping[str, Any]:
        """The reply of a fresh grant (session token, or client credentials)."""


class RestTokens:
    """The Bearer and refresh tokens of one credential. Its ``repr`` shows no token."""

    __slots__ = ("mints", "_lock", "_access", "_refresh", "_renew_at")

    def __init__(self) -> None:
        #: How many tokens were minted (or refreshed) for the credential.
        self.mints = 0
        self._lock = threading.Lock()
        self._access: Optional[Secret] = None
        self._refresh: Optional[Secret] = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        state = "a token" if self._access else "no token"
        return f"<RestTokens with {state}, {self.mints} mint(s)>"

    def __reduce__(self):
        raise TypeError("REST tokens cannot be pickled")

    def valid_token(self) -> Optional[Secret]:
        """The access token, unless it is (about to be) expired."""
        token, renew_at = self._access, self._renew_at
        if token is not None and time.monotonic() < renew_at:
            return token
        return None

    def token(self, minter: Minter, rejected: Optional[Secret] = None) -> Secret:
        """A valid access token: the shared one, or one minted now (single flight).

        :param minter: Mints through the network when needed.
        :param rejected: A token the site just answered 401 to: replace it, unless another
            thread already has.
        """
        if rejected is None:
            token = self.valid_token()
            if token is not None:
                return token
        with self._lock:
            token = self.valid_token()
            if token is not None and token != rejected:
                return token
            if rejected is not None and self._access == rejected:
                self._access = None
            reply = None
            if self._refresh is not None:
                reply = minter.refreshed(self._refresh)
                if reply is None:
                    self._refresh = None  # spent or revoked: mint a fresh one
            if reply is None:
                reply = minter.minted()
            self.store(reply)
            return self._access  # type: ignore[return-value]

    def store(self, reply: Mapping[str, Any]) -> float:
        """Keep the tokens of a token reply (``str`` or :class:`~sgconnect.secret.Secret`
        values); return its lifetime in seconds."""
        access = Secret(reply["access_token"])
        refresh = reply.get("refresh_token")
        if isinstance(refresh, (str, Secret)) and refresh:
            self._refresh = secret_or_none(refresh)
        lifetime = expires_in(reply)
        self._access = access
        self._renew_at = time.monotonic() + lifetime - expiry_margin(lifetime)
        self.mints += 1
        return lifetime

    def bearer(self, minter: Minter) -> Bearer:
        """These tokens as the owner of an auth flow (:mod:`sgconnect.auth_flow`)."""
        return Bearer(self, minter)


class Bearer:
    """The Bearer token of a :class:`RestTokens` for :func:`sgconnect.auth_flow.drive`: an
    attempt is the current token; renewing after a 401 mints a new one (single flight)."""

    renewable = True

    def __init__(self, tokens: RestTokens, minter: Minter):
        self._tokens = tokens
        self._minter = minter

    def __repr__(self) -> str:
        return f"<Bearer of {self._tokens!r}>"

    def attempt(self) -> Secret:
        return self._tokens.token(self._minter)

    def renew(self, attempt: Secret, interactive: bool) -> None:
        self._tokens.token(self._minter, rejected=attempt)
