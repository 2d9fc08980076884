"""tk-multi-sgconnect: hands out authenticated ShotGrid connections inside any engine."""

import importlib
import os

import sgtk


class SgConnectApp(sgtk.platform.Application):
    """The Toolkit face of ``sgconnect``: the same chain and hook as standalone code.

    Tools call :meth:`get_connection` or :meth:`get_rest_session`; they never see a credential.
    """

    def init_app(self):
        """Check tk-core and Python, load the package, build the hook and register the commands.

        :raises sgconnect.errors.SgConnectError: tk-core or Python is older than info.yml declares
            (tk-core logs it and starts the engine without this app).
        """
        self.sgconnect = self.import_module("sgconnect")
        with open(os.path.join(self.disk_location, "info.yml")) as info:
            self._submodule("app_commands").check_requirements(info.read(), self.sgtk.version)
        base_hooks = self._submodule("base_hooks")
        hook = self.create_hook_instance(
            self.get_setting("hook_connection"),
            base_class=base_hooks.tk_connection_hook_class(),
        )
        self.sgconnect_broker = self._submodule("handouts").Broker(hook)
        commands = self._submodule("app_commands")
        self.engine.register_command(
            "Who am I",
            lambda: commands.show_who_am_i(self),
            {"short_name": "sgconnect_whoami", "description": "Who ShotGrid connections act as."},
        )
        self.engine.register_command(
            "Switch user...",
            lambda: commands.switch_user(self),
            {"short_name": "sgconnect_switch_user", "description": "Log out, then log in again."},
        )

    def _submodule(self, name):
        return importlib.import_module(f"{self.sgconnect.__name__}.{name}")

    def get_connection(self, purpose, site=None):
        """This thread's shotgun_api3 connection for ``purpose`` (a tool's label).

        :param str purpose: What the connection is for, e.g. ``"maya publish"`` (audited).
        :param str site: Another site than the current one, or ``None``.
        """
        return self.sgconnect_broker.connection(purpose, site)

    def get_rest_session(self, purpose, site=None):
        """This thread's REST API session for ``purpose``."""
        return self.sgconnect_broker.rest_session(purpose, site)

    @property
    def current_user(self):
        """Who connections act as: login, name, site, auth method, expiry. Never a secret."""
        return self.sgconnect_broker.current_user(with_name=True)

    def destroy_app(self):
        """Forget every credential and hand-out."""
        broker = getattr(self, "sgconnect_broker", None)
        if broker is not None:
            broker.forget()
