"""Child program of tests/test_structure.py (run by path; it prints what the test reads)."""

import json
import sys

import sgconnect

sg = sgconnect.connect("structure check", sys.argv[1] or None)
projects = sorted(p["name"] for p in sg.find("Project", [], ["name"]))
print(json.dumps({"projects": projects, "modules": sorted(sys.modules)}))
