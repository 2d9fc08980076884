"""Redaction at the source: secrets are removed from log records when the records are created.

Two mechanisms work together:

* **A registry of known secret values.** Every password, session token, script key and REST
  token that sgconnect sees is passed to :func:`register_secret`. :func:`redact` replaces each of
  them anywhere in a text, also in the escaped forms they take in JSON bodies, ``bytes`` reprs and
  form-encoded bodies. This catches third-party log lines whose shape we do not know.
* **Redaction by shape.** The values of secret-bearing keys (``password``, ``session_token``,
  ``sessionToken``, ``script_key``, ``api_key``, ``access_token``, ``client_secret``,
  ``_session_id``, ``X-Api-Key``, ``Proxy-Authorization``, and environment dumps such as
  ``NAME_KEY=``, ``NAME_TOKEN=``, ``NAME_SECRET=``, ``NAME_PASSWORD=``...) are replaced when they
  appear as JSON, Python ``repr``, form/query/cookie (``key=value``), YAML or free text
  (``Session token: value``); so are ``Bearer`` credentials, JWT-shaped strings and the password
  of a URL's userinfo (``https://user:pw@host``). The rest of the text is kept, so the logs stay
  useful.

**Installing and removing.** :func:`install` wraps the process-wide log record factory
(:func:`logging.setLogRecordFactory`), so every record is rewritten before any filter, handler or
formatter sees it, whichever logger (``sgtk``, ``tank``, ``shotgun_api3``, ``sgconnect`` or any
other) created it. All records are redacted, not only those of these loggers: the check is cheap
(an early exit when the text holds nothing that looks like a secret) and a secret can reach any
logger (``urllib3``, a studio's own). The record's message is formatted once, redacted and frozen
(``msg`` becomes the redacted text, ``args`` becomes ``()``); a traceback (``exc_info``) is
formatted into ``exc_text`` with redaction and ``exc_info`` is then cleared, as
:class:`logging.handlers.QueueHandler` does, so no handler can format the original exception
again; ``stack_info`` is redacted too. :func:`uninstall` puts the previous factory back if ours is
still the current one; if someone wrapped it since, ours becomes a pass-through instead. Both are
idempotent and thread-safe.

**Noticing a replaced factory.** A library that calls :func:`logging.setLogRecordFactory` without
calling the factory it replaces turns redaction off. :func:`is_installed` notices (it sends a probe
record through the current factory); :func:`install` then puts a redacting layer back on top.

**Limits: what a process cannot hide from itself.** Redaction covers log records created
through :class:`logging.Logger`. It does not cover text written straight to ``stdout``/``stderr``,
records built with :func:`logging.makeLogRecord` (for example by a socket or queue listener in
another process), values passed in ``extra=``, a secret split across two records, secrets that
were never registered and have no recognisable shape, or code in the same process that reads the
secret from memory. A message that was not a ``str`` (a dict, say) becomes its redacted text.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

__all__ = [
    "REDACTED",
    "register_secret",
    "register_secrets",
    "forget_secret",
    "redact",
    "install",
    "uninstall",
    "is_installed",
    "secret_count",
    "isolated_secrets",
]

REDACTED = "[redacted]"

#: Shorter values are not registered: they would redact ordinary words.
_MIN_SECRET_LEN = 6

_lock = threading.RLock()
_secrets: set[str] = set()
#: Registered secrets and their escaped forms, longest first. Replaced as a whole (atomic read).
_variants: tuple[str, ...] = ()


def _escaped_forms(value: str) -> set[str]:
    """The forms ``value`` takes in JSON, ``repr``, ``bytes`` reprs and URL encoding."""
    forms = {value, repr(value)[1:-1]}
    for ensure_ascii in (True, False):
        forms.add(json.dumps(value, ensure_ascii=ensure_ascii)[1:-1])
    for text in list(forms):
        raw = repr(text.encode("utf-8", "backslashreplace"))[2:-1]
        forms.update((raw, raw.replace("\\'", "'"), raw.replace("'", "\\'")))
    forms.add(urllib.parse.quote_plus(value))
    forms.add(urllib.parse.quote(value, safe=""))
    return {form for form in forms if len(form) >= _MIN_SECRET_LEN}


#: Each registered secret's forms, computed once (so registering n secrets is linear).
_forms_of: dict[str, frozenset[str]] = {}


def _rebuild() -> None:
    global _variants
    forms: set[str] = set()
    for value in _secrets:
        cached = _forms_of.get(value)
        if cached is None:
            cached = _forms_of[value] = frozenset(_escaped_forms(value))
        forms |= cached
    _variants = tuple(sorted(forms, key=len, reverse=True))


def register_secret(value: Optional[str]) -> None:
    """Redact ``value`` from every log record from now on (under 6 characters: ignored)."""
    register_secrets([value])


def register_secrets(values: Any) -> None:
    """Register many secrets at once: one rebuild, so n values cost O(n log n), not O(n²).

    :param values: An iterable of ``str`` (``None`` and values under 6 characters: ignored).
    :raises TypeError: A value is neither ``str`` nor ``None``.
    """
    new = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"register_secret() takes a str, not {type(value).__name__}")
        if len(value) >= _MIN_SECRET_LEN:
            new.append(value)
    if not new:
        return
    with _lock:
        fresh = [value for value in new if value not in _secrets]
        if fresh:
            _secrets.update(fresh)
            _rebuild()


def forget_secret(value: Optional[str]) -> None:
    """Stop redacting ``value`` by value (its shape may still be redacted). Unknown: ignored."""
    with _lock:
        if value in _secrets:
            _secrets.discard(value)
            _forms_of.pop(value, None)
            _rebuild()


def secret_count() -> int:
    """How many values are registered (redacted by value)."""
    with _lock:
        return len(_secrets)


@contextmanager
def isolated_secrets() -> Iterator[None]:
    """Within the block, no value is registered; after it, the registry is restored as it was.

    For tests of the registry itself. Not part of :func:`sgconnect.reset`: forgetting a secret in
    a running process would let it reach a log line.
    """
    with _lock:
        saved = set(_secrets)
        _secrets.clear()
        _rebuild()
    try:
        yield
    finally:
        with _lock:
            _secrets.clear()
            _secrets.update(saved)
            _rebuild()


# -- redaction by shape -------------------------------------------------------------------------

#: Key names whose values are secret. Matched case-insensitively, as a whole word.
_KEY_NAME = r"""
    [\w-]*?(?:password|passwd|passphrase|secret|token)    # user_password, SG_TOKEN, sessionToken
  | (?:session|access|refresh|auth|bearer|api)[ ]token    # free text: "Session token: ..."
  | _?session[_-]?id
  | (?:api|script|private|secret|access)[_-]?key
  | [\w-]*?[_-]key                                       # X-Api-Key, SGCONNECT_SCRIPT_KEY (env)
  | key
  | (?:proxy-)?authorization                             # Proxy-Authorization: Basic ...
