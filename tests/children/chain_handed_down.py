"""Child program of tests/test_chain.py (run by path; it prints what the test reads)."""

import json
import os
import subprocess
import sys

import sgconnect

sg = sgconnect.connect("launched tool", site=os.environ["SITE_URL"], interactive=False)
sg.find("Project", [], ["name"])
grandchild = subprocess.run(
    [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
    capture_output=True,
    text=True,
    check=True,
)
print(
    json.dumps(
        {
            "source": sgconnect.current_user().source,
            "login": sgconnect.current_user().login,
            "grandchild_env": json.loads(grandchild.stdout),
        }
    )
)
