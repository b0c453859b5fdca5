"""The layout rules the code base keeps (docs/architecture.md): the subsystems as layers
(each package imports only the packages below it), no import circles, a docstring on every
module and package saying what it holds, one place that decides what a location string
means, and one store per engine (nothing outside the engines' own packages asks which
engine it runs on).

There is no line cap: a module holds one concept and a class lives in one module (a cap
split the Ledger into a mixin with a stub, and one subsystem into seven modules)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
#: Each subsystem (a package or a top-level module of ``perfledger``) and the subsystems it
#: may import: the layers of docs/architecture.md, bottom first.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "location": {"errors"},
    "records": {"errors"},
    "stats": {"errors", "records"},
    "store": {"errors", "location", "records"},
    "mirrors": {"errors", "records", "store"},
    "files": {"errors", "location", "records", "store", "mirrors"},
    "frames": {"errors", "records", "store"},
    "ledger": {"errors", "location", "records", "stats", "store", "mirrors", "files", "frames"},
    "returns": {"stats"},
    "sample": {"ledger", "records", "stats"},
    "integrations": {"errors", "records", "stats", "ledger"},
    "cli": {"errors", "location", "records", "stats", "store", "files", "ledger", "dashboard", "sample"},
    "dashboard": {"errors", "location", "records", "stats", "store", "files", "ledger", "frames",
                  "sample"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports, at top level or inside a function alike."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = {f"{target}.{a.name}" for a in node.names} & mods.keys()
                if len(subs) < len(node.names) and target in mods:
                    deps.add(target)
                deps |= subs
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & mods.keys()
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    graph = import_graph()
    assert "perfledger.ledger" in graph and "perfledger.store.sqlite.store" in graph["perfledger.store"]
    assert cycles(graph) == []


def _subsystem(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "perfledger" else None


def test_every_subsystem_has_a_layer() -> None:
    found = {_subsystem(m) for m in import_graph()} - {None, "__main__"}
    assert found == set(LAYERS)


def test_subsystems_import_only_the_layers_below_them() -> None:
    wrong = sorted(
        (module, dep)
        for module, deps in import_graph().items()
        for dep in deps
        if (a := _subsystem(module)) in LAYERS and (b := _subsystem(dep)) not in (None, a)
        and b not in LAYERS[a]
    )
    assert wrong == []


def test_the_layer_check_finds_a_planted_upward_import() -> None:
    graph = {"perfledger.records.batch": {"perfledger.ledger"}}
    wrong = [(m, d) for m, ds in graph.items() for d in ds if _subsystem(d) not in LAYERS[_subsystem(m)]]
    assert wrong == [("perfledger.records.batch", "perfledger.ledger")]


def test_every_module_says_what_it_holds() -> None:
    missing = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
               and p.name != "__main__.py"]
    assert missing == []


def test_only_the_location_module_tells_urls_from_directories() -> None:
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if p.name != "location.py" and '"://"' in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


#: Where the engines may be told apart: their own packages, the resolver of locations, the
#: one dispatch that opens a store for a URL, and the schema (column types per engine, as data).
_ENGINE_PLACES = ("perfledger/store/sqlite/", "perfledger/store/postgres/", "perfledger/location.py",
                  "perfledger/store/__init__.py", "perfledger/store/schema.py")


def _engine_tests(source: str) -> list[int]:
    """Lines of ``source`` that ask which engine or dialect they run on."""
    def asks(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in ("dialect", "get_backend_name")
        return isinstance(node, ast.Constant) and node.value in ("sqlite", "postgresql")

    return [node.lineno for node in ast.walk(ast.parse(source)) if asks(node)]


def test_only_the_engines_tell_the_engines_apart() -> None:
    offenders = [f"{p.relative_to(SRC)}:{line}" for p in sorted(SRC.rglob("*.py"))
                 if not any(place in p.as_posix() for place in _ENGINE_PLACES)
                 for line in _engine_tests(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_engine_check_finds_a_planted_dialect_test() -> None:
    assert _engine_tests('if conn.dialect.name == "postgresql":\n    pass\n') == [1, 1]
