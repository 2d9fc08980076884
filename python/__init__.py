"""The app's python folder, imported by tk-core as a package (Application.import_module).

tk-core imports this folder under a new name each time (``tkimp<uuid>``), so the app's package
would be ``tkimp<uuid>.sgconnect``: a second copy of sgconnect beside any ``sgconnect`` a tool
imports, with its own error classes (``except sgconnect.SgConnectError`` would not catch the
app's errors) and no ``import sgconnect`` at all where the package is not pip-installed. Here the
process gets **one** sgconnect (see :func:`_one_sgconnect`):

1. **None installed** (``import sgconnect`` would fail): the app's copy becomes the process's
   ``sgconnect``: registered in ``sys.modules`` under ``sgconnect``, and a finder makes every
   ``sgconnect.<submodule>`` the copy's module (never a second load of the same file).
2. **One installed, or already imported, of the app's version**: the app uses that package
   itself (no copy is loaded): one set of modules, one state, one set of errors.
3. **One installed of another version**: the app loads its own copy (its hook interface is the
   app's), but the copy's ``errors`` module *is* the installed one, when the installed module
   defines every error the copy's names; the classes are then the same. Otherwise the copy keeps
   its own errors and a warning says that ``except sgconnect.<Error>`` will not catch the app's
   errors until the versions match.

Only the package's version and error names are compared: no secret, no network.
"""

import ast
import importlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_COPY = os.path.join(_HERE, "sgconnect")
_logger = logging.getLogger("sgconnect.app")


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``sgconnect.<name>`` the module ``<copy>.<name>`` (the same object)."""

    def __init__(self, copy_name):
        self.copy_name = copy_name

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("sgconnect."):
            return None
        copy = sys.modules.get("sgconnect")
        if copy is None or copy.__name__ != self.copy_name:
            return None  # the alias is gone (a reset, another sgconnect): stand aside
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(self.copy_name + spec.name[len("sgconnect") :])

    def exec_module(self, module):
        """The copy's module is already executed."""


def _source_version(package_dir):
    """``__version__`` of a package's ``__init__.py``, read without importing it."""
    try:
        with open(os.path.join(package_dir, "__init__.py"), encoding="utf-8") as handle:
            found = re.search(r"^__version__\s*=\s*[\"']([^\"']+)", handle.read(), re.M)
    except OSError:
        return None
    return found.group(1) if found else None


def _error_names(package_dir):
    """The names in ``errors.py``'s ``__all__``, read without importing it."""
    with open(os.path.join(package_dir, "errors.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def _installed():
    """The process's ``sgconnect`` when one is imported or importable, else ``None``."""
    module = sys.modules.get("sgconnect")
    if module is not None:
        return module
    saved = list(sys.path)
    # tk-core puts this folder first on sys.path while it runs this file: look past it.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    try:
        spec = importlib.util.find_spec("sgconnect")
        if spec is None or not spec.origin:
            return None
        if os.path.dirname(os.path.abspath(spec.origin)) == _COPY:
            return None  # this very folder, reached another way: treat as none installed
        return importlib.import_module("sgconnect")
    except ImportError:
        return None
    finally:
        sys.path[:] = saved


def _adopt_as_sgconnect(copy):
    """Case 1: the app's copy is the process's ``sgconnect``."""
    sys.modules["sgconnect"] = copy
    prefix = copy.__name__ + "."
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix) and module is not None:
            sys.modules.setdefault("sgconnect." + name[len(prefix) :], module)
    if not any(isinstance(f, _AliasFinder) and f.copy_name == copy.__name__ for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder(copy.__name__))


def _one_sgconnect():
    """Import the app's package so that the process has one sgconnect; return it."""
    copy_name = __name__ + ".sgconnect"
    installed = _installed()
    if installed is None:
        copy = importlib.import_module(copy_name)
        _adopt_as_sgconnect(copy)
        return copy
    if getattr(installed, "__version__", None) == _source_version(_COPY):
        sys.modules[copy_name] = installed
        return installed
    installed_errors = importlib.import_module("sgconnect.errors")
    missing = _error_names(_COPY) - set(dir(installed_errors))
    if missing:
        _logger.warning(
            "sgconnect %s is installed in this Python, the app carries %s, and the installed "
            "one lacks %s: `except sgconnect.<Error>` will not catch the app's errors. Install "
            "the app's version (pip install tk-multi-sgconnect==%s).",
            getattr(installed, "__version__", "?"),
            _source_version(_COPY),
            ", ".join(sorted(missing)),
            _source_version(_COPY),
        )
    else:
        sys.modules[copy_name + ".errors"] = installed_errors
    return importlib.import_module(copy_name)


sgconnect = _one_sgconnect()
