"""Import layering, read from the source: no cycles, the settings layer below the engine, the CLI on top.

Every import counts, wherever it sits: at module level, inside a function, under
``if TYPE_CHECKING:``. A cycle hidden in a function or a type hint is still a two-way
dependency (STYLE.md, rule 12). The one exception is a package's ``__init__``
re-exporting its own modules: a cycle that runs through a package and stays inside it.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "fedgossip"

# Where an import statement sits, which decides whether it runs when its module is imported.
AT_IMPORT = "module level"
IN_FUNCTION = "in a function"
TYPE_ONLY = "under TYPE_CHECKING"


@dataclass(frozen=True)
class Import:
    """One imported name: which module it leads to, and where the statement is."""

    module: str  # the importing module, dotted
    target: str  # the imported module, or for a name, the module it is taken from
    path: Path
    line: int
    where: str  # AT_IMPORT, IN_FUNCTION or TYPE_ONLY

    def __str__(self) -> str:
        return f"{self.path.as_posix()}:{self.line} imports {self.target} ({self.where})"


def package_modules(package: Path) -> dict[str, Path]:
    """Return every module under ``package`` by dotted name; a package goes by its own name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


class _Collector(ast.NodeVisitor):
    """Collect a module's imports, resolving relative ones and names that are modules themselves."""

    def __init__(self, module: str, path: Path, known: Collection[str]):
        self.module, self.path, self.known = module, path, known
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.where = AT_IMPORT
        self.found: list[Import] = []

    def _inside(self, where: str, nodes: list[ast.AST]) -> None:
        outer, self.where = self.where, where if self.where != IN_FUNCTION else IN_FUNCTION
        for node in nodes:
            self.visit(node)
        self.where = outer

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._inside(IN_FUNCTION, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._inside(TYPE_ONLY, node.body)
            self._inside(self.where, node.orelse)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self._longest_known(alias.name), node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.known else self._longest_known(base), node)

    def _longest_known(self, name: str) -> str:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.known:
                return ".".join(parts[:end])
        return name  # outside the package

    def _add(self, target: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, target, self.path, node.lineno, self.where))


def module_imports(package: Path) -> list[Import]:
    """Return every import statement's targets in every module under ``package``."""
    known = package_modules(package)
    found = []
    for name, path in known.items():
        collector = _Collector(name, path.relative_to(package.parent), known)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(collector.found)
    return found


def within(name: str, prefixes: Collection[str]) -> bool:
    """Whether module ``name`` is one of ``prefixes`` or inside one of them."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def import_edges(package: Path) -> dict[str, dict[str, Import]]:
    """Return, for every module under ``package``, the modules of the package it imports, by the first
    statement that does."""
    modules = package_modules(package)
    edges: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for found in module_imports(package):
        if found.target in modules and found.target != found.module:
            edges[found.module].setdefault(found.target, found)
    return edges


def import_chain(edges: dict[str, dict[str, Import]], start: str, goal: Collection[str]) -> list[Import]:
    """Return a shortest chain of imports from module ``start`` to a module within ``goal``; [] if none."""
    came_by: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        reached = []
        for node in frontier:
            for target, found in sorted(edges[node].items()):
                if target == start or target in came_by:
                    continue
                came_by[target] = found
                if within(target, goal):
                    chain = [found]
                    while chain[0].module != start:
                        chain.insert(0, came_by[chain[0].module])
                    return chain
                reached.append(target)
        frontier = reached
    return []


def import_cycles(package: Path) -> list[list[Import]]:
    """Return each elementary import cycle between the modules under ``package`` as its chain of imports.

    A cycle through a package's ``__init__`` that stays inside that package is the package
    re-exporting its own modules, and is left out; one that leaves the package is kept.
    """
    packages = {name for name, path in package_modules(package).items() if path.name == "__init__.py"}
    edges = import_edges(package)
    component = _components(edges)
    cycles = []
    for start in sorted(edges):  # each cycle once, from its smallest module
        for chain in _cycles_from(start, edges, component):
            names = {hop.module for hop in chain}
            if not any(p in names and all(within(n, [p]) for n in names) for p in packages):
                cycles.append(chain)
    return cycles


def _cycles_from(start: str, edges: dict[str, dict[str, Import]], component: dict[str, int]) -> Iterator:
    """Yield the cycles through ``start`` whose other modules sort after it, all in ``start``'s component."""
    stack = [(start, iter(sorted(edges[start].items())))]
    chain: list[Import] = []
    on_path = {start}
    while stack:
        node, successors = stack[-1]
        for target, found in successors:
            if target == start:
                yield [*chain, found]
            elif target > start and target not in on_path and component[target] == component[start]:
                chain.append(found)
                on_path.add(target)
                stack.append((target, iter(sorted(edges[target].items()))))
                break
        else:
            stack.pop()
            on_path.discard(node)
            if chain:
                chain.pop()


