"""The headless_url flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

import signal

from leak_harness import (
    approve_soon,
    attempt,
    finish,
    local_site,
    os,
    sgconnect,
    show,
    threading,
    time,
)

site = local_site("oxygen", app_session_launcher=True)
approve_soon(site, "alice")
sg = attempt("url login", sgconnect.connect, "leak", site=site.url, interactive=True)
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.current_user(site.url), "user")
rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url)
attempt("rest get", rest.get, "/entity/projects")
# Denied, then Ctrl-C: typed errors.
sgconnect.reset()


def deny():
    for _ in range(2000):
        pending = site.pending_app_session_requests()
        if pending:
            site.deny_app_session(pending[0])
            return
        time.sleep(0.02)


threading.Thread(target=deny, daemon=True).start()
attempt("denied url login", sgconnect.login, site.url, method="url")


def interrupt():
    for _ in range(2000):
        if site.pending_app_session_requests():
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.02)


threading.Thread(target=interrupt, daemon=True).start()
attempt("ctrl-c url login", sgconnect.login, site.url, method="url")

finish()
