"""tk-multi-sgconnect: hands out authenticated ShotGrid connections inside any engine."""

import importlib
import os
import re
import sys

import sgtk


class RequirementError(sgtk.TankError):
    """This tk-core or Python is older than info.yml declares."""


def _manifest_value(info_yml, key):
    """A top-level scalar of info.yml, read without a YAML parser (a bare DCC Python has none)."""
    match = re.search(rf"^{key}:[ \t]*[\"']?([^\"'\s#]*)", info_yml, flags=re.M)
    return match.group(1) if match and match.group(1) else None


def _version_tuple(version):
    """``"v0.20.29"`` -> ``(0, 20, 29)``; None for what is not a release (HEAD, a commit, dev)."""
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def check_requirements(info_yml, core_version, python_version=sys.version_info):
    """Refuse to start on a tk-core or Python older than info.yml declares.

    tk-core checks ``requires_core_version`` and ``minimum_python_version`` only when it installs
    or updates the app, never when an engine starts it: the app checks both in ``init_app``.
    A core that is not a release (``HEAD`` in a git checkout, a commit) is accepted.

    Runs before the ``sgconnect`` package is imported, so that an old Python gets this message
    rather than a SyntaxError; this file keeps to syntax every Python from 3.6 reads.

    :param info_yml: The text of the app's info.yml.
    :param core_version: The running tk-core's version (``sgtk.version``), e.g. ``"v0.23.6"``.
    :param python_version: The running Python, as ``sys.version_info``.
    :raises RequirementError: One of them is too old; the message names what to change.
    """
    minimum_python = _manifest_value(info_yml, "minimum_python_version")
    if minimum_python and tuple(python_version[:2]) < _version_tuple(minimum_python):
        running = ".".join(str(part) for part in python_version[:3])
        raise RequirementError(
            f"tk-multi-sgconnect needs Python {minimum_python} or newer; this engine runs "
            f"Python {running}. Use a newer release of the DCC, or an older release of the app."
        )
    floor = _manifest_value(info_yml, "requires_core_version")
    running_core = _version_tuple(core_version)
    if floor and running_core is not None and running_core < _version_tuple(floor):
        raise RequirementError(
            f"tk-multi-sgconnect needs tk-core {floor} or newer; this configuration runs "
            f"{core_version}. Update the configuration's core (core/core_api.yml, or `tank core`)."
        )


class SgConnectApp(sgtk.platform.Application):
    """The Toolkit face of ``sgconnect``: the same chain and hook as standalone code.

    Tools call :meth:`get_connection` or :meth:`get_rest_session`; they never see a credential.
    """

    def init_app(self):
        """Check tk-core and Python, load the package, build the hook and register the commands.

        :raises RequirementError: tk-core or Python is older than info.yml declares
            (tk-core logs it and starts the engine without this app).
        """
        with open(os.path.join(self.disk_location, "info.yml")) as info:
            check_requirements(info.read(), self.sgtk.version)
        self.sgconnect = self.import_module("sgconnect")
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
