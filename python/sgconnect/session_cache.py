"""Fast, read-only reader of tk-core's session cache (the ``authentication.yml`` files).

The cached path must not import tk-core (``import tank.authentication`` alone costs ~0.3 s),
yet it must read exactly what tk-core reads. This module mirrors, for tk-core v0.24:

- ``tank.util.LocalFileStorageManager.get_global_root`` / ``get_site_root`` (CACHE type,
  ``SHOTGUN_HOME`` override, per-OS roots, CORE_V17 versus CORE_V18 site folder naming);
- ``tank.authentication.session_cache`` (legacy fallback when the v18 file is absent,
  ``_is_same_user`` matching, the first matching entry *with a token* wins, ``session_metadata``
  only when truthy, ``current_host`` sanitised with ``sanitize_url``).

It never writes: writing stays tk-core's job. A corrupt or unreadable file is "no saved
session", with one warning that names the file and never its content (tk-core logs the
content at DEBUG, which leaks tokens).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

from .environ import SHOTGUN_HOME
from .redaction import register_secrets

logger = logging.getLogger("sgconnect.session_cache")

_FILE_NAME = "authentication.yml"
_CORE_V17, _CORE_V18 = 0, 1


@dataclass(frozen=True)
class SavedSession:
    """A session saved in tk-core's cache; ``repr`` never shows the token or metadata."""

    site: str
    login: str
    session_token: str = field(repr=False)
    session_metadata: Optional[str] = field(default=None, repr=False)
    path: str = ""


class _CorruptCache(Exception):
    """A cache file exists but cannot be used; the message never holds file content."""


# --------------------------------------------------------------------------- locations


def _global_root(generation: int = _CORE_V18) -> str:
    """``LocalFileStorageManager.get_global_root(CACHE, generation)``."""
    override = os.environ.get(SHOTGUN_HOME)
    if override:
        return os.path.abspath(os.path.expanduser(os.path.expandvars(override)))
    # For the CACHE type the v17 and v18 global roots are the same on every OS.
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/Shotgun")
    if sys.platform == "win32":
        return os.path.join(os.environ.get("APPDATA", "APPDATA_NOT_SET"), "Shotgun")
    if sys.platform.startswith("linux"):
        return os.path.expanduser("~/.shotgun")
    raise ValueError(f"Unknown platform: {sys.platform}")


def site_folder(site: str, generation: int = _CORE_V18) -> str:
    """The per-site folder name, as tk-core's ``get_site_root`` computes it (port dropped).

    :param generation: tk-core's cache layout generation (``LocalFileStorageManager.CORE_V17``
        = 0, ``CORE_V18`` = 1, the default).
    """
    name = urllib.parse.urlparse(site).netloc.split(":")[0].lower()
    if generation > _CORE_V17:
        name = name.replace(".shotgunstudio.com", "").replace(".shotgrid.autodesk.com", "")
    return name


def _with_legacy_fallback(current: str, legacy: str) -> str:
    """tk-core reads the legacy file only when the current one does not exist."""
    if not os.path.exists(current) and os.path.exists(legacy):
        return legacy
    return current


def cache_root() -> str:
    """tk-core's CACHE global root (``$SHOTGUN_HOME`` or the per-OS default)."""
    return _global_root(_CORE_V18)


def site_cache_file(site: str) -> str:
    """The per-site ``authentication.yml`` tk-core would read for ``site`` (given as is)."""
    current = os.path.join(_global_root(_CORE_V18), site_folder(site, _CORE_V18), _FILE_NAME)
    legacy = os.path.join(_global_root(_CORE_V17), site_folder(site, _CORE_V17), _FILE_NAME)
    return _with_legacy_fallback(current, legacy)


def global_cache_file() -> str:
    """The global ``authentication.yml`` tk-core would read."""
    current = os.path.join(_global_root(_CORE_V18), _FILE_NAME)
    legacy = os.path.join(_global_root(_CORE_V17), _FILE_NAME)
    return _with_legacy_fallback(current, legacy)


def sanitize_url(url: str) -> str:
    """tk-core's ``connection.sanitize_url``: scheme (default https) + netloc, lower-cased."""

    def one_pass(text: str) -> str:
        parsed = urllib.parse.urlparse(text)
        return urllib.parse.urlunparse(
            (parsed.scheme or "https", parsed.netloc or parsed.path, "", "", "", "")
        )

    return one_pass(one_pass(url.strip())).lower()


# --------------------------------------------------------------------------- reading


