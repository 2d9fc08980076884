"""Structural facts behind the benchmarks (bench/), checked without any wall-clock assertion.

- The cached path (a fresh process with a saved session → ``sgconnect.connect()`` → first
  ``find``) sends exactly ``info`` + ``read`` and imports neither tk-core nor Qt.
- A hand-out asked for again on the same thread is the same object, and costs no request.
- 200 threads on an expired session, with a new session saved by another process: every call
  completes, the credential adopts the new session exactly once, and nothing prompts.
- 200 threads on an expired session in a non-interactive process: 200 ``LoginRequiredError``,
  no hang.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from children import run_child

import sgconnect
from sgconnect.testing import save_session

CHILDREN = Path(__file__).parent / "children"

THREADS = 200
#: A guard against a hang, not a measurement: a storm takes about a second here.
HANG_GUARD_SECS = 120
THREAD_AGENT = "structure-storm-thread/"
#: Top-level modules the cached path must not load.
HEAVY = ("PySide6", "PySide2", "shiboken6", "shiboken2", "tank", "sgtk", "tank_vendor")


@pytest.fixture
def non_interactive_broker(monkeypatch):
    """A standalone broker made afresh for the test, in a non-interactive process."""
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")
    sgconnect.reset()
    yield
    sgconnect.reset()


# -- the cached path ---------------------------------------------------------------------------

CACHED_PATH_CHILD = CHILDREN / "structure_cached_path.py"


@pytest.mark.tkcore
@pytest.mark.parametrize("explicit_site", [False, True], ids=["default-site", "explicit-site"])
def test_cached_path_sends_info_and_read_and_loads_neither_tkcore_nor_qt(
    local_site, tmp_path, monkeypatch, explicit_site
):
    save_session(local_site, "alice")
    monkeypatch.setenv("SGCONNECT_NON_INTERACTIVE", "1")  # a missing session fails, never waits
    local_site.clear_journal()

    done = subprocess.run(
        [sys.executable, str(CACHED_PATH_CHILD), local_site.url if explicit_site else ""],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=HANG_GUARD_SECS,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["projects"] == sorted(local_site.projects)
    wire = [(e.method, e.rpc, e.auth, e.login, e.status, e.error_code) for e in local_site.journal]
    assert wire == [
        ("POST", "info", "none", None, 200, None),
        ("POST", "read", "session", "alice", 200, None),
    ]
    loaded = {name.split(".")[0] for name in seen["modules"]}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert "shotgun_api3" in loaded  # the check looks at the child's real module table


# -- hand-outs --------------------------------------------------------------------------------


@pytest.mark.tkcore
def test_a_hand_out_asked_again_on_a_thread_is_the_same_object_and_sends_nothing(
    local_site, non_interactive_broker
):

    save_session(local_site, "alice")
    local_site.clear_journal()

    first = sgconnect.connect("structure check", local_site.url)
    again = sgconnect.connect("structure check", local_site.url)
    other_purpose = sgconnect.connect("another tool", local_site.url)
    on_other_thread = []
    thread = threading.Thread(
        target=lambda: on_other_thread.append(sgconnect.connect("structure check", local_site.url))
    )
    thread.start()
    thread.join(HANG_GUARD_SECS)

    assert again is first
    assert other_purpose is not first  # two tools never share a connection
    assert on_other_thread and on_other_thread[0] is not first  # nor do two threads
    assert local_site.journal == []  # a hand-out is not a request
    first.find("Project", [], ["name"])
    assert [e.rpc for e in local_site.journal] == ["info", "read"]


# -- the expiry storm ---------------------------------------------------------------------------


def _storm(site_url):
    """``THREADS`` threads take their hand-out, then all call ``find`` at once.

    Returns each thread's outcome (``"ok"`` or the exception's class name) and whether any
    thread was still running at the hang guard.
    """
    barrier = threading.Barrier(THREADS + 1, timeout=HANG_GUARD_SECS)
    outcomes = ["did not finish"] * THREADS

    def worker(index):
        sg = sgconnect.connect("structure storm", site_url)
        sg.add_user_agent(f"{THREAD_AGENT}{index}")  # the journal tells the threads apart
        barrier.wait()
        try:
            sg.find("Project", [], ["name"])
            outcomes[index] = "ok"
        except Exception as exc:  # the test asserts on it
            outcomes[index] = type(exc).__name__
            if isinstance(exc, sgconnect.LoginRequiredError):
                outcomes[index] += f": {exc}"

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join(HANG_GUARD_SECS)
    return outcomes, any(thread.is_alive() for thread in threads)


def _requests_per_thread(journal):
    """Each storm thread's api3 requests, in order, as ``(rpc, error_code)``."""
    per_thread = collections.defaultdict(list)
    for entry in journal:
        agent = next(
            (p.strip() for p in (entry.user_agent or "").split(";") if THREAD_AGENT in p), None
        )
        per_thread[agent].append((entry.rpc, entry.error_code))
    return per_thread


