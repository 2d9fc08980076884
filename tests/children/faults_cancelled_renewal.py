"""Child program of tests/test_faults.py (run by path; it prints what the test reads)."""

import hashlib
import os

import sgconnect
from sgconnect import session_cache

site = os.environ["SITE_URL"]


def cache_digest():
    with open(session_cache.site_cache_file(site), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


sg = sgconnect.connect("renewal", site=site, interactive=True)
sg.find_one("Project", [])
print("READY", flush=True)
input()
before = cache_digest()
try:
    sg.find("Project", [], ["name"])
    print("FIRST ok")
except sgconnect.LoginCancelledError as exc:
    print("FIRST", type(exc).__name__, exc.site, "|", exc, flush=True)
print("CACHE", "unchanged" if cache_digest() == before else "CHANGED", flush=True)
print(
    "SECOND",
    len(sg.find("Project", [], ["name"])),
    sgconnect.broker().credential(site).renewals,
    flush=True,
)
