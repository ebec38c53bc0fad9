"""The output layout is spelled in one module (pipeline/outputs/layout.py): no other module of
pipeline/ or dags/, and no writer under transforms/io/, holds a string literal naming an output
dataset or a path of the run layout."""

from __future__ import annotations

import ast
from pathlib import Path  # local-only: the source tree

from pipeline.outputs import layout as L

ROOT = Path(__file__).resolve().parents[2]  # local-only: the source tree
LAYOUT = ROOT / "pipeline" / "outputs" / "layout.py"
SCANNED = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "dags").rglob("*.py"),
           *(ROOT / "transforms" / "io").glob("write_*.py")]
NAMES = {d.name for d in L.DATASETS}  # a literal equal to one of these
FILES = (L.DEADLETTER_FILE, L.MANIFEST, L.REPORT, L.RUN_INFO)  # a literal ending in one
DIRS = (L.JSONL, L.REJECTED, L.DEADLETTER, L.WORK)  # as a path part: "x/rejected", "rejected/"
# (file, literal) pairs that only look like the layout
ALLOWED = {
    ("pipeline/export/formats.py", "preference"): "OpenAI's name of its DPO fine-tuning",
    ("pipeline/report/card.py", "sft"): "a Hugging Face Hub tag of the card",
    ("transforms/io/write_shards.py", "/jsonl"): "the writer's own default when no layout "
                                                 "path is given (tests)",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose may name the layout)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _stray(text: str) -> bool:
    if text in NAMES or text.endswith(FILES):
        return True
    parts = text.split("/")
    return len(parts) > 1 and any(p in DIRS for p in parts)


def _joined_dirs(tree: ast.AST) -> list[tuple[int, str]]:
    """`join(x, "rejected")`-style calls: a layout folder passed as a path part."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")
                                                   ) == "join":
            found += [(a.lineno, a.value) for a in node.args[1:]
                      if isinstance(a, ast.Constant) and a.value in DIRS]
    return found


def stray_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    found = [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and id(node) not in docs and _stray(node.value)
             and (rel, node.value) not in ALLOWED]
    found += [f"{line}: join(..., {value!r})" for line, value in _joined_dirs(tree)]
    return found


def test_the_check_sees_a_stray_literal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""doc naming sft/ and manifest.json is fine."""\n'
                   'A = "preference_steps"\nB = f"{x}/deadletter/deadletter.jsonl"\n'
                   'C = join(out, "rejected")\nD = "rejected"\n')
    assert [s.split(":")[0] for s in stray_literals(bad)] == ["2", "3", "4"]


def test_no_layout_literal_outside_the_layout_module() -> None:
    found = {str(p.relative_to(ROOT)): hits for p in sorted(SCANNED)
             if p != LAYOUT and (hits := stray_literals(p))}
    assert not found, "dataset names / output paths spelled outside pipeline/outputs/layout.py:\n" \
        + "\n".join(f"{f}: {', '.join(h)}" for f, h in found.items())


def test_every_published_name_is_a_layout_name() -> None:
    assert set(L.INSPECTABLE) <= set(L.PUBLISHED)
    assert len(set(L.PUBLISHED)) == len(L.PUBLISHED)
    assert {L.PREFERENCE, L.PREFERENCE_STEPS, L.TAG_POLICY} <= set(L.BY_NAME)
    # one kind of row per dataset: the step pairs and the tag-policy pairs are not preference
    assert len({L.BY_NAME[d].kind for d in (L.PREFERENCE, L.PREFERENCE_STEPS, L.TAG_POLICY)}) == 3
