"""Child program of tests/test_secrets.py (run by path; it prints one JSON line).

An expired session renewed through tk-core's console prompt, where the person types two wrong
passwords and then a third: the renewal fails, and the failure's traceback, printed with every
frame's locals, is searched for every secret of the site and every password typed.
"""

import io
import json
import sys
import traceback

from sgconnect.connection import create_connection
from sgconnect.credentials import Credential
from sgconnect.testing import LocalSite


def main():
    site = LocalSite(app_session_launcher=False).start()
    try:
        credential = Credential.for_session(
            site.url, "alice", site.issue_session("alice"), source="saved"
        )
        sg = create_connection(credential, interactive=True)
        sg.find("Project", [])
        site.expire_sessions()
        # getpass falls back to sys.stdin without a terminal: what the person types.
        sys.stdin = io.StringIO("wrong-pw-first\nwrong-pw-second\nwrong-pw-third\n")
        try:
            sg.find("Project", [])
            return {"error": None}
        except Exception as error:
            report = traceback.TracebackException(
                type(error), error, error.__traceback__, capture_locals=True
            )
            text = "".join(report.format(chain=True))
            # A crash reporter that walks __context__ whatever __suppress_context__ says.
            context = error.__context__
            if context is not None:
                text += "".join(
                    traceback.TracebackException(
                        type(context), context, context.__traceback__, capture_locals=True
                    ).format()
                )
            name = type(error).__name__
        seen = site.secrets | {"wrong-pw-first", "wrong-pw-second", "wrong-pw-third"}
        return {
            "error": name,
            "leaked": sorted(s for s in seen if len(s) >= 8 and s in text),
            "secrets": len(seen),
            "frames": text.count('  File "'),
        }
    finally:
        site.stop()


print(json.dumps(main()), flush=True)
