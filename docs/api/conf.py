"""Sphinx configuration of the API reference (built by .ci/run with warnings as errors).

Build: ``pip install -e '.[docs]' && sphinx-build -W -b html docs/api build/api``.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python")))

project = "tk-multi-sgconnect"
author = "tk-multi-sgconnect contributors"
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Not needed to read the signatures and docstrings; absent in a docs-only venv.
autodoc_mock_imports = ["sgtk", "tank"]
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
