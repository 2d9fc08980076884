"""Child program of tests/test_site_tkcore.py (run by path; it prints what the test reads)."""

import json

from tank.authentication import ShotgunAuthenticator

user = ShotgunAuthenticator().get_user_from_prompt()
projects = user.create_sg_connection().find("Project", [], ["name"])
print(
    "\nRESULT "
    + json.dumps(
        {
            "login": user.login,
            "host": user.host,
            "type": type(user).__name__,
            "projects": [p["name"] for p in projects],
        }
    )
)
