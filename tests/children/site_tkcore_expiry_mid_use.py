"""Child program of tests/test_site_tkcore.py (run by path; it prints what the test reads)."""

import json
import sys

from tank.authentication import ShotgunAuthenticator

url, token = sys.argv[1], sys.argv[2]
user = ShotgunAuthenticator().create_session_user("alice", session_token=token, host=url)
conn = user.create_sg_connection()
before = len(conn.find("Project", []))
print("READY", flush=True)
sys.stdin.readline()  # the parent expires every session, then says go
after = [p["name"] for p in conn.find("Project", [], ["name"])]
print(
    "\nRESULT "
    + json.dumps(
        {
            "before": before,
            "after": after,
            "renewed": user.impl.get_session_token() != token,
        }
    )
)
