"""The harness of tests/test_no_leak.py: every debug log on, every log record, exception
and object a tool can see written to the corpus file (``LEAK_CORPUS``). Imported by the flow
programs (``leak_*.py``), run by path."""

import io
import json
import logging
import os
import sys
import threading
import time
import traceback

import sgtk
import shotgun_api3  # noqa: F401 - its import sets its logger to WARNING: before DEBUG is set below

import sgconnect  # installs the redaction
from sgconnect.testing import LocalSite, approve_next_app_session, save_session

#: What the flows import from the harness.
__all__ = [
    "add",
    "approve_soon",
    "attempt",
    "finish",
    "json",
    "local_site",
    "new_home",
    "os",
    "save_session",
    "sgconnect",
    "show",
    "show_exception",
    "sys",
    "threading",
    "time",
    "typed",
]

_corpus = open(os.environ["LEAK_CORPUS"], "a", encoding="utf-8", errors="backslashreplace")
_corpus_lock = threading.Lock()


def add(label, text):
    with _corpus_lock:
        _corpus.write(f"--- {label}\n{text}\n")
        _corpus.flush()


class FormattedCapture(logging.Handler):
    """What a log file would show: the message and the traceback text (exc_text)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        add("log", self.format(record))


class RawCapture(logging.Handler):
    """Everything the record carries, and its exc_info formatted if it still has one."""

    def __init__(self):
        super().__init__(logging.DEBUG)

    def emit(self, record):
        text = repr(record.__dict__)
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        add("record", text)


if os.environ.get("LEAK_NO_REDACTION") == "1":
    sgconnect.redaction.uninstall()

sgtk.LogManager().global_debug = True
for _name in ("", "sgtk"):  # tk-core's "sgtk" logger does not propagate to the root
    logging.getLogger(_name).addHandler(FormattedCapture())
    logging.getLogger(_name).addHandler(RawCapture())
for _name in ("", "sgtk", "tank", "shotgun_api3", "sgconnect", "urllib3"):
    logging.getLogger(_name).setLevel(logging.DEBUG)


_sites = []


def local_site(mode="default", **options):
    """A LocalSite in this process; its secrets go to the parent at the end."""
    site = LocalSite(mode, **options).start()
    _sites.append(site)
    return site


def new_home():
    """A fresh tk-core cache (its site folders drop the port: sites would share one)."""
    home = os.path.join(os.environ["LEAK_WORK"], f"home{len(os.listdir(os.environ['LEAK_WORK']))}")
    os.makedirs(home, mode=0o700)
    os.environ["SHOTGUN_HOME"] = home
    sgconnect.reset()


def typed(*lines):
    """What a person types at tk-core's prompts (input() and getpass read sys.stdin)."""
    sys.stdin = io.StringIO("".join(line + "\n" for line in lines))


def approve_soon(site, login):
    """Approve the next app session request, as a person in a browser would."""
    approve_next_app_session(site, login, poll_secs=0.02, attempts=2000)


def _public(obj, depth):
    found = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception as exc:  # a property may refuse
            value = f"<{type(exc).__name__}>"
        if callable(value):
            continue
        if depth > 1 and not isinstance(
            value, (str, bytes, int, float, bool, type(None), list, tuple, dict, set)
        ):
            found[name] = {"repr": repr(value), "public": _public(value, depth - 1)}
        else:
            found[name] = repr(value)
    return found


def show(obj, label):
    """Record what a tool can see of an object handed out to it."""
    add(f"object {label}", f"repr={obj!r}\nstr={obj}\npublic={_public(obj, 2)!r}")


def show_exception(exc, label):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        add(
            f"exception {label}",
            f"{text}\nstr={exc}\nrepr={exc!r}\nargs={exc.args!r}\npublic={_public(exc, 2)!r}",
        )
        exc = exc.__cause__ or exc.__context__


def attempt(label, call, *args, **kwargs):
    """Run one step of the flow; record an exception instead of stopping."""
    try:
        value = call(*args, **kwargs)
    except BaseException as exc:  # KeyboardInterrupt included
        show_exception(exc, label)
        print(f"\nSTEP {label}: {type(exc).__name__}", flush=True)
        return exc
    print(f"\nSTEP {label}: ok", flush=True)
    return value


def finish():
    add("environment", json.dumps(dict(os.environ), sort_keys=True))
    secrets = set()
    for site in _sites:
        secrets |= site.secrets
    with open(os.environ["LEAK_SECRETS"], "w") as handle:
        json.dump(sorted(secrets), handle)
    for site in _sites:
        site.stop()
