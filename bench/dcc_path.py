"""Benchmark 6: the DCC path, T threads × P purposes in one process, over HTTPS with latency.

Each of ``THREADS`` threads takes a connection for each of ``PURPOSES`` purposes and calls
``find`` ``FINDS`` times on each. Compared, in the same run and in rotating order, in a fresh
process each:

- bare shotgun_api3: one ``Shotgun(site, session_token=…)`` per thread and purpose (what a DCC
  gets when every tool makes its own connection);
- ``sgconnect.connect(purpose)``: one hand-out per thread and purpose, sharing one socket per
  thread and site, and the server capabilities once per process.

Counts TCP connections, TLS handshakes, ``info`` calls and requests (the site's counters). Target:
T connections and 1 ``info``. The capabilities cache file is off here
(``SGCONNECT_CAPABILITIES_TTL_SECS=0``): a DCC is a long-lived process, so the one ``info`` shows.

Run: ``python -m bench.dcc_path [--runs N]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/dcc_path.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

THREADS = 8
PURPOSES = 3
FINDS = 3
LATENCIES = (0.0, 0.02, 0.1)
DEFAULT_RUNS = 3

_WORK = """
import json, sys, threading, time
site, threads, purposes, finds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
token = sys.stdin.readline().strip()
MAKE
barrier = threading.Barrier(threads + 1)
errors = []
def work(index):
    try:
        barrier.wait(30)
        for purpose in range(purposes):
            sg = make(f"tool{purpose}")
            for _ in range(finds):
                sg.find("Project", [], ["name"])
    except BaseException as exc:
        errors.append(repr(exc))
workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
barrier.wait(30)
started = time.perf_counter()
for worker in workers:
    worker.join()
print("DCC " + json.dumps({"elapsed": time.perf_counter() - started, "errors": errors}))
"""

PATHS = {
    "bare shotgun_api3, one per thread and purpose": _WORK.replace(
        "MAKE",
        "import shotgun_api3\n"
        "def make(purpose):\n"
        "    return shotgun_api3.Shotgun(site, session_token=token, connect=False)\n",
    ),
    "`sgconnect.connect(purpose)`": _WORK.replace(
        "MAKE",
        "import sgconnect\n"
        "def make(purpose):\n"
        "    return sgconnect.connect(purpose, site, interactive=False)\n",
    ),
}


def measure(runs: int = DEFAULT_RUNS) -> dict[float, dict[str, dict]]:
    """Every path at every latency, ``runs`` times after a warm-up round."""
    from sgconnect.testing import LocalSite, save_session

    results: dict[float, dict[str, dict]] = {}
    with _common.bench_environment():
        os.environ["SGCONNECT_CAPABILITIES_TTL_SECS"] = "0"
        for latency in LATENCIES:
            with LocalSite(tls=True, latency=latency) as site:
                os.environ["SHOTGUN_API_CACERTS"] = site.ca_path
                token = save_session(site, "alice")

                def one(name: str, site=site, token=token) -> dict:
                    site.clear_journal()
                    site.reset_counters()
                    args = [str(THREADS), str(PURPOSES), str(FINDS)]
                    done = subprocess.run(
                        [sys.executable, "-c", PATHS[name], site.url, *args],
                        input=token + "\n",
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    line = next((x for x in done.stdout.splitlines() if x.startswith("DCC ")), None)
                    if done.returncode or line is None:
                        raise RuntimeError(f"DCC child failed:\n{done.stderr[-3000:]}")
                    report = json.loads(line[4:])
                    if report["errors"]:
                        raise RuntimeError(f"DCC child errors: {report['errors'][:3]}")
                    infos = sum(1 for entry in site.journal if entry.rpc == "info")
                    return {"time": report["elapsed"], "info": infos, **site.counters}

                results[latency] = {
                    name: {"runs": runs_of_name}
                    for name, runs_of_name in _common.rotating_rounds(
                        list(PATHS), runs, one
                    ).items()
                }
    return results


def table(results: dict[float, dict[str, dict]]) -> str:
    rows = []
    verdicts = []
    bare_name, sgc_name = PATHS
    for latency, paths in results.items():
        bare_times = [run["time"] for run in paths[bare_name]["runs"]]
        for name, result in paths.items():
            times = [run["time"] for run in result["runs"]]
            last = result["runs"][-1]
            ratio = _common.median([t / b for t, b in zip(times, bare_times)])
            rows.append(
                [
                    f"{latency * 1000:.0f} ms",
                    name,
                    _common.seconds(_common.median(times)),
                    f"{ratio:.2f}×",
                    last["tcp_connections"],
                    last["tls_handshakes"],
                    last["info"],
                    last["requests"],
                ]
            )
            if name == sgc_name:
                ok = last["tcp_connections"] == THREADS and last["info"] == 1
                verdicts.append(
                    f"{latency * 1000:.0f} ms: **{'met' if ok else 'NOT met'}** "
                    f"({last['tcp_connections']} connections, {last['info']} info)"
                )
    return _common.section(
        f"6. DCC path: {THREADS} threads × {PURPOSES} purposes × {FINDS} `find`, over HTTPS",
        _common.markdown_table(
            [
                "RTT",
                "path",
                "wall time (median)",
                "vs bare",
                "TCP connects",
                "TLS handshakes",
                "info",
                "requests",
            ],
            rows,
        ),
        [
            f"Target: {THREADS} connections and 1 `info` for sgconnect: " + "; ".join(verdicts),
            "Wall time from the moment every thread is ready to the last thread's end, in a "
            "fresh process per run, paths interleaved in rotating order after one warm-up round. "
            "Counters are the site's, for one process.",
            "Bare shotgun_api3 opens a socket and asks `info` per `Shotgun` object; sgconnect "
            "shares one socket per thread and site between the purposes (each keeps its own "
            "`Shotgun` object and settings), and fetches the capabilities once per process.",
        ],
    )


def run(runs: int = DEFAULT_RUNS) -> str:
    return table(measure(runs))


def main(argv=None) -> None:
    started = time.perf_counter()
    print(run(_common.parse_runs(argv, DEFAULT_RUNS)))
    print(f"[bench] DCC path: {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
