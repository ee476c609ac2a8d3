"""The package's layers, read from its source with ``ast``: every import goes
down (lazy imports inside functions included), no two modules import each
other however long the way round, and only ``store/`` runs SQL.

Data flows one way, event -> events -> actions -> engine/store -> database, so
a module may import its own layer and the layers below it, never one above.
A layer is a top-level module or subpackage of ``jobqueue``; the list below is
the whole house, lowest floor first, and a module that is on no floor fails.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jobqueue"

# Lowest first. "" is jobqueue/__init__.py itself: the public API, on top.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "log", "states", "version"),  # the ground floor: leaves every layer may use
    ("rules", "config"),  # the bounds and checks every layer shares; settings from the environment
    ("tasks",),  # the registry, @task, job specs, cron and periodic declarations
    ("store",),  # the only code that talks to PostgreSQL
    ("engine",),  # the drain and its duties
    ("actions",),  # what a caller can ask for, in plain Python
    ("events",),  # one module per event source, and the dispatch between them
    ("local",),  # the local stack behind `serve` (not in the ZIP)
    ("cli", "__main__"),  # the command line
    ("",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# Modules over MAX_LINES, each a single concept that splitting would only scatter.
MAX_LINES = 400
LONG_BY_DESIGN = {
    "jobqueue.events.http.openapi_schemas": "one value: the JSON Schemas of the API document",
}

# What only store/ may do: reach the driver, the named queries, or send SQL text.
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|BEGIN|COMMIT|ROLLBACK|SET|CREATE|DROP|ALTER|TRUNCATE)\s")
SQL_METHODS = {"run", "execute", "prepare"}
STORE_ONLY = ("pg8000", "jobqueue.store.queries")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text("utf-8"), filename=str(modules()[name]))


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def imports(name: str) -> list[tuple[str, int]]:
    """Every module ``name`` imports (anywhere in it), with the line: ``from . import x``
    names the module x when there is one, else the package it is taken from."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.append((candidate if candidate in modules() else source, node.lineno))
    return found


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def own_imports(name: str) -> list[tuple[str, int]]:
    return [(target, line) for target, line in imports(name) if target.split(".")[0] == "jobqueue"]


def test_every_module_is_on_a_floor() -> None:
    lost = sorted(name for name in modules() if _layer(name) not in RANK)
    assert not lost, f"modules on no layer of LAYERS (add them to one): {lost}"


def test_imports_only_go_down() -> None:
    upward = []
    for name in modules():
        here = RANK.get(_layer(name))
        for target, line in own_imports(name):
            there = RANK.get(_layer(target))
            if here is not None and there is not None and there > here:
                upward.append(f"{name}:{line} imports {target} (layer {_layer(target) or 'jobqueue'}, above)")
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components over the module graph, lazy imports
    counted: any component of more than one module is a circle."""
    graph = {name: sorted({t for t, _ in own_imports(name) if t in modules() and t != name}) for name in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
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
            if len(component) > 1:
                circles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert not circles, f"import circles: {circles}"


def test_subpackages_import_nothing_and_say_what_they_own() -> None:
    """A subpackage's __init__ is its door sign: a docstring saying what it owns
    and may import, and no code, so importing one module of it imports no other."""
    for name in modules():
        if not _is_package(name) or name == "jobqueue":
            continue
        body = tree(name).body
        docstring = ast.get_docstring(tree(name))
        assert docstring and "import" in docstring, f"{name}: its docstring must say what it owns and may import"
        code = [node for node in body[1:] if not isinstance(node, ast.ImportFrom) or node.module != "__future__"]
        assert not code, f"{name}/__init__.py holds code (line {code[0].lineno}); it must import nothing"


def _docstrings(module: ast.Module) -> set[int]:
    nodes = [
        module,
        *(n for n in ast.walk(module) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)),
    ]
    return {
        id(node.body[0].value)
        for node in nodes
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def sql_outside_store(name: str) -> list[str]:
    """What in ``name`` talks to PostgreSQL: the driver or the named queries
    imported, a statement sent by name or as text, or SQL text itself."""
    found = []
    for target, line in imports(name):
        if any(target == only or target.startswith(only + ".") for only in STORE_ONLY):
            found.append(f"{name}:{line} imports {target}")
    module = tree(name)
    docstrings = _docstrings(module)
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and _called(node) in SQL_METHODS:
            texts = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if texts:
                found.append(f"{name}:{node.lineno} sends {texts[0][:40]!r}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.match(node.value)
        ):
            found.append(f"{name}:{node.lineno} holds SQL {node.value.strip()[:40]!r}")
    return found


def test_only_the_store_runs_sql() -> None:
    found = [line for name in modules() if _layer(name) != "store" for line in sql_outside_store(name)]
    assert not found, "SQL outside jobqueue/store:\n" + "\n".join(found)


def test_modules_stay_small() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES and name not in LONG_BY_DESIGN
    }
    assert not long, f"modules over {MAX_LINES} lines (split them, or say in LONG_BY_DESIGN why not): {long}"


# --- the checks themselves catch what they are for -----------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import db\ndb.default().run('claim', worker='w')", "sends 'claim'"),
        ("def f(conn):\n    conn.execute('SET synchronous_commit TO off')", "sends 'SET synchronous_commit"),
        ("QUERY = 'SELECT 1 FROM jobs'", "holds SQL 'SELECT 1 FROM jobs'"),
        ("def f():\n    from pg8000.exceptions import DatabaseError", "imports pg8000.exceptions"),
        ("from ..store.connection import run\nrun(db, 'take_drain_slot')", "sends 'take_drain_slot'"),
    ],
)
def test_the_sql_check_finds_sql(source: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(modules(), "jobqueue.engine.probe", PACKAGE / "engine" / "probe.py")
    tree.cache_clear()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    try:
        found = sql_outside_store("jobqueue.engine.probe")
    finally:
        tree.cache_clear()
    assert any(expected in line for line in found), found
