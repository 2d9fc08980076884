"""The app's settings, and their values outside an engine.

Inside an engine the values come from the environment configuration (``info.yml`` declares them).
In a standalone process there is no configuration, so the same names are read from
``SGCONNECT_<NAME>`` environment variables, falling back to the defaults below, which
``tests/test_app_manifest.py`` keeps equal to ``info.yml``'s. No setting ever holds a secret: the
service key is read from where ``service_key_env`` / ``service_key_file`` point.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, fields
from typing import Any, Optional

from . import environ as environ_vars
from .errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """Every setting of the app, with its default."""

    #: Never prompt: raise LoginRequiredError instead (farm, CI, daemons).
    non_interactive: bool = False
    #: The interactive login method: auto, qt, browser, web, password or url; also how an expired
    #: session is renewed (``url``: headless, no Qt; see :mod:`sgconnect.renewal`).
    login_method: str = "auto"
    #: Seconds before a request to the site is abandoned (0: wait forever; at most 3600).
    timeout_secs: float = 60.0
    #: HTTP proxy for the site ("" means none). Not in the repr: ``user:password@host:port``.
    http_proxy: str = dataclasses.field(default="", repr=False)
    #: Service mode: the script (API user) name; "" disables service mode.
    service_script_name: str = ""
    #: Service mode: the environment variable that holds the script key.
    service_key_env: str = environ_vars.SCRIPT_KEY
    #: Service mode: a file holding the script key; it must not be readable by group or others.
    service_key_file: str = ""
    #: Service mode: the OS keyring service name (used when the keyring package is importable).
    service_keyring_name: str = "sgconnect"
    #: Service mode: the site(s) the script key may be sent to (URLs, comma or space separated).
    #: Required when ``service_script_name`` is set: a job's ``SGCONNECT_SITE`` never picks it.
    service_site: str = ""
    #: Farm jobs: ``unverified`` (the job's environment names the person) or ``verified`` (only
    #: a valid ticket may use the script key; any other job is a FarmIdentityError).
    farm_identity: str = "unverified"

    def __post_init__(self) -> None:
        """Refuse a value of the wrong type with a typed, one-line error naming the setting."""
        for field in fields(self):
            value = getattr(self, field.name)
            kind = _KINDS[field.type]
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if ok and not (value == 0 or 0 < value <= MAX_SECONDS):  # NaN, inf, negative
                    raise _invalid(field.name, _SECONDS, value)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise _invalid(field.name, _SHAPES[kind], value)
        if self.farm_identity not in FARM_IDENTITIES:
            raise _invalid("farm_identity", " or ".join(FARM_IDENTITIES), self.farm_identity)
        if self.http_proxy.strip():
            from .transport.proxies import parse_http_proxy

            parse_http_proxy(self.http_proxy)  # ConfigurationError naming it, password masked

    @classmethod
    def from_environment(cls, environ: Optional[dict[str, str]] = None) -> Settings:
        """Defaults, overridden by ``SGCONNECT_<NAME>`` environment variables.

        :raises ConfigurationError: A value cannot be read as its setting's type (a number of
            seconds from 0 to :data:`MAX_SECONDS` for ``SGCONNECT_TIMEOUT_SECS``, a yes/no word for
            a flag, a proxy address for ``SGCONNECT_HTTP_PROXY``); the variable is named.
        """
        environ = os.environ if environ is None else environ
        node, node_path = read_node_file()
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = environ_vars.SETTINGS_PREFIX + field.name.upper()
            raw = environ.get(name)
            if raw is None:
                continue
            if field.name in node:
                _ignored(name, raw, node[field.name], node_path)
                continue
            kind = _KINDS[field.type]
            if kind is bool:
                word = raw.strip().lower()
                if word not in _TRUE + _FALSE:
                    raise _invalid(name, "1/0, true/false, yes/no or on/off", raw)
                values[field.name] = word in _TRUE
            elif kind is float:
                try:
                    values[field.name] = float(raw.strip())
                except ValueError:
                    raise _invalid(name, _SECONDS, raw) from None
                if not (values[field.name] == 0 or 0 < values[field.name] <= MAX_SECONDS):
                    raise _invalid(name, _SECONDS, raw)
            else:
                values[field.name] = raw.strip()
        if values.get("http_proxy"):
            from .transport.proxies import parse_http_proxy

            # checked here too, so the error names the variable to fix
            parse_http_proxy(
                values["http_proxy"], source=environ_vars.SETTINGS_PREFIX + "HTTP_PROXY"
            )
        return cls(**{**values, **node})

    @classmethod
    def from_app(cls, app: Any) -> Settings:
        """The values of a Toolkit app's settings.

        :raises ConfigurationError: A setting has a value of the wrong type.
        """
        return cls(**{field.name: app.get_setting(field.name) for field in fields(cls)})


#: The node settings file: the render node's own values of :data:`NODE_SETTINGS`, which win over
#: ``SGCONNECT_<NAME>`` variables. A fixed path that no environment variable chooses (a job's
#: environment must not pick it); a farm's own wrapper or a test may assign another path here,
#: in-process, before the first connection.
NODE_FILE = (
    r"C:\ProgramData\sgconnect\node.json" if sys.platform == "win32" else "/etc/sgconnect/node.json"
)

#: The settings the node file may hold: those a job's environment must not weaken.
NODE_SETTINGS = (
    "service_site",
    "farm_identity",
    "service_script_name",
    "service_key_env",
    "service_key_file",
    "service_keyring_name",
    "http_proxy",
)

#: A node file larger than this is refused.
MAX_NODE_FILE_BYTES = 64 * 1024

logger = logging.getLogger(__name__)


def read_node_file() -> tuple[dict[str, str], str]:
    """``(values, path)`` of the node settings file :data:`NODE_FILE`; ``({}, path)`` when absent.

    Read with the session cache's trust rules (:func:`sgconnect.session_cache.read_trusted`): a
    regular file owned by this user or root, not writable by group or others, in a folder others
    cannot change, at most :data:`MAX_NODE_FILE_BYTES`. It is a JSON object whose keys are among
    :data:`NODE_SETTINGS`, each a string.

    :raises ConfigurationError: The file exists but may not be trusted, is not such an object, or
        holds another key; a node that meant to pin its settings never runs without them.
    """
    from .session_cache import read_trusted

    path = NODE_FILE
    try:
        data = read_trusted(path, root_ok=True)
    except ValueError as exc:
        raise _node_error(path, str(exc)) from None
    if data is None:
        return {}, path
    if len(data) > MAX_NODE_FILE_BYTES:
        raise _node_error(path, f"it is larger than {MAX_NODE_FILE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        raise _node_error(path, "it is not valid JSON in UTF-8") from None
    if not isinstance(document, dict):
        raise _node_error(path, "it is not a JSON object")
    for key, value in document.items():
        if key not in NODE_SETTINGS:
            raise _node_error(path, f"it holds a key that is not one of {', '.join(NODE_SETTINGS)}")
        if not isinstance(value, str):
            raise _node_error(path, f"its {key} is not a string")
    return {key: value.strip() for key, value in document.items()}, path


def _node_error(path: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"The node settings file {path} cannot be used: {why}. Fix it (an administrator owns "
        "it), or remove it.",
        setting="node_file",
    )


def _ignored(name: str, raw: str, pinned: str, path: str) -> None:
    """Warn that ``name`` from the environment is ignored, because the node file sets it."""
    if raw.strip() != pinned:
        logger.warning(
            "%s is ignored: the node settings file %s sets it, and the node's value wins.",
            name,
            path,
        )


#: The values of ``farm_identity``.
FARM_IDENTITIES = ("unverified", "verified")

#: The largest number of seconds a seconds setting accepts (one hour); 0 means no limit.
MAX_SECONDS = 3600.0
_SECONDS = f"a number of seconds above 0 and at most {MAX_SECONDS:.0f} (0: no limit), such as 60"
_KINDS = {"bool": bool, bool: bool, "float": float, float: float, "str": str, str: str}
_SHAPES = {bool: "true or false", float: "a number", str: "text"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def number_from_environment(
    name: str, default: float, *, maximum: float, zero_means: str = ""
) -> float:
    """The number an environment variable holds (``default`` when unset or empty): above 0 and
    at most ``maximum``, or 0 when ``zero_means`` says what 0 does. For the variables that are
    not settings (``SGCONNECT_MAX_REPLY_MIB``, ``SGCONNECT_KEEPALIVE_SECS``...).

    :raises ConfigurationError: Not a number, or out of range (``inf``, ``nan``, negative, too
        large); the variable and the accepted range are named, never the value.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if (zero_means and value == 0) or 0 < value <= maximum:
        return value
    zero = f"0 ({zero_means}) or " if zero_means else ""
    raise ConfigurationError(
        f"{name} must be {zero}a number above 0 and at most {maximum:g}, such as {default:g}: "
        "fix or unset it.",
        setting=name,
    )


def _invalid(name: str, shape: str, value: Any) -> ConfigurationError:
    """The error for a setting's bad value: names the setting and the shape, never the value
    (a key pasted into the wrong variable must not reach a log), only its type."""
    return ConfigurationError(
        f"The setting {name} must be {shape}; it holds a {type(value).__name__} value that is "
        "not: fix it in the environment configuration or the environment variable.",
        setting=name,
    )
