"""Child program of tests/test_chain.py (run by path; it prints what the test reads)."""

import json
import os

import grandchild

import sgconnect

sg = sgconnect.connect("launched tool", site=os.environ["SITE_URL"], interactive=False)
sg.find("Project", [], ["name"])
grandchild_env = grandchild.environment_text()
print(
    json.dumps(
        {
            "source": sgconnect.current_user().source,
            "login": sgconnect.current_user().login,
            "grandchild_env": json.loads(grandchild_env),
        }
    )
)
