"""Benchmark 4: REST over HTTPS keep-alive, against ``requests.Session`` and ``httpx.Client``.

On a :class:`~sgconnect.testing.LocalSite` with TLS, keep-alive and injected latency (0, 20 and
100 ms round-trip time: the site waits once per TCP handshake, once more per TLS handshake and
once before each reply), each client mints one Bearer token (``POST /api/v1/auth/access_token``,
``grant_type=session_token``), then sends ``GET /api/v1/entity/projects`` N times in a row:

- ``sgconnect.rest_session().get()`` (its own token mint included);
- ``requests.Session().get()`` with the same Bearer header, token minted on the same session;
- ``httpx.Client().get()``, likewise.

The site counts the TCP connects, TLS handshakes and requests each client run caused. Clients
run in a child process (the site keeps its own GIL), one run per client in rotating order after
one unrecorded warm-up round; times are medians over the runs, ratios against
``requests.Session`` measured in the same run. Target: sgconnect ≤ 1.05× ``requests.Session``
at 20 and 100 ms.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: requests, httpx). Run:
``python -m bench.rest [--runs N]`` (about a minute with the default 3 runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a file: python bench/rest.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

DEFAULT_RUNS = 3
PATH = "/entity/projects"
#: (round-trip time in seconds, requests per client run): fewer requests where each is slow.
LATENCIES = ((0.0, 200), (0.02, 50), (0.1, 20))

SGCONNECT = "`sgconnect.rest_session().get()`"
REQUESTS = "`requests.Session().get()`"
HTTPX = "`httpx.Client().get()`"
CASES = (SGCONNECT, REQUESTS, HTTPX)


def _mint_form(session_token: str) -> dict[str, str]:
    return {"grant_type": "session_token", "session_token": session_token}


def child_main() -> None:
    """In the client process: read the case on stdin, mint, GET ``count`` times, print
    ``RESULT <json>`` (the wall time of the GETs)."""
    params = json.loads(sys.stdin.readline())
    case, site_url, count = params["case"], params["site"], params["count"]
    url = site_url + "/api/v1" + PATH
    token_url = site_url + "/api/v1/auth/access_token"
    get: Callable[[], Any]
    if case == SGCONNECT:
        import sgconnect

        session = sgconnect.rest_session("bench rest", site_url, interactive=False)
        session.get(PATH)  # mints, then the first GET
        get = lambda: session.get(PATH)  # noqa: E731
    elif case == REQUESTS:
        import requests

        client = requests.Session()
        client.verify = params["ca"]
        client.trust_env = False
        token = client.post(token_url, data=_mint_form(params["session"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        client.get(url, headers=headers).json()
        get = lambda: client.get(url, headers=headers).json()  # noqa: E731
    else:
        import httpx

        client = httpx.Client(verify=params["ca"], trust_env=False)
        token = client.post(token_url, data=_mint_form(params["session"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        client.get(url, headers=headers).json()
        get = lambda: client.get(url, headers=headers).json()  # noqa: E731
    start = time.perf_counter()
    for _ in range(count - 1):  # one GET came with the mint
        get()
    wall = time.perf_counter() - start
    print("RESULT " + json.dumps({"wall": wall, "per_request": wall / max(1, count - 1)}))


def one_run(site: Any, case: str, count: int) -> dict:
    """One client run in a child process; the site's counters for it."""
    params = {
        "case": case,
        "site": site.url,
        "count": count,
        "ca": site.ca_path,
        "session": site.issue_session("alice"),
    }
    site.reset_counters()
    env = dict(os.environ, SHOTGUN_API_CACERTS=site.ca_path)
    child = subprocess.run(
        [sys.executable, "-m", "bench.rest", "--child"],
        input=json.dumps(params) + "\n",
        capture_output=True,
        text=True,
        cwd=str(_common.REPO_ROOT),
        env=env,
        timeout=300,
    )
    result = None
    for line in child.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if result is None:
        raise RuntimeError(f"{case} failed ({child.returncode}):\n{child.stderr[-3000:]}")
    result.update(site.counters)
    return result


def measure(runs: int) -> dict[float, dict[str, list[dict]]]:
    """Every client ``runs`` times per latency, rotating, after one warm-up round."""
    from sgconnect.testing import LocalSite, save_session

    results: dict[float, dict[str, list[dict]]] = {}
    with _common.bench_environment():
        for latency, count in LATENCIES:
            with LocalSite(tls=True, latency=latency) as site:
                save_session(site, "alice")
                results[latency] = _common.rotating_rounds(
                    CASES, runs, lambda case, site=site, count=count: one_run(site, case, count)
                )
    return results


def table(results: dict[float, dict[str, list[dict]]]) -> str:
    """The markdown section of benchmark 4."""
    rows = []
    counts = dict(LATENCIES)
    for latency, by_case in results.items():
        reference = _common.median([r["per_request"] for r in by_case[REQUESTS]])
        for case, runs in by_case.items():
            per_request = _common.median([r["per_request"] for r in runs])
            last = runs[-1]
            rows.append(
                [
                    f"{latency * 1000:.0f} ms",
                    case,
                    f"{per_request * 1000:.2f} ms",
                    _common.ratio(per_request, reference),
                    str(last["tcp_connections"]),
                    str(last["tls_handshakes"]),
                    str(last["requests"]),
                ]
            )
    runs = len(next(iter(next(iter(results.values())).values())))
    return _common.section(
        "4. REST over HTTPS keep-alive: `GET /api/v1/entity/projects` against requests and httpx",
        _common.markdown_table(
            [
                "RTT",
                "client",
                "per request (median)",
                "vs requests.Session",
                "TCP connects",
                "TLS handshakes",
                "requests",
            ],
            rows,
        ),
        [
            f"Per client run: one token mint, then {', '.join(str(c) for c in counts.values())} "
            "GETs in a row at 0, 20 and 100 ms. The time is the median over "
            f"{runs} runs of the GETs after the first (the connection is warm); ratios are "
            "against `requests.Session` in the same run. Connects, handshakes and requests are "
            "the site's counters for one client run (mint and GETs).",
            "Target: sgconnect ≤ 1.05× `requests.Session` at 20 and 100 ms. Before issue 11, "
            "sgconnect's REST (urllib) opened one TCP connection and one TLS handshake per "
            "request: 2.6–2.9× `requests.Session` at 20–100 ms.",
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
