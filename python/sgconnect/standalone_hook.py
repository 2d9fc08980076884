"""The connection hook outside an engine, and the hook base class tk-core's loader needs.

- :class:`StandaloneParent`: what a hook's ``self.parent`` is in a process without an engine
  (settings from ``SGCONNECT_<NAME>`` variables, a logger, the ``sgconnect`` package);
- :class:`StandaloneConnectionHook`: the default hook of such a process (``hooks/connection.py``
  adds nothing to the interface, so it is not loaded: that keeps tk-core off the cached path);
- :func:`tk_connection_hook_class`: the documented interface
  (:class:`sgconnect.base_hooks.ConnectionHook`) on top of tk-core's ``Hook``, for the hook files
  named by ``SGCONNECT_HOOK`` (tk-core requires hook base classes to derive from its ``Hook``).
  Made once per tk-core ``Hook`` class and kept (reset by :func:`reset`), so that tk-core's hook
  cache sees one stable class.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from . import state
from .base_hooks import connection as interface
from .settings import Settings

__all__ = ["StandaloneParent", "StandaloneConnectionHook", "tk_connection_hook_class", "reset"]


class StandaloneParent:
    """What a hook's ``self.parent`` is outside an engine: settings, and a logger."""

    def __init__(self, settings: Settings):
        from . import __name__ as package_name

        self.settings = settings
        self.logger = logging.getLogger("sgconnect")
        self.sgconnect = sys.modules[package_name]

    def get_setting(self, name: str, default: Any = None) -> Any:
        """The setting ``name`` (see ``info.yml``), or ``default``."""
        return getattr(self.settings, name, default)


class _StandaloneHookRoot:
    """The part of tk-core's ``Hook`` a connection hook uses, for processes without tk-core."""

    def __init__(self, parent: Any):
        self.__parent = parent
        self.__logger = logging.getLogger("sgconnect.hook")

    @property
    def parent(self) -> Any:
        return self.__parent

    @property
    def logger(self) -> logging.Logger:
        return self.__logger


class StandaloneConnectionHook(interface.ConnectionHook, _StandaloneHookRoot):
    """The default hook of a process without an engine (``hooks/connection.py`` adds nothing)."""


_tk_base_lock = threading.Lock()
_tk_base_classes: dict[Any, type] = {}


def tk_connection_hook_class() -> type:
    """:class:`~sgconnect.base_hooks.ConnectionHook` on top of tk-core's ``Hook``, for tk-core's
    hook loader. Made on first need (it imports tk-core), then kept."""
    tank = sys.modules.get("tank")
    if tank is None:
        from . import tk

        tank = tk.tank()
    with _tk_base_lock:
        cls = _tk_base_classes.get(tank.Hook)
        if cls is None:

            class ConnectionHook(interface.ConnectionHook, tank.Hook):
                __doc__ = interface.ConnectionHook.__doc__

            cls = _tk_base_classes[tank.Hook] = ConnectionHook
        return cls


def reset() -> None:
    """Forget the tk-core hook base classes (the next hook load makes them again)."""
    with _tk_base_lock:
        _tk_base_classes.clear()


state.register(__name__, reset)
