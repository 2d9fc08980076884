"""Many threads and several processes meet one expired session: one renewal, no lost call.

- 200 threads of one process ask for connections and call the site just after the session
  expired: with a console renewal, exactly one prompt (stdin holds ONE password) and 200 results;
  non-interactive, one clear LoginRequiredError each and no hang; non-interactive with a session
  another process saved, 200 results and no prompt at all.
- Two processes renew the same session at once: one prompts, the other waits on sgconnect's
  cache lock and adopts the session the first saved; both end with a working session and the
  cache stays valid YAML.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from children import start_child

import sgconnect
from sgconnect import cache_lock, session_cache
from sgconnect.testing import save_session

CHILDREN = Path(__file__).parent / "children"


pytestmark = pytest.mark.tkcore

THREADS = 200
CHILD_TIMEOUT = 90
#: A hang guard for joins, not a timing assertion.
JOIN_GUARD_SECS = 60


def renewals_seen(site) -> list:
    return [e for e in site.journal if e.rpc == "get_session_token"]


def run_threads(target, count: int = THREADS) -> list:
    """Run ``target`` on ``count`` threads released together; return what each returned/raised."""
    start = threading.Barrier(count)
    outcomes: list = [None] * count

    def work(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = target()
        except BaseException as exc:  # the outcome is what is checked
            outcomes[index] = exc

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_GUARD_SECS)
    assert not any(w.is_alive() for w in workers), "a thread hung"
    return outcomes


# -- 1, 20 and 200 threads, console renewal in a child process ---------------------------------

CONSOLE_RENEWAL_CHILD = CHILDREN / "console_renewal.py"


@pytest.mark.parametrize("threads", [1, 20, THREADS])
def test_threads_after_expiry_one_console_renewal_every_call_completes(make_local_site, threads):
    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    child = start_child(CONSOLE_RENEWAL_CHILD, dict(SITE_URL=site.url, THREADS=str(threads)))
    try:
        assert child.stdout.readline().strip() == "READY"
        site.expire_sessions()
        site.clear_journal()
        # "go", then ONE password: a second prompt would read end-of-file and cancel.
        out, err = child.communicate(f"\n{site.password('alice')}\n", timeout=CHILD_TIMEOUT)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert f"RESULTS [3] {threads} ERRORS [] CONNECTIONS {threads} RENEWALS 1" in out, err
    assert [(e.auth, e.login) for e in renewals_seen(site)] == [("password", "alice")]
    assert err.count("Password (empty to abort)") == 1
    reads = [e for e in site.journal if e.rpc == "read"]
    assert sum(1 for e in reads if e.status == 200 and e.error_code is None) == threads


# -- 200 threads, non-interactive, in this process -------------------------------------------------


def test_200_threads_non_interactive_each_get_one_clear_error(make_local_site, caplog):
    site = make_local_site("default")
    save_session(site, "alice")
    sgconnect.connect("warm-up", site=site.url, interactive=False).find_one("Project", [])
    site.expire_sessions()
    site.clear_journal()

    def tool():
        sg = sgconnect.connect("worker", site=site.url, interactive=False)
        return sg.find("Project", [], ["name"])

    with caplog.at_level(logging.WARNING):
        outcomes = run_threads(tool)

    assert all(isinstance(o, sgconnect.LoginRequiredError) for o in outcomes), {
        type(o).__name__ for o in outcomes
    }
    messages = {str(o) for o in outcomes}
    assert len(messages) == 1, messages
    message = messages.pop()
    assert site.url in message and "session of alice expired" in message
    assert f"sgconnect login --site {site.url}" in message
    assert all(o.site == site.url for o in outcomes)
    assert renewals_seen(site) == []
    # Each thread's call was refused once, then it stopped: no retry storm.
    refused = [e for e in site.journal if e.rpc == "read" and e.error_code == 102]
    assert len(refused) == THREADS


def test_200_threads_non_interactive_adopt_the_session_another_process_saved(make_local_site):
    site = make_local_site("default")
    save_session(site, "alice")
    sgconnect.connect("warm-up", site=site.url, interactive=False).find_one("Project", [])
    site.expire_sessions()
    save_session(site, "alice")  # "another process" renewed and saved
    site.clear_journal()

    def tool():
        sg = sgconnect.connect("worker", site=site.url, interactive=False)
        return len(sg.find("Project", [], ["name"]))

    outcomes = run_threads(tool)

    assert outcomes == [3] * THREADS
    assert renewals_seen(site) == []
    assert sgconnect.broker().credential(site.url).renewals == 0


# -- two processes renewing the same session at once -------------------------------------------

TWO_PROCESS_CHILD = CHILDREN / "concurrency_two_process.py"


def start_two_process_child(site, env_extra: dict | None = None) -> subprocess.Popen:
    return start_child(TWO_PROCESS_CHILD, dict(SITE_URL=site.url, **(env_extra or {})))


def test_two_processes_renewing_at_once_one_prompt_both_work_cache_valid(make_local_site):
    site = make_local_site("default", app_session_launcher=False)
    save_session(site, "alice")
    children = [start_two_process_child(site), start_two_process_child(site)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "READY"
        site.expire_sessions()
        site.clear_journal()
        go = f"\n{site.password('alice')}\n"
        for child in children:  # both start renewing at the same moment
            child.stdin.write(go)
            child.stdin.flush()
        outputs = [child.communicate(timeout=CHILD_TIMEOUT) for child in children]
    finally:
        for child in children:
            child.kill()

    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
        assert "COUNTS [3, 3, 3, 3, 3]" in out, err
    renewals = sorted(int(out.split("RENEWALS")[1]) for out, _ in outputs)
    assert renewals == [0, 1], outputs  # one process prompted, the other adopted its session
    assert len(renewals_seen(site)) == 1
    assert sum(err.count("Password (empty to abort)") for _, err in outputs) == 1
    debug_output = "".join(out + err for out, err in outputs)
    assert "shotgun_api3 DEBUG" in debug_output or "DEBUG:shotgun_api3" in debug_output
    leaked = [s for s in site.secrets if not s.isdigit() and s in debug_output]
    assert leaked == []  # nothing leaked at DEBUG (bob's 2FA code is not in these flows)

    # The cache is valid YAML and holds the renewed session, which works.
    path = session_cache.site_cache_file(site.url)
    with open(path, "rb") as handle:
        document = yaml.safe_load(handle)
    tokens = [u["session_token"] for u in document["users"] if u["login"] == "alice"]
    assert len(tokens) == 1 and tokens[0] in site.secrets
    import shotgun_api3

    sg = shotgun_api3.Shotgun(site.url, session_token=tokens[0])
    assert len(sg.find("Project", [], ["name"])) == 3


# -- the cache lock itself ------------------------------------------------------------------------


def test_cache_lock_is_exclusive_reentrant_and_gives_up_with_a_warning(make_local_site, caplog):
    site = make_local_site("default")
    holder_in, release = threading.Event(), threading.Event()

    def hold():
        with cache_lock.cache_lock(site.url) as held:
            assert held
            with cache_lock.cache_lock(site.url) as again:  # re-entered on the same thread
                assert again
            holder_in.set()
            release.wait(JOIN_GUARD_SECS)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert holder_in.wait(JOIN_GUARD_SECS)
        with caplog.at_level(logging.WARNING, logger="sgconnect.cache_lock"):
            with cache_lock.cache_lock(site.url, wait_secs=0.2) as held:
                assert held is False
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert cache_lock.lock_path(site.url) in warnings[0]
        assert "going on without it" in warnings[0]
    finally:
        release.set()
        holder.join(JOIN_GUARD_SECS)
    with cache_lock.cache_lock(site.url, wait_secs=0.2) as held:  # free again
        assert held is True