"""

_KEY_RE = re.compile(
    r"(?P<kq>\\*[\"'])?(?<![\w-])(?P<key>" + _KEY_NAME + r")(?![\w-])(?(kq)(?P=kq))"
    r"(?P<sep>[ \t]*[:=][ \t]*)",
    re.IGNORECASE | re.VERBOSE,
)
_QUOTE_RE = re.compile(r"[bBrRuU]?(\\*)([\"'])")
_AUTH_SCHEME_RE = re.compile(r"(?i)(?:bearer|basic|token|digest)[ \t]+")
_UNQUOTED_JSON_END = re.compile(r"[,}\]\s)]|$")
_UNQUOTED_FORM_END = re.compile(r"[&;,\s\"'<>)\]}]|$")
_LINE_END = re.compile(r"[\r\n]|$")
_KEEP_VALUES = frozenset({"", "null", "none", "true", "false", REDACTED.lower()})

#: Credentials in a URL's userinfo: ``https://user:password@host`` keeps the user only.
_URL_USERINFO_RE = re.compile(r"(?i)(?<![\w+.-])([a-z][a-z0-9+.-]*://[^\s/:@]*:)([^\s/@]+)(@)")
_BEARER_RE = re.compile(r"(?i)(?<![\w-])(bearer[ \t]+)([A-Za-z0-9._~+/=-]{8,})")
_JWT_RE = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

#: Lower-case substrings at least one of which any shape needs: the early exit. ``session``
#: alone is not one: the only key shape without ``token`` or ``key`` that holds it is
#: ``_?session[_-]?id``. (Every hand-out's audit line says "via session"; scanning it with
#: ``_KEY_RE`` tripled the cost of a hand-out with INFO logging on.)
_HINTS = (
    "pass",
    "secret",
    "token",
    "key",
    "session_id",
    "session-id",
    "sessionid",
    "authoriz",
    "bearer",
    "eyj",
    "://",
)


def _value_span(text: str, pos: int, quoted_key: bool, sep: str) -> tuple[int, int]:
    """Where the value that starts at ``pos`` begins and ends (its quotes excluded)."""
    quote = _QUOTE_RE.match(text, pos)
    if quote:
        backslashes, char = len(quote.group(1)), quote.group(2)
        start = search = quote.end()
        line_end = _LINE_END.search(text, start).start()
        while True:
            end = text.find(char, search, line_end)
            if end == -1:  # unterminated: redact to the end of the line
                return start, line_end
            first = end
            while first > start and text[first - 1] == "\\":
                first -= 1
            if end - first == backslashes:  # the closing quote, not an escaped one
                return start, first
            search = end + 1
    if quoted_key:  # a JSON or repr literal: number, null, None...
        return pos, _UNQUOTED_JSON_END.search(text, pos).start()
    if "=" in sep:  # form, query, cookie, keyword argument
        return pos, _UNQUOTED_FORM_END.search(text, pos).start()
    return pos, _LINE_END.search(text, pos).start()  # YAML or free text: the rest of the line


def _redact_key_values(text: str) -> str:
    out: list[str] = []
    done = 0
    pos = 0
    while True:
        match = _KEY_RE.search(text, pos)
        if match is None:
            break
        if text.startswith(REDACTED, match.end()):  # already redacted (by value, say)
            pos = match.end() + len(REDACTED)
            continue
        start, end = _value_span(text, match.end(), bool(match.group("kq")), match.group("sep"))
        value = text[start:end]
        pos = max(end, match.end())
        if value.strip().lower() in _KEEP_VALUES:
            continue
        scheme = _AUTH_SCHEME_RE.match(value)
        if scheme:
            start += scheme.end()
        out.append(text[done:start])
        out.append(REDACTED)
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _redact_bearer(match: re.Match[str]) -> str:
    token = match.group(2)
    if token.isalpha() and len(token) < 20:  # prose: "Bearer authentication"
        return match.group(0)
    return match.group(1) + REDACTED


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and every secret-shaped value replaced.

    Everything else is kept. Text with nothing that looks like a secret is returned unchanged,
    quickly. Non-``str`` input is converted with ``str()`` first.
    """
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text
    for secret in _variants:
        if secret in text:
            text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    if "://" in text and "@" in text:
        text = _URL_USERINFO_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _redact_key_values(text)
    if "bearer" in lowered:
        text = _BEARER_RE.sub(_redact_bearer, text)
    if "eyj" in lowered:
        text = _JWT_RE.sub(REDACTED, text)
    return text


