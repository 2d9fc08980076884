"""Process state: every piece has one owner module and one public reset.

Each owner registers its reset here when it is imported (:func:`register`);
:func:`sgconnect.reset` runs them all (:func:`reset_all`). A module that was never imported holds
no state, so there is nothing to reset for it.

The owners, and what they hold:

- ``sgconnect``: the standalone broker (credentials, hand-outs);
- ``sgconnect.chain``: users handed down by a launcher (``chain.reset()``);
- ``sgconnect.sites``: the accepted-purpose cache (``sites.reset()``);
- ``sgconnect.transport``: TLS contexts, one per CA bundle (``transport.reset()``);
- ``sgconnect.standalone_hook``: tk-core hook base classes (``standalone_hook.reset()``).

Two pieces are deliberately **not** reset by :func:`sgconnect.reset`:

- the script keys service mode took out of the environment (``sgconnect.service``): the variable is
  gone, so forgetting the key would break the next resolution. Tests call
  :func:`sgconnect.service.forget_environment_keys`.
- the secrets registered for redaction (``sgconnect.redaction``): forgetting one would let it reach
  a log line.
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["register", "reset_all", "owners"]

_lock = threading.Lock()
_resets: dict[str, Callable[[], None]] = {}


def register(owner: str, reset: Callable[[], None]) -> None:
    """Record ``reset`` as the public reset of ``owner``'s state (a module name)."""
    with _lock:
        _resets[owner] = reset


def owners() -> list[str]:
    """The modules whose state :func:`reset_all` resets, in registration order."""
    with _lock:
        return list(_resets)


def reset_all() -> None:
    """Run every registered reset."""
    with _lock:
        resets = list(_resets.values())
    for reset in resets:
        reset()
