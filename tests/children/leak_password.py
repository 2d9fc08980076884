"""The password flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import attempt, finish, local_site, sgconnect, show, typed

site = local_site(app_session_launcher=False)
typed("alice", site.password("alice"))
sg = attempt("console login", sgconnect.connect, "leak", site=site.url, interactive=True)
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.current_user(site.url, with_name=True), "user")
show(sgconnect.broker().credential(site.url), "credential")
rest = attempt("rest", sgconnect.rest_session, "leak rest", site=site.url)
show(rest, "rest session")
attempt("rest get", rest.get, "/entity/projects")
attempt("rest pages", lambda: list(rest.iter_pages("/entity/projects", {"page[size]": 1})))
attempt("logout", sgconnect.logout, site.url)

finish()
