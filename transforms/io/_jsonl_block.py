"""JSONL block parsing for the columnar ingest path: a split's bytes → line offsets, a screen
for lines that cannot take the fast path (blank, oversized, not one object), and one
`pyarrow.json` parse of the rest, with a line-by-line recheck when the block parse fails.
Reads bytes; writes an Arrow table plus the indices of lines left to the per-row path."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from transforms.io.readers import _loads


class Lines:
    """The lines of a split's bytes, found with numpy (no per-line Python objects)."""

    def __init__(self, data: bytes, limit: int | None = None) -> None:
        self.data = data
        self.buf = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(self.buf == 10) if data else np.zeros(0, np.int64)
        self.starts = np.concatenate([[0], nl + 1]) if data else np.zeros(0, np.int64)
        self.ends = np.concatenate([nl, [len(data)]]) if data else np.zeros(0, np.int64)
        if limit is not None:
            self.starts, self.ends = self.starts[:max(0, limit)], self.ends[:max(0, limit)]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.starts[i]:self.ends[i]]

    def block(self, idx: np.ndarray) -> bytes | memoryview:
        """The lines `idx` (ascending) joined by newlines; a view (no copy) when they are
        consecutive."""
        if not len(idx):
            return b""
        if idx[-1] - idx[0] + 1 == len(idx):
            return memoryview(self.data)[self.starts[idx[0]]:self.ends[idx[-1]]]
        return b"\n".join([self[int(i)] for i in idx])


# A line with more '[' and '{' than this goes to the per-row path: pyarrow.json's type
# inference takes time that grows with the cube of the nesting depth (minutes for one row
# nested 10,000 deep), and orjson refuses such rows at once. (An upper bound on the depth.)
MAX_BULK_OPENS = 256


def _opens(lines: Lines) -> np.ndarray:
    """The number of '[' and '{' bytes on each line (one byte value at a time: one temporary
    the size of the split, not three)."""
    count = np.zeros(len(lines), np.int64)
    for byte in (0x5B, 0x7B):
        at = np.flatnonzero(lines.buf == byte)
        count += np.searchsorted(at, lines.ends) - np.searchsorted(at, lines.starts)
    return count


def screen(lines: Lines, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(lines for the bulk parser, lines for the per-row path); blank lines are in neither.
    Bulk lines are one JSON object each ('{' ... '}'), within max_bytes, not nested deeper
    than MAX_BULK_OPENS can be, and free of the NaN/Infinity literals that pyarrow.json
    accepts and orjson does not."""
    buf, starts, ends = lines.buf, lines.starts, lines.ends
    if not len(lines):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lens = ends - starts
    last = buf[np.maximum(ends - 1, 0)]
    before = buf[np.maximum(ends - 2, 0)]
    closes = (last == 0x7D) | ((last == 0x0D) & (before == 0x7D) & (lens >= 2))
    quick = (lens > 0) & (buf[np.minimum(starts, len(buf) - 1)] == 0x7B) & closes
    shallow = _opens(lines) <= MAX_BULK_OPENS
    quick &= (lens <= max_bytes) & shallow
    more, slow = [], []
    for i in np.flatnonzero(~quick & (lens > 0)).tolist():
        line = lines[i]
        if line.isspace():
            continue
        stripped = line.strip()
        if (len(line) <= max_bytes and shallow[i] and stripped[:1] == b"{"
                and stripped[-1:] == b"}"):
            more.append(i)
        else:
            slow.append(i)
    cand = np.flatnonzero(quick)
    if more:
        cand = np.union1d(cand, more)
    return cand.astype(np.int64), np.array(slow, np.int64)


def _has_float(t: pa.DataType) -> bool:
    if pa.types.is_floating(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_float(t.field(i).type) for i in range(t.num_fields))
    return pa.types.is_list(t) and _has_float(t.value_type)


def non_json_literals(lines: Lines, cand: np.ndarray, table: pa.Table) -> np.ndarray:
    """Mask over `cand`: lines holding NaN/Infinity, which pyarrow.json reads as floats and
    orjson rejects (only possible when the table has a float field)."""
    bad = np.zeros(len(cand), bool)
    if not any(_has_float(f.type) for f in table.schema):
        return bad
    pos = {int(i): j for j, i in enumerate(cand)}
    for lit in (b"NaN", b"Infinity"):
        at = lines.data.find(lit)
        while at >= 0:
            j = pos.get(int(np.searchsorted(lines.starts, at, "right")) - 1)
            if j is not None and not bad[j] and not _parses(lines[int(cand[j])]):
                bad[j] = True
            at = lines.data.find(lit, at + 1)
    return bad


def _parses(line: bytes) -> bool:
    try:
        return isinstance(_loads(line), dict)
    except ValueError:
        return False


def _read_block(lines: Lines, idx: np.ndarray) -> pa.Table | None:
    """One row per line, or None when pyarrow.json refuses the block, splits it differently
    (two objects on a line, type conflicts, duplicate keys) or it holds invalid UTF-8."""
    block = lines.block(idx)
    opts = pj.ReadOptions(use_threads=False, block_size=max(len(block) + 1, 1 << 16))
    try:
        table = pj.read_json(pa.BufferReader(block), read_options=opts)
        if np.frombuffer(block, np.uint8).max(initial=0) > 0x7F:  # pyarrow.json does not
            table.validate(full=True)  # validate UTF-8
            table.column_names  # noqa: B018 - field names are decoded here
    except (pa.ArrowException, ValueError):
        return None
    return table if table.num_rows == len(idx) else None


def parse_lines(lines: Lines, cand: np.ndarray, slow: np.ndarray
                ) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
    """Parse candidate lines; on failure drop the lines orjson rejects (it validates UTF-8)
    and retry once; if that fails too, every candidate goes to the per-row path."""
    if not len(cand):
        return None, cand, slow
    try:
        table = _read_block(lines, cand)
        if table is not None and non_json_literals(lines, cand, table).any():
            table = None
    except RecursionError:  # deeply nested values: orjson below refuses them row by row
        table = None
    if table is None:
        good = np.array([_parses(lines[int(i)]) for i in cand], bool)
        cand, slow = cand[good], np.sort(np.concatenate([slow, cand[~good]]))
        table = _read_block(lines, cand) if len(cand) else None
        if table is None:
            cand, slow = cand[:0], np.sort(np.concatenate([slow, cand]))
    return table, cand, slow


