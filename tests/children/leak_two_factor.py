"""The two_factor flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import attempt, finish, local_site, sgconnect, show, typed

site = local_site(app_session_launcher=False)
typed("bob", site.password("bob"), site.two_factor_code("bob"))
sg = attempt("console 2fa login", sgconnect.connect, "leak", site=site.url, interactive=True)
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.current_user(site.url), "user")
# A wrong code: refused, with a typed error.
sgconnect.reset()
typed("bob", site.password("bob"), "000000")
attempt("wrong code", sgconnect.login, site.url, method="password")

finish()