# -- the log record factory ---------------------------------------------------------------------

_formatter = logging.Formatter()


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception as error:  # logging would print msg and args to stderr: freeze them first
        message = f"{record.msg} % {record.args!r} (the log arguments did not format: {error!r})"
    record.msg = redact(message)
    record.args = ()
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class _RedactingFactory:
    """Wraps the previous log record factory; redacts each record while ``active``."""

    def __init__(self, previous: Callable[..., logging.LogRecord]):
        self.previous = previous
        self.active = True

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if self.active:
            try:
                _redact_record(record)
            except Exception:  # never lose a log record; keep it, but without its text
                record.msg, record.args = "[record dropped by sgconnect redaction]", ()
                record.exc_info = record.exc_text = record.stack_info = None
        return record


_installed: Optional[_RedactingFactory] = None


def install() -> None:
    """Redact every log record of this process from now on. Idempotent, thread-safe."""
    global _installed
    with _lock:
        current = logging.getLogRecordFactory()
        if _installed is not None and current is _installed:
            _installed.active = True
            return
        if _installed is not None:  # someone wrapped ours: keep one redacting layer, on top
            _installed.active = False
        _installed = _RedactingFactory(current)
        logging.setLogRecordFactory(_installed)


def uninstall() -> None:
    """Stop redacting log records. Idempotent, thread-safe; registered secrets are kept."""
    global _installed
    with _lock:
        if _installed is None:
            return
        _installed.active = False
        if logging.getLogRecordFactory() is _installed:
            logging.setLogRecordFactory(_installed.previous)
        _installed = None


#: The probe :func:`is_installed` sends through the current factory (not a real secret).
_PROBE_VALUE = "sgconnect-redaction-probe"


def is_installed() -> bool:
    """Whether log records created now are redacted.

    Truthful even after another library replaced the log record factory
    (:func:`logging.setLogRecordFactory`) without calling ours: a probe record is created through
    the current factory and checked. When this returns False although :func:`install` ran, call
    :func:`install` again: it puts a redacting layer on top of whatever factory is current.
    """
    if _installed is None or not _installed.active:
        return False
    try:
        probe = logging.getLogRecordFactory()(
            "sgconnect.redaction.probe",
            logging.DEBUG,
            __file__,
            0,
            "password=%s",
            (_PROBE_VALUE,),
            None,
        )
        return _PROBE_VALUE not in probe.getMessage()
    except Exception:  # a factory that cannot make a plain record: not ours on top
        return False
