"""The :class:`LocalSite` class: every part of the site put together."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from .api3 import Api3Mixin
from .app_session import AppSessionMixin, _AppSessionRequest
from .common import MODES, ForeignRequest
from .entities import EntitiesMixin
from .faults import FaultsMixin, _Fault
from .files import FilesMixin
from .network import NetworkMixin
from .rest import RestMixin
from .state import (
    DEMO_PROJECTS,
    DEMO_SCRIPTS,
    DEMO_USERS,
    HumanUserSpec,
    JournalEntry,
    ScriptSpec,
    StateMixin,
    _RestToken,
    _Session,
)
from .weblogin import WebLoginMixin


class LocalSite(
    StateMixin,
    EntitiesMixin,
    FilesMixin,
    Api3Mixin,
    WebLoginMixin,
    AppSessionMixin,
    RestMixin,
    FaultsMixin,
    NetworkMixin,
):
    """A ShotGrid-like site on 127.0.0.1, for tests, demos and ``sgconnect site``.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalSite(mode="saml2") as site:
            sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))

    Every password and key is random per instance. All shared state is guarded by one lock, so
    the site can be hit from many threads at once.
    """

    def __init__(
        self,
        mode: str = "default",
        *,
        app_session_launcher: bool = True,
        unified_login_flow: bool = False,
        session_lifetime: float = 3600,
        claims_lifetime: float = 3600,
        rest_token_lifetime: int = 600,
        app_session_request_lifetime: float = 300,
        users: Optional[Iterable[HumanUserSpec]] = None,
        scripts: Optional[Iterable[ScriptSpec]] = None,
        projects: Optional[Iterable[str]] = None,
        api_max_entities_per_page: int = 500,
        port: int = 0,
        tls: bool = False,
        latency: float = 0.0,
        keep_alive_timeout: float = 60.0,
        approval_sign_in: str = "page",
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.app_session_launcher = app_session_launcher
        self.unified_login_flow = unified_login_flow
        self.session_lifetime = float(session_lifetime)
        self.claims_lifetime = float(claims_lifetime)
        self.rest_token_lifetime = int(rest_token_lifetime)
        self.app_session_request_lifetime = float(app_session_request_lifetime)
        self.api_max_entities_per_page = int(api_max_entities_per_page)
        #: The site's port (0: any free port); the identity provider always takes a free one.
        self.port = int(port)
        #: What the app session approval page does for a browser with no site session:
        #: ``"redirect"`` (a real site: 302 to ``/user/login?return_path=...``, then back) or
        #: ``"page"`` (a 401 page linking to ``/auth/renew``; the default until
        #: ``sgconnect demo``'s simulated browser follows the redirect).
        if approval_sign_in not in ("redirect", "page"):
            raise ValueError("approval_sign_in must be 'redirect' or 'page'")
        self.approval_sign_in = approval_sign_in
        #: Serve HTTPS with a certificate from a throw-away CA (:attr:`ca_path`).
        self.tls = bool(tls)
        #: Seconds of injected round-trip time: once per TCP handshake, once more per TLS
        #: handshake, once per reply (on every origin).
        self.latency = float(latency)
        #: Seconds an idle keep-alive connection stays open before the site closes it.
        self.keep_alive_timeout = float(keep_alive_timeout)
        if self.latency < 0 or self.keep_alive_timeout <= 0:
            raise ValueError("latency must be >= 0 and keep_alive_timeout > 0 (seconds)")

        self._lock = threading.RLock()
        self._secrets: Set[str] = set()
        self._journal: List[JournalEntry] = []
        self._mint_count = 0

        self._users: Dict[str, HumanUserSpec] = {}
        self._user_fields: Dict[str, Dict[str, Any]] = {}
        self._entities: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self._retired: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self._last_accessed: Dict[Tuple[str, int], str] = {}
        self._files: Dict[int, Tuple[bytes, str, str]] = {}
        self._passwords: Dict[str, str] = {}
        self._2fa: Dict[str, str] = {}
        for spec in DEMO_USERS if users is None else users:
            self._add_user(spec)
        self._scripts: Dict[str, ScriptSpec] = {}
        self._keys: Dict[str, str] = {}
        for n, spec in enumerate(DEMO_SCRIPTS if scripts is None else scripts):
            self._add_script(spec, default_id=101 + n)
        self._projects: List[Dict[str, Any]] = []
        for name in DEMO_PROJECTS if projects is None else projects:
            self._add_project(name)

        self._sessions: Dict[str, _Session] = {}
        self._rest_tokens: Dict[str, _RestToken] = {}
        self._refresh_tokens: Dict[str, _RestToken] = {}
        self._app_requests: Dict[str, _AppSessionRequest] = {}
        self._idp_sessions: Dict[str, str] = {}
        self._idp_tickets: Dict[str, Tuple[str, float]] = {}

        self._faults: List[_Fault] = []
        self._stopping = threading.Event()

        self._servers: List[Any] = []
        self._threads: List[threading.Thread] = []
        self._url: Optional[str] = None
        self._idp_url: Optional[str] = None
        self._foreign_url: Optional[str] = None
        self._foreign_journal: List[ForeignRequest] = []
        self._ca_path: Optional[str] = None
        self._tls_dir: Any = None

    def __repr__(self) -> str:
        return f"LocalSite(mode={self.mode!r}, url={self._url!r})"
