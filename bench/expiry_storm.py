"""Benchmark 3: the expiry storm, 200 threads calling ``find`` on an expired session.

Each run saves a fresh session with tk-core, resolves the credential with one ``find`` on the
main thread, then:

- **valid session** (the reference): 200 threads call ``find``;
- **expired, renewed by another process**: the site expires every session, and another process
  saves a new one in tk-core's session cache (``cache_session_data``, as SG Desktop or
  ``sgconnect login`` does). The first rejected call adopts it; every other thread retries with it.
  No person, no prompt: the process is non-interactive;
- **expired, non-interactive, no new session**: every thread gets ``LoginRequiredError``, without
  a hang.

Each thread takes its hand-out first, then all start ``find`` at once (a barrier); the time is
from the release to the last thread done. Renewals are counted three ways: adoptions of a new
token by the credential, tk-core interactive renewals (``Credential.renewals``), and
``get_session_token`` requests on the wire.

Run: ``python -m bench.expiry_storm [--runs N]``.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python bench/expiry_storm.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

THREADS = 200
DEFAULT_RUNS = 5
#: A hang guard, not a measurement: a run whose threads are not all done by then is a failure.
HANG_SECS = 120
THREAD_AGENT = "bench-storm-thread/"

VALID = "valid session (reference)"
ADOPT = "expired, renewed by another process"
FAIL = "expired, non-interactive, no new session"
SCENARIOS = (VALID, ADOPT, FAIL)


def storm(site_url: str, threads: int) -> tuple[float, collections.Counter]:
    """``threads`` threads call ``find`` at once; return (seconds to all done, outcomes)."""
    import sgconnect

    barrier = threading.Barrier(threads + 1)
    outcomes: list[str] = ["hung"] * threads
    finished = [0.0] * threads

    def worker(index: int) -> None:
        sg = sgconnect.connect("bench storm", site_url, interactive=False)
        sg.add_user_agent(f"{THREAD_AGENT}{index}")  # tells the threads apart in the journal
        barrier.wait()
        try:
            sg.find("Project", [], ["name"])
            outcomes[index] = "ok"
        except sgconnect.LoginRequiredError:
            outcomes[index] = "LoginRequiredError"
        except Exception as exc:  # noqa: BLE001 - reported in the table
            outcomes[index] = type(exc).__name__
        finished[index] = time.perf_counter()

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    deadline = start + HANG_SECS
    for thread in workers:
        thread.join(max(0.0, deadline - time.perf_counter()))
    return max(finished) - start, collections.Counter(outcomes)


def one_run(site: Any, scenario: str, threads: int) -> dict:
    """Set the scenario up, run the storm, and read what happened from the site and credential."""
    from tank.authentication import session_cache

    import sgconnect
    from sgconnect.testing import save_session

    sgconnect.reset()
    save_session(site, "alice")
    sgconnect.connect("bench warm-up", site.url, interactive=False).find("Project", [], ["name"])
    credential = sgconnect.broker().credential(site.url)
    fresh = None
    if scenario != VALID:
        site.expire_sessions()
    if scenario == ADOPT:
        fresh = site.issue_session("alice")
        session_cache.cache_session_data(site.url, "alice", fresh)  # "another process"
    site.clear_journal()
    adopted_before = credential.adoptions
    elapsed, outcomes = storm(site.url, threads)
    journal = site.journal
    rejected_per_thread = collections.Counter(
        _thread_of(e.user_agent) for e in journal if e.error_code == 102
    )
    return {
        "seconds": elapsed,
        "outcomes": outcomes,
        "rejected": sum(rejected_per_thread.values()),
        "most_rejected": max(rejected_per_thread.values(), default=0),
        "adoptions": credential.adoptions - adopted_before,
        "renewals": credential.renewals,
        "get_session_token": sum(1 for e in journal if e.rpc == "get_session_token"),
        # The old session is expired on the site: every read that succeeded used the fresh one.
        "uses_fresh": fresh is None or outcomes == collections.Counter({"ok": threads}),
    }


def _thread_of(user_agent: Any) -> str:
    """The storm thread a request came from (its user agent), else ``"other"``."""
    for part in (user_agent or "").split(";"):
        if part.strip().startswith(THREAD_AGENT):
            return part.strip()
    return "other"


def measure(runs: int, threads: int = THREADS) -> dict[str, list[dict]]:
    """Every scenario ``runs`` times, in rotating order, after one unrecorded warm-up round."""
    from sgconnect.testing import LocalSite

    with _common.bench_environment(), LocalSite() as site:
        results = _common.rotating_rounds(
            SCENARIOS, runs, lambda scenario: one_run(site, scenario, threads)
        )
    import sgconnect

    sgconnect.reset()
    return results


def _same(values: list) -> str:
    """The value when every run agrees, else the spread."""
    distinct = sorted(set(values))
    return str(distinct[0]) if len(distinct) == 1 else f"{distinct[0]}–{distinct[-1]}"


def table(results: dict[str, list[dict]], threads: int = THREADS) -> str:
    """The markdown section of benchmark 3."""
    reference = _common.median([r["seconds"] for r in results[VALID]])
    rows = []
    for scenario, runs in results.items():
        seconds = _common.median([r["seconds"] for r in runs])
        outcomes = collections.Counter()
        for r in runs:
            outcomes.update(r["outcomes"])
        outcome = ", ".join(f"{count // len(runs)} × {name}" for name, count in outcomes.items())
        if any(r["outcomes"] != runs[0]["outcomes"] for r in runs):
            outcome += " (varies between runs)"
        rows.append(
            [
                scenario,
                outcome,
                _common.seconds(seconds),
                _common.ratio(seconds, reference),
                _same([r["rejected"] for r in runs]),
                _same([r["most_rejected"] for r in runs]),
                _same([r["adoptions"] for r in runs]),
                _same([r["renewals"] for r in runs]),
                _same([r["get_session_token"] for r in runs]),
            ]
        )
    adopt = results[ADOPT]
    return _common.section(
        f"3. Expiry storm: {threads} threads call `find` on an expired session",
        _common.markdown_table(
            [
                "scenario",
                "outcome per run",
                "time to all done (median)",
                "vs valid",
                "rejected requests (102)",
                "most rejected in one thread",
                "tokens adopted",
                "interactive renewals",
                "get_session_token",
            ],
            rows,
        ),
        [
            f"Median of {len(adopt)} runs per scenario, in rotating order, after one warm-up "
            "round; "
            "from the release of all threads (a barrier, hand-outs already taken) to the last "
            "one done. Every thread's first request is `info`, then its `read`.",
            "Renewals: exactly one new session is adopted per storm, from tk-core's cache where "
            "another process saved it; no tk-core renewal or prompt, no `get_session_token`. "
            f"Every thread ended on the new token: {all(r['uses_fresh'] for r in adopt)}.",
            "A rejected request is a `read` sent with the expired token before the adoption; "
            "each thread sends at most one (its user agent names the thread), then retries with "
            "the new token, or raises.",
        ],
    )


def run(runs: int = DEFAULT_RUNS) -> str:
    """Measure and return the markdown section."""
    return table(measure(runs))


def main(argv=None) -> None:
    print(run(_common.parse_runs(argv, DEFAULT_RUNS)))


if __name__ == "__main__":
    main()
