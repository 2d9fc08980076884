"""Child programs of the tests, run by path in a new process (``run_child``, ``start_child``).

Each file is a real program (ruff, the formatter and ``duplicates`` see it), like
``tests/fixtures/run_engine.py``; the test that runs it names it as ``CHILDREN / "<file>.py"``.
They run through :func:`sgconnect.testing.run_python` / :func:`~sgconnect.testing.start_python`
(environment, new session, pipes), which execute the file by its path: its tracebacks name it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from sgconnect.testing import child_environment, run_python, start_python

__all__ = ["run_child", "start_child", "farm_job_env", "run_sgconnect"]


def _by_path(script: Path) -> str:
    path, folder = str(script), str(script.parent)
    # As ``python <path>`` does: argv[0] is the script, sys.path[0] its folder. Ctrl-C is
    # Python's own KeyboardInterrupt even when the tests run in a background job (which ignores
    # SIGINT, and an ignored signal stays ignored across exec).
    return (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"sys.argv[0] = {path!r}; sys.path.insert(0, {folder!r}); "
        f"runpy.run_path({path!r}, run_name='__main__')"
    )


def run_child(
    script: Path, env_extra: Optional[Mapping[str, str]] = None, **kwargs: Any
) -> subprocess.CompletedProcess:
    """:func:`sgconnect.testing.run_python` for the program in ``script``."""
    return run_python(_by_path(script), env_extra, **kwargs)


def start_child(
    script: Path, env_extra: Optional[Mapping[str, str]] = None, **kwargs: Any
) -> subprocess.Popen:
    """:func:`sgconnect.testing.start_python` for the program in ``script``."""
    return start_python(_by_path(script), env_extra, **kwargs)


def run_sgconnect(
    home: Path, *args: str, unset: tuple = (), timeout: float = 90
) -> subprocess.CompletedProcess:
    """The ``sgconnect`` command in a new process with ``home`` as its ``SHOTGUN_HOME``, no
    inherited ``SGCONNECT_SITE`` (nor the variables in ``unset``), stdin closed, output captured."""
    env = child_environment(SHOTGUN_HOME=str(home), SGTK_AUTH_ALLOW_NO_HTTPS="1")
    for name in ("SGCONNECT_SITE", *unset):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "sgconnect", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def farm_job_env(job_env: Mapping[str, str], home: Path, **farm: str) -> dict[str, str]:
    """A farm job's whole environment: this one without ``SGCONNECT_*`` and proxies, plus the
    job's variables, its own ``SHOTGUN_HOME``, the package on ``PYTHONPATH`` and ``farm`` (the
    farm's own service settings)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SGCONNECT_")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    package = str(Path(__file__).parents[2] / "python")
    env.update(job_env)
    env.update(
        SHOTGUN_HOME=str(home),
        PYTHONPATH=os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")])),
        **farm,
    )
    return env
