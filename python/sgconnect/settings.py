"""The app's settings, and their values outside an engine.

Inside an engine the values come from the environment configuration (``info.yml`` declares them).
In a standalone process there is no configuration, so the same names are read from
``SGCONNECT_<NAME>`` environment variables, falling back to the defaults below, which
``tests/test_app_manifest.py`` keeps equal to ``info.yml``'s. No setting ever holds a secret: the
service key is read from where ``service_key_env`` / ``service_key_file`` point.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Optional

from . import environ as environ_vars


@dataclass(frozen=True)
class Settings:
    """Every setting of the app, with its default."""

    #: Never prompt: raise LoginRequiredError instead (farm, CI, daemons).
    non_interactive: bool = False
    #: The interactive login method: auto, qt, browser, web, password or url.
    login_method: str = "auto"
    #: Seconds before a request to the site is abandoned (0: wait forever).
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

    @classmethod
    def from_environment(cls, environ: Optional[dict[str, str]] = None) -> Settings:
        """Defaults, overridden by ``SGCONNECT_<NAME>`` environment variables."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(environ_vars.SETTINGS_PREFIX + field.name.upper())
            if raw is None:
                continue
            if field.type in ("bool", bool):
                values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif field.type in ("float", float):
                values[field.name] = float(raw)
            else:
                values[field.name] = raw.strip()
        return cls(**values)

    @classmethod
    def from_app(cls, app: Any) -> Settings:
        """The values of a Toolkit app's settings."""
        return cls(**{field.name: app.get_setting(field.name) for field in fields(cls)})
