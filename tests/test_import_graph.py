"""The module graph of pipeline/, transforms/ and schemas/ (read with `ast`, every import,
function-level ones too): no cycle between modules, and no module under transforms/ (what runs
inside Beam) or schemas/ (the contracts) imports pipeline/ (the driver)."""

from __future__ import annotations

import ast
from pathlib import Path  # local-only: the source tree

ROOT = Path(__file__).resolve().parents[1]  # local-only: the source tree
PACKAGES = ("pipeline", "transforms", "schemas")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.AST, name: str, is_pkg: bool) -> set[str]:
    """Dotted names `tree` imports at run time (`if TYPE_CHECKING:` blocks left out)."""
    found: set[str] = set()
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
            for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = _imported(tree, name, path.name == "__init__.py")
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_walker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_reads_real_imports() -> None:
    graph = import_graph()
    assert "pipeline.config" in graph["pipeline.run"]
    assert "transforms.base" in graph["pipeline.graph"]


def test_no_import_cycle_between_modules() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (each a set of modules importing each other):\n" + "\n".join(
        " ↔ ".join(c) for c in found)


# pipeline/ in layers, lowest first: a module imports its own layer or lower ones only
LAYERS = (
    ("pipeline.config", "pipeline.stages"),
    ("pipeline.outputs", "pipeline.runner"),
    ("pipeline.report",),
    ("pipeline.graph", "pipeline.manifest", "pipeline.budget", "pipeline.finished", "pipeline.run",
     "pipeline.tag_utility", "pipeline.compound_eval", "pipeline.reference"),
    ("pipeline.release", "pipeline.export"),
    ("pipeline.cli", "pipeline.launch", "pipeline.__main__", "pipeline"),
)


def layer(module: str) -> int:
    """The layer of a pipeline module (the longest matching prefix)."""
    best = max(((len(p), i) for i, prefixes in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    if best is None:
        raise AssertionError(f"{module}: in no layer of tests/test_import_graph.py LAYERS")
    return best[1]


def test_pipeline_imports_point_down() -> None:
    graph = import_graph()
    up = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                for m, targets in graph.items() if m.startswith("pipeline")
                for t in targets if t.startswith("pipeline") and layer(t) > layer(m))
    assert not up, "imports pointing up in pipeline/:\n" + "\n".join(up)


def test_transforms_and_schemas_do_not_import_pipeline() -> None:
    wrong = sorted(f"{m} imports {t}" for m, targets in import_graph().items()
                   if m.startswith(("transforms", "schemas"))
                   for t in targets if t == "pipeline" or t.startswith("pipeline."))
    assert not wrong, "the driver (pipeline/) is imported from below:\n" + "\n".join(wrong)
