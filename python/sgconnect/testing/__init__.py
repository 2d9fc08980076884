"""Testing support: a local ShotGrid-like site (:class:`LocalSite`) and its pytest plugin.

Studios can test their own tools against it::

    from sgconnect.testing import LocalSite

    with LocalSite(mode="saml2") as site:
        ...

The pytest plugin (``sgconnect.testing.pytest_plugin``, registered as a ``pytest11`` entry point)
provides the ``local_site`` and ``make_local_site`` fixtures. Werkzeug is needed to start a site
(``pip install 'tk-multi-sgconnect[site]'``); importing this package does not import it.
"""

from .site import HumanUserSpec, JournalEntry, LocalSite, ScriptSpec

__all__ = ["HumanUserSpec", "JournalEntry", "LocalSite", "ScriptSpec"]
