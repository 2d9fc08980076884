"""The service_mode flow of tests/test_no_leak.py (run by path; see leak_harness.py)."""

import grandchild
from leak_harness import add, attempt, finish, local_site, os, sgconnect, show

from sgconnect import farm

site = local_site()
os.environ.update(
    SGCONNECT_SERVICE_SCRIPT_NAME="sgconnect_farm",
    SGCONNECT_SERVICE_SITE=site.url,
    SGCONNECT_SCRIPT_KEY=site.script_key("sgconnect_farm"),
    SGCONNECT_SUDO_AS_LOGIN="alice",
    SGCONNECT_NON_INTERACTIVE="1",
    SGCONNECT_SITE=site.url,
)
sgconnect.reset()
sg = attempt("service connect", sgconnect.connect, "render")
show(sg, "connection")
attempt("find", sg.find, "Project", [], ["name"])
show(sgconnect.current_user(), "user")
show(sgconnect.broker().credential(site.url), "credential")
rest = attempt("service rest", sgconnect.rest_session, "render")
show(rest, "rest session")
attempt("rest get", rest.get, "/entity/projects")

show(attempt("job environment", farm.job_environment, "render"), "job environment")

grandchild_env = grandchild.environment_text()
add("grandchild environment", grandchild_env)
# A wrong key: a typed error.
os.environ["SGCONNECT_SCRIPT_KEY"] = "not-the-key-" + site.script_key("sgconnect_farm")[::-1]
sgconnect.service.forget_environment_keys()
sgconnect.reset()
attempt("wrong key", lambda: sgconnect.connect("render").find("Project", []))

finish()
