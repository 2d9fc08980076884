"""Documented hook interfaces, in the style of tk-multi-publish2's ``base_hooks``.

``StandaloneConnectionHook`` and ``tk_connection_hook_class`` live in
:mod:`sgconnect.standalone_hook`; they are re-exported here for existing callers.
"""

from ..standalone_hook import StandaloneConnectionHook, tk_connection_hook_class
from .connection import ConnectionHook, HandOut

__all__ = ["ConnectionHook", "HandOut", "StandaloneConnectionHook", "tk_connection_hook_class"]
