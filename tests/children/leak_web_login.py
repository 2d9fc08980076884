"""The Qt web login of tests/test_no_leak.py: tk-core's dialog driven by
tests/qt_weblogin_driver.py, inside the leak harness (run by path)."""

import runpy

from leak_harness import add, attempt, finish, json, os, sgconnect, show, show_exception

driver_main = runpy.run_path(os.environ["LEAK_DRIVER"], run_name="weblogin_driver")["main"]
driver_globals = driver_main.__globals__
driver_finish = driver_globals["finish"]
site_url = os.environ["WEBLOGIN_SITE_URL"]
del os.environ["WEBLOGIN_PASSWORD"]  # what the person types: the driver has read it


def finish_with_corpus(code):
    try:
        sg = attempt("same connection", sgconnect.connect, "qt web login", site=site_url)
        show(sg, "connection")
        attempt("find", sg.find, "Project", [], ["name"])
        show(sgconnect.current_user(site_url), "user")
        show(sgconnect.broker().credential(site_url), "credential")
        rest = attempt("rest", sgconnect.rest_session, "leak", site=site_url)
        show(rest, "rest session")
        attempt("rest get", rest.get, "/entity/projects")
        add("driver result", json.dumps(driver_globals["result"], default=str))
        finish()
    finally:
        driver_finish(code)


driver_globals["finish"] = finish_with_corpus
try:
    driver_main()
except BaseException as exc:
    show_exception(exc, "driver")
    finish_with_corpus(4)
