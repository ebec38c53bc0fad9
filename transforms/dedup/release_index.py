"""The dedup index stored next to a release: exact-key hashes, MinHash signatures, embeddings.

Reads/writes `<dir>/dedup_minhash.npz` (ids, exact hashes, signatures, the MinHash parameters)
and `<dir>/dedup_embeddings.npz` (ids, float32 embeddings, model name). New data is deduplicated
against these rows: they are pinned keepers that never leave any output themselves. `<dir>`
may be local, gs:// or s3:// (Beam's FileSystems); files are built in memory and written whole.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms.io import files

MINHASH_FILE = "dedup_minhash.npz"
EMBED_FILE = "dedup_embeddings.npz"


@dataclass
class ReleaseIndex:
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    sigs: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    emb_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    emb: np.ndarray | None = None
    emb_model: str | None = None

    @property
    def empty(self) -> bool:
        return len(self.ids) == 0 and len(self.emb_ids) == 0


def save_index(path: str, ids: list[str], hashes: np.ndarray, sigs: np.ndarray,
               params: dict[str, Any], emb_ids: list[str] | None = None,
               emb: np.ndarray | None = None, emb_model: str | None = None) -> None:
    """Write the index (rows sorted by id, so the files are byte-stable)."""
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    _save(files.join(path, MINHASH_FILE),
          ids=np.asarray(ids, dtype=str)[order] if ids else np.zeros(0, "U1"),
          hashes=np.asarray(hashes, np.uint64)[order],
          sigs=np.asarray(sigs, np.uint32)[order],
          params=np.array(json.dumps(params, sort_keys=True)))
    if emb is not None and emb_ids is not None:
        eo = np.argsort(np.asarray(emb_ids, dtype=object), kind="stable")
        _save(files.join(path, EMBED_FILE),
              ids=np.asarray(emb_ids, dtype=str)[eo] if emb_ids else np.zeros(0, "U1"),
              emb=np.asarray(emb, np.float32)[eo], model=np.array(emb_model or ""))


def load_index(path: str | None, params: dict[str, Any]) -> ReleaseIndex:
    """The index under `path` (empty when there is none). Raises when its MinHash parameters
    differ from `params`: such signatures cannot be compared."""
    idx = ReleaseIndex()
    if not path:
        return idx
    mfile = files.join(path, MINHASH_FILE)
    if files.exists(mfile):
        with _load(mfile) as z:
            stored = json.loads(str(z["params"]))
            if stored != params:
                raise ValueError(f"release index {mfile} was built with {stored}, "
                                 f"this run uses {params}; rebuild it")
            idx.ids = z["ids"].astype(object)
            idx.hashes = z["hashes"]
            idx.sigs = z["sigs"]
            idx.params = stored
    efile = files.join(path, EMBED_FILE)
    if files.exists(efile):
        with _load(efile) as z:
            idx.emb_ids = z["ids"].astype(object)
            idx.emb = z["emb"]
            idx.emb_model = str(z["model"])
    return idx


def _save(path: str, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_bytes(path, buf.getvalue())


def _load(path: str) -> Any:
    return np.load(io.BytesIO(files.read_bytes(path)), allow_pickle=False)
