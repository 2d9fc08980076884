"""Child program of tests/test_concurrency.py (run by path; it prints what the test reads)."""

import logging
import os
import sys

import sgtk
import shotgun_api3  # noqa: F401 - imported before its logger is set to DEBUG (its import sets WARNING)

import sgconnect

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # searched for secrets below
for name in ("shotgun_api3", "sgtk"):
    logging.getLogger(name).setLevel(logging.DEBUG)
logging.getLogger("sgtk").addHandler(logging.StreamHandler(sys.stderr))
sgtk.LogManager().global_debug = True
site_url = os.environ["SITE_URL"]
sg = sgconnect.connect("two processes", site=site_url, interactive=True)
sg.find_one("Project", [])
print("READY", flush=True)
input()  # the parent expires the session, then says go to both processes at once
counts = [len(sg.find("Project", [], ["name"])) for _ in range(5)]
credential = sgconnect.broker().credential(site_url)
print("COUNTS", counts, "RENEWALS", credential.renewals, flush=True)
