"""The session_faults flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

from leak_harness import attempt, finish, local_site, new_home, os, save_session, sgconnect, typed

from sgconnect import session_cache

site = local_site(app_session_launcher=False)
save_session(site, "alice")
sg = attempt("connect", sgconnect.connect, "leak", site=site.url, interactive=False)
for index in range(20):  # expiry in the middle of the work
    if index == 10:
        site.expire_sessions()
        save_session(site, "alice")
    attempt(f"find {index}", sg.find, "Project", [])
# A cancelled console login (an empty password), then the next call logs in.
other = local_site(app_session_launcher=False)
new_home()
typed("alice", "", "alice", other.password("alice"))
attempt("cancelled login", sgconnect.connect, "x", site=other.url, interactive=True)
again = attempt("login again", sgconnect.connect, "x", site=other.url, interactive=True)
attempt("find", again.find, "Project", [])
# A wrong password.
sgconnect.reset()
typed("alice", "wrong-" + other.password("alice"))
attempt("wrong password", sgconnect.login, other.url, method="password")
# Corrupt caches holding real tokens, which tk-core logs line by line at DEBUG.

third = local_site(app_session_launcher=False)
new_home()
path = session_cache.site_cache_file(third.url)
os.makedirs(os.path.dirname(path), mode=0o700)
for broken in (
    "current_user: alice\nusers:\n- login: alice\n  session_token: '{t}\n  se",
    "users:\n- {{login: alice, session_token: {t}\n",
    # Two writers interleaved: a token fragment starts a line. tk-core logs the lines.
    "current_user: alice\n{t}\nusers: [\n",
):
    with open(path, "w") as handle:
        handle.write(broken.format(t=third.issue_session("alice")))
    sgconnect.reset()
    attempt("corrupt cache", sgconnect.connect, "x", site=third.url, interactive=False)
typed("alice", third.password("alice"))
fresh = attempt(
    "login over a corrupt cache", sgconnect.connect, "x", site=third.url, interactive=True
)
attempt("find", fresh.find, "Project", [])
attempt(
    "bad site",
    sgconnect.connect,
    "x",
    site="http://alice:" + third.password("alice") + "@" + third.url.split("://")[1],
)
# (A purpose is a label, logged in every audit line: not a place for secrets.)
attempt("bad purpose", sgconnect.connect, "x\nforged audit line", site=third.url)

finish()
