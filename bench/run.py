"""Run every benchmark and print one markdown report (optionally written to docs/benchmarks.md).

    python -m bench                 # or: python bench/run.py
    python -m bench --write         # also write docs/benchmarks.md
    python -m bench --runs 3        # fewer runs per measurement (quicker, noisier)

Each benchmark starts its own local site (sgconnect.testing.LocalSite) in a temporary
SHOTGUN_HOME. Needs tk-core (sgtk) for the saved sessions and the engine; Werkzeug for the site.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common, cached_path, dcc_path, expiry_storm, handout, memory, rest  # noqa: E402

REPORT = _common.REPO_ROOT / "docs" / "benchmarks.md"


def report(runs: int | None = None) -> str:
    """Run every benchmark; return the markdown report."""
    started = time.perf_counter()
    sections = []

    def timed(name: str, produce) -> None:
        begin = time.perf_counter()
        sections.append(produce())
        print(f"[bench] {name}: {time.perf_counter() - begin:.0f} s", file=sys.stderr, flush=True)

    process_results: dict = {}

    def first() -> str:
        process_results.update(cached_path.collect(runs or cached_path.DEFAULT_RUNS))
        return cached_path.table(process_results)

    timed("1. cached path", first)
    timed(
        "1b. cached path over HTTPS",
        lambda: cached_path.latency_run(runs or cached_path.LATENCY_RUNS),
    )
    timed("2. hand-out", lambda: handout.run(runs or _common.DEFAULT_RUNS))
    timed("3. expiry storm", lambda: expiry_storm.run(runs or expiry_storm.DEFAULT_RUNS))
    timed("4. REST", lambda: rest.run(runs or rest.DEFAULT_RUNS))
    timed("5. memory", lambda: memory.table(process_results))
    timed("6. DCC path", lambda: dcc_path.run(runs or dcc_path.DEFAULT_RUNS))
    total = time.perf_counter() - started
    header = [
        "# Benchmarks",
        "",
        "Produced by `python -m bench --write` (see `bench/README.md`); do not edit by hand.",
        "",
        f"Measured {datetime.date.today().isoformat()}: {_common.machine()}. "
        f"Whole run: {total:.0f} s. Local site on 127.0.0.1 (sgconnect.testing.LocalSite).",
        "",
    ]
    return "\n".join(header) + "\n" + "\n".join(sections)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run every sgconnect benchmark.")
    parser.add_argument("--runs", type=int, help="runs per measurement (default: per benchmark)")
    parser.add_argument("--write", action="store_true", help=f"also write {REPORT}")
    args = parser.parse_args(argv)
    text = report(args.runs)
    print(text)
    if args.write:
        REPORT.write_text(text)
        print(f"[bench] wrote {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
