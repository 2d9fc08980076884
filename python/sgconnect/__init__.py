"""sgconnect: the one place pipeline code gets an authenticated ShotGrid connection.

.. code-block:: python

    import sgconnect

    sg = sgconnect.connect("asset-report")          # a shotgun_api3 connection
    sg.find("Project", [], ["name"])

    rest = sgconnect.rest_session("asset-report")   # a REST API session
    rest.get("/entity/projects")

    sgconnect.current_user()                        # who, where, how: never a secret

Who the connection acts as is decided by the credential chain (``sgconnect.chain``) through the
connection hook (``sgconnect.base_hooks.ConnectionHook``): the current sgtk user, a user handed
down by SG Desktop or a launcher, the saved session, an interactive login through tk-core, or
service mode. Tools never see a password, session token or script key.

Importing this package installs the log redaction filter (``sgconnect.redaction``).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Optional

from . import environ, errors, redaction, state
from .errors import *  # noqa: F403 - every error class is public API (errors.__all__)

if TYPE_CHECKING:
    from .credentials import UserInfo
    from .handouts import Broker

__version__ = "0.1.0"

redaction.install()


def _scrub_environment() -> None:
    """On first import, whichever credential later wins: script keys and handed-down users
    leave ``os.environ`` (kept in memory), so no child process inherits them."""
    from . import chain, service

    service.take_environment_keys()
    chain.take_handed_down_users()


_scrub_environment()

#: The environment variable naming a standalone process's hook files (joined with os.pathsep),
#: most derived last, like the ``hook_connection`` setting.
HOOK_VARIABLE = environ.HOOK

_standalone_lock = threading.Lock()
_standalone_broker: Optional[Broker] = None


def connect(purpose: str, site: Optional[str] = None, interactive: Optional[bool] = None) -> Any:
    """Return this thread's shotgun_api3 connection for ``purpose``.

    :param purpose: A short label of the tool asking ("maya publish"), written to the audit log.
    :param site: The site URL; ``None`` for the default site (the current user's,
        ``SGCONNECT_SITE``, or the last site logged in to).
    :param interactive: May a login prompt be shown? ``None`` decides from the process: a
        QApplication or a terminal allows it, ``SGCONNECT_NON_INTERACTIVE=1`` forbids it.
    :raises LoginRequiredError: A login is needed and the process may not prompt.
    """
    return broker().connection(purpose, site, interactive)


def rest_session(
    purpose: str, site: Optional[str] = None, interactive: Optional[bool] = None
) -> Any:
    """Return this thread's REST API session (:class:`sgconnect.rest.RestSession`)."""
    return broker().rest_session(purpose, site, interactive)


def current_user(
    site: Optional[str] = None, interactive: Optional[bool] = False, with_name: bool = False
) -> UserInfo:
    """Who connections to ``site`` act as: login, name, site, method, source. No secret.

    Does not prompt unless ``interactive=True``. ``with_name=True`` reads the person's display
    name from the site (one request).
    """
    return broker().current_user(site, interactive, with_name=with_name)


def login(site: Optional[str] = None, method: str = "auto") -> UserInfo:
    """Run tk-core's interactive login now, save the session, and use it from now on."""
    from .chain import login_and_adopt
    from .sites import normalize_site

    site = normalize_site(site) if site is not None else None
    _, credential = login_and_adopt(broker(), site, method)
    return credential.info()


def logout(site: Optional[str] = None) -> list[str]:
    """Forget the saved session of ``site``'s current user (tk-core's cache); return what went."""
    from .interactive import logout as forget_saved_session
    from .sites import normalize_site

    removed = forget_saved_session(normalize_site(site) if site is not None else None)
    broker().forget()
    return removed


def broker() -> Broker:
    """The broker serving this process: the engine app's when one is running, else standalone."""
    from . import tk

    engine = tk.current_engine()
    if engine is not None:
        for app in engine.apps.values():
            app_broker = getattr(app, "sgconnect_broker", None)
            if app_broker is not None:
                return app_broker
    return _standalone()


def _standalone() -> Broker:
    global _standalone_broker
    if _standalone_broker is None:
        with _standalone_lock:
            if _standalone_broker is None:
                _standalone_broker = _make_standalone_broker()
    return _standalone_broker


def _make_standalone_broker() -> Broker:
    from .handouts import Broker
    from .settings import Settings
    from .standalone_hook import StandaloneConnectionHook, StandaloneParent

    parent = StandaloneParent(Settings.from_environment())
    hook_paths = [path for path in os.environ.get(HOOK_VARIABLE, "").split(os.pathsep) if path]
    if not hook_paths:
        return Broker(StandaloneConnectionHook(parent))
    from . import tk
    from .errors import ConfigurationError
    from .standalone_hook import tk_connection_hook_class

    for path in hook_paths:
        if not path.endswith(".py") or not os.path.isfile(path):
            raise ConfigurationError(
                f"{HOOK_VARIABLE} names {path!r}, which is not a Python file (.py) that exists: "
                "fix the path, or unset the variable to use the default hook.",
                setting=HOOK_VARIABLE,
            )
    try:
        hook = tk.tank().hook.create_hook_instance(
            hook_paths, parent, base_class=tk_connection_hook_class()
        )
    except errors.SgConnectError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"The hook in {HOOK_VARIABLE} could not be loaded ({exc.__class__.__name__}): it must "
            "define one class deriving from the connection hook; fix it, or unset the variable.",
            setting=HOOK_VARIABLE,
        ) from None
    return Broker(hook)


def reset() -> None:
    """Reset every piece of process state (see :mod:`sgconnect.state`): the standalone broker (its
    credentials and hand-outs), the users handed down by a launcher, the purpose cache, the TLS
    contexts and the tk-core hook base classes. For tests and user switches."""
    global _standalone_broker
    with _standalone_lock:
        _standalone_broker = None
    state.reset_all()


__all__ = [
    "connect",
    "rest_session",
    "current_user",
    "login",
    "logout",
    "broker",
    "reset",
    *errors.__all__,
]
