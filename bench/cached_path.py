"""Benchmark 1: the standalone cached path, a fresh process with a saved session up to its first
``find``.

Compares, in the same run and in rotating order, whole-process wall times of:

- ``python -c pass``: the interpreter alone (the floor under every row);
- bare shotgun_api3 holding the same session token (``Shotgun(site, session_token=…,
  connect=False)``): the floor for any connection;
- ``sgconnect.connect("bench")`` on the default site, read from tk-core's session cache;
- tk-core's ``ShotgunAuthenticator(DefaultsManager(fixed_host=site)).get_default_user()
  .create_sg_connection()``.

The session is saved by tk-core in the parent (``cache_session_data`` + ``set_current_user`` +
``set_current_host``), as SG Desktop or ``sgconnect login`` would. Target: sgconnect ≤ 1.3× bare
(plain HTTP, no latency: the whole process, import time included).

Then the same three paths over HTTPS with keep-alive at 0, 20 and 100 ms injected round-trip time
(:func:`latency_run`), counting the TCP connections, TLS handshakes and requests each process
made. Targets: sgconnect ≤ 0.85× bare at 100 ms and ≤ 1.15× at 0 ms. Below 1 is possible because
sgconnect seeds the site's capabilities from its per-site cache file (``info`` is one round trip
bare shotgun_api3 and tk-core pay in every process).

Run: ``python -m bench.cached_path [--runs N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/cached_path.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common  # noqa: E402

TARGET_RATIO = 1.3
#: Targets over HTTPS by injected round-trip time (s): sgconnect / bare shotgun_api3.
LATENCY_TARGETS = {0.0: 1.15, 0.02: None, 0.1: 0.85}
#: Runs per path and latency (each process at 100 ms takes about half a second).
LATENCY_RUNS = 5
#: More runs than the other benchmarks: a process start is short and the machine's load varies.
DEFAULT_RUNS = 11

FIND = 'sg.find("Project", [], ["name"])'

SGCONNECT_CODE = 'import sgconnect\nsg = sgconnect.connect("bench")\n' + FIND

#: name -> (child code, whether the child reads the session token on stdin)
PATHS: dict[str, tuple[str, bool]] = {
    "python -c pass (interpreter only)": ("pass", False),
    "bare shotgun_api3 with the token": (
        "import sys\n"
        "token = sys.stdin.readline().strip()\n"
        "import shotgun_api3\n"
        "sg = shotgun_api3.Shotgun(sys.argv[1], session_token=token, connect=False)\n" + FIND,
        True,
    ),
    "`sgconnect.connect()`": (SGCONNECT_CODE, False),
    "tk-core `get_default_user().create_sg_connection()`": (
        "import sys\n"
        "from tank.authentication import DefaultsManager, ShotgunAuthenticator\n"
        "authenticator = ShotgunAuthenticator(DefaultsManager(fixed_host=sys.argv[1]))\n"
        "sg = authenticator.get_default_user().create_sg_connection()\n" + FIND,
        False,
    ),
}
FLOOR, BARE, SGCONNECT, TKCORE = PATHS

#: Not in the ratio: sgconnect compiled from source at every start (no bytecode cache), as on a
#: machine with PYTHONDONTWRITEBYTECODE=1 and an editable install, where site-packages still
#: have their .pyc files.
NO_BYTECODE = "`sgconnect.connect()`, sgconnect without .pyc files"


def _no_bytecode_environment() -> dict:
    import os

    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def measure(site, token: str, runs: int) -> dict[str, dict]:
    """Run every path ``runs`` times (after one warm-up round), rotating the order each round.

    Returns, per path: ``times`` (s), ``rss_kib``, ``heavy`` modules and the ``rpcs`` it sent.
    """
    names = [*PATHS, NO_BYTECODE]
    results = {
        name: {"times": [], "cpu": [], "rss_kib": [], "heavy": set(), "rpcs": None, "modules": 0}
        for name in names
    }
    no_bytecode_env = _no_bytecode_environment()
    for round_index in range(runs + 1):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            code, wants_token = PATHS.get(name, (SGCONNECT_CODE, False))
            site.clear_journal()
            elapsed, report = _common.run_child(
                code,
                [site.url],
                stdin=token + "\n" if wants_token else "",
                env=no_bytecode_env if name == NO_BYTECODE else None,
            )
            if round_index == 0:
                continue  # warm-up: file system caches, .pyc files
            result = results[name]
            result["times"].append(elapsed)
            result["cpu"].append(report["cpu_s"])
            result["rss_kib"].append(report["rss_kib"])
            result["heavy"].update(report["heavy"])
            result["modules"] = report["modules"]
            result["rpcs"] = [entry.rpc or entry.path for entry in site.journal]
    return results


def paired_ratio(results: dict[str, dict], name: str, key: str = "times") -> float:
    """Median over rounds of ``name``'s value over bare's in the same round.

    Pairing the runs of one round cancels the drift of the machine's load between rounds.
    """
    pairs = zip(results[name][key], results[BARE][key])
    return _common.median([value / bare for value, bare in pairs])


def table(results: dict[str, dict]) -> str:
    """The markdown section of benchmark 1."""
    floor = _common.median(results[FLOOR]["times"])
    rows = []
    for name, result in results.items():
        wall = _common.median(result["times"])
        cpu = _common.median(result["cpu"])
        rows.append(
            [
                name,
                _common.seconds(wall),
                f"{paired_ratio(results, name):.2f}×",
                _common.seconds(wall - floor) if name != FLOOR else "—",
                f"{_common.seconds(cpu)} ({paired_ratio(results, name, 'cpu'):.2f}×)",
                " + ".join(result["rpcs"]) if result["rpcs"] else "—",
                ", ".join(sorted(result["heavy"])) or "none",
            ]
        )
    sgc = paired_ratio(results, SGCONNECT)
    verdict = "met" if sgc <= TARGET_RATIO else "NOT met"
    return _common.section(
        "1. Standalone cached path: fresh process, saved session, up to the first `find`",
        _common.markdown_table(
            [
                "path",
                "wall time (median)",
                "vs bare",
                "beyond interpreter start",
                "CPU time (vs bare)",
                "requests",
                "tk-core / Qt loaded",
            ],
            rows,
        ),
        [
            f"Target ≤ {TARGET_RATIO}× bare shotgun_api3 (wall time): **{verdict}** ({sgc:.2f}×).",
            f"Median of {len(results[BARE]['times'])} runs per path, whole process (spawn to "
            "exit), paths interleaved in rotating order after one warm-up round. Ratios are the "
            "median of each round's ratio to the bare run of the same round.",
            "`sgconnect.connect()` is given no site: it finds the default site and the user in "
            "tk-core's session cache, which tk-core wrote in the parent process.",
            "Every child caches bytecode (in a temporary PYTHONPYCACHEPREFIX), as an installed "
            "package does. The last row shows sgconnect compiled from source at each start "
            "(PYTHONDONTWRITEBYTECODE=1 with an editable install, while site-packages keep their "
            ".pyc files): a development setup, not a deployment, and not part of the target.",
            "CPU time is the child's user + system time: less disturbed by other load than wall "
            "time.",
        ],
    )


def collect(runs: int = DEFAULT_RUNS) -> dict[str, dict]:
    """Start a local site with a saved session and :func:`measure` (also used by memory.py)."""
    from sgconnect.testing import LocalSite, save_session

    with _common.bench_environment(), LocalSite() as site:
        token = save_session(site, "alice")
        return measure(site, token, runs)


def run(runs: int = DEFAULT_RUNS) -> str:
    """Measure and return the markdown section."""
    return table(collect(runs))


def measure_latency(runs: int = LATENCY_RUNS) -> dict[float, dict[str, dict]]:
    """Bare, sgconnect and tk-core over HTTPS at each latency of :data:`LATENCY_TARGETS`.

    Returns, per latency and path: ``times`` (s) and the wire counters of the last run
    (``tcp_connections``, ``tls_handshakes``, ``requests``) with its ``rpcs``.
    """
    import os

    from sgconnect.testing import LocalSite, save_session

    names = [BARE, SGCONNECT, TKCORE]
    results: dict[float, dict[str, dict]] = {}
    with _common.bench_environment():
        for latency in LATENCY_TARGETS:
            with LocalSite(tls=True, latency=latency) as site:
                os.environ["SHOTGUN_API_CACERTS"] = site.ca_path
                token = save_session(site, "alice")

                def one(name: str, site=site, token=token) -> dict:
                    code, wants_token = PATHS[name]
                    site.clear_journal()
                    site.reset_counters()
                    elapsed, _ = _common.run_child(
                        code, [site.url], stdin=token + "\n" if wants_token else ""
                    )
                    rpcs = [entry.rpc or entry.path for entry in site.journal]
                    return {"time": elapsed, **site.counters, "rpcs": rpcs}

                rounds = _common.rotating_rounds(names, runs, one)
                results[latency] = {
                    name: {
                        "times": [run["time"] for run in rounds[name]],
                        "counters": rounds[name][-1],
                    }
                    for name in names
                }
    return results


def latency_table(results: dict[float, dict[str, dict]]) -> str:
    """The markdown section of the HTTPS latency comparison."""
    rows = []
    verdicts = []
    for latency, paths in results.items():
        bare_times = paths[BARE]["times"]
        for name, result in paths.items():
            ratio = _common.median([t / b for t, b in zip(result["times"], bare_times)])
            counters = result["counters"]
            rows.append(
                [
                    f"{latency * 1000:.0f} ms",
                    name,
                    _common.seconds(_common.median(result["times"])),
                    f"{ratio:.2f}×",
                    counters["tcp_connections"],
                    counters["tls_handshakes"],
                    counters["requests"],
                    " + ".join(counters["rpcs"]),
                ]
            )
            target = LATENCY_TARGETS.get(latency)
            if name == SGCONNECT and target is not None:
                met = "met" if ratio <= target else "NOT met"
                verdicts.append(f"≤ {target}× at {latency * 1000:.0f} ms: **{met}** ({ratio:.2f}×)")
    return _common.section(
        "1b. Standalone cached path over HTTPS with keep-alive and latency",
        _common.markdown_table(
            [
                "RTT",
                "path",
                "wall time (median)",
                "vs bare",
                "TCP connects",
                "TLS handshakes",
                "requests",
                "what was sent",
            ],
            rows,
        ),
        [
            "Targets for `sgconnect.connect()` against bare shotgun_api3: " + "; ".join(verdicts),
            "A fresh process per run (spawn to exit), paths interleaved in rotating order after "
            "one warm-up round, at each injected round-trip time (the local site waits it once "
            "per TCP handshake, once per TLS handshake and once per reply). Counters are the "
            "site's, for one process.",
            "sgconnect sends no `info`: the warm-up process wrote the site's capabilities to its "
            "per-site cache file (0600, one hour), which the next processes read. Bare "
            "shotgun_api3 and tk-core ask every time.",
        ],
    )


def latency_run(runs: int = LATENCY_RUNS) -> str:
    """Measure over HTTPS with latency and return the markdown section."""
    return latency_table(measure_latency(runs))


def main(argv=None) -> None:
    runs = _common.parse_runs(argv, DEFAULT_RUNS)
    print(run(runs))
    print(latency_run(min(runs, LATENCY_RUNS)))


if __name__ == "__main__":
    main()
