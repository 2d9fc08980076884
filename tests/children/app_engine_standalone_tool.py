"""Child program of tests/test_app_engine.py (run by path; it prints what the test reads)."""

import json
import sys

import sgconnect

sites = json.loads(sys.stdin.readline())
sg = sgconnect.connect("asset-report", site=sites["allowed"])
result = {
    "projects": sorted(p["name"] for p in sg.find("Project", [], ["name"])),
    "hook": type(sgconnect.broker().hook).__name__,
}
try:
    sgconnect.connect("asset-report", site=sites["forbidden"]).find("Project", [], ["name"])
except sgconnect.SgConnectError as exc:
    result["forbidden"] = type(exc).__name__
    result["message"] = str(exc)
print("RESULT " + json.dumps(result))
