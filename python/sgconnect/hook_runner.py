"""The hook boundary: every call to a connection hook method goes through here.

Like tk-multi-publish2's ``run_*`` wrappers around a plugin hook, each function calls one method
of the hook instance (:class:`sgconnect.base_hooks.ConnectionHook` or a studio override), checks
what it returned, and raises :class:`~sgconnect.errors.HookError` naming the hook file and the
method when sgconnect cannot use it, instead of an ``AttributeError`` later, far from the cause.

- :func:`resolve_credential` accepts a :class:`~sgconnect.credentials.Credential`, or a tk-core
  ``ShotgunUser`` (a studio hook may return ``sgtk.get_authenticated_user()``), which it wraps
  with :func:`~sgconnect.credentials.credential_for_tk_user` (source ``hook``). A studio hook
  that still overrides the old ``resolve_user`` is called, with a :class:`DeprecationWarning`
  naming its file.
- :func:`create_connection` and :func:`create_rest_session` refuse ``None``.
- :func:`audit` ignores what ``audit`` returns.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Optional

from .base_hooks.connection import ConnectionHook, HandOut
from .credentials import Credential, credential_for_tk_user
from .errors import HookError

__all__ = ["resolve_credential", "create_connection", "create_rest_session", "audit", "hook_file"]


def hook_file(hook: Any, method: str) -> str:
    """The file defining ``method`` for ``hook`` (the most derived override), for messages."""
    for cls in type(hook).__mro__:
        if method in vars(cls):
            try:
                return inspect.getsourcefile(cls) or cls.__module__
            except TypeError:
                return cls.__module__
    return type(hook).__module__


def _overrides(hook: Any, method: str) -> bool:
    return getattr(type(hook), method, None) is not getattr(ConnectionHook, method)


def resolve_credential(hook: Any, site: Optional[str], interactive: bool) -> Credential:
    """``hook.resolve_credential(site, interactive)`` (or a studio's deprecated
    ``resolve_user``), checked.

    :raises HookError: The method returned neither a Credential nor a tk-core user.
    """
    method = "resolve_credential"
    if _overrides(hook, "resolve_user") and not _overrides(hook, "resolve_credential"):
        method = "resolve_user"
        warnings.warn(
            f"{hook_file(hook, method)}: the connection hook method resolve_user is deprecated; "
            "rename it resolve_credential (and its super() call).",
            DeprecationWarning,
            stacklevel=2,
        )
    result = getattr(hook, method)(site, interactive)
    if isinstance(result, Credential):
        return result
    if _is_tk_user(result):
        return credential_for_tk_user(result, source="hook")
    raise _wrong(hook, method, result, "a sgconnect Credential (or a tk-core ShotgunUser)", site)


def create_connection(hook: Any, credential: Credential, purpose: str, interactive: bool) -> Any:
    """``hook.create_connection(credential, purpose, interactive)``, checked.

    :raises HookError: The method returned ``None``.
    """
    return _made(hook, "create_connection", credential, purpose, interactive)


def create_rest_session(hook: Any, credential: Credential, purpose: str, interactive: bool) -> Any:
    """``hook.create_rest_session(credential, purpose, interactive)``, checked.

    :raises HookError: The method returned ``None``.
    """
    return _made(hook, "create_rest_session", credential, purpose, interactive)


def audit(hook: Any, record: HandOut) -> None:
    """``hook.audit(record)``; what it returns is ignored."""
    hook.audit(record)


def _made(hook: Any, method: str, credential: Credential, purpose: str, interactive: bool) -> Any:
    result = getattr(hook, method)(credential, purpose, interactive)
    if result is None:
        raise _wrong(hook, method, result, "a new connection object", credential.site)
    return result


def _is_tk_user(value: Any) -> bool:
    """A tk-core ``ShotgunUser`` (duck-typed: tk-core may be loaded under any name)."""
    impl = getattr(value, "impl", None)
    return impl is not None and hasattr(value, "host") and hasattr(impl, "get_host")


def _wrong(hook: Any, method: str, result: Any, expected: str, site: Optional[str]) -> HookError:
    where = hook_file(hook, method)
    return HookError(
        f"The connection hook {where} returned {type(result).__name__} from {method}() instead "
        f"of {expected}: fix that method (see docs/hook.md).",
        site,
        hook_file=where,
        method=method,
    )
