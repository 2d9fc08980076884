"""docs/architecture.md stays the map of the code, and modules keep to their own private names.

- Every module of ``python/sgconnect`` is listed in the module table, and every listed one exists.
- The ``connect()`` drawing names real files, and every module a real ``connect()`` + ``find()``
  runs code in (profiled against the local site) is drawn.
- No module reads another module's private (``_``-prefixed) names.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

import sgconnect
from sgconnect.testing import save_session

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "python" / "sgconnect"
DOC = REPO / "docs" / "architecture.md"
#: Owned and documented as one entry (the local site's own layout is its package's business).
WHOLE_DIRECTORIES = ("testing",)

#: Private names of other projects that sgconnect deliberately uses, with the reason.
FOREIGN_PRIVATE_NAMES = {
    "_get_certs_file": "shotgun_api3's CA bundle rule (SHOTGUN_API_CACERTS, else its own bundle)",
    "_GLOBAL_DEFAULT_TIMEOUT": "the socket module's 'no timeout given' value",
    "_user_agents": "shotgun_api3's User-Agent list, which its _make_call joins into the header",
}


def modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] not in WHOLE_DIRECTORIES:
            found.add(relative)
    return found | {f"{name}/" for name in WHOLE_DIRECTORIES}


def table_entries() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Modules (`python/sgconnect/`)", 1)[1].split("\n## ", 1)[0]
    entries = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            entries.update(re.findall(r"`([^`]+)`", first_cell))
    return entries


def drawn_files() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    drawing = text.split("```\ntool code", 1)[1].split("```", 1)[0]
    return set(re.findall(r"[\w/]+\.py", drawing))


def test_the_module_table_lists_every_module_and_only_real_ones():
    listed, real = table_entries(), modules()
    assert sorted(real - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - real) == [], "docs/architecture.md lists modules that do not exist"


def test_the_connect_drawing_names_real_files():
    drawn = drawn_files()
    assert drawn, "no file named in the connect() drawing"
    assert sorted(drawn - modules()) == []


@pytest.mark.tkcore
def test_every_module_a_connect_call_runs_is_drawn(local_site):
    save_session(local_site, "alice")
    for module in sorted(modules()):  # imported first: module code is not part of the call
        if module.endswith(".py") and module not in ("__main__.py", "demo.py"):
            name = module[: -len(".py")].replace("/", ".").removesuffix(".__init__")
            importlib.import_module(f"sgconnect.{name}" if name != "__init__" else "sgconnect")
    ran: set[str] = set()
    root = str(PACKAGE) + "/"

    def profile(frame, event, arg):
        filename = frame.f_code.co_filename
        if event == "call" and filename.startswith(root):
            ran.add(filename[len(root) :])

    sys.setprofile(profile)
    try:
        sg = sgconnect.connect("architecture", local_site.url, interactive=False)
        sg.find("Project", [], ["name"])
    finally:
        sys.setprofile(None)

    ran = {name for name in ran if name.split("/")[0] not in WHOLE_DIRECTORIES}
    assert {"handouts.py", "chain.py", "connection.py", "auth_flow.py"} <= ran
    assert sorted(ran - drawn_files()) == [], "modules a connect() ran, missing from the drawing"


def _private_reads(path: Path) -> list[str]:
    """``x._name`` where ``_name`` is defined nowhere in ``path`` (so it is another module's)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            own.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            own.add(node.value)  # __slots__ entries
        elif isinstance(node, ast.arg):
            own.add(node.arg)
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
        for name in names:
            private = name.startswith("_") and not name.startswith("__")
            if private and name not in own and name not in FOREIGN_PRIVATE_NAMES:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}")
    return found


def test_no_module_reads_another_modules_private_names():
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in _private_reads(path)]
    assert found == []


def test_the_private_name_scan_sees_a_read_of_another_modules_private_name(tmp_path):
    sample = PACKAGE / "_architecture_probe.py"
    try:
        sample.write_text("from . import chain\n\nchain._HANDED_DOWN.clear()\n", encoding="utf-8")
        assert _private_reads(sample) == ["_architecture_probe.py:3: _HANDED_DOWN"]
    finally:
        sample.unlink()
