"""Child program of tests/test_site_tkcore_matrix.py: tk-core's own console login against one
LocalSite per case, every case in this one process (run by path; it prints what the test reads).

Each case is ``mode, unified login flow, app session launcher, method`` (``legacy``: the login and
password prompts; ``asl``: the app session launcher, its URL "opened" by ``$BROWSER`` and
approved from a thread, as a person in a browser would). The prompts read ``sys.stdin``, set to
the case's answers: this process has no controlling terminal, so ``getpass`` reads it too.
One ``RESULT <json>`` line per case: what tk-core returned or raised, and what the site saw.
"""

import io
import json
import os
import sys

from tank.authentication import ShotgunAuthenticator

from sgconnect.testing import LocalSite, approve_next_app_session

CASES = json.loads(os.environ["CONSOLE_MATRIX_CASES"])


def answers(site, sso: bool, asl: bool, method: str) -> str:
    lines = [site.url]
    if asl and not sso:  # tk-core asks which method only when both are possible
        lines.append("1" if method == "asl" else "2")
    if method == "asl":
        lines.append("")  # "Press enter when you are ready to continue."
    else:
        lines += ["alice", site.password("alice")]
    return "\n".join(lines) + "\n"


for mode, unified, launcher, method in CASES:
    report = {"case": [mode, unified, launcher, method]}
    with LocalSite(mode, unified_login_flow=unified, app_session_launcher=launcher) as site:
        if method == "asl":
            approve_next_app_session(site, "alice", attempts=200)
        sys.stdin = io.StringIO(answers(site, mode == "saml2", launcher, method))
        try:
            user = ShotgunAuthenticator().get_user_from_prompt()
            names = [p["name"] for p in user.create_sg_connection().find("Project", [], ["name"])]
            report.update(
                login=user.login, host=user.host, type=type(user).__name__, projects=names
            )
        except Exception as exc:
            report.update(error=type(exc).__name__, message=str(exc))
        report["grants"] = sorted(
            {(e.rpc or e.path, e.auth) for e in site.journal if e.rpc == "get_session_token"}
            | {(e.path.split("/")[2], e.method) for e in site.journal if "app_session" in e.path}
        )
        report["secret_in_report"] = any(s in json.dumps(report) for s in site.secrets)
    print("\nRESULT " + json.dumps(report), flush=True)
