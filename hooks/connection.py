"""The default connection hook.

It keeps every documented default of the base class,
``python/sgconnect/base_hooks/connection.py`` (``ConnectionHook``): the credential chain, the
connections, the audit line. Copy this file into your configuration to start an override, and
chain it after this one::

    hook_connection: "{self}/connection.py:{config}/studio_connection.py"

Outside an engine, ``sgconnect.connect()`` uses the same defaults without loading this file (that
keeps tk-core out of the cached path); ``tests/test_app_manifest.py`` checks that it adds nothing.
"""

import sgtk

HookBaseClass = sgtk.get_hook_baseclass()


class DefaultConnectionHook(HookBaseClass):
    """Every method is the base class's: see ``ConnectionHook`` for what each does."""
