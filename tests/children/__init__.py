"""Child programs of the tests, run by path in a new process (``run_child``, ``start_child``).

Each file is a real program (ruff, the formatter and ``duplicates`` see it), like
``tests/fixtures/run_engine.py``; the test that runs it names it as ``CHILDREN / "<file>.py"``.
Its environment is :func:`sgconnect.testing.child_environment` plus what the test adds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

from sgconnect.testing import child_environment

__all__ = ["run_child", "start_child"]


def _command(script: Path, args: tuple[str, ...]) -> list[str]:
    return [sys.executable, str(script), *args]


def run_child(
    script: Path,
    env_extra: Optional[Mapping[str, str]] = None,
    *args: str,
    stdin: str = "",
    timeout: float = 90,
) -> subprocess.CompletedProcess:
    """Run ``script`` in a new session and wait for it, up to ``timeout`` seconds; its stdin is
    ``stdin`` (a pipe, no terminal), its stdout and stderr are captured as text."""
    return subprocess.run(
        _command(script, args),
        input=stdin,
        capture_output=True,
        text=True,
        env=child_environment(**(env_extra or {})),
        timeout=timeout,
        start_new_session=True,
    )


def start_child(
    script: Path,
    env_extra: Optional[Mapping[str, str]] = None,
    *args: str,
    stdin: int = subprocess.PIPE,
) -> subprocess.Popen:
    """Start ``script`` in a new session; stdout and stderr piped (text). The caller waits for it
    and kills it."""
    return subprocess.Popen(
        _command(script, args),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(**(env_extra or {})),
        start_new_session=True,
    )
