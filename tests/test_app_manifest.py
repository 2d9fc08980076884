"""The app's manifest (info.yml) agrees with the code, and the shipped hook adds nothing.

Pure checks, except the tk-core history check of ``requires_core_version``, which reads a tk-core
git checkout.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess

import pytest
import yaml
from fixtures.toolkit import CONFIG, REPO_ROOT, tk_core_checkout

from sgconnect.settings import Settings

INFO = yaml.safe_load((REPO_ROOT / "info.yml").read_text())
CONFIGURATION = INFO["configuration"]

#: info.yml's type for each Python type of a Settings field.
YAML_TYPES = {"bool": "bool", "str": "str", "float": "float", "int": "int"}

SETTINGS = {field.name: field for field in dataclasses.fields(Settings)}


def test_info_yml_describes_the_app():
    assert INFO["display_name"]
    assert INFO["description"]
    assert not INFO.get("supported_engines")  # empty or absent: every engine
    assert INFO["requires_core_version"] == "v0.20.29"


def test_hook_setting_is_a_hook_defaulting_to_the_shipped_file():
    hook = CONFIGURATION["hook_connection"]
    assert hook["type"] == "hook"
    assert hook["default_value"] == "{self}/connection.py"
    assert (REPO_ROOT / "hooks" / "connection.py").is_file()


def test_every_setting_is_declared_in_info_yml_and_back():
    declared = set(CONFIGURATION) - {"hook_connection"}
    assert declared == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_setting_default_and_type_match_info_yml(name):
    field, declared = SETTINGS[name], CONFIGURATION[name]
    python_type = field.type if isinstance(field.type, str) else field.type.__name__
    assert declared["type"] == YAML_TYPES[python_type]
    assert declared["default_value"] == field.default
    assert type(declared["default_value"]) is type(field.default)
    assert declared.get("description")


def test_shipped_hook_class_adds_nothing_to_the_base_class():
    """Standalone processes use ConnectionHook directly: the shipped hook must not differ."""
    tree = ast.parse((REPO_ROOT / "hooks" / "connection.py").read_text())
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert len(classes) == 1
    body = classes[0].body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    assert all(isinstance(node, ast.Pass) for node in body[1:])


def test_hook_doc_shows_the_tested_studio_hook_verbatim():
    """docs/hook.md's worked example is the file tests/test_app_engine.py runs."""
    doc = (REPO_ROOT / "docs" / "hook.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    studio_hook = (CONFIG / "hooks" / "studio_connection.py").read_text()
    assert studio_hook in blocks


def _git(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.tkcore
def test_requires_core_version_is_the_first_with_the_api_used():
    """tank.authentication.app_session_launcher.process(keep_waiting_callback=...) appeared in
    v0.20.29: the app's headless browser login needs it."""
    root, why = tk_core_checkout()
    if root is None:
        pytest.skip(f"LOUD SKIP: no tk-core checkout to read the history of: {why}")
    if _git(root, "rev-parse", "--verify", "-q", "v0.20.29^{commit}").returncode != 0:
        pytest.skip(f"LOUD SKIP: {root} is not a git checkout with tk-core's tags")
    path = "python/tank/authentication/app_session_launcher.py"
    current = _git(root, "show", f"v0.20.29:{path}")
    assert current.returncode == 0, current.stderr
    assert re.search(r"def process\([^)]*keep_waiting_callback", current.stdout, flags=re.S)
    # v0.20.28, the tag just before, has no such module.
    assert _git(root, "describe", "--tags", "--abbrev=0", "v0.20.29^").stdout.strip() == "v0.20.28"
    previous = _git(root, "show", f"v0.20.28:{path}")
    assert previous.returncode != 0 or "keep_waiting_callback" not in previous.stdout
