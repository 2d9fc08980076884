"""Child program of tests/test_identity.py: tk-core already has a current user (as inside an
engine) when sgconnect is imported; prints what the environment keeps of the handed-down users."""

import json
import os
import sys

import sgtk
from tank.authentication import ShotgunAuthenticator, serialize_user

site, login, token = sys.argv[1:4]
user = ShotgunAuthenticator().create_session_user(login, session_token=token, host=site)
sgtk.set_authenticated_user(user)
os.environ["SHOTGUN_DESKTOP_CURRENT_USER"] = serialize_user(user)
if sys.argv[4] == "pickle":
    from tank.util import pickle

    context = pickle.dumps(
        {
            "project": {"type": "Project", "id": 70},
            "_pc_path": "/pc",
            "_current_user": serialize_user(user),
        }
    )
else:
    context = json.dumps(
        {
            "project": {"type": "Project", "id": 70},
            "_pc_path": "/pc",
            "_current_user": serialize_user(user, use_json=True),
        }
    )
os.environ["TANK_CONTEXT"] = context

from tank.util import pickle  # noqa: E402

import sgconnect  # noqa: E402, F401

kept = os.environ.get("TANK_CONTEXT")
data = json.loads(kept) if kept and kept.startswith("{") else (pickle.loads(kept) if kept else None)
print(
    "RESULT "
    + json.dumps(
        {
            "desktop_user": os.environ.get("SHOTGUN_DESKTOP_CURRENT_USER"),
            "context": data,
            "token_in_env": any(token in v for v in os.environ.values()),
            "who": sgconnect.current_user(site).login,
        }
    )
)
