"""Benchmark 4: REST, 1000 requests over 8 threads through ``sgconnect.rest_session()``.

Compared, in the same run and alternating, with raw ``urllib`` requests carrying the same kind
of Bearer header, from a token minted once by hand (``POST /api/v1/auth/access_token`` with
``grant_type=session_token``). Every request is ``GET /api/v1/entity/projects``.

Mints are read from the site (``LocalSite.mint_count``): one per token lifetime. A third case
expires every Bearer token halfway through (``site.expire_rest_tokens()`` at request 500): one
more mint, whatever the number of threads that hit the 401.

Run: ``python -m bench.rest [--runs N]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a file: python bench/rest.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

REQUESTS = 1000
THREADS = 8
DEFAULT_RUNS = 5
PATH = "/entity/projects"

RAW = "raw `urllib` + the same Bearer header"
SGCONNECT = "`sgconnect.rest_session().get()`"
EXPIRING = "`sgconnect.rest_session().get()`, tokens expired at request 500"
CASES = (RAW, SGCONNECT, EXPIRING)


def mint_by_hand(site_url: str, session_token: str) -> str:
    """One Bearer token, minted the way the REST API documents it."""
    body = urllib.parse.urlencode(
        {"grant_type": "session_token", "session_token": session_token}
    ).encode()
    request = urllib.request.Request(
        site_url + "/api/v1/auth/access_token",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())["access_token"]


def hammer(make_get: Callable[[], Callable[[], Any]], on_request: Callable[[int], None]) -> dict:
    """``REQUESTS`` calls over ``THREADS`` threads; per-request latencies and the wall time.

    ``make_get`` runs once per thread (its hand-out); ``on_request(n)`` runs before request n.
    """
    latencies: list[int] = []
    counter = iter(range(REQUESTS))
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS + 1)
    errors: list[str] = []

    def worker() -> None:
        get = make_get()
        mine = []
        barrier.wait()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            on_request(n)
            start = time.perf_counter_ns()
            try:
                get()
            except Exception as exc:  # noqa: BLE001 - reported
                errors.append(type(exc).__name__)
            mine.append(time.perf_counter_ns() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start, cpu_start = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join(300)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed: {sorted(set(errors))}")
    return {"wall": wall, "cpu": cpu, "latency_ns": _common.median(latencies)}


def child_main() -> None:
    """In the client process: read the case on stdin, hammer, print ``RESULT <json>``.

    For the expiring case it asks the parent (which holds the site) to expire the tokens at
    request 500 and waits for the answer, so the site never shares this process's GIL.
    """
    params = json.loads(sys.stdin.readline())
    case, site_url = params["case"], params["site"]
    if case == RAW:
        url = site_url + "/api/v1" + PATH
        headers = {"Authorization": "Bearer " + params["bearer"], "Accept": "application/json"}

        def make_get() -> Callable[[], Any]:
            def get() -> Any:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                    return json.loads(r.read())

            return get

    else:
        import sgconnect

        def make_get() -> Callable[[], Any]:
            session = sgconnect.rest_session("bench rest", site_url, interactive=False)
            return lambda: session.get(PATH)

    def on_request(n: int) -> None:
        if case == EXPIRING and n == REQUESTS // 2:
            print("EXPIRE", flush=True)
            sys.stdin.readline()

    print("RESULT " + json.dumps(hammer(make_get, on_request)), flush=True)


def one_run(site: Any, case: str) -> dict:
    """One case in a client process: wall time, median latency and the mints it caused."""
    params = {"case": case, "site": site.url}
    if case == RAW:
        params["bearer"] = mint_by_hand(site.url, site.issue_session("alice"))
    mints_before = site.mint_count
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.rest", "--child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(_common.REPO_ROOT),
    )
    child.stdin.write(json.dumps(params) + "\n")
    child.stdin.flush()
    result = None
    for line in child.stdout:
        if line.startswith("EXPIRE"):
            site.expire_rest_tokens()
            child.stdin.write("done\n")
            child.stdin.flush()
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    stderr = child.stderr.read()
    child.wait()
    if result is None:
        raise RuntimeError(f"REST client failed ({child.returncode}):\n{stderr[-3000:]}")
    result["mints"] = site.mint_count - mints_before
    return result


def measure(runs: int) -> dict[str, list[dict]]:
    """Every case ``runs`` times, in rotating order, after one unrecorded warm-up round."""
    from sgconnect.testing import LocalSite, save_session

    with _common.bench_environment(), LocalSite() as site:
        save_session(site, "alice")
        return _common.rotating_rounds(CASES, runs, lambda case: one_run(site, case))


def table(results: dict[str, list[dict]]) -> str:
    """The markdown section of benchmark 4."""
    raw_wall = _common.median([r["wall"] for r in results[RAW]])
    raw_latency = _common.median([r["latency_ns"] for r in results[RAW]])
    raw_cpu = _common.median([r["cpu"] for r in results[RAW]]) / REQUESTS * 1e6
    rows = []
    for case, runs in results.items():
        wall = _common.median([r["wall"] for r in runs])
        latency = _common.median([r["latency_ns"] for r in runs])
        cpu = _common.median([r["cpu"] for r in runs]) / REQUESTS * 1e6  # µs per request
        mints = sorted({r["mints"] for r in runs})
        rows.append(
            [
                case,
                _common.seconds(wall),
                _common.ratio(wall, raw_wall),
                _common.micros(latency),
                "—" if case == RAW else f"{(latency - raw_latency) / 1000:+.0f} µs",
                f"{cpu:.0f} µs" + ("" if case == RAW else f" ({cpu - raw_cpu:+.0f} µs)"),
                "1 (by hand, before the run)" if case == RAW else "–".join(map(str, mints)),
            ]
        )
    return _common.section(
        f"4. REST: {REQUESTS} × `GET /api/v1{PATH}` over {THREADS} threads",
        _common.markdown_table(
            [
                "client",
                "wall time (median)",
                "vs raw",
                "latency per request (median)",
                "latency overhead",
                "client CPU per request (overhead)",
                "mints during the run",
            ],
            rows,
        ),
        [
            f"Median of {len(results[RAW])} runs per client, in rotating order, after one "
            "warm-up round. The clients run in a child process (the site keeps its own GIL). Each "
            "thread takes its REST session once, then requests until 1000 are done; latency is "
            "per request, its overhead the difference of medians against raw urllib. Client CPU "
            "is the client process's CPU time over the run divided by 1000: the cost sgconnect "
            "adds on the calling side, whatever the site's speed.",
            "Mints: one per token lifetime (600 s here): one per run, and one more when the "
            "site expires every Bearer token halfway (the threads that get a 401 share one new "
            "mint).",
        ],
    )


def run(runs: int = DEFAULT_RUNS) -> str:
    """Measure and return the markdown section."""
    return table(measure(runs))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--child"]:
        child_main()
        return
    print(run(_common.parse_runs(argv, DEFAULT_RUNS)))


if __name__ == "__main__":
    main()
