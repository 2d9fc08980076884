"""A site file for ``sgconnect site --config``: users, scripts and projects with fixed secrets.

YAML (needs PyYAML) or JSON, chosen by the file's extension (``.yaml``/``.yml``, else JSON)::

    mode: saml2                 # optional: default | ldap | saml2 | oxygen (--mode wins)
    unified_login_flow: false   # optional (--unified-login-flow wins when given)
    app_session_launcher: true  # optional (--no-app-session-launcher wins when given)
    users:
      - {login: alice, name: Alice Anders, id: 42, password: alice-test-pw}
      - {login: bob, name: Bob Brown, id: 43, email: bob@studio.invalid, two_factor: true}
    scripts:
      - {name: farm_script, key: farm-test-key, id: 101}
    projects: [Big Buck Bunny, Sintel]

A user or script without ``password``/``key`` gets a random one for the run (printed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from .common import MODES
from .state import HumanUserSpec, ScriptSpec

_USER_KEYS = {"login", "name", "id", "email", "password", "two_factor"}
_SCRIPT_KEYS = {"name", "key", "id"}
_TOP_KEYS = {"mode", "unified_login_flow", "app_session_launcher", "users", "scripts", "projects"}


class SiteConfigError(ValueError):
    """The site file cannot be used; the message names the file and what to fix."""


def load_site_config(path: str) -> Dict[str, Any]:
    """Read a site file; return :class:`~sgconnect.testing.LocalSite` keyword arguments.

    :param path: A ``.yaml``/``.yml`` (PyYAML) or JSON file.
    :returns: Some of ``mode``, ``unified_login_flow``, ``app_session_launcher``, ``users``
        (``HumanUserSpec`` list), ``scripts`` (``ScriptSpec`` list), ``projects`` (names).
    :raises SiteConfigError: unreadable file, bad syntax, unknown keys, wrong types.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteConfigError(f"Cannot read the site file {path}: {exc.strerror or exc}") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ImportError:
        raise SiteConfigError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise SiteConfigError(f"{path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise SiteConfigError(f"{path}: the top level must be a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SiteConfigError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    kwargs: Dict[str, Any] = {}
    if "mode" in data:
        if data["mode"] not in MODES:
            raise SiteConfigError(f"{path}: mode must be one of {MODES}, not {data['mode']!r}")
        kwargs["mode"] = data["mode"]
    for flag in ("unified_login_flow", "app_session_launcher"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise SiteConfigError(f"{path}: {flag} must be true or false")
            kwargs[flag] = data[flag]
    if "users" in data:
        kwargs["users"] = [
            _user(path, n, entry) for n, entry in enumerate(_list(path, data, "users"))
        ]
    if "scripts" in data:
        kwargs["scripts"] = [
            _script(path, n, entry) for n, entry in enumerate(_list(path, data, "scripts"))
        ]
    if "projects" in data:
        projects = _list(path, data, "projects")
        if not all(isinstance(p, str) and p for p in projects):
            raise SiteConfigError(f"{path}: projects must be a list of names")
        kwargs["projects"] = projects
    return kwargs


def _list(path: str, data: Dict[str, Any], key: str) -> List[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise SiteConfigError(f"{path}: {key} must be a list")
    return value


def _user(path: str, n: int, entry: Any) -> HumanUserSpec:
    where = f"{path}: users[{n}]"
    if not isinstance(entry, dict) or not {"login", "name", "id"} <= set(entry):
        raise SiteConfigError(f"{where} needs login, name and id")
    unknown = set(entry) - _USER_KEYS
    if unknown:
        raise SiteConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(entry["id"], int):
        raise SiteConfigError(f"{where}: id must be an integer")
    return HumanUserSpec(
        str(entry["login"]),
        str(entry["name"]),
        entry["id"],
        email=entry.get("email"),
        password=None if entry.get("password") is None else str(entry["password"]),
        two_factor=bool(entry.get("two_factor", False)),
    )


def _script(path: str, n: int, entry: Any) -> ScriptSpec:
    where = f"{path}: scripts[{n}]"
    if not isinstance(entry, dict) or "name" not in entry:
        raise SiteConfigError(f"{where} needs a name")
    unknown = set(entry) - _SCRIPT_KEYS
    if unknown:
        raise SiteConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if entry.get("id") is not None and not isinstance(entry["id"], int):
        raise SiteConfigError(f"{where}: id must be an integer")
    return ScriptSpec(
        str(entry["name"]),
        key=None if entry.get("key") is None else str(entry["key"]),
        id=entry.get("id"),
    )
