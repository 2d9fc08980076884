"""Documented hook interfaces, in the style of tk-multi-publish2's ``base_hooks``."""

from .connection import ConnectionHook, HandOut, StandaloneConnectionHook, tk_connection_hook_class

__all__ = ["ConnectionHook", "HandOut", "StandaloneConnectionHook", "tk_connection_hook_class"]
