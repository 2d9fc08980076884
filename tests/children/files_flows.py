"""Child program of tests/test_files.py (run by path; it prints what the test reads)."""

import json
import os
import stat

os.umask(0o022)
import sgconnect  # noqa: E402 - after the umask: files sgconnect and tk-core create get it

home = os.environ["SHOTGUN_HOME"]
top = os.environ["WATCHED"]
console_site, browser_site = os.environ["CONSOLE_SITE"], os.environ["BROWSER_SITE"]


def modes(step):
    found = {}
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, top)] = stat.S_IMODE(os.lstat(path).st_mode)
    print("MODES " + step + "\t" + json.dumps(found), flush=True)


sg = sgconnect.connect("files", site=console_site, interactive=True)  # console login
sg.find_one("Project", [])
modes("fresh login")
print("READY", flush=True)
input()  # the parent expires the session
sg.find("Project", [], ["name"])  # console renewal
assert sgconnect.broker().credential(console_site).renewals == 1
modes("renewal")
assert sgconnect.logout(console_site) == ["alice on " + console_site]
modes("logout")
sgconnect.login(browser_site, method="url")  # headless browser login, approved elsewhere
modes("url login")
