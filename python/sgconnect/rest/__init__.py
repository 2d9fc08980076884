"""REST API sessions: ShotGrid's ``/api/v1`` with a private, single-flight-minted Bearer token.

.. code-block:: python

    rest = sgconnect.rest_session("asset-report")
    rest.get("/entity/projects", params={"page[size]": 50})

By concept:

- :mod:`sgconnect.rest.urls`: paths confined to the site's ``/api/v1``;
- :mod:`sgconnect.rest.tokens`: the Bearer and refresh tokens a credential owns;
- :mod:`sgconnect.rest.session`: :class:`RestSession`, the calls, the grants and the error text.

Proxies and TLS are :mod:`sgconnect.transport`'s (``proxy_url`` and ``ssl_context`` are
re-exported here for existing callers).
"""

from ..transport import proxy_url, ssl_context
from .session import AUTH_ERROR_CODE, RestSession
from .tokens import (
    DEFAULT_EXPIRES_IN,
    EXPIRY_MARGIN_FRACTION,
    MAX_EXPIRY_MARGIN_SECS,
    expires_in,
    expiry_margin,
)
from .urls import API_ROOT, TOKEN_PATH, resolve_url

__all__ = [
    "RestSession",
    "resolve_url",
    "proxy_url",
    "ssl_context",
    "expires_in",
    "expiry_margin",
    "API_ROOT",
    "TOKEN_PATH",
    "AUTH_ERROR_CODE",
    "DEFAULT_EXPIRES_IN",
    "EXPIRY_MARGIN_FRACTION",
    "MAX_EXPIRY_MARGIN_SECS",
]
