"""Child program of tests/test_faults.py (run by path; it prints what the test reads)."""

import json
import os

import sgconnect

site = os.environ["SITE_URL"]
state = {}
try:
    sgconnect.connect("login", site=site, interactive=True)
    state["error"] = None
except sgconnect.SgConnectError as exc:
    state["error"] = [type(exc).__name__, str(exc), exc.site]
state["credentials"] = len(sgconnect.broker().credentials())
print("STATE", json.dumps(state), flush=True)
if os.environ.get("AGAIN"):
    sg = sgconnect.connect("login", site=site, interactive=True)
    print("AGAIN", len(sg.find("Project", [], ["name"])), sgconnect.current_user(site).source)
