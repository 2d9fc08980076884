"""A local ShotGrid-like site: the authentication surface of a real site, on 127.0.0.1.

:class:`LocalSite` serves, with Werkzeug, threaded, on a free loopback port:

- the api3 JSON-RPC endpoint (``POST /api3/json``) that shotgun_api3 and tk-core speak;
- the web login of a site (``/auth/renew`` -> identity provider -> ``/auth/landing``), with the
  identity provider on a **second origin** (its own port), as tk-core's QtWebEngine dialog sees it;
- the app session launcher (``/internal_api/app_session_request``);
- a slice of the REST API (``/api/v1``): token minting with every grant, and entity reads and
  writes (create, update, delete, revive) on the same store as api3.

It also keeps what tests need: a request journal, controls to expire sessions and tokens, and the
set of every secret it issued or accepted. Wire formats follow the measured behaviour of ShotGrid,
tk-core 0.24.0 and shotgun_api3 3.10.3 (see ``docs/local-site-contract.md``).

The package is split by concept: :mod:`.common` (constants, error codes, error types, response
helpers), :mod:`.state` (:class:`~.state.SiteState`: users, scripts, projects, sessions,
entities, journal), :mod:`.api3` (JSON-RPC), :mod:`.weblogin` (``/auth/renew`` and the identity
provider), :mod:`.app_session` (the app session launcher), :mod:`.rest` (``/api/v1``),
:mod:`.network` (servers, routing, dispatch), :mod:`.faults` (injected faults) and
:mod:`.localsite` (:class:`LocalSite`, all put together). The parts talk only through names
public within the package: the site's ``state`` (a :class:`~.state.SiteState`) and the
functions and types of :mod:`.common`, :mod:`.api3` (``authenticate_api3``), :mod:`.weblogin`
(``browser_login``), :mod:`.entities` (``update_entity``) and :mod:`.faults`; none reads
another's underscore names (``tests/test_architecture.py``).

Werkzeug is imported lazily, when a site starts: importing :mod:`sgconnect.testing` is cheap.
"""

from .common import (
    ERR_2FA,
    ERR_AUTH,
    ERR_FAULT,
    ERR_OXYG,
    ERR_PERMISSION,
    ERR_SSO,
    MODES,
    SERVER_VERSION,
    ForeignRequest,
)
from .config import SiteConfigError, load_site_config
from .faults import FAULT_KINDS, REDIRECT_STATUSES
from .localsite import LocalSite
from .proxy import ForwardProxy, ProxyRequest
from .state import (
    DEMO_PROJECTS,
    DEMO_SCRIPTS,
    DEMO_USERS,
    HumanUserSpec,
    JournalEntry,
    ScriptSpec,
)

__all__ = [
    "DEMO_PROJECTS",
    "DEMO_SCRIPTS",
    "DEMO_USERS",
    "ERR_2FA",
    "ERR_AUTH",
    "ERR_FAULT",
    "ERR_OXYG",
    "ERR_PERMISSION",
    "ERR_SSO",
    "FAULT_KINDS",
    "REDIRECT_STATUSES",
    "ForeignRequest",
    "ForwardProxy",
    "ProxyRequest",
    "MODES",
    "SERVER_VERSION",
    "HumanUserSpec",
    "JournalEntry",
    "LocalSite",
    "ScriptSpec",
    "SiteConfigError",
    "load_site_config",
]
