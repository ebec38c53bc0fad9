"""docs/DEVELOPING.md shows real code: every code block marked `<!-- from: PATH -->` appears
verbatim in that file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"<!-- from: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def test_marked_snippets_are_copied_from_their_source() -> None:
    text = (ROOT / "docs" / "DEVELOPING.md").read_text()
    blocks = _BLOCK.findall(text)
    markers = re.findall(r"^<!-- from: ", text, re.MULTILINE)
    assert len(blocks) >= 5 and len(markers) == len(blocks)  # each marker opens a block
    for path, code in blocks:
        source = (ROOT / path).read_text()
        assert code in source, f"docs/DEVELOPING.md: a snippet is no longer in {path}"
