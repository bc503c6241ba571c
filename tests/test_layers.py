"""The package's layers, read from its import graph (every ``import`` in gpbench/**/*.py).

(a) No two modules import each other, directly or through others, at import time (module-level
imports; those inside functions and under ``if TYPE_CHECKING:`` run later or never), nor through
imports inside functions either (a lazy import that closes a loop is the same tangle, only
hidden); the one exception is a package importing its own submodules lazily (a factory in
``harness/backends/__init__.py`` picking a backend).
(b) A module imports only from its own part of the package or from the layers below it, at
module level or inside a function: the order is the README's layout section.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gpbench

PACKAGE = Path(gpbench.__file__).parent

# Lowest first. A part is the first name under gpbench (``gpbench.harness.writer`` is part
# ``harness``); ``gpbench`` itself is the package's root module. Parts in one layer do not import
# each other. A ``__main__`` module is an entry point above the command line it runs.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"gpbench", "errors"}),
    frozenset({"serialization", "records"}),
    frozenset({"generators"}),
    frozenset({"stats"}),
    frozenset({"tasks"}),
    frozenset({"runs", "lm_eval_bridge", "dataset_card", "tiny_models"}),
    frozenset({"harness", "reports"}),
    frozenset({"recipes", "regress", "inspect_bridge"}),
    frozenset({"integrations"}),
    frozenset({"export"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
ENTRY_POINT = "__main__"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["gpbench", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    """The gpbench modules an import statement loads (a name imported from a package that is
    a submodule counts as that submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the importing module's package
            package = module.split(".")
            is_package = MODULES[module].name == "__init__.py"
            anchor = package[: len(package) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [base]
        names += [
            f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES
        ]
    for name in names:
        while name and name not in MODULES:  # import gpbench.a.b.attr: the module gpbench.a.b
            name = name.rpartition(".")[0]
        if name.startswith("gpbench"):
            yield name


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> Iterator[tuple[str, bool]]:
    """``(target, at_import_time)`` for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def walk(node: ast.AST, at_import_time: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, module):
                    yield target, at_import_time
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
                isinstance(child, ast.If) and _is_type_checking(child)
            ):
                yield from walk(child, False)
            else:
                yield from walk(child, at_import_time)

    yield from walk(tree, True)


def _part(module: str) -> str:
    parts = module.split(".")
    if parts[-1] == ENTRY_POINT:
        return ENTRY_POINT
    return parts[1] if len(parts) > 1 else "gpbench"


def _layer(part: str) -> int:
    for index, parts in enumerate(LAYERS):
        if part in parts:
            return index
    raise AssertionError(f"gpbench.{part} is in no layer: add it to LAYERS in {__file__}")


def test_every_part_has_a_layer() -> None:
    for module in MODULES:
        _layer(_part(module))


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The cycles a depth-first search meets (a module met again while still on the path)."""
    state: dict[str, str] = {}
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in graph[module]:
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def _shown(cycles: list[list[str]]) -> str:
    return "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_no_import_cycles_at_import_time() -> None:
    graph = {
        module: sorted({target for target, now in _imports(module) if now and target != module})
        for module in MODULES
    }
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + _shown(cycles)


def test_no_import_cycles_through_lazy_imports() -> None:
    graph = {
        module: sorted(
            {
                target
                for target, _ in _imports(module)
                if target != module and not target.startswith(f"{module}.")
            }
        )
        for module in MODULES
    }
    cycles = _cycles(graph)
    assert not cycles, "import cycles (imports inside functions included): " + _shown(cycles)


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module in sorted(MODULES):
        part = _part(module)
        for target, _ in _imports(module):
            other = _part(target)
            if other != part and _layer(other) >= _layer(part):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layer order: " + "; ".join(sorted(set(wrong)))


def test_the_check_sees_cycles_and_upward_imports(tmp_path: Path) -> None:
    """The graph reader finds what the two tests above refuse (so they can fail)."""
    found = dict(_imports("gpbench.harness.writer"))
    assert found["gpbench.runs.lock"] is True  # module level
    assert found["gpbench.harness.loop"] is False  # under TYPE_CHECKING
    backends = dict(_imports("gpbench.harness.backends"))
    assert backends["gpbench.harness.backends.hf"] is False  # inside create_backend
    assert _layer(_part("gpbench.recipes.sft.__main__")) > _layer("cli")
    loop = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert _cycles(loop) == [["a", "b", "c", "a"]]
    assert _cycles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []
    assert _layer("reports") == _layer("harness") > _layer("runs") > _layer("tasks")
