"""One auth flow: send with the current secret, on a rejection renew it once for all, retry.

Like httpx's ``Auth.auth_flow``, the policy is one generator (:func:`auth_flow`) and the client
drives it (:func:`drive`): the api3 connection (:mod:`sgconnect.connection`), the REST token
request and the REST call (:mod:`sgconnect.rest.session`). What counts as a rejection is the
surface's to say:

- api3: ``AuthenticationFault`` (error 102), or the 302 to ``/saml/saml_login_request`` a SAML site
  answers once the SSO claims behind a session expired;
- REST token request: HTTP 401, or code 102 in the ``errors`` envelope;
- REST call: HTTP 401 on the Bearer token.

Renewal is the owner's (:meth:`sgconnect.credentials.Credential.renew`, or the REST token owner):
single flight, so N threads rejected with the same secret cause one renewal.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Protocol, TypeVar

__all__ = ["MAX_AUTH_ATTEMPTS", "Renewable", "auth_flow", "drive"]

#: The attempts an api3 call gets: the first, one after adopting a token another thread or process
#: renewed, one after an interactive renewal.
MAX_AUTH_ATTEMPTS = 3

T = TypeVar("T")


class Renewable(Protocol):
    """What the flow needs of a secret's owner (a credential, or REST tokens)."""

    renewable: bool

    def attempt(self) -> Any: ...

    def renew(self, attempt: Any, interactive: bool) -> None: ...


def auth_flow(
    owner: Renewable, *, interactive: bool, attempts: int = MAX_AUTH_ATTEMPTS
) -> Generator[Any, bool, None]:
    """Yield the attempt to send; the client sends back whether the site rejected it.

    After a rejection the owner renews (unless it cannot, or ``attempts`` are spent: then the
    generator ends and the client re-raises the rejection).
    """
    budget = attempts if owner.renewable else 1
    for number in range(1, budget + 1):
        attempt = owner.attempt()
        rejected = yield attempt
        if not rejected or number == budget:
            return
        owner.renew(attempt, interactive)


def drive(
    owner: Renewable,
    send: Callable[[Any], T],
    *,
    interactive: bool,
    attempts: int = MAX_AUTH_ATTEMPTS,
    rejects_error: Callable[[BaseException], bool] = lambda error: False,
    rejects_result: Callable[[T], bool] = lambda result: False,
) -> T:
    """Run ``send(attempt)`` through :func:`auth_flow` and return its last result.

    :param send: One request with an attempt; returns the reply or raises.
    :param rejects_error: Whether an exception ``send`` raised is a rejection of the secret.
    :param rejects_result: Whether a reply ``send`` returned is a rejection of the secret.
    :returns: The first reply that is not a rejection, or the last one when attempts ran out.
    :raises: The last rejection ``send`` raised when attempts ran out; any other error at once.
    """
    flow = auth_flow(owner, interactive=interactive, attempts=attempts)
    attempt = next(flow)
    try:
        while True:
            failure = None
            try:
                result = send(attempt)
            except Exception as error:
                if not rejects_error(error):
                    raise
                failure = error
            else:
                if not rejects_result(result):
                    return result
            # Renewal runs outside the except block: its errors do not chain the rejection.
            attempt = _next(flow)
            if attempt is _DONE:
                if failure is not None:
                    raise failure
                return result
    finally:
        flow.close()


_DONE = object()


def _next(flow: Generator[Any, bool, None]) -> Any:
    try:
        return flow.send(True)
    except StopIteration:
        return _DONE
