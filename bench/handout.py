"""Benchmark 2: the hand-out, ``app.get_connection()`` on a thread that already has its
connection, and the first call on a new thread.

Inside a real engine: the test engine and configuration of ``tests/fixtures`` started offline by
tk-core's ``ToolkitManager`` in a child process (bench/_handout_child.py). Also standalone
``sgconnect.connect()`` with the built-in hook, and with the app's hook file loaded by tk-core's
hook loader (``SGCONNECT_HOOK``).

Every hand-out writes an audit record at INFO. Each row says how that logger was set: INFO off,
INFO on with one handler writing to a null stream, or as tk-core configures it in an engine.
Per call: ``time.perf_counter_ns`` over batches of calls, median of the batch means.
Target: median < 50 µs per call.

Run: ``python -m bench.handout [--runs N]`` (``--runs`` is the number of 1000-call batches / 1000).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: python bench/handout.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

TARGET_NS = 50_000
CHILD = Path(__file__).resolve().with_name("_handout_child.py")
FIXTURES = _common.REPO_ROOT / "tests" / "fixtures"

LOGGING = {
    "off": "level WARNING",
    "null": "level INFO, one handler → null stream",
    "default": None,  # filled in per place
}


def tk_core_checkout() -> tuple[Optional[Path], str]:
    """The full tk-core checkout the fixture configuration needs (tests/fixtures/toolkit.py)."""
    helper = FIXTURES / "toolkit.py"
    if not helper.is_file():
        return None, "tests/fixtures/toolkit.py is missing"
    spec = importlib.util.spec_from_file_location("_sgconnect_fixture_toolkit", helper)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tk_core_checkout()


def run_child(mode: str, params: dict, env: Optional[dict] = None) -> dict:
    """Run bench/_handout_child.py and return its RESULT."""
    done = subprocess.run(
        [sys.executable, str(CHILD), mode],
        input=json.dumps(params) + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=str(_common.REPO_ROOT),
        check=False,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(
        f"hand-out child ({mode}) failed ({done.returncode}):\n{done.stderr[-3000:]}"
    )


def measure(calls: int) -> tuple[list[list[Any]], list[str]]:
    """Run the children; return the table rows and notes."""
    from sgconnect.testing import LocalSite, save_session

    params = {"calls": calls, "batch": 1000, "threads": 50}
    rows: list[list[Any]] = []
    notes: list[str] = []
    with _common.bench_environment(), LocalSite() as site:
        token = save_session(site, "alice")
        params["site"] = site.url

        checkout, why_not = tk_core_checkout()
        if checkout is not None and (FIXTURES / "config").is_dir():
            env = dict(
                os.environ,
                SGCONNECT_TK_CORE_ROOT=str(checkout),
                SGCONNECT_REPO_ROOT=str(_common.REPO_ROOT),
                SGCONNECT_FIXTURE_ENVIRONMENT="project",
            )
            engine_params = dict(
                params,
                login="alice",
                session_token=token,
                project_id=_project_id(site),
                config=str(FIXTURES / "config"),
            )
            result = run_child("engine", engine_params, env)
            place = f"engine ({result['engine']})"
            default = "as the engine sets it (engine handler + tk-core's log file)"
            rows += _rows(place, "`app.get_connection()`", result["app.get_connection"], default)
            rows += _rows(
                place,
                "`sgconnect.connect()` (finds the app's broker)",
                result["sgconnect.connect"],
                default,
            )
        else:
            notes.append(f"No engine rows: {why_not}.")

        standalone = run_child("standalone", params)
        rows += _rows(
            "standalone",
            "`sgconnect.connect()`, built-in hook",
            standalone["sgconnect.connect"],
            "unconfigured",
        )
        hook_file = _common.REPO_ROOT / "hooks" / "connection.py"
        tk_hook = run_child("standalone", params, dict(os.environ, SGCONNECT_HOOK=str(hook_file)))
        rows += _rows(
            "standalone",
            "`sgconnect.connect()`, hooks/connection.py via tk-core's hook loader",
            tk_hook["sgconnect.connect"],
            "as importing tk-core leaves it",
        )
    return rows, notes


def _project_id(site: Any) -> int:
    import shotgun_api3

    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"), connect=False)
    return sg.find_one("Project", [["name", "is", site.projects[0]]], ["id"])["id"]


def _rows(place: str, call: str, results: dict, default_label: str) -> list[list[Any]]:
    rows = []
    for mode, measured in results.items():
        per_call = measured["per_call_ns"]
        rows.append(
            [
                place,
                call,
                LOGGING[mode] or default_label,
                "yes" if measured["enabled"] else "no",
                _common.micros(per_call),
                "yes" if per_call < TARGET_NS else "**no**",
                _common.micros(measured["first_call_ns"]),
            ]
        )
    return rows


def run(runs: int = _common.DEFAULT_RUNS) -> str:
    """Measure and return the markdown section (``runs`` × 1000 calls, at least 10 000)."""
    calls = max(10, runs) * 1000
    rows, notes = measure(calls)
    return _common.section(
        "2. Hand-out: the connection a thread already has, and the first call per thread",
        _common.markdown_table(
            [
                "where",
                "call",
                "audit logger",
                "INFO line written",
                "per call (median of batches)",
                "< 50 µs",
                "first call on a new thread (median)",
            ],
            rows,
        ),
        [
            f"Per call: {calls} calls in batches of 1000 after one unmeasured call; the median of "
            "the batch means. First call: 50 new threads, one at a time; it builds the thread's "
            "`shotgun_api3.Shotgun` (no request: the first request goes with the tool's first "
            "call).",
            "The engine is the test engine of tests/fixtures, bootstrapped offline by tk-core's "
            "`ToolkitManager` against the local site; the app runs its shipped hook.",
            *notes,
        ],
    )


def main(argv=None) -> None:
    print(run(_common.parse_runs(argv)))


if __name__ == "__main__":
    main()
