"""Environment variables: every name sgconnect reads or writes, and scoped changes to them.

Like google-auth's ``environment_vars.py``, the names live here once; other modules import the
constants. :func:`scoped_environ` changes ``os.environ`` for one block, then undoes it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional

#: The site a standalone process connects to when none is given.
SITE = "SGCONNECT_SITE"
#: ``1`` forbids any login prompt (farm, CI).
NON_INTERACTIVE = "SGCONNECT_NON_INTERACTIVE"
#: A standalone process's hook files, joined with ``os.pathsep``, most derived last.
HOOK = "SGCONNECT_HOOK"
#: The purpose label a farm job passes down.
PURPOSE = "SGCONNECT_PURPOSE"
#: The login of the person a farm job acts as (set on the submit side, never a token).
SUDO_AS_LOGIN = "SGCONNECT_SUDO_AS_LOGIN"
#: Set by the submit side in every farm job's environment: this process is a farm job.
JOB = "SGCONNECT_JOB"
#: A verified farm job's ticket: ``<EventLogEntry id>:<nonce>`` (never a token).
TICKET = "SGCONNECT_TICKET"
#: The setting naming the variable that holds the script key (``service_key_env``).
SERVICE_KEY_ENV = "SGCONNECT_SERVICE_KEY_ENV"
#: The default variable holding the script key in service mode (setting ``service_key_env``).
SCRIPT_KEY = "SGCONNECT_SCRIPT_KEY"
#: The prefix of the standalone settings (``SGCONNECT_<NAME>``).
SETTINGS_PREFIX = "SGCONNECT_"
#: SG Desktop hands its serialized user (with the session token) down in this variable.
DESKTOP_CURRENT_USER = "SHOTGUN_DESKTOP_CURRENT_USER"
#: tk-multi-launchapp hands the context, with ``_current_user``, down in this variable.
TANK_CONTEXT = "TANK_CONTEXT"
#: Launchers' variables that carry a serialized user.
HANDED_DOWN = (DESKTOP_CURRENT_USER, TANK_CONTEXT)
#: tk-core's home (its session cache lives under it).
SHOTGUN_HOME = "SHOTGUN_HOME"
#: The CA bundle shotgun_api3 (and sgconnect's REST sessions) trust.
CA_CERTS = "SHOTGUN_API_CACERTS"
#: The cap on one api3 reply body, in MiB (default 256).
MAX_REPLY_MIB = "SGCONNECT_MAX_REPLY_MIB"
#: Seconds an idle api3 keep-alive socket is reused (default 2).
KEEPALIVE_SECS = "SGCONNECT_KEEPALIVE_SECS"
#: Seconds a per-site server capabilities cache file is trusted (default 3600; 0: no file).
CAPABILITIES_TTL_SECS = "SGCONNECT_CAPABILITIES_TTL_SECS"
#: tk-core's Qt importer leaves QtWebEngine out when this is set (read once, when it imports Qt).
SKIP_QTWEBENGINE = "SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT"


@contextmanager
def scoped_environ(changes: Mapping[str, Optional[str]]) -> Iterator[None]:
    """Set (a string) or remove (``None``) environment variables for the ``with`` block."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, Optional[str]]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
