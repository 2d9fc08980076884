"""Child program of tests/test_service.py (run by path; it prints what the test reads)."""

import json
import logging
import sys

import grandchild

logging.basicConfig(level=logging.DEBUG)
# After logging is configured; shotgun_api3 first, as a DCC would: its import sets its logger
# to WARNING, which is undone below so that its request bodies are logged.
import shotgun_api3  # noqa: E402, F401

import sgconnect  # noqa: E402

logging.getLogger("shotgun_api3").setLevel(logging.DEBUG)  # its import set WARNING

sg = sgconnect.connect("render")
projects = [p["name"] for p in sg.find("Project", [], ["name"])]
rest_projects = None
if "--rest" in sys.argv:
    rest = sgconnect.rest_session("render")
    rest_projects = [p["attributes"]["name"] for p in rest.get("/entity/projects")["data"]]
grandchild_env = grandchild.environment_text()
print(
    "RESULT "
    + json.dumps(
        {
            "projects": projects,
            "rest_projects": rest_projects,
            "user": sgconnect.current_user().as_dict(),
            "grandchild_env": json.loads(grandchild_env),
        }
    )
)
