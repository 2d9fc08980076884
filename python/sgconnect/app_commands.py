"""The app's engine commands: "Who am I" and "Switch user...".

Qt is reached only through tk-core's importer (``sgtk.platform.qt``), and only when the engine has
a UI; otherwise the answer goes to the app's log.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from . import interactive, tk
from .chain import login_and_adopt
from .credentials import UserInfo


def describe(info: UserInfo, qt_binding: str) -> str:
    """The "Who am I" text: user, site, method, session expiry, Qt binding. No secret."""
    expiry = (
        datetime.datetime.fromtimestamp(info.session_expiry).isoformat(timespec="seconds")
        if info.session_expiry
        else "unknown (renewed when it expires)"
    )
    name = f"{info.name} ({info.login})" if info.name else info.login
    lines = [
        f"User: {name}",
        f"Site: {info.site}",
        f"Method: {info.auth_method} (from {info.source.replace('_', ' ')})",
        f"Session expiry: {expiry}",
        f"Qt binding: {qt_binding}",
    ]
    if info.script_name:
        lines.insert(1, f"Acting through script: {info.script_name}")
    return "\n".join(lines)


def qt_binding_in_use() -> str:
    """The Qt binding tk-core's importer picked, or "none"."""
    try:
        from sgtk.platform.qt import QtCore  # only inside an engine
    except Exception:  # no Qt is an answer, not an error
        return "none"
    if QtCore is None:  # an engine without Qt: tk-core leaves sgtk.platform.qt empty
        return "none"
    try:
        binding = getattr(QtCore, "__name__", "").split(".")[0] or "unknown"
        version = getattr(QtCore, "qVersion", lambda: "?")()
    except Exception:  # noqa: BLE001 - tk-shell's stand-in Qt raises TankError on any attribute
        return "none"
    return f"{binding} (Qt {version})"


def show_who_am_i(app: Any) -> str:
    """Show who the app's connections act as: a message box with a UI, the log without one."""
    text = describe(app.current_user, qt_binding_in_use())
    _show(app, "Who am I", text)
    return text


def switch_user(app: Any) -> UserInfo:
    """Log out of the current site, then run tk-core's interactive login for it.

    The new user becomes the engine's authenticated user, so every Toolkit connection follows.
    """
    broker = app.sgconnect_broker
    site = broker.current_user(interactive=False).site
    interactive.logout(site)
    broker.forget()
    user, credential = login_and_adopt(broker, site, app.get_setting("login_method"))
    tk.tank().set_authenticated_user(user)
    info = credential.info()
    _show(app, "Switch user", "Now connected as:\n" + describe(info, qt_binding_in_use()))
    return info


def _show(app: Any, title: str, text: str) -> None:
    app.logger.info("%s:\n%s", title, text)
    if getattr(app.engine, "has_ui", False):
        from sgtk.platform.qt import QtGui

        QtGui.QMessageBox.information(None, title, text)
    else:
        logging.getLogger("sgconnect").debug("no UI: '%s' went to the log", title)
