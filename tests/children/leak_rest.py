"""The rest flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import attempt, finish, local_site, save_session, sgconnect, show

site = local_site(rest_token_lifetime=600)
save_session(site, "alice")
rest = attempt("rest", sgconnect.rest_session, "leak", site=site.url, interactive=False)
show(rest, "rest session")
attempt("get", rest.get, "/entity/projects")
attempt("post", rest.post, "/entity/projects", {"name": "Leak Test"})
attempt("one", rest.get, "/entity/projects/71")
attempt("missing", rest.get, "/entity/projects/9999")
attempt("elsewhere", rest.get, "http://example.com/api/v1/entity/projects")
site.expire_rest_tokens()  # refresh grant
attempt("get after token expiry", rest.get, "/entity/projects")
site.expire_rest_tokens()
site.expire_sessions()
save_session(site, "alice")  # renewed by another process: adopted
attempt("get after session expiry", rest.get, "/entity/projects")
site.expire_rest_tokens()
site.expire_sessions()  # the refresh token still serves
attempt("get, session gone", rest.get, "/entity/projects")
sgconnect.reset()  # a new session object: it must mint from the (expired) session
fresh = attempt("rest again", sgconnect.rest_session, "leak", site=site.url, interactive=False)
attempt("get, nothing to adopt", fresh.get, "/entity/projects")
show(sgconnect.broker().credential(site.url), "credential")

finish()
