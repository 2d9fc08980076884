"""A lock file that serializes, across processes, the session cache writes sgconnect causes.

tk-core writes its session cache (``authentication.yml``) with a plain ``open(path, "w")``: no
lock, no atomic rename. Two processes renewing the same session at once would both prompt, and
their writes could interleave into a file that is no longer YAML. sgconnect therefore takes this
lock around everything it asks tk-core to do that writes the cache (a renewal, an interactive
login, a logout), and re-reads the cache once it holds the lock: a session another process saved
meanwhile is adopted instead of prompting again.

The lock is an advisory lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on
``sgconnect.lock`` in the site's cache folder (or the cache root for the global file), created
``0600`` in a ``0700`` folder. It holds no data. A lock that cannot be had within
:data:`WAIT_SECS` (another process left a prompt open) is given up with a warning, and the caller
goes on without it, as tk-core alone would: a wait, never a hang. A thread that holds the lock
may take it again (a login inside a chain step).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

from . import session_cache

logger = logging.getLogger("sgconnect.cache_lock")

LOCK_NAME = "sgconnect.lock"
#: How long to wait for another process's renewal or login (a person may be typing).
WAIT_SECS = 300.0
_POLL_SECS = 0.05

__all__ = ["LOCK_NAME", "WAIT_SECS", "lock_path", "cache_lock"]


def lock_path(site: Optional[str]) -> str:
    """The lock file of ``site``'s cache folder; ``None``: the cache root (global file)."""
    if site is None:
        folder = session_cache.cache_root()
    else:
        folder = os.path.dirname(session_cache.site_cache_file(session_cache.sanitize_url(site)))
    return os.path.join(folder, LOCK_NAME)


def _open_private(path: str) -> int:
    """Open (creating) ``path`` 0600, its missing folders 0700, whatever the umask."""
    previous = os.umask(0o077)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        return os.open(path, flags, 0o600)
    finally:
        os.umask(previous)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def cache_lock(site: Optional[str], wait_secs: Optional[float] = None) -> Iterator[bool]:
    """Hold the cache lock of ``site`` (``None``: the global file) for the ``with`` block.

    Yields ``True`` when the lock is held, ``False`` when it could not be had (the lock file
    cannot be created, or another process held it for ``wait_secs``); a warning says so and the
    block runs anyway.
    """
    path = lock_path(site)
    held_here = _held_by_this_thread()
    if path in held_here:  # re-entered (a login inside a chain step): already ours
        yield True
        return
    try:
        fd = _open_private(path)
    except OSError as exc:
        logger.warning(
            "Cannot create the session cache lock %s (%s): going on without it.",
            path,
            exc.__class__.__name__,
        )
        yield False
        return
    try:
        deadline = time.monotonic() + (WAIT_SECS if wait_secs is None else wait_secs)
        held = _try_lock(fd)
        if not held:
            logger.debug("Waiting for another process's session renewal or login (%s).", path)
        while not held and time.monotonic() < deadline:
            time.sleep(_POLL_SECS)
            held = _try_lock(fd)
        if not held:
            logger.warning(
                "Another process held the session cache lock %s for too long: going on without it.",
                path,
            )
        if held:
            held_here.add(path)
        try:
            yield held
        finally:
            if held:
                held_here.discard(path)
                _unlock(fd)
    finally:
        os.close(fd)


_local = threading.local()


def _held_by_this_thread() -> set:
    try:
        return _local.held
    except AttributeError:
        _local.held = set()
        return _local.held
