"""The renewal flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import (
    attempt,
    finish,
    local_site,
    save_session,
    sgconnect,
    show,
    threading,
    typed,
)

site = local_site(app_session_launcher=False)
save_session(site, "alice")
sg = attempt("saved session", sgconnect.connect, "leak", site=site.url, interactive=True)
attempt("find", sg.find_one, "Project", [])
# Console renewal, three threads, one password.
site.expire_sessions()
typed(site.password("alice"))


def worker():
    attempt(
        "thread find",
        sgconnect.connect("worker", site=site.url, interactive=True).find,
        "Project",
        [],
        ["name"],
    )


workers = [threading.Thread(target=worker) for _ in range(3)]
for w in workers:
    w.start()
for w in workers:
    w.join()
show(sgconnect.broker().credential(site.url), "credential")
# Renewed by another process: adopted, no prompt.
site.expire_sessions()
save_session(site, "alice")
attempt("adopted", sg.find, "Project", [], ["name"])
# Non-interactive with nothing to adopt: LoginRequiredError.
site.expire_sessions()
lone = attempt("no prompt", sgconnect.connect, "farm", site=site.url, interactive=False)
attempt("non-interactive expiry", lone.find, "Project", [])
# Cancelled renewal: an empty password.
typed("")
attempt("cancelled renewal", sg.find, "Project", [])
# SSO claims expire (the SAML 302): renewed from the cache.
sso = local_site("saml2", app_session_launcher=True)
save_session(sso, "carol", url=sso.url.replace("127.0.0.1", "localhost"))
sso_url = sso.url.replace("127.0.0.1", "localhost")
sso_sg = attempt("sso", sgconnect.connect, "leak", site=sso_url, interactive=False)
attempt("sso find", sso_sg.find, "Project", [])
sso.expire_claims()
save_session(sso, "carol", url=sso_url)
attempt("sso adopted", sso_sg.find, "Project", [])

finish()
