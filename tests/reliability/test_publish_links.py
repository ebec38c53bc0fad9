"""Publishing links only what the run wrote: an ingest-only run leaves no dangling symlink, and
a name the previous run had but this one lacks is unlinked after the switch."""

from __future__ import annotations

from pathlib import Path

from pipeline.outputs import layout as L
from tests.reliability._helpers import run_cli, write_jsonl


def _links(out: Path) -> dict[str, bool]:
    """Published link name → whether it resolves."""
    return {p.name: p.exists() for p in out.iterdir() if p.is_symlink() and p.name != "current"}


def test_an_ingest_only_run_leaves_no_dangling_link(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = run_cli(capsys, [write_jsonl(tmp_path / "in.jsonl", 5)], out)
    assert code == 0, err
    links = _links(out)
    assert links and all(links.values()), f"dangling: {[n for n, ok in links.items() if not ok]}"
    # the run wrote these (no stage ran: nothing rejected, no step or tag-policy pairs)
    assert {L.SFT, L.PREFERENCE, L.DEADLETTER, L.MANIFEST, L.CARD, L.REPORT} <= set(links)
    assert not {L.CURATED, L.PREFERENCE_STEPS, L.TAG_POLICY, L.JSONL, L.REJECTED} & set(links)


def test_a_name_the_new_run_lacks_is_unlinked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    code, err = run_cli(capsys, [src], out, "--set", "emit.jsonl=true")
    assert code == 0, err
    assert (out / L.JSONL / L.SFT).is_dir()
    code, err = run_cli(capsys, [src], out)
    assert code == 0, err
    assert not (out / L.JSONL).is_symlink() and not (out / L.JSONL).exists()
    assert all(_links(out).values())
