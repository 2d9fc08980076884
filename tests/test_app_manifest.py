"""The app's manifest (info.yml) agrees with the code, and the shipped hook adds nothing.

Pure checks. ``requires_core_version`` is proven by running the app on it:
tests/test_deploy_floor.py and tests/test_bare_engine.py.
"""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest
import yaml
from fixtures.toolkit import CONFIG, REPO_ROOT

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
