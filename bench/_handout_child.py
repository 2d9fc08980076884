"""Child process of bench/handout.py: times hand-outs where they happen.

``python bench/_handout_child.py engine``: bootstraps the test engine of ``tests/fixtures`` with
tk-core's ``ToolkitManager`` (offline, as ``tests/fixtures/run_engine.py`` does) and times
``app.get_connection()`` and ``sgconnect.connect()`` inside it.

``python bench/_handout_child.py standalone``: times ``sgconnect.connect()`` in a process without
an engine, on the session saved in ``$SHOTGUN_HOME``.

Reads one JSON line on stdin (``site``, ``calls``, ``batch``, ``threads``; for the engine also
``login``, ``session_token``, ``project_id``, ``config``). Prints ``RESULT <json>`` last; never
prints the token.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator


def per_call_ns(call: Callable[[], Any], calls: int, batch: int) -> float:
    """Median over batches of the mean time of one call, after one unmeasured call."""
    call()
    per_call = []
    for _ in range(max(1, calls // batch)):
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        per_call.append((time.perf_counter_ns() - start) / batch)
    return statistics.median(per_call)


def first_call_ns(call: Callable[[], Any], threads: int) -> float:
    """Median time of the first call on each of ``threads`` new threads (one at a time)."""
    times: list[int] = []

    def worker() -> None:
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)

    for _ in range(threads):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    return statistics.median(times)


@contextmanager
def audit_logging(logger: logging.Logger, mode: str) -> Iterator[None]:
    """Set the audit logger up for ``mode``: ``off`` (INFO disabled), ``null`` (INFO enabled, one
    handler writing to a null stream, not propagated) or ``default`` (left as configured)."""
    saved = (logger.level, logger.propagate, list(logger.handlers))
    null_stream = None
    try:
        if mode == "off":
            logger.setLevel(logging.WARNING)
        elif mode == "null":
            null_stream = open(os.devnull, "w")  # noqa: SIM115 - closed below
            logger.setLevel(logging.INFO)
            logger.handlers = [logging.StreamHandler(null_stream)]
            logger.propagate = False
        yield
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]
        if null_stream is not None:
            null_stream.close()


def measure(
    call: Callable[[], Any], logger: logging.Logger, modes: tuple, params: dict
) -> dict[str, dict]:
    """Per-call and first-call-per-thread times of ``call`` under each logging mode."""
    results = {}
    for mode in modes:
        with audit_logging(logger, mode):
            results[mode] = {
                "enabled": logger.isEnabledFor(logging.INFO),
                "per_call_ns": per_call_ns(call, params["calls"], params["batch"]),
                "first_call_ns": first_call_ns(call, params["threads"]),
            }
    return results


def engine_main(params: dict) -> dict:
    import sgtk
    from tank.authentication import ShotgunAuthenticator

    user = ShotgunAuthenticator().create_session_user(
        params["login"], session_token=params["session_token"], host=params["site"]
    )
    manager = sgtk.bootstrap.ToolkitManager(sg_user=user)
    manager.plugin_id = "basic.sgconnect_bench"
    manager.base_configuration = {"type": "path", "path": params["config"]}
    manager.do_shotgun_config_lookup = False
    engine = manager.bootstrap_engine(
        "tk-sgconnect-testengine", entity={"type": "Project", "id": params["project_id"]}
    )
    app = engine.apps["tk-multi-sgconnect"]
    logger = app.sgconnect_broker.hook.logger

    import sgconnect  # the pip package: it finds the app's broker through the engine

    app.get_connection("bench").find("Project", [], ["name"])
    assert sgconnect.broker() is app.sgconnect_broker
    return {
        "engine": engine.name,
        "app.get_connection": measure(
            lambda: app.get_connection("bench"), logger, ("off", "null", "default"), params
        ),
        "sgconnect.connect": measure(
            lambda: sgconnect.connect("bench"), logger, ("off", "null"), params
        ),
    }


def standalone_main(params: dict) -> dict:
    import sgconnect

    sgconnect.connect("bench").find("Project", [], ["name"])
    logger = sgconnect.broker().hook.logger
    hook_kind = type(sgconnect.broker().hook).__name__
    if logging.getLogger().handlers:  # nothing configured logging: INFO is off by default
        raise RuntimeError("the standalone child must start with logging unconfigured")
    return {
        "hook": hook_kind,
        "tank_loaded": "tank" in sys.modules,
        "sgconnect.connect": measure(
            lambda: sgconnect.connect("bench"), logger, ("default", "null"), params
        ),
    }


def main() -> None:
    mode = sys.argv[1]
    params = json.loads(sys.stdin.readline())
    result = engine_main(params) if mode == "engine" else standalone_main(params)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
