"""The handed_down flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

import grandchild
from leak_harness import add, attempt, finish, json, local_site, os, sgconnect, show
from tank.authentication import DefaultsManager, ShotgunAuthenticator, serialize_user

site = local_site()

token = site.issue_session("bob")
user = ShotgunAuthenticator(DefaultsManager(fixed_host=site.url)).create_session_user(
    "bob", session_token=token
)
payload = serialize_user(user, use_json=True)
os.environ["SHOTGUN_DESKTOP_CURRENT_USER"] = payload
os.environ["TANK_CONTEXT"] = json.dumps({"project": None, "_current_user": payload})
del user, payload
sg = attempt("handed down", sgconnect.connect, "launched", site=site.url, interactive=False)
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.current_user(site.url), "user")

grandchild_env = grandchild.environment_text()
add("grandchild environment", grandchild_env)

finish()
