"""The connection hook: the one place a studio decides who connects, and how.

Every hand-out (``sgconnect.connect()``, ``app.get_connection()``, ``rest_session()``...) goes
through the three methods of :class:`ConnectionHook`, called by :mod:`sgconnect.hook_runner`
(which checks what each returns, and raises :class:`~sgconnect.errors.HookError` naming the hook
file and the method when it cannot be used):

1. :meth:`ConnectionHook.resolve_credential`: who acts, on which site (the credential chain);
2. :meth:`ConnectionHook.create_connection` / :meth:`ConnectionHook.create_rest_session`: the
   connection made for that user and a tool's purpose;
3. :meth:`ConnectionHook.audit`: the record of each hand-out.

The app's ``hook_connection`` setting names the hook (default ``{self}/connection.py``). A studio
overrides it by inheritance from its configuration::

    # env/includes/settings/tk-multi-sgconnect.yml
    hook_connection: "{self}/connection.py:{config}/studio_connection.py"

.. code-block:: python

    # <config>/hooks/studio_connection.py
    import sgtk

    HookBaseClass = sgtk.get_hook_baseclass()


    class StudioConnection(HookBaseClass):
        def resolve_credential(self, site, interactive):
            if site and "staging" in site:
                errors = self.parent.sgconnect.errors
                raise errors.SiteForbiddenError(f"{site} is not for production tools", site)
            return super().resolve_credential(site, interactive)

        def create_connection(self, credential, purpose, interactive):
            sg = super().create_connection(credential, purpose, interactive)
            sg.add_user_agent("studio-pipeline/4.2")
            return sg

See ``docs/hook.md`` for the worked example and its test. This module holds the interface only;
the stand-ins for a process without an engine are in :mod:`sgconnect.standalone_hook`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Optional

from ..settings import Settings


@dataclass(frozen=True)
class HandOut:
    """The audit record of one hand-out. It never holds a secret.

    :ivar purpose: The tool's label, as given to ``connect(purpose)`` (validated: no control
        characters, so it cannot forge log lines).
    :ivar kind: ``"api3"`` for a shotgun_api3 connection, ``"rest"`` for a REST session.
    :ivar site: The site URL.
    :ivar login: The person the connection acts as (the sudo login in service mode).
    :ivar auth_method: ``session``, ``web``, ``sso`` or ``script``: tk-core's words (its
        ``ShotgunUser``, ``ShotgunWebUser``, ``ShotgunSamlUser``, a script user), decided from the
        session metadata tk-core saved, so the same in every process
        (:data:`sgconnect.credentials.AUTH_METHODS`).
    :ivar source: Where the credential came from: ``current_user``, ``handed_down``, ``saved``,
        ``fresh`` or ``service``.
    :ivar reused: ``True`` when this thread already had the connection (no new object).
    :ivar thread: The name of the thread it was handed to.
    :ivar script_name: In service mode, the script (ApiUser) that acts; else ``None``.
    :ivar sudo_as_login: In service mode, the person the script acts as; else ``None``.

    ``acting_as`` (the script name) is a deprecated alias of ``script_name`` for one release.
    """

    purpose: str
    kind: str
    site: str
    login: str
    auth_method: str
    source: str
    reused: bool
    thread: str
    script_name: Optional[str] = None
    sudo_as_login: Optional[str] = None

    @property
    def acting_as(self) -> Optional[str]:
        """Deprecated alias of :attr:`script_name` (one release)."""
        warnings.warn(
            "HandOut.acting_as is deprecated (it held the script name): use "
            "HandOut.script_name; HandOut.acting_as goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.script_name

    def message(self) -> str:
        """One log line: ``hand-out api3 purpose='publish' login=alice site=... via session``."""
        script = f" script={self.script_name}" if self.script_name else ""
        if self.script_name and not self.sudo_as_login:
            script += " as itself (no sudo_as_login)"
        reused = " reused" if self.reused else ""
        return (
            f"hand-out {self.kind}{reused} purpose={self.purpose!r} login={self.login}{script} "
            f"site={self.site} via {self.auth_method} ({self.source}) thread={self.thread}"
        )


class ConnectionHook:
    """Resolves the user, makes the connections and audits the hand-outs.

    The default behaviour is documented on each method. Override any of them in a hook that
    inherits from this class (see the module documentation); call ``super()`` to keep the default
    around your change.

    Inside an engine, ``self.parent`` is the app (``self.parent.get_setting(...)``) and
    ``self.logger`` the app's hook logger. In a standalone process ``self.parent`` is a small object
    with the same ``get_setting()``, reading ``SGCONNECT_<NAME>`` environment variables. In both,
    ``self.parent.sgconnect`` is the ``sgconnect`` package (for its ``errors``, ``chain``...).
    """

    @property
    def settings(self) -> Settings:
        """The app's settings (see ``info.yml``)."""
        cached = getattr(self, "_sgc_settings", None)
        if cached is None:
            cached = Settings.from_app(self.parent)  # type: ignore[attr-defined]
            self._sgc_settings = cached
        return cached

    def resolve_credential(self, site: Optional[str], interactive: bool) -> Any:
        """Return the credential connections to ``site`` act as.

        The default runs the credential chain (:func:`sgconnect.chain.resolve_credential`): the
        current sgtk user, a user handed down by a launcher, the saved session, then an interactive
        login or service mode.

        Called once per process and site (single flight, shared by all threads), through
        :mod:`sgconnect.hook_runner`, which checks what it returns.

        :param site: The normalised site URL, or ``None`` for the default site.
        :param interactive: Whether a login prompt may be shown.
        :returns: A :class:`sgconnect.credentials.Credential`. A tk-core ``ShotgunUser`` is
            accepted too: it is wrapped with :func:`sgconnect.credentials.credential_for_tk_user`.
        :raises sgconnect.errors.LoginRequiredError: Non-interactive and no session.
        :raises sgconnect.errors.SiteForbiddenError: (in a studio override) the site is refused.

        Example: only one site, whatever the tool asks::

            def resolve_credential(self, site, interactive):
                return super().resolve_credential(
                    "https://mystudio.shotgrid.autodesk.com", interactive
                )
        """
        from ..chain import resolve_credential

        return resolve_credential(site, interactive=interactive, settings=self.settings)

    def resolve_user(self, site: Optional[str], interactive: bool) -> Any:
        """Deprecated name of :meth:`resolve_credential` (one release).

        A studio hook that still overrides ``resolve_user`` keeps working: sgconnect calls its
        override, with a :class:`DeprecationWarning` naming the hook file. Rename the method to
        ``resolve_credential`` (and its ``super()`` call).
        """
        return ConnectionHook.resolve_credential(self, site, interactive)

    def create_connection(self, credential: Any, purpose: str, interactive: bool) -> Any:
        """Return a new shotgun_api3 connection acting as ``credential`` for ``purpose``.

        ``interactive`` says whether renewing an expired session may prompt (else the call raises
        :class:`~sgconnect.errors.LoginRequiredError`).

        Called once per thread, site and purpose: the result is cached for that thread, so what
        this method sets on the connection stays with that tool. The default makes a
        :class:`sgconnect.connection.SessionConnection` (renewed through tk-core on expiry) or,
        for a script credential, a :class:`sgconnect.connection.ScriptConnection`, with the
        ``timeout_secs`` and ``http_proxy`` settings.

        Example: tag every request with the studio's user agent::

            def create_connection(self, credential, purpose, interactive):
                sg = super().create_connection(credential, purpose, interactive)
                sg.add_user_agent("studio-pipeline/4.2")
                return sg
        """
        from ..connection import create_connection
        from ..transport.proxies import check_ca_bundle, proxy_for

        settings = self.settings
        check_ca_bundle(credential.site)  # a missing SHOTGUN_API_CACERTS is named, not "the URL"
        # the one proxy rule: the http_proxy setting, else the environment's, with NO_PROXY
        proxy = proxy_for(credential.site, settings.http_proxy or None)
        return create_connection(
            credential,
            interactive=interactive,
            http_proxy=proxy.api3() if proxy is not None else None,
            timeout_secs=settings.timeout_secs or None,
        )

    def create_rest_session(self, credential: Any, purpose: str, interactive: bool) -> Any:
        """Return a new REST API session acting as ``credential`` for ``purpose``.

        The default makes a :class:`sgconnect.rest.RestSession`, which mints its Bearer token
        from the session (or from the script key in service mode) and keeps it private.
        """
        from ..rest import RestSession

        settings = self.settings
        return RestSession(
            credential,
            interactive=interactive,
            http_proxy=settings.http_proxy or None,
            timeout_secs=settings.timeout_secs or None,
        )

    def audit(self, record: HandOut) -> None:
        """Record one hand-out. The default logs :meth:`HandOut.message` at INFO.

        Example: also send it to the studio's audit service (keep it fast: this runs on every
        call, including cached hand-outs)::

            def audit(self, record):
                super().audit(record)
                if not record.reused:
                    studio_audit.send(dataclasses.asdict(record))
        """
        logger = self.logger  # type: ignore[attr-defined]
        if logger.isEnabledFor(logging.INFO):
            logger.info(record.message())
