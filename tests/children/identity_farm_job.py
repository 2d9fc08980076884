"""Child program of tests/test_identity.py (run by path; it prints what the test reads).

A farm job: ``--node-file PATH`` makes PATH the node settings file (as a farm's own wrapper
would, in-process: the job's environment cannot choose it); imports sgconnect (which takes the
script key and handed-down users out of the environment), reports what is left of them, then
connects and reads the projects. A typed failure is printed as its class name and message,
never a traceback.
"""

import json
import os
import subprocess
import sys

import sgconnect  # noqa: E402
import sgconnect.settings  # noqa: E402

if sys.argv[1:2] == ["--node-file"]:
    sgconnect.settings.NODE_FILE = sys.argv[2]

after_import = {name: name in os.environ for name in ("SGCONNECT_SCRIPT_KEY", "SGCONNECT_TICKET")}
result = {"after_import": after_import}
try:
    sg = sgconnect.connect(os.environ.get("SGCONNECT_PURPOSE") or "render")
    result["projects"] = sorted(p["name"] for p in sg.find("Project", [], ["name"]))
    result["user"] = sgconnect.current_user().as_dict()
except sgconnect.SgConnectError as exc:
    result["error"] = [type(exc).__name__, str(exc)]
grandchild = subprocess.run(
    [sys.executable, "-c", "import os,json;print(json.dumps(dict(os.environ)))"],
    capture_output=True,
    text=True,
    check=True,
)
env = json.loads(grandchild.stdout)
result["grandchild_env"] = {k: v for k, v in env.items() if k.startswith(("SGCONNECT_", "SHOTGUN"))}
print("RESULT " + json.dumps(result))
