"""Testing support: a local ShotGrid-like site (:class:`LocalSite`) and its pytest plugin.

Studios can test their own tools against it::

    from sgconnect.testing import LocalSite

    with LocalSite(mode="saml2") as site:
        ...

Helpers for such tests (:mod:`sgconnect.testing.helpers`): :func:`save_session`,
:func:`approve_next_app_session`, :func:`child_environment`, :func:`run_python`,
:func:`start_python` and :data:`PROXY_VARIABLES`.

The pytest plugin (``sgconnect.testing.pytest_plugin``, registered as a ``pytest11`` entry point)
provides the ``local_site``, ``make_local_site`` and ``fresh_sgconnect`` fixtures. Werkzeug is
needed to start a site (the ``site`` extra: ``pip install Werkzeug trustme``); importing this
package does not import it.
"""

from .helpers import (
    PROXY_VARIABLES,
    approve_next_app_session,
    child_environment,
    run_python,
    save_session,
    start_python,
)
from .site import (
    ForeignRequest,
    ForwardProxy,
    HumanUserSpec,
    JournalEntry,
    LocalSite,
    ProxyRequest,
    ScriptSpec,
)

__all__ = [
    "PROXY_VARIABLES",
    "ForeignRequest",
    "ForwardProxy",
    "HumanUserSpec",
    "JournalEntry",
    "LocalSite",
    "ProxyRequest",
    "ScriptSpec",
    "approve_next_app_session",
    "child_environment",
    "run_python",
    "save_session",
    "start_python",
]
