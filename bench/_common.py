"""Shared helpers of the benchmarks: an isolated environment, child processes, rotating rounds,
medians and markdown tables.

Every benchmark runs against a :class:`sgconnect.testing.LocalSite` on 127.0.0.1, in a temporary
``SHOTGUN_HOME``, with ``SGTK_AUTH_ALLOW_NO_HTTPS=1`` and the proxy variables cleared, so that it
never touches the machine's own session cache or network.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from sgconnect.testing.helpers import PROXY_VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Runs per measurement (medians are taken over them); ``--runs`` overrides it.
DEFAULT_RUNS = 7

#: Environment variables cleared for the benchmarks: proxies (tk-core reads ``http_proxy`` and
#: ignores ``no_proxy``), users handed down by a launcher, and sgconnect's own configuration.
CLEARED_VARIABLES = (
    *PROXY_VARIABLES,
    "TANK_CONTEXT",
    "SHOTGUN_DESKTOP_CURRENT_USER",
    "SGCONNECT_SITE",
    "SGCONNECT_HOOK",
    "SGCONNECT_NON_INTERACTIVE",
    "SGTK_DEFAULT_AUTH_METHOD",
)

#: Top-level modules that must stay out of the cached path.
HEAVY_MODULES = ("PySide6", "PySide2", "shiboken6", "shiboken2", "tank", "sgtk", "tank_vendor")

#: Appended to every child process of the process benchmarks: what it cost, what it loaded.
#: The peak RSS is the kernel's ``VmHWM`` of this process image: ``ru_maxrss`` would not do on
#: Linux, where it survives ``exec`` and reports the (larger) parent's peak for a small child.
CHILD_EPILOGUE = """
import json as _json, resource as _resource, sys as _sys
def _peak_rss_kib():
    try:
        with open("/proc/self/status") as _status:
            for _line in _status:
                if _line.startswith("VmHWM:"):
                    return int(_line.split()[1])
    except OSError:
        pass
    return _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
print("BENCH " + _json.dumps({
    "rss_kib": _peak_rss_kib(),
    "heavy": sorted({m.split(".")[0] for m in _sys.modules} & set(HEAVY)),
    "modules": len(_sys.modules),
}))
""".replace("HEAVY", repr(HEAVY_MODULES))


@contextmanager
def bench_environment() -> Iterator[Path]:
    """A temporary ``SHOTGUN_HOME`` and a clean environment; everything restored afterwards."""
    saved = dict(os.environ)
    home = Path(tempfile.mkdtemp(prefix="sgconnect-bench-"))
    try:
        for name in CLEARED_VARIABLES:
            os.environ.pop(name, None)
        os.environ["SHOTGUN_HOME"] = str(home)
        os.environ["SGTK_AUTH_ALLOW_NO_HTTPS"] = "1"
        # Child processes cache bytecode, as every installed package does, in the temporary
        # folder (a prefix keeps the repository clean; the warm-up round fills it).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


def run_child(
    code: str,
    args: Sequence[str] = (),
    stdin: str = "",
    cwd: Optional[Path] = None,
    env: Optional[dict] = None,
) -> tuple[float, dict]:
    """Run ``code`` in a fresh interpreter; return its wall time (s) and its ``BENCH`` report.

    The wall time covers the whole process, from spawn to exit, as a user waiting on a short
    script sees it; the report gains ``cpu_s``, the child's user + system CPU time, which other
    load on the machine disturbs less. Secrets go through stdin, never the command line or the
    environment.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + CHILD_EPILOGUE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or tempfile.gettempdir(),
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = next(
        (json.loads(line[6:]) for line in done.stdout.splitlines() if line.startswith("BENCH ")),
        None,
    )
    if report is None:
        raise RuntimeError(f"benchmark child printed no report:\n{done.stdout[-2000:]}")
    report["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, report


def rotating_rounds(
    names: Sequence[str], runs: int, one_run: Callable[[str], dict]
) -> dict[str, list[dict]]:
    """``one_run(name)`` for every name, ``runs`` times in rotating order, after one unrecorded
    warm-up round; the results by name."""
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(runs + 1):
        shift = round_index % len(names)  # rotate the order: no name always goes first
        for name in (*names[shift:], *names[:shift]):
            result = one_run(name)
            if round_index:
                results[name].append(result)
    return results


def median(values: Sequence[float]) -> float:
    """The median (of an odd number of runs, one measured value)."""
    return statistics.median(values)


def ratio(value: float, reference: float) -> str:
    """``1.07×``: value over reference."""
    return f"{value / reference:.2f}×" if reference else "n/a"


def seconds(value: float) -> str:
    """``0.152 s``."""
    return f"{value:.3f} s"


def micros(nanoseconds: float) -> str:
    """``3.1 µs`` from nanoseconds."""
    value = nanoseconds / 1000
    return f"{value:.1f} µs" if value < 100 else f"{value:.0f} µs"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title: str, table: str, notes: Sequence[str] = ()) -> str:
    """A markdown section: heading, table, notes."""
    parts = [f"### {title}", "", table]
    if notes:
        parts += [""] + [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


def machine() -> str:
    """One line describing where the numbers come from."""
    from importlib import metadata

    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPU(s); shotgun_api3 {version('shotgun_api3')}; "
        f"tk-core (sgtk) {version('sgtk')}"
    )


def parse_runs(argv: Optional[Sequence[str]] = None, default: int = DEFAULT_RUNS) -> int:
    """``--runs N`` from the command line (odd numbers give a true median)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=default, help=f"runs (default {default})")
    return parser.parse_args(argv).runs
