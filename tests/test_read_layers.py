"""The read side keeps its SQL in storage (docs/architecture.md): checked on the source.

The read use cases (status, report, --as-of, the context's opening checks) ask a read store
(storage/reads.py) and import no SQLAlchemy; the start-up path's compiler relies on public
SQLAlchemy API only; no command handles the start-up path's fallback itself; a card view
is built in one place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cardctl"
READ_SERVICES = ("reads", "status", "report", "history", "headline", "context", "views")


def tree(relative: str) -> ast.Module:
    return ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))


def imported(module: ast.Module, package: str) -> set[str]:
    """Every module ``module`` (in ``package``) imports, anywhere in it, as absolute names."""
    found = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - (node.level - 1)] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("name", READ_SERVICES)
def test_read_services_import_no_sqlalchemy_and_no_tables(name):
    names = imported(tree(f"services/{name}.py"), "cardctl.services")
    assert not {n for n in names if n == "sqlalchemy" or n.startswith("sqlalchemy.")}
    assert not {n for n in names if n.startswith(("cardctl.storage.tables", "cardctl.storage.models"))}


def test_the_context_imports_no_read_use_case():
    # context -> reads -> statements -> status -> context was a cycle
    top_level = set()
    for node in tree("services/context.py").body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top_level |= imported(ast.Module(body=[node], type_ignores=[]), "cardctl.services")
    assert not {n for n in top_level if n.startswith("cardctl.services.")}


@pytest.mark.parametrize("relative", ["storage/statements.py", "storage/lite.py", "storage/reads.py"])
def test_the_start_up_path_uses_no_private_sqlalchemy_api(relative):
    source = (PACKAGE / relative).read_text(encoding="utf-8")
    private = [node.attr for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    assert private == []
    assert "POSTCOMPILE" not in source and "POSTCOMPILE" not in (PACKAGE / "storage/compiled_sql.py").read_text()


@pytest.mark.parametrize("relative", ["cli/status.py", "cli/unlock.py", "services/reads.py"])
def test_no_command_chooses_or_falls_back_between_read_paths_itself(relative):
    module = tree(relative)
    names = {node.id for node in ast.walk(module) if isinstance(node, ast.Name)}
    strings = {node.value for node in ast.walk(module) if isinstance(node, ast.Constant)}
    assert "Unavailable" not in names and "run_named" not in strings
    assert "cardctl.storage.lite" not in imported(module, "cardctl." + relative.split("/")[0])


def test_a_card_view_is_built_in_one_place():
    builders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CardView":
                builders.append(path.relative_to(PACKAGE).as_posix())
                assert not node.args, "CardView takes keywords: eighteen positions are easy to swap"
    assert builders == ["services/views.py"]



def test_policies_read_alike_through_a_transaction_and_the_read_store(ctx):
    from cardctl.services.policies import set_policy

    set_policy(ctx, "4403", {"max_attempts": 5})
    from_store = ctx.reading(lambda store: store.policies_by_region())
    with ctx.read() as tx:
        assert tx.policies_by_region() == from_store
        assert ctx.policy_for(tx, "440305").max_attempts == 5 and ctx.policy_for(tx, "110105").max_attempts == 3
