"""Rules of the codebase's shape that reviews kept re-discovering, checked from the source: no import cycles,
the bot never touches a database pool outside its composition root, and the bot imports no ML stack."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path
from typing import TypeGuard

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "inference", "feedback", "storage")
ML_STACK = {"torch", "torchvision", "transformers", "open_clip", "sentence_transformers", "faiss", "bitsandbytes"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def runtime_imports(path: Path, *, type_checking: bool = False) -> set[str]:
    """Modules imported when this one is imported: top-level imports, not those inside functions (deferred on
    purpose, e.g. torch only when the service really starts); those under `if TYPE_CHECKING:` on request."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    nodes = list(tree.body)
    if type_checking:
        nodes += [n for block in tree.body if _is_type_checking(block) for n in block.body]
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _nested(a: str, b: str) -> bool:
    return a.startswith(b + ".") or b.startswith(a + ".")


def _is_type_checking(node: ast.stmt) -> TypeGuard[ast.If]:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def project_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    known = modules()
    return {
        name: {m for m in runtime_imports(path, type_checking=type_checking) if m in known and m != name}
        for name, path in known.items()
    }


def test_there_are_no_import_cycles_between_project_modules() -> None:
    """Counting imports made only for type checking: a cycle hidden behind TYPE_CHECKING is still two modules
    that cannot be understood (or split) one without the other."""
    graph = project_graph(type_checking=True)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # a package importing its own submodules (`pkg/__init__` re-exports) is not a cycle of behaviour
    real = [c for c in cycles if not any(_nested(a, b) for a, b in itertools.pairwise(c))]
    assert real == []


@pytest.mark.parametrize("path", sorted((ROOT / "bot").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_bot_touches_no_pool_outside_its_composition_root(path: Path) -> None:
    """Handlers and flows get a unit of work per update (bot/middlewares.py), never the pool."""
    if path.name in {"services.py"}:
        return
    source = path.read_text()
    assert "pool.acquire" not in source and ".transaction()" not in source
    assert "asyncpg.Pool" not in source


def test_the_bot_imports_no_ml_stack() -> None:
    """The bot image stays slim: what it shares with the service (inference.contract) is pure pydantic."""
    graph = project_graph()
    seen: set[str] = set()
    todo = [name for name in graph if name == "bot" or name.startswith("bot.")]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph.get(name, ()))
    heavy = {
        (name, imported)
        for name in seen
        for imported in runtime_imports(modules()[name])
        if imported.split(".")[0] in ML_STACK
    }
    assert heavy == set()
