"""The layers of docs/architecture.md, checked on the source: every import of every module of
cardctl, read with ``ast`` — at the top, inside a function (a lazy import) and under
``if TYPE_CHECKING:`` alike, since each is a dependency a reader has to follow.

- Only cardctl/storage/ talks to the database library: no module outside it imports
  SQLAlchemy, Alembic or psycopg. The composition root, services/context.py, opens
  ``storage.db.Database`` and needs none of them itself, so nothing is exempt (``SQL_EXEMPT``).
- The layers: domain imports no services, storage, cli or render; services import no cli or
  render, and no table (storage/tables.py: a use case calls stores); storage imports no
  services or cli; render imports no services, storage or cli.
- No import cycle between cardctl modules, lazy imports counted.

``PENDING`` lists known violations while they are being fixed (none today). The test fails on
any violation not listed, and on any listed one that is gone, so the list cannot rot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cardctl"
DATABASE_LIBRARIES = {"sqlalchemy", "alembic", "psycopg", "psycopg2"}
SQL_EXEMPT: frozenset[str] = frozenset()  # the modules outside storage/ allowed a database library

# layer -> the layers it must not import (docs/architecture.md, "What each layer may import")
FORBIDDEN = {
    "base": {"services", "cli", "render"},
    "domain": {"services", "storage", "cli", "render"},
    "services": {"cli", "render"},
    "storage": {"services", "cli"},
    "render": {"services", "storage", "cli"},
}
# the storage modules that are SQL itself: a use case calls stores instead
SQL_MODULES = {"cardctl.storage.tables", "cardctl.storage.models"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """cli, render, services, storage or domain; "base" for the shared modules at the top
    (errors, i18n, config, clock, keys, ...), which every layer may import; "entry" for
    ``python -m cardctl``."""
    if module == "cardctl.__main__":
        return "entry"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and module in PACKAGES) else "base"


PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def imports(module: str) -> set[str]:
    """What ``module`` imports anywhere in its source: cardctl modules by name, other
    distributions by their top-level name."""
    path = MODULES[module]
    package = module if module in PACKAGES else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_resolve(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else _resolve(target))
    return found


def _resolve(name: str) -> str:
    """The longest cardctl module that ``name`` names, or the top-level name of a distribution."""
    if name.split(".")[0] != "cardctl":
        return name.split(".")[0]
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


GRAPH = {module: imports(module) for module in MODULES}


def sql_violations() -> set[tuple[str, str, str]]:
    return {("database library", module, target) for module, targets in GRAPH.items() for target in targets
            if target in DATABASE_LIBRARIES and layer(module) != "storage" and module not in SQL_EXEMPT}


def layer_violations() -> set[tuple[str, str, str]]:
    found = set()
    for module, targets in GRAPH.items():
        for target in targets:
            if target not in MODULES:
                continue
            if layer(target) in FORBIDDEN.get(layer(module), ()):
                found.add((f"{layer(module)} -> {layer(target)}", module, target))
            if layer(module) == "services" and target in SQL_MODULES:
                found.add(("services -> tables/models", module, target))
    return found


def cycles() -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), each sorted; a module
    importing itself counts too."""
    index, low, stack, on_stack, found = {}, {}, [], set(), set()
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in MODULES:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in GRAPH[node]:
                found.add(tuple(sorted(component)))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


# Known violations being fixed (docs/architecture.md); a line whose violation is gone must be deleted.
PENDING: set[tuple[str, ...]] = set()


def test_the_import_reader_sees_lazy_and_type_checking_imports():
    """The reader itself: context.py imports storage.db inside a method and storage.stores
    under TYPE_CHECKING; a reader that saw only top-level imports would miss both."""
    assert {"cardctl.storage.db", "cardctl.storage.stores"} <= GRAPH["cardctl.services.context"]
    assert "cardctl.services.access" in GRAPH["cardctl.cli.common"]  # inside Runtime.context


def test_no_module_outside_storage_imports_a_database_library():
    _check("database library", sql_violations())


def test_each_layer_imports_only_what_docs_architecture_allows():
    _check("layer", layer_violations())


def test_no_import_cycle_between_cardctl_modules():
    _check("cycle", {("cycle", *component) for component in cycles()})


def _check(kind: str, found: set[tuple[str, ...]]) -> None:
    pending = {entry for entry in PENDING if _kind(entry) == kind}
    new = sorted(found - pending)
    gone = sorted(pending - found)
    assert not new, "violations of docs/architecture.md:\n" + "\n".join(map(str, new))
    assert not gone, "fixed, so delete from PENDING:\n" + "\n".join(map(str, gone))


def _kind(entry: tuple[str, ...]) -> str:
    if entry[0] == "cycle":
        return "cycle"
    return "database library" if entry[0] == "database library" else "layer"


@pytest.mark.parametrize("rule, importer, imported, expected", [
    ("database library", "cardctl.services.cards", "sqlalchemy", True),
    ("database library", "cardctl.storage.stores.cards", "sqlalchemy", False),
    ("layer", "cardctl.domain.model", "cardctl.services.cards", True),
    ("layer", "cardctl.services.cards", "cardctl.storage.stores", False),
    ("layer", "cardctl.services.cards", "cardctl.storage.tables", True),
    ("layer", "cardctl.storage.db", "cardctl.cli.common", True),
])
def test_the_rules_tell_a_violation_from_an_allowed_import(rule, importer, imported, expected, monkeypatch):
    monkeypatch.setitem(GRAPH, importer, {imported})
    found = sql_violations() if rule == "database library" else layer_violations()
    assert any(entry[1:] == (importer, imported) for entry in found) is expected


def test_a_cycle_through_a_lazy_import_is_found(monkeypatch):
    monkeypatch.setitem(GRAPH, "cardctl.errors", GRAPH["cardctl.errors"] | {"cardctl.cli.common"})
    assert any({"cardctl.errors", "cardctl.cli.common"} <= set(component) for component in cycles())
