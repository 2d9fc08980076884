"""Benchmark 5: peak memory (RSS) of the standalone cached path against bare shotgun_api3 and
tk-core's own path.

The children are benchmark 1's (bench/cached_path.py): a fresh process with a saved session up to
its first ``find``. Each reports its peak RSS (``VmHWM`` from ``/proc/self/status``; on Linux
``ru_maxrss`` survives ``exec`` and would report the bench process's own peak) as it exits.

Run: ``python -m bench.memory [--runs N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common, cached_path  # noqa: E402

DEFAULT_RUNS = cached_path.DEFAULT_RUNS


def mib(kib: float) -> str:
    """``26.1 MiB`` from KiB (Linux reports ru_maxrss in KiB)."""
    return f"{kib / 1024:.1f} MiB"


def table(results: dict[str, dict]) -> str:
    """The markdown section of benchmark 5, from :func:`bench.cached_path.collect` results."""
    bare = _common.median(results[cached_path.BARE]["rss_kib"])
    rows = []
    for name, result in results.items():
        if name == cached_path.NO_BYTECODE:
            continue
        peak = _common.median(result["rss_kib"])
        rows.append(
            [
                name,
                mib(peak),
                _common.ratio(peak, bare),
                f"{(peak - bare) / 1024:+.1f} MiB",
                result["modules"],
            ]
        )
    return _common.section(
        "5. Memory: peak RSS of a fresh process up to its first `find`",
        _common.markdown_table(
            ["path", "peak RSS (median)", "vs bare", "over bare", "modules in sys.modules"], rows
        ),
        [
            f"Median of {len(results[cached_path.BARE]['rss_kib'])} runs, measured in the same "
            "child processes as benchmark 1: the kernel's peak (`VmHWM`) at exit.",
        ],
    )


def run(runs: int = DEFAULT_RUNS) -> str:
    """Measure and return the markdown section."""
    return table(cached_path.collect(runs))


def main(argv=None) -> None:
    print(run(_common.parse_runs(argv, DEFAULT_RUNS)))


if __name__ == "__main__":
    main()
