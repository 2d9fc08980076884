"""``Secret``: a secret value that prints as ``[redacted]`` until the moment it is sent.

Every session token, session metadata, script key, REST access and refresh token and proxy
password sgconnect holds is kept in a :class:`Secret`. It is not a ``str`` (so no string
operation, ``%s``, f-string, ``json.dumps`` or ``logging`` call can reveal it by accident), its
``repr``, ``str`` and ``format`` are ``[redacted]`` (so a traceback printed with
``capture_locals=True``, pytest ``--showlocals``, rich or a crash reporter shows no secret), it
cannot be pickled or copied out, and it compares in constant time with another ``Secret`` only.
Only :meth:`Secret.reveal` gives the value, and sgconnect calls it in the expression that puts
the value on the wire.

Two last-moment vehicles carry a revealed value through code that is not sgconnect's:

- :class:`RedactedBytes`: a request body (the api3 JSON payload, a REST token request's form)
  whose ``repr``/``str`` is the body with every secret replaced, so that shotgun_api3's frames
  (``_call_rpc``, ``_make_call``, ``_http_request``) and its ``Request body is ...`` log line
  show the body without the secret;
- :class:`RedactedText`: an ``Authorization`` header value whose ``repr`` is redacted, for
  urllib's frames, which hold the request headers in a dict.

What neither can hide (copies the standard library makes while writing to the socket) is listed
in docs/security.md ("What code in the same process can still see").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from typing import Any, Mapping, Optional, Union

from .redaction import REDACTED, redact, register_secret

__all__ = [
    "Secret",
    "RedactedBytes",
    "RedactedText",
    "reveal",
    "secret_or_none",
    "json_body",
    "form_body",
]


class Secret:
    """A secret string that never prints. ``reveal()`` gives it, at the moment it is sent.

    :param value: The secret (a ``str``, or another ``Secret``: its value is taken). It is
        registered with :func:`sgconnect.redaction.register_secret`.
    :raises TypeError: ``value`` is not a ``str`` or a ``Secret``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Union[str, Secret]):
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        register_secret(value)
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret itself. Call it only in the expression that sends it."""
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode("utf-8")).digest())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Secret is read-only")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a Secret cannot be pickled: it would carry its value along")

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled: it would carry its value along")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: Any) -> Secret:
        return self


def reveal(value: Union[Secret, str, None]) -> Optional[str]:
    """The value of a :class:`Secret`; a ``str`` or ``None`` is returned as it is."""
    return value.reveal() if isinstance(value, Secret) else value


def secret_or_none(value: Union[Secret, str, None]) -> Optional[Secret]:
    """``value`` as a :class:`Secret`; ``None`` and ``""`` give ``None``."""
    if value is None or isinstance(value, Secret):
        return value or None
    return Secret(value) if value else None


class RedactedBytes(bytes):
    """A request body that holds secrets: sent as it is, printed with them redacted."""

    def __repr__(self) -> str:
        return redact(bytes.__repr__(self))

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a request body with a secret cannot be pickled")


class RedactedText(str):
    """A header value that holds a secret (``Bearer ...``): sent as it is, printed redacted."""

    def __repr__(self) -> str:
        scheme = self.split(" ", 1)[0] if " " in self else ""
        return repr(f"{scheme} {REDACTED}".strip())

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a header value with a secret cannot be pickled")


def _reveal_default(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_body(payload: Any) -> RedactedBytes:
    """``payload`` as UTF-8 JSON (as shotgun_api3 encodes it), its :class:`Secret` values
    revealed in the bytes only."""
    text = json.dumps(payload, ensure_ascii=False, default=_reveal_default)
    return RedactedBytes(text.encode("utf-8"))


def form_body(fields: Mapping[str, Any]) -> RedactedBytes:
    """``fields`` form-encoded, its :class:`Secret` values revealed in the bytes only."""
    return RedactedBytes(
        urllib.parse.urlencode([(k, reveal(v)) for k, v in fields.items()]).encode("ascii")
    )
