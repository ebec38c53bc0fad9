"""Issue #22: every data path in pipeline/ and transforms/ goes through Beam's FileSystems
(local, gs://, s3://). This test scans the code (comments and strings are not code) for local-disk
APIs and fails on any use outside the allow-list below: whole files with the reason they may use
the local disk, or single lines marked `# local-only: <reason>`.

Flagged: `pathlib` / `Path(`, the builtin `open(`, `os.path`, `shutil`, `glob.glob`,
`os.replace|rename|makedirs|mkdir|symlink|remove|unlink|listdir|scandir|walk`, and the
`.read_text(` / `.write_text(` / `.read_bytes(` / `.write_bytes(` methods. The FileSystems
helpers of transforms/io/files.py with the same names (`read_text(path)`,
`files.write_bytes(path, data)`, ...) are not flagged.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("pipeline", "transforms")

# file → why it may use the local disk (nothing in it is a data path)
ALLOWED = {
    "transforms/io/files.py": "the FileSystems helpers themselves: their local branches keep "
                              "the stdlib's glob and directory rules for local paths",
    "pipeline/outputs/local_disk.py": "local publish: flock, the `current` symlink switched with "
                               "os.replace, the published-name symlinks (publish.py does the "
                               "object-store half through FileSystems)",
    "transforms/packaged.py": "package resources: finds installed model packages on disk",
    "transforms/llm/prompts.py": "package resources: prompt templates and JSON Schemas shipped "
                                 "in the source tree",
    "transforms/llm/local_model.py": "model files: the local GGUF model and its converted "
                                     "cache on each worker's disk",
    "transforms/embed/onnx.py": "model files: the ONNX export cache of the embedding model on "
                                "each worker's disk",
    "transforms/machine_cache.py": "this machine's cache of derived files (the ONNX export, "
                                   "the report's Vega bundle), never data",
}

OS_CALLS = {"replace", "rename", "makedirs", "mkdir", "symlink", "remove", "unlink", "listdir",
            "scandir", "walk", "path"}
METHODS = {"read_text", "write_text", "read_bytes", "write_bytes"}
MARKER = "# local-only:"


def _code_tokens(source: str) -> list[tokenize.TokenInfo]:
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    skip |= {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
             if hasattr(tokenize, n)}
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in skip]


def local_disk_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every use of a local-disk API in `source`'s code."""
    toks = _code_tokens(source)
    hits = []
    for i, t in enumerate(toks):
        prev = toks[i - 1].string if i else ""
        nxt = toks[i + 1].string if i + 1 < len(toks) else ""
        after = toks[i + 2].string if i + 2 < len(toks) else ""
        owner = toks[i - 2].string if i > 1 else ""
        what = None
        if t.type != tokenize.NAME:
            continue
        if t.string in ("pathlib", "shutil") and prev != ".":
            what = t.string
        elif t.string == "Path" and nxt == "(":
            what = "Path("
        elif t.string == "open" and nxt == "(" and prev not in (".", "def"):
            what = "open("
        elif t.string == "os" and nxt == "." and after in OS_CALLS and prev != ".":
            what = f"os.{after}"
        elif t.string == "glob" and nxt == "." and after == "glob" and prev != ".":
            what = "glob.glob"
        elif t.string in METHODS and prev == "." and nxt == "(" and owner != "files":
            what = f".{t.string}("
        if what:
            hits.append((t.start[0], what))
    return hits


def _marked(line: str) -> bool:
    return MARKER in line and line.split(MARKER, 1)[1].strip() != ""


def unmarked_uses(source: str) -> list[str]:
    """'line N: what' for every use not on a `# local-only: <reason>` line."""
    lines = source.splitlines()
    return [f"line {n}: {what}" for n, what in local_disk_uses(source)
            if not _marked(lines[n - 1])]


def scan(root: Path = ROOT) -> dict[str, list[str]]:
    """file → its unallowed uses ('line N: what'), for files with any."""
    out: dict[str, list[str]] = {}
    for top in SCANNED:
        for f in sorted((root / top).rglob("*.py")):
            rel = f.relative_to(root).as_posix()
            if rel not in ALLOWED and (bad := unmarked_uses(f.read_text(encoding="utf-8"))):
                out[rel] = bad
    return out


def test_no_local_disk_api_on_a_data_path() -> None:
    found = scan()
    report = "\n".join(f"{f}: {', '.join(hits)}" for f, hits in sorted(found.items()))
    assert not found, (
        "local-disk APIs outside the allow-list (use transforms/io/files.py or "
        "pipeline/outputs/storage.py, which go through Beam's FileSystems; or, for a file that is "
        "not data, mark the line `# local-only: <reason>`):\n" + report)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_allowed_file_exists_and_needs_its_entry(name: str) -> None:
    f = ROOT / name
    assert f.is_file(), f"{name} is allow-listed but does not exist"
    assert unmarked_uses(f.read_text(encoding="utf-8")), f"{name} no longer needs its entry"
    assert ALLOWED[name].strip()


@pytest.mark.parametrize("code, expected", [
    ("from pathlib import Path\n", ["pathlib"]),
    ("import shutil\nshutil.rmtree(d)\n", ["shutil", "shutil"]),
    ("p = Path(x)\n", ["Path("]),
    ("with open(p) as f:\n    pass\n", ["open("]),
    ("os.path.join(a, b)\n", ["os.path"]),
    ("os.replace(a, b); os.makedirs(d); os.symlink(a, b); os.rename(a, b)\n",
     ["os.replace", "os.makedirs", "os.symlink", "os.rename"]),
    ("glob.glob(pattern)\n", ["glob.glob"]),
    ("x = p.read_text(); p.write_bytes(b)\n", [".read_text(", ".write_bytes("]),
    # not flagged: FileSystems helpers, methods named open, text, comments, f-strings
    ("write_text(path, s); data = read_bytes(path); files.write_bytes(p, b)\n", []),
    ("with FileSystems.open(p) as f:\n    pass\n", []),
    ("def open(self):\n    pass\n", []),
    ("s = 'open(x) and os.path and Path(y)'  # shutil, pathlib\n", []),
    ('s = f"{a}/os.path/open("\n', []),
    ("glob.has_magic(p)\n", []),
])
def test_the_scanner_flags_code_not_text(code: str, expected: list[str]) -> None:
    assert [what for _, what in local_disk_uses(code)] == expected


def test_a_marked_line_needs_a_reason() -> None:
    assert _marked("p = Path(x)  # local-only: a config file")
    assert not _marked("p = Path(x)  # local-only:")
    assert not _marked("p = Path(x)")