def _components(edges: dict[str, dict[str, Import]]) -> dict[str, int]:
    """Return the strongly connected component of every module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, successors = work[-1]
            for target in successors:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    work.append((target, iter(sorted(edges[target]))))
                    break
                if target not in component:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    while True:
                        member = stack.pop()
                        component[member] = index[node]
                        if member == node:
                            break
    return component


def describe(chain: list[Import]) -> str:
    """Return a cycle as ``a -> b -> a`` and, below it, the statement behind each arrow."""
    names = [hop.module for hop in chain] + [chain[0].module]
    return " -> ".join(names) + "".join(f"\n    {hop}" for hop in chain)


# --- the package ---------------------------------------------------------------------------

SETTINGS_LAYER = ("fedgossip.settings", "fedgossip.specs", "fedgossip.errors", "fedgossip.registry")
ENGINE_LAYERS = (
    "fedgossip.run",
    "fedgossip.local",
    "fedgossip.comm",
    "fedgossip.algorithms",
    "fedgossip.train",
)
CLI_LAYER = ("fedgossip.cli", "fedgossip.__main__")
RENDERING = ("fedgossip.cli", "fedgossip.report")  # the only users of rich and click


def test_the_package_is_found_and_scanned():
    modules = package_modules(SOURCE)
    assert {"fedgossip", "fedgossip.cli", "fedgossip.settings.config", "fedgossip.run.engine"} <= set(modules)
    importers = {found.module for found in module_imports(SOURCE) if found.target == "fedgossip.errors"}
    assert len(importers) > 10, importers


def test_no_import_cycles_between_modules():
    cycles = import_cycles(SOURCE)
    if cycles:
        pytest.fail(f"{len(cycles)} import cycles:\n" + "\n".join(map(describe, cycles)), pytrace=False)


def test_the_settings_layer_imports_nothing_of_the_engine_even_through_other_modules():
    edges = import_edges(SOURCE)
    chains = [
        import_chain(edges, name, ENGINE_LAYERS) for name in sorted(edges) if within(name, SETTINGS_LAYER)
    ]
    upward = [" -> ".join([chain[0].module, *(hop.target for hop in chain)]) for chain in chains if chain]
    if upward:
        pytest.fail("the settings layer imports the engine:\n" + "\n".join(upward), pytrace=False)


def test_only_the_cli_imports_the_cli():
    users = [
        found
        for found in module_imports(SOURCE)
        if within(found.target, ["fedgossip.cli"]) and not within(found.module, CLI_LAYER)
    ]
    if users:
        pytest.fail("modules outside the CLI import it:\n" + "\n".join(map(str, users)), pytrace=False)


def test_rich_and_click_are_imported_at_module_level_only_by_the_cli_and_the_report():
    users = [
        found
        for found in module_imports(SOURCE)
        if within(found.target, ["rich", "click"])
        and found.where == AT_IMPORT
        and not within(found.module, RENDERING)
    ]
    if users:
        message = "rich or click imported at module level outside cli/ and report/:\n"
        pytest.fail(message + "\n".join(map(str, users)), pytrace=False)


# --- the scanner, on small packages written for the test ---------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path: source) under ``root``; return the package folder ``root/pkg``."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root / "pkg"


def cycle_names(package: Path) -> list[list[str]]:
    return [[hop.module for hop in chain] for chain in import_cycles(package)]


def test_scanner_finds_a_cycle_through_a_type_checking_import(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import B\n",
            "pkg/b.py": """\
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from pkg.a import A
                """,
        },
    )
    (cycle,) = import_cycles(package)
    assert [(hop.module, hop.target, hop.line, hop.where) for hop in cycle] == [
        ("pkg.a", "pkg.b", 1, AT_IMPORT),
        ("pkg.b", "pkg.a", 4, TYPE_ONLY),
    ]
    assert describe(cycle).startswith("pkg.a -> pkg.b -> pkg.a\n    pkg/a.py:1 imports pkg.b")


def test_scanner_finds_a_relative_import_in_a_function_and_a_three_module_cycle(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "def late():\n    from .. import d\n",
            "pkg/d.py": "import pkg.e as e\n",
            "pkg/e.py": "from pkg.sub.c import late\n",
            "pkg/f.py": "from .d import e\n",  # imports from a cycle, is not in one
        },
    )
    assert cycle_names(package) == [["pkg.d", "pkg.e", "pkg.sub.c"]]
    assert import_cycles(package)[0][-1].where == IN_FUNCTION


def test_scanner_passes_a_clean_package_with_re_exports(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\nfrom . import b\nfrom .sub import X\n",
            "pkg/a.py": "from pkg.b import helper\nfrom pkg import VERSION\nA = 1\n",
            "pkg/b.py": "import os\ndef helper():\n    import json\n",
            "pkg/sub/__init__.py": "from pkg.sub.x import X\n",
            "pkg/sub/x.py": "from pkg.sub import y\nfrom pkg.b import helper\nX = 2\n",
            "pkg/sub/y.py": "from ..b import helper\n",
        },
    )
    assert import_cycles(package) == []


def test_scanner_keeps_a_cycle_that_leaves_the_re_exporting_package(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from pkg.sub.x import X\n",
            "pkg/sub/x.py": "import pkg.q\nX = 1\n",
            "pkg/q.py": "from pkg.sub import X\n",
        },
    )
    assert cycle_names(package) == [["pkg.q", "pkg.sub", "pkg.sub.x"]]


def test_scanner_tells_imports_at_module_level_from_deferred_ones(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/m.py": """\
                import typing
                try:
                    import rich.console
                except ImportError:
                    pass
                if typing.TYPE_CHECKING:
                    import click
                else:
                    import json

                class Table:
                    import csv

                    def show(self):
                        import rich.table
                """,
        },
    )
    where = {(found.target, found.where) for found in module_imports(package)}
    assert where == {
        ("typing", AT_IMPORT),
        ("rich.console", AT_IMPORT),
        ("click", TYPE_ONLY),
        ("json", AT_IMPORT),
        ("csv", AT_IMPORT),
        ("rich.table", IN_FUNCTION),
    }


def test_scanner_follows_a_layer_violation_through_another_module(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/settings.py": "from pkg.util import helper\n",
            "pkg/util.py": "def helper():\n    from pkg.engine.loop import run\n",
            "pkg/engine/__init__.py": "",
            "pkg/engine/loop.py": "from pkg.settings import parse\n",
        },
    )
    chain = import_chain(import_edges(package), "pkg.settings", ["pkg.engine"])
    assert [(hop.module, hop.target) for hop in chain] == [
        ("pkg.settings", "pkg.util"),
        ("pkg.util", "pkg.engine.loop"),
    ]
    back = import_chain(import_edges(package), "pkg.engine.loop", ["pkg.util"])
    assert [(hop.module, hop.target) for hop in back] == [
        ("pkg.engine.loop", "pkg.settings"),
        ("pkg.settings", "pkg.util"),
    ]
    assert import_chain(import_edges(package), "pkg.util", ["pkg.nothing"]) == []


@pytest.mark.parametrize(
    ("name", "prefixes", "inside"),
    [
        ("fedgossip.run", ENGINE_LAYERS, True),
        ("fedgossip.run.engine", ENGINE_LAYERS, True),
        ("fedgossip.runner", ENGINE_LAYERS, False),
        ("fedgossip.records.run", ENGINE_LAYERS, False),
    ],
)
def test_a_layer_is_a_module_and_what_is_inside_it(name, prefixes, inside):
    assert within(name, prefixes) is inside
