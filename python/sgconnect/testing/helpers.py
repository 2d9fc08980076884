"""Helpers for tests of tools that use sgconnect, alongside :class:`~sgconnect.testing.LocalSite`.

- :func:`save_session`: log a user in the way SG Desktop does (tk-core's session cache);
- :func:`approve_next_app_session`: approve the next headless (app session launcher) login in a
  background thread, as a person with a browser would;
- :func:`child_environment`: the environment for a child Python process of a test;
- :func:`run_python` and :func:`start_python`: run, or start, Python code in such a child, with no
  controlling terminal (what the code reads from stdin is what the test feeds it);
- :data:`PROXY_VARIABLES`: the proxy variables to clear before talking to a local site.

Importing this module is cheap: tk-core is imported only when :func:`save_session` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, Mapping, Optional

#: Proxy variables to clear for a site on 127.0.0.1: tk-core reads ``http_proxy`` and ignores
#: ``no_proxy``, so a loopback site would otherwise be reached through the proxy.
PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def save_session(
    site: Any, login: str, url: Optional[str] = None, token: Optional[str] = None
) -> str:
    """Save a session for ``login`` the way SG Desktop does; return its token. Needs tk-core.

    Writes tk-core's session cache under ``$SHOTGUN_HOME``: the per-site ``authentication.yml``
    (``cache_session_data`` + ``set_current_user``) and the global one (``set_current_host``).

    :param site: a started :class:`~sgconnect.testing.LocalSite`.
    :param url: the site URL to save the session under (default ``site.url``); another spelling
        of the same site, e.g. ``localhost`` for ``127.0.0.1``, gets its own cache folder.
    :param token: a session token to save (default: a new one from ``site.issue_session``).
    """
    from tank.authentication import session_cache

    url = url or site.url
    token = token or site.issue_session(login)
    session_cache.cache_session_data(url, login, token)
    session_cache.set_current_user(url, login)
    session_cache.set_current_host(url)
    return token


def approve_next_app_session(
    site: Any,
    login: str,
    stop: Optional[threading.Event] = None,
    *,
    poll_secs: float = 0.05,
    attempts: Optional[int] = None,
) -> threading.Thread:
    """Approve the next app session request on ``site`` as ``login``, from a daemon thread.

    The thread polls ``site.pending_app_session_requests()`` every ``poll_secs``, approves the
    first request it sees and ends. It also ends, approving nothing, once ``stop`` is set or after
    ``attempts`` polls (``None``: no limit). Returns the started thread (join it after setting
    ``stop``).
    """

    def approve() -> None:
        polls = 0
        while not (stop is not None and stop.is_set()):
            if attempts is not None and polls >= attempts:
                return
            polls += 1
            pending = site.pending_app_session_requests()
            if pending:
                site.approve_app_session(pending[0], login)
                return
            time.sleep(poll_secs)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def child_environment(**extra: str) -> Dict[str, str]:
    """This process's environment without pytest's ``PYTEST_*`` variables, plus ``extra``.

    For a child process of a test, which must not believe it runs under pytest.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(extra)
    return env


def run_python(
    code: str,
    env_extra: Optional[Mapping[str, str]] = None,
    *,
    stdin: str = "",
    timeout: float = 90,
) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) with ``python -c`` in a new session; wait for it, up to ``timeout``.

    Its environment is :func:`child_environment` plus ``env_extra``; its stdin is ``stdin`` (a
    pipe, no terminal); its stdout and stderr are captured as text.
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_environment(**(env_extra or {})),
        timeout=timeout,
        start_new_session=True,
    )


def start_python(
    code: str, env_extra: Optional[Mapping[str, str]] = None, *, stdin: int = subprocess.PIPE
) -> subprocess.Popen:
    """Start ``code`` (dedented) with ``python -c`` in a new session; stdout, stderr piped (text).

    Its environment is :func:`child_environment` plus ``env_extra``; ``stdin`` is a pipe unless
    told otherwise (e.g. ``subprocess.DEVNULL``). The caller waits for it and kills it.
    """
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(**(env_extra or {})),
        start_new_session=True,
    )


__all__ = [
    "PROXY_VARIABLES",
    "approve_next_app_session",
    "child_environment",
    "run_python",
    "save_session",
    "start_python",
]
