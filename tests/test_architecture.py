"""The import rules of docs/architecture.md, read from the code (imports under TYPE_CHECKING and
inside functions count too)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("fathom", "worker", "bot", "simulator", "cli", "devtools", "bench", "tests")


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(name: str, path: Path) -> set[str]:
    """Every module this one imports, absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".") if is_package else name.split(".")[:-1]
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("package", ["fathom"])
def test_the_contract_imports_no_other_package_of_the_project(package: str) -> None:
    offenders = {
        name: sorted(m for m in imports(name, path) if top(m) in PROJECT and top(m) != package)
        for name, path in modules(package)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_worker_imports_neither_the_bot_nor_the_simulator_nor_discord() -> None:
    forbidden = {"bot", "simulator", "cli", "devtools", "discord", "tests"}
    offenders = {
        name: sorted(m for m in imports(name, path) if top(m) in forbidden)
        for name, path in modules("worker")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_worker_holds_no_discord_name_or_limit() -> None:
    sources = [
        path
        for path in (ROOT / "worker").rglob("*")
        if path.suffix in (".py", ".js") and "node_modules" not in path.parts
    ]
    mentions = {
        str(path.relative_to(ROOT)): line.strip()
        for path in sources
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"discord|(?<!/)\b2,?000\b(?!/)", line, re.IGNORECASE)
    }
    assert mentions == {}


def test_production_code_never_imports_the_development_tools() -> None:
    forbidden = {"devtools", "tests", "bench"}
    offenders = {
        name: sorted(m for m in imports(name, path) if top(m) in forbidden)
        for package in ("fathom", "worker", "bot", "cli", "simulator")
        for name, path in modules(package)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_bot_has_no_import_cycle_and_its_client_imports_no_extension() -> None:
    bot_modules = dict(modules("bot"))
    graph = {
        name: {
            target
            for imported in imports(name, path)
            for target in _bot_modules_named(imported, bot_modules)
            if target != name
        }
        for name, path in bot_modules.items()
    }
    assert not any(target.startswith("bot.exts.") for target in graph["bot.client"])
    assert _cycle(graph) is None


def _bot_modules_named(imported: str, known: dict[str, Path]) -> set[str]:
    """The bot module an import refers to: `bot.x.y` names module `bot.x.y`, or an attribute
    `y` of `bot.x`."""
    if imported in known:
        return {imported}
    parent = imported.rpartition(".")[0]
    return {parent} if parent in known else set()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in the graph, if there is one (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None
