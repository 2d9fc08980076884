"""The app's python folder, imported by tk-core as a package (Application.import_module)."""

from . import sgconnect  # noqa: F401