@pytest.mark.tkcore
def test_expiry_storm_adopts_the_session_another_process_saved_exactly_once(
    local_site, non_interactive_broker
):
    from tank.authentication import session_cache

    save_session(local_site, "alice")
    sgconnect.connect("warm-up", local_site.url).find("Project", [], ["name"])
    credential = sgconnect.broker().credential(local_site.url)
    local_site.expire_sessions()
    fresh = local_site.issue_session("alice")
    session_cache.cache_session_data(local_site.url, "alice", fresh)  # "another process"
    local_site.clear_journal()

    outcomes, hung = _storm(local_site.url)

    assert not hung
    assert outcomes == ["ok"] * THREADS
    # The credential's session token changed exactly once, to the one the other process saved,
    # and tk-core never renewed (no prompt, no get_session_token, no password).
    assert (credential.adoptions, credential.renewals) == (1, 0)
    journal = local_site.journal
    # The warm-up fetched the server capabilities: once per site per process, no thread asks again.
    assert {e.rpc for e in journal} == {"read"}
    reads = [e for e in journal if e.rpc == "read"]
    assert {e.auth for e in reads} == {"session"}
    assert {e.login for e in reads if e.error_code is None} == {"alice"}
    # Per thread: the read, rejected at most once (with the expired token) before it succeeds.
    per_thread = _requests_per_thread(journal)
    assert sorted(per_thread) == sorted(f"{THREAD_AGENT}{i}" for i in range(THREADS))
    allowed = ([("read", None)], [("read", 102), ("read", None)])
    assert all(requests in allowed for requests in per_thread.values()), per_thread
    rejected = sum(1 for e in journal if e.error_code == 102)
    assert rejected >= 1  # the storm did meet the expired session


@pytest.mark.tkcore
def test_expiry_storm_without_a_session_fails_every_thread_without_prompting_or_hanging(
    local_site, non_interactive_broker
):
    save_session(local_site, "alice")
    sgconnect.connect("warm-up", local_site.url).find("Project", [], ["name"])
    local_site.expire_sessions()
    local_site.clear_journal()

    outcomes, hung = _storm(local_site.url)

    assert not hung
    assert len(outcomes) == THREADS
    for outcome in outcomes:
        assert outcome.startswith("LoginRequiredError: "), outcome
        assert local_site.url in outcome and "sgconnect login" in outcome
    credential = sgconnect.broker().credential(local_site.url)
    assert (credential.adoptions, credential.renewals) == (0, 0)
    # Each thread: one rejected read, then the error; no retry loop, no renewal (the capabilities
    # came once per process, with the warm-up).
    per_thread = _requests_per_thread(local_site.journal)
    assert len(per_thread) == THREADS
    assert all(r == [("read", 102)] for r in per_thread.values()), per_thread


# -- shotgun_api3 from tk-core's tank_vendor ---------------------------------------------------


@pytest.mark.tkcore
def test_without_pip_shotgun_api3_the_vendored_copy_of_tk_core_is_used(local_site, tmp_path):
    import shotgun_api3

    vendor = tmp_path / "vendor" / "tank_vendor"
    vendor.mkdir(parents=True)
    (vendor / "__init__.py").write_text("")
    (vendor / "shotgun_api3").symlink_to(Path(shotgun_api3.__file__).parent)
    save_session(local_site, "alice")

    done = run_child(
        CHILDREN / "vendored_api3.py",
        {"SITE_URL": local_site.url, "VENDOR_ROOT": str(tmp_path / "vendor")},
        timeout=HANG_GUARD_SECS,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"module": "tank_vendor.shotgun_api3", "projects": 3}
