"""Child program of tests/test_chain.py and tests/test_concurrency.py: THREADS threads call
through an expired session that renews once on the console (run by path)."""

import os
import threading

import sgconnect

site_url = os.environ["SITE_URL"]
threads = int(os.environ["THREADS"])
sgconnect.connect("warm-up", site=site_url, interactive=True).find_one("Project", [])
print("READY", flush=True)
input()  # the parent expires the session, then says go
start = threading.Barrier(threads)
results, errors, connections = [], [], set()


def tool():
    start.wait()
    try:
        sg = sgconnect.connect("worker", site=site_url, interactive=True)
        connections.add(id(sg))
        results.append(len(sg.find("Project", [], ["name"])))
    except Exception as exc:
        errors.append(type(exc).__name__)


workers = [threading.Thread(target=tool) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
credential = sgconnect.broker().credential(site_url)
print(
    "RESULTS",
    sorted(set(results)),
    len(results),
    "ERRORS",
    sorted(set(errors)),
    "CONNECTIONS",
    len(connections),
    "RENEWALS",
    credential.renewals,
    flush=True,
)
