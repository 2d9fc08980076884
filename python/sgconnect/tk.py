"""Lazy access to tk-core (``sgtk`` / ``tank``).

tk-core costs about 0.3 s to import, more than a whole cached ``connect()`` + ``find``. It is the
authority on interactive login, renewal and its session cache writes, so it is imported here, on
first need, and nowhere else at module level.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any, Optional

TKCORE_INSTALL_HINT = (
    "tk-core (sgtk) is not installed. Install it with: "
    "pip install 'sgtk @ git+https://github.com/shotgunsoftware/tk-core@v0.24.0'"
)


def loaded_tank() -> Optional[ModuleType]:
    """The ``tank`` module if this process already imported it (an engine, a bootstrap), else None.

    Never imports anything: this is how the chain checks for a current sgtk user for free.
    """
    return sys.modules.get("tank")


def tank() -> ModuleType:
    """Import tk-core and return its ``tank`` module.

    :raises sgconnect.errors.SgConnectError: tk-core is not installed.
    """
    module = sys.modules.get("tank")
    if module is not None:
        return module
    try:
        import tank as module  # lazy on purpose
    except ImportError as exc:
        from .errors import SgConnectError

        raise SgConnectError(f"{TKCORE_INSTALL_HINT} ({exc.__class__.__name__})") from None
    return module


def authentication() -> Any:
    """``tank.authentication``, imported on first use."""
    return tank().authentication


def current_sgtk_user() -> Any:
    """``sgtk.get_authenticated_user()`` when tk-core is already loaded, else None (no import)."""
    module = loaded_tank()
    if module is None:
        return None
    get_user = getattr(module, "get_authenticated_user", None)
    return get_user() if get_user else None


def current_engine() -> Any:
    """The running Toolkit engine, or None. Never imports tk-core."""
    module = loaded_tank()
    if module is None:
        return None
    platform = getattr(module, "platform", None)
    return platform.current_engine() if platform else None


def qapplication_exists() -> bool:
    """True when a Qt application object exists in this process. Never imports Qt."""
    for name in ("PySide6.QtCore", "PySide2.QtCore", "PyQt5.QtCore", "PyQt6.QtCore"):
        qtcore = sys.modules.get(name)
        if qtcore is not None and qtcore.QCoreApplication.instance() is not None:
            return True
    return False


#: The login methods that never use tk-core's web login, so never need QtWebEngine.
NO_WEB_LOGIN = ("url", "password", "browser")


def keep_qtwebengine_out(method: str) -> None:
    """Before tk-core's login UI or renewal runs for ``method``: leave QtWebEngine out of it.

    tk-core's login UI imports Qt through its own importer (``tank.authentication.ui.
    qt_abstraction``), once per process, and imports QtWebEngine with it unless
    ``SHOTGUN_SKIP_QTWEBENGINEWIDGETS_IMPORT`` is set at that moment. For a method in
    :data:`NO_WEB_LOGIN` that import is run here, with the variable set for the import only (a
    child started later does not inherit it); the other methods, and a process whose tk-core
    already imported its login UI's Qt, are left as they are. Costs what tk-core's own prompt
    costs: it runs that importer anyway.
    """
    from .environ import SKIP_QTWEBENGINE, scoped_environ

    module = "tank.authentication.ui.qt_abstraction"
    if method not in NO_WEB_LOGIN or module in sys.modules:
        return
    tank()
    with scoped_environ({SKIP_QTWEBENGINE: os.environ.get(SKIP_QTWEBENGINE) or "1"}):
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - no Qt binding: tk-core falls back to its console
            pass
