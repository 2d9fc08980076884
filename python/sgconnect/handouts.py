"""Hand-outs: one connection per thread, site and purpose, through the hook, audited.

shotgun_api3 connections are not thread-safe, so each thread gets its own. A tool asking again on
the same thread gets the same object back (cheap: a dict lookup and the audit record), and two
tools (two purposes) never share one, so what one sets on its connection never bleeds into the
other's. Credentials are shared process-wide per site, so a renewal on one thread serves all.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Optional

from . import hook_runner
from .base_hooks.connection import HandOut
from .chain import default_site, is_interactive
from .credentials import Credential, SessionCredential, UserInfo
from .sites import normalize_site, validate_purpose

#: Site spellings remembered per broker (a bound: a tool looping over odd spellings).
_MAX_SITE_SPELLINGS = 256
#: Proxy variables: with one set, no socket is opened ahead (the proxy rule decides the route).
PROXY_ENVIRONMENT = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
#: Hand-outs kept per thread (least recently used first out): a tool minting purposes in a loop
#: cannot grow a thread's cache without bound. The sockets are shared per thread and site
#: (:mod:`sgconnect.transport.api3`), so an evicted hand-out costs no connection.
MAX_HANDOUTS_PER_THREAD = 64


class Broker:
    """Hands out connections made by one hook instance.

    :param hook: A :class:`~sgconnect.base_hooks.ConnectionHook` instance.
    """

    def __init__(self, hook: Any):
        self.hook = hook
        self._lock = threading.Lock()
        self._credentials: dict[Optional[str], Credential] = {}
        self._resolving: dict[Optional[str], threading.Lock] = {}
        self._generation = 0
        self._local = threading.local()
        self._site_keys: dict[str, str] = {}

    # -- hand-outs --------------------------------------------------------------------------------

    def connection(
        self, purpose: str, site: Optional[str] = None, interactive: Optional[bool] = None
    ) -> Any:
        """This thread's shotgun_api3 connection for ``purpose`` on ``site``."""
        return self._hand_out("api3", hook_runner.create_connection, purpose, site, interactive)

    def rest_session(
        self, purpose: str, site: Optional[str] = None, interactive: Optional[bool] = None
    ) -> Any:
        """This thread's REST session for ``purpose`` on ``site``."""
        return self._hand_out("rest", hook_runner.create_rest_session, purpose, site, interactive)

    def _hand_out(
        self,
        kind: str,
        create: Callable[[Any, Credential, str, bool], Any],
        purpose: str,
        site: Optional[str],
        interactive: Optional[bool],
    ) -> Any:
        purpose = validate_purpose(purpose)
        # One key per site, however it was written (``url`` and ``url + "/"`` share a connection).
        site = self._site_key(site)
        cache = self._thread_cache()
        # Whether renewal may prompt is part of the key: a connection keeps the policy it was made
        # with, and asking with another policy gets another connection.
        may_prompt = is_interactive(interactive, self.hook.settings)
        key = (kind, site, purpose, may_prompt)
        entry = cache.get(key)
        reused = entry is not None and entry[0] == self._generation
        if reused:
            credential, handed = entry[1], entry[2]
            cache.move_to_end(key)
        else:
            credential = self.credential(site, may_prompt)
            if kind == "api3":
                self._preconnect(credential.site)
            handed = create(self.hook, credential, purpose, may_prompt)
            cache[key] = (self._generation, credential, handed)
            cache.move_to_end(key)
            while len(cache) > MAX_HANDOUTS_PER_THREAD:
                cache.popitem(last=False)
        hook_runner.audit(
            self.hook,
            HandOut(
                purpose=purpose,
                kind=kind,
                site=credential.site,
                login=credential.person_login,
                auth_method=credential.auth_method,
                source=credential.source,
                reused=reused,
                thread=threading.current_thread().name,
                script_name=credential.script_name,
                sudo_as_login=credential.sudo_as_login,
            ),
        )
        return handed

    def _preconnect(self, site: str) -> None:
        """Open this thread's socket to ``site`` while the connection is being made (see
        :func:`sgconnect.transport.api3.preconnect`); not through a proxy."""
        settings = self.hook.settings
        if getattr(settings, "http_proxy", "") or any(
            os.environ.get(name) for name in PROXY_ENVIRONMENT
        ):
            return
        from .transport import api3

        api3.preconnect(site, getattr(settings, "timeout_secs", None))

    def _site_key(self, site: Optional[str]) -> Optional[str]:
        """``site`` normalised, remembered per spelling (the cached path stays a dict lookup)."""
        if site is None:
            return None
        if not isinstance(site, str):
            return normalize_site(site)  # raises InvalidSiteError, naming the type
        key = self._site_keys.get(site)
        if key is None:
            key = normalize_site(site)
            if len(self._site_keys) < _MAX_SITE_SPELLINGS:
                self._site_keys[site] = key
        return key

    def _thread_cache(self) -> OrderedDict:
        try:
            return self._local.handed
        except AttributeError:
            self._local.handed = OrderedDict()
            return self._local.handed

    # -- credentials ----------------------------------------------------------------------------

    def credential(
        self, site: Optional[str] = None, interactive: Optional[bool] = None
    ) -> Credential:
        """The credential for ``site``, resolved once per process (single flight)."""
        key = normalize_site(site) if site is not None else None
        credential = self._credentials.get(key)
        if credential is not None:
            return credential
        if key is None:
            # The default site may be one this process already resolved by name.
            key = default_site()
            credential = self._credentials.get(key)
            if credential is not None:
                return credential
        with self._lock:
            resolving = self._resolving.setdefault(key, threading.Lock())
        with resolving:
            credential = self._credentials.get(key)
            if credential is None:
                credential = hook_runner.resolve_credential(
                    self.hook, key, is_interactive(interactive, self.hook.settings)
                )
                self._renews_by_settings(credential)
                with self._lock:
                    self._credentials[key] = credential
                    self._credentials.setdefault(credential.site, credential)
        return credential

    def current_user(
        self,
        site: Optional[str] = None,
        interactive: Optional[bool] = None,
        *,
        with_name: bool = False,
    ) -> UserInfo:
        """Who connections to ``site`` act as (resolving the credential if needed).

        :param with_name: Also read the person's display name from the site (one request, made
            once per credential).
        """
        credential = self.credential(site, interactive)
        if with_name and credential.name is None:
            entity, field, value = credential.user_entity()
            found = self.connection("sgconnect whoami", credential.site, interactive).find_one(
                entity, [[field, "is", value]], ["name"]
            )
            credential.name = (found or {}).get("name")
        return credential.info()

    def adopt(self, credential: Credential) -> None:
        """Use ``credential`` for its site from now on (after a login or a user switch).

        Every other credential and hand-out is dropped first, as by :meth:`forget`.
        """
        self._renews_by_settings(credential)
        with self._lock:
            self._credentials.clear()
            self._generation += 1
            self._credentials[credential.site] = credential

    def _renews_by_settings(self, credential: Credential) -> None:
        """A session renews by this broker's ``login_method`` setting (see
        :mod:`sgconnect.renewal`)."""
        if isinstance(credential, SessionCredential):
            credential.login_method = self.hook.settings.login_method

    def credentials(self) -> dict[Optional[str], Credential]:
        """The credentials resolved so far, by the site they were asked for (a copy)."""
        with self._lock:
            return dict(self._credentials)

    def forget(self) -> None:
        """Drop every credential and hand-out (after a logout or a user switch).

        Connections already handed out keep working with the credential they have; the next
        hand-out on any thread resolves the user again.
        """
        with self._lock:
            self._credentials.clear()
            self._generation += 1
