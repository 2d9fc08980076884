"""The transport_faults flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import attempt, finish, local_site, new_home, os, save_session, sgconnect, typed

os.environ["SGCONNECT_TIMEOUT_SECS"] = "1"
sgconnect.reset()
site = local_site()
save_session(site, "alice")
sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url, interactive=False)
attempt("find", sg.find, "Project", [])
attempt("rest get", rest.get, "/entity/projects")
for kind, count in [
    ("http_500", 1),
    ("http_502", 1),
    ("http_502", 3),
    ("http_503", 1),
    ("html", 1),
    ("slow", 1),
    ("close", 2),
]:
    site.inject_fault(kind, count, delay=2)
    attempt(f"api3 {kind} x{count}", sg.find, "Project", [], ["name"])
    site.clear_faults()
    site.inject_fault(kind, count, path_prefix="/api/v1/entity", delay=2)
    attempt(f"rest {kind} x{count}", rest.get, "/entity/projects")
    site.clear_faults()
site.stop()
attempt("site down", sg.find, "Project", [])
attempt("rest site down", rest.get, "/entity/projects")
down = local_site(app_session_launcher=False)
password = down.password("alice")
down.stop()
new_home()
typed("alice", password)
attempt("console login, site down", sgconnect.connect, "x", site=down.url, interactive=True)

finish()
