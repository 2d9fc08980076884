"""Child program of tests/test_chain.py (run by path; it prints what the test reads)."""

import os

import sgconnect

sg = sgconnect.connect("console tool", site=os.environ["SITE_URL"], interactive=True)
print("PROJECTS", len(sg.find("Project", [], ["name"])))
print("SOURCE", sgconnect.current_user().source)
