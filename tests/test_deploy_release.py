"""Deployment: one version everywhere, install lines that work as written, LICENSE, CHANGELOG.

The README's install line and git descriptor name the release tag ``v<version>``; the version is
the same in pyproject.toml, ``sgconnect.__version__`` and the CHANGELOG's newest release. No doc
tells anyone to ``pip install tk-multi-sgconnect`` from an index (it is on none).
"""

from __future__ import annotations

import re

import pytest
import yaml
from fixtures.toolkit import REPO_ROOT

import sgconnect

README = (REPO_ROOT / "README.md").read_text()
PYPROJECT = (REPO_ROOT / "pyproject.toml").read_text()
VERSION = re.search(r'^version = "([^"]+)"', PYPROJECT, flags=re.M).group(1)
TAG = f"v{VERSION}"
PLACEHOLDER = "https://github.com/YOUR-ORG/tk-multi-sgconnect"


def readme_block(name: str) -> str:
    block = re.search(rf"<!-- {name} -->\n```\w*\n(.*?)```\n<!-- /{name} -->", README, flags=re.S)
    assert block, f"README.md has no <!-- {name} --> block"
    return block.group(1)


def documents():
    yield REPO_ROOT / "README.md"
    yield from sorted((REPO_ROOT / "docs").rglob("*.md"))
    # The messages of the package (sgconnect.testing's own docstrings are its owners' to fix).
    yield from sorted((REPO_ROOT / "python" / "sgconnect").glob("*.py"))


def test_one_version_everywhere():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert sgconnect.__version__ == VERSION
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\d+\.\d+\.\d+)\b", changelog, flags=re.M)
    assert releases and releases[0] == VERSION


def test_readme_pip_line_installs_the_tag_from_git():
    assert f'pip install "tk-multi-sgconnect @ git+{PLACEHOLDER}@{TAG}"' in README


def test_no_doc_installs_from_an_index():
    from_index = re.compile(r"pip install ['\"]?tk-multi-sgconnect(\[\w+\])?['\"]?(?!\s*@)")
    for path in documents():
        for line in path.read_text().splitlines():
            assert not from_index.search(line), f"{path.relative_to(REPO_ROOT)}: {line.strip()}"


def test_git_descriptor_names_the_tag():
    environment = yaml.safe_load(readme_block("git-descriptor"))
    location = environment["apps"]["tk-multi-sgconnect"]["location"]
    assert location == {"type": "git", "path": f"{PLACEHOLDER}.git", "version": TAG}


@pytest.mark.tkcore
def test_git_descriptor_is_one_tk_core_accepts():
    from tank.descriptor import descriptor_dict_to_uri, descriptor_uri_to_dict

    location = yaml.safe_load(readme_block("git-descriptor"))["apps"]["tk-multi-sgconnect"][
        "location"
    ]
    uri = descriptor_dict_to_uri(location)
    assert uri.startswith("sgtk:descriptor:git?")
    assert descriptor_uri_to_dict(uri) == location


def test_license_is_the_apache_2_text():
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "9. Accepting Warranty or Additional Liability." in text
    assert 'license = { text = "Apache-2.0" }' in PYPROJECT


def test_docs_extra_builds_the_api_reference():
    assert re.search(r'^docs = \["sphinx', PYPROJECT, flags=re.M)
    index = (REPO_ROOT / "docs" / "api" / "index.rst").read_text()
    assert "sgconnect" in index
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "sphinx -W" in ci and "docs/api" in ci