def _yaml_load(data: bytes) -> Any:
    """Parse YAML safely (PyYAML, else tk-core's vendored copy); imported lazily."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with tk-core's requirements
        from tank_vendor import yaml  # type: ignore[no-redef]
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        return yaml.load(data, Loader=loader)
    except yaml.YAMLError as exc:
        # str(exc) may quote the offending line, which can hold a token: never log it.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _CorruptCache(f"invalid YAML ({type(exc).__name__}{where})") from None


#: A cache file larger than this is refused (tk-core's files are a few kilobytes).
MAX_CACHE_BYTES = 1024 * 1024


def trust_problem(
    mode: int, owner: int, uid: Optional[int], size: int, *, root_ok: bool = False
) -> Optional[str]:
    """Why a cache file with this ``st_mode``, owner and size may not be read, or ``None``.

    Pure. Refused: not a regular file (a FIFO, a device such as ``/dev/zero``), owned by another
    user, writable by group or others, or larger than :data:`MAX_CACHE_BYTES`. ``uid`` is this
    process's effective user id (``None`` on Windows: only type and size are checked there).
    ``root_ok``: a file owned by root is trusted too (the node settings file).
    """
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if size > MAX_CACHE_BYTES:
        return f"it is larger than {MAX_CACHE_BYTES} bytes"
    if uid is None:
        return None
    if owner != uid and not (root_ok and owner == 0):
        return f"it is owned by user id {owner}, not by this user (id {uid})"
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"its mode is {stat.S_IMODE(mode):04o}: others can write it (chmod go-w)"
    return None


def _folder_problem(path: str, uid: Optional[int]) -> Optional[str]:
    """Why the folder holding a cache file may not be trusted: another user may swap the file."""
    if uid is None:
        return None
    try:
        info = os.stat(os.path.dirname(path) or ".")
    except OSError:
        return None
    shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX
    if info.st_uid not in (uid, 0) or shared:
        return (
            f"its folder (mode {stat.S_IMODE(info.st_mode):04o}, owner id {info.st_uid}) can be "
            "changed by other users"
        )
    return None


def write_problem(site: Optional[str]) -> Optional[tuple[str, str]]:
    """``(path, why)`` of the first cache file or folder a login to ``site`` would write (the
    site's ``authentication.yml``, the global one) that this user may not trust by
    :func:`trust_problem`'s and the folder's rules; ``None`` when every one may be trusted.

    A session token written there could be read or replaced by someone else, and sgconnect
    itself would refuse to read it back.
    """
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    paths = [global_cache_file()]
    if site:
        paths.insert(0, site_cache_file(sanitize_url(site)))
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            info = None  # absent: tk-core creates it, in its folder (checked next)
        if info is not None:
            problem = trust_problem(info.st_mode, info.st_uid, uid, info.st_size)
            if problem is not None:
                return path, problem
        problem = _folder_problem(path, uid)
        if problem is not None:
            return os.path.dirname(path), problem
    return None


def read_trusted(path: str, *, root_ok: bool = False) -> Optional[bytes]:
    """The bytes of a file this user may trust by :func:`trust_problem`'s and the folder's rules;
    ``None`` when absent. ``root_ok``: root may own it too.

    :raises ValueError: The file may not be trusted or cannot be read; the message says why.
    """
    try:
        return _read_trusted(path, root_ok=root_ok, untrusted="")
    except _CorruptCache as exc:
        raise ValueError(str(exc)) from None


def _read_trusted(
    path: str, *, root_ok: bool = False, untrusted: str = "; it is treated as no saved session"
) -> Optional[bytes]:
    """The bytes of a cache file this user may trust; ``None`` when absent.

    Opened non-blocking (a FIFO cannot hang the process) and checked through the descriptor;
    at most :data:`MAX_CACHE_BYTES` + 1 bytes are read (a device cannot exhaust memory).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _CorruptCache(f"cannot be read ({type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        uid = os.geteuid() if hasattr(os, "geteuid") else None
        problem = trust_problem(
            info.st_mode, info.st_uid, uid, info.st_size, root_ok=root_ok
        ) or _folder_problem(path, uid)
        if problem is not None:
            raise _CorruptCache(f"not trusted, {problem}{untrusted}")
        chunks, total = [], 0
        while total <= MAX_CACHE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_CACHE_BYTES:
            raise _CorruptCache(f"not trusted, it is larger than {MAX_CACHE_BYTES} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise _CorruptCache(f"cannot be read ({type(exc).__name__})") from None
    finally:
        os.close(fd)


def _load(path: str) -> Optional[dict]:
    """The file's mapping; ``None`` when absent; raises ``_CorruptCache`` when unusable."""
    data = _read_trusted(path)
    if data is None:
        return None
    try:
        document = _yaml_load(data)
        if document is None:  # an empty file: tk-core treats it as an empty document
            return {}
        if not isinstance(document, dict):
            raise _CorruptCache(f"holds a {type(document).__name__}, not a mapping")
    except _CorruptCache:
        _register_token_like(data)
        raise
    return document


#: A run of token characters with a letter and a digit: what a token in a broken file looks like.
_TOKEN_LIKE = re.compile(
    rb"(?=[A-Za-z_~+/=%-]*[0-9])(?=[0-9_~+/=%-]*[A-Za-z])[A-Za-z0-9_~+/=%-]{20,}"
)


def _register_token_like(data: bytes) -> None:
    """Register what may be a token in a corrupt file: tk-core logs such a file line by line
    at DEBUG, and a token that no longer sits after ``session_token:`` has no shape to redact."""
    register_secrets(match.group().decode("ascii") for match in _TOKEN_LIKE.finditer(data))


def _warn(path: str, error: _CorruptCache) -> None:
    logger.warning("Ignoring the tk-core session cache file %s: %s.", path, error)


def _stripped_str(value: Any, what: str) -> Optional[str]:
    """``value.strip()`` for a string, ``None`` for a falsy value, else corrupt."""
    if not value:
        return None
    if not isinstance(value, str):
        raise _CorruptCache(f"its {what} is a {type(value).__name__}, not a string")
    return value.strip()


def _site_document(document: dict, path: str = "") -> tuple[Optional[str], list]:
    """``(current_user, users)`` validated the way tk-core's loader normalises them.

    tk-core strips ``current_user`` and every entry's ``login`` on each load, so a value that is
    not a string anywhere in the file makes every lookup in it fail: we treat it as corrupt. A
    login that is a string but holds a control character is skipped alone (with a warning), and
    such a ``current_user`` counts as unset: the other saved users keep working.
    """
    users = document.get("users", [])
    if not isinstance(users, list):
        raise _CorruptCache(f"its users entry is a {type(users).__name__}, not a list")
    for user in users:
        if not isinstance(user, dict):
            raise _CorruptCache(f"a users entry is a {type(user).__name__}, not a mapping")
        if not isinstance(user.get("login"), str):
            raise _CorruptCache("a users entry has no string login")
    kept = [user for user in users if not _has_control(user["login"])]
    if len(kept) != len(users):
        logger.warning(
            "Skipping %d saved user(s) whose login has a control character in %s.",
            len(users) - len(kept),
            path or "the tk-core session cache",
        )
    current = _stripped_str(document.get("current_user"), "current_user") or None
    if current is not None and _has_control(current):
        logger.warning("Ignoring a current_user with a control character in %s.", path)
        current = None
    return current, kept


def _has_control(text: str) -> bool:
    """A control, format or line-separator character: a login holding one could forge a line."""
    return any(unicodedata.category(char)[0] in "CZ" and char != " " for char in text.strip())


def _same_user(stored: str, login: str) -> bool:
    """tk-core's ``_is_same_user``: case-insensitive, surrounding whitespace ignored."""
    return stored.lower().strip() == login.lower().strip()


def current_host() -> Optional[str]:
    """The global file's ``current_host``, sanitised like tk-core; ``None`` when unset."""
    path = global_cache_file()
    try:
        document = _load(path)
        if document is None:
            return None
        host = document.get("current_host")
        if not host:
            return None
        if not isinstance(host, str):
            raise _CorruptCache(f"its current_host is a {type(host).__name__}, not a string")
        try:
            return sanitize_url(host)
        except ValueError:  # urllib's "Invalid IPv6 URL" (http://[oops): not a site
            raise _CorruptCache(
                "its current_host is not a URL; it is treated as no current host"
            ) from None
    except _CorruptCache as error:
        if (path, str(error)) not in _warned_hosts:  # once per process, not on every call
            _warned_hosts.add((path, str(error)))
            _warn(path, error)
        return None


#: The (file, problem) pairs whose current_host was already warned about.
_warned_hosts: set[tuple[str, str]] = set()


def current_login(site: str) -> Optional[str]:
    """The site's ``current_user`` (stripped); ``None`` when unset or unusable."""
    path = site_cache_file(sanitize_url(site))
    try:
        document = _load(path)
        return None if document is None else _site_document(document, path)[0]
    except _CorruptCache as error:
        _warn(path, error)
        return None


def read_saved_session(site: str, login: Optional[str] = None) -> Optional[SavedSession]:
    """The session tk-core would use for ``site`` and ``login`` (default: the current user).

    ``site`` is sanitised like tk-core's ``sanitize_url`` first. Returns ``None`` when there is
    no file, no user, no matching entry with a non-empty token, or the file is unusable.
    """
    normalized = sanitize_url(site)
    path = site_cache_file(normalized)
    try:
        document = _load(path)
        if document is None:
            return None
        current, users = _site_document(document, path)
        wanted = login if login is not None else current
        if not wanted or not wanted.strip():
            return None
        for user in users:
            if not _same_user(user["login"], wanted):
                continue
            token = user.get("session_token")
            if not token:
                continue  # tk-core skips a matching entry without a token and keeps looking
            if not isinstance(token, str):
                raise _CorruptCache(f"a session_token is a {type(token).__name__}, not a string")
            metadata = user.get("session_metadata") or None
            if metadata is not None and not isinstance(metadata, str):
                raise _CorruptCache(
                    f"a session_metadata is a {type(metadata).__name__}, not a string"
                )
            if not _belongs_to(path, normalized, user["login"].strip(), token):
                return None
            return SavedSession(
                site=normalized,
                login=user["login"].strip(),
                session_token=token,
                session_metadata=metadata,
                path=path,
            )
        return None
    except _CorruptCache as error:
        _warn(path, error)
        return None


# --------------------------------------------------------------------------- one site per session

#: sgconnect's own record, next to tk-core's per-site file: which site each saved token is for.
_SITES_FILE = "sgconnect_sites.json"


def _fingerprint(token: Any) -> str:
    """A SHA-256 prefix of a token (a ``str``, or a :class:`~sgconnect.secret.Secret`)."""
    import hashlib

    value = token.reveal() if hasattr(token, "reveal") else token
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _site_records(cache_file: str) -> dict[str, str]:
    path = os.path.join(os.path.dirname(cache_file), _SITES_FILE)
    try:
        data = _read_trusted(path)
    except _CorruptCache as error:
        _warn(path, error)
        return {}
    if not data:
        return {}
    import json

    try:
        records = json.loads(data.decode("utf-8"))
    except ValueError:
        _warn(path, _CorruptCache("invalid JSON"))
        return {}
    if not isinstance(records, dict):
        return {}
    return {k: v for k, v in records.items() if isinstance(k, str) and isinstance(v, str)}


def record_session_site(site: str, token: Any) -> None:
    """Record that ``token``, saved in tk-core's cache, belongs to ``site`` (scheme, host, port).

    tk-core keeps one cache folder per host name (the port is dropped), so two sites on one host
    share a file. With this record, :func:`read_saved_session` never hands one site's token to
    the other. Written atomically, ``0600``; only fingerprints (a SHA-256 prefix) are stored.

    :param token: The session token (a ``str`` or a :class:`~sgconnect.secret.Secret`).
    :raises OSError: The folder cannot be written (the caller turns it into a typed error).
    """
    import json
    import tempfile

    normalized = sanitize_url(site)
    cache_file = site_cache_file(normalized)
    folder = os.path.dirname(cache_file)
    records = _site_records(cache_file)
    records[_fingerprint(token)] = normalized
    records = dict(list(records.items())[-64:])  # bounded: recent sessions only
    os.makedirs(folder, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sgconnect_sites.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(records, out)
        os.replace(temporary, os.path.join(folder, _SITES_FILE))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _belongs_to(cache_file: str, site: str, login: str, token: str) -> bool:
    """Whether the saved ``token`` may be sent to ``site``; warns when it may not.

    Recorded by sgconnect: the recorded site must be ``site``. Not recorded (SG Desktop or
    tk-core saved it): refused when tk-core's current host is another site on the same host
    name, since the session then most likely belongs to that one.
    """
    recorded = _site_records(cache_file).get(_fingerprint(token))
    if recorded is None:
        host = current_host()
        same_name = host and _hostname(host) == _hostname(site)
        if not same_name or host == site:
            return True
        recorded = host
        how = "tk-core's current host is"
    elif recorded == site:
        return True
    else:
        how = "it was saved for"
    logger.warning(
        "Not using the saved session of %s in %s for %s: %s %s (tk-core keeps one file per host "
        "name, whatever the port). Log in again with `sgconnect login --site %s`.",
        login,
        cache_file,
        site,
        how,
        recorded,
        site,
    )
    return False


def _hostname(url: str) -> str:
    return (urllib.parse.urlparse(url).hostname or "").lower()
