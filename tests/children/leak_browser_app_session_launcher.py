"""The browser_app_session_launcher flow of tests/test_no_leak.py (run by path; see
leak_harness.py)."""

from leak_harness import approve_soon, attempt, finish, local_site, os, sgconnect, show, sys

site = local_site("saml2", app_session_launcher=True)
opened = os.path.join(os.environ["LEAK_WORK"], "opened.txt")
os.environ["BROWSER"] = (
    f"{sys.executable} -c \"import sys; open({opened!r}, 'w').write(sys.argv[1])\" %s"
)
approve_soon(site, "carol")
user = attempt("browser login", sgconnect.login, site.url, method="browser")
show(user, "user")
sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.broker().credential(site.url), "credential")

finish()
