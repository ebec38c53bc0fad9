"""The README is a door: short, its commands run as written, and every link in it and in
docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _fenced(text: str) -> list[str]:
    """The lines of every fenced block, comments and blank lines left out."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        lines += [ln.split("#", 1)[0].strip() for ln in block.splitlines()]
    return [ln for ln in lines if ln]


def _commands(lines: list[str]) -> list[str]:
    """The refinery subcommands named on the lines (`refinery X`, `.venv/bin/refinery X`)."""
    found = []
    for ln in lines:
        m = re.match(r"^(?:\S*/)?refinery\s+([a-z][a-z-]*)", ln)
        if m and m.group(1) not in found:
            found.append(m.group(1))
    return found


def test_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 150


def test_quick_start_commands_exist() -> None:
    text = README.read_text()
    lines = _fenced(_section(text, "Quick start"))
    targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
    makes = [ln.split()[1] for ln in lines if ln.startswith("make ")]
    assert makes and set(makes) <= set(targets), makes
    for ln in lines:
        for path in re.findall(r"(?:configs|data)/[\w./-]+", ln):
            assert (ROOT / path).exists(), path


@pytest.mark.parametrize("section", ["Quick start", "The command line at a glance"])
def test_every_listed_command_answers_help(section: str, capsys) -> None:
    commands = _commands(_fenced(_section(README.read_text(), section)))
    assert commands
    if section != "Quick start":
        assert {"run", "validate", "inspect", "review", "tag-utility", "release"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0, command
        assert "usage: refinery" in capsys.readouterr().out


def test_version_flag(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.match(r"refinery \S+", capsys.readouterr().out)


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not a link
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    links = [u for u in _links(page) if not re.match(r"^[a-z]+:", u)]
    for url in links:
        path, _, anchor = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {url}"
        if anchor and target.suffix == ".md":
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-")
                     for h in re.findall(r"^#+ (.+)$", target.read_text(), re.M)}
            assert anchor in slugs, f"{page.name}: {url}"


def test_developing_points_inside_the_repository() -> None:
    text = (ROOT / "docs" / "DEVELOPING.md").read_text()
    assert "DESIGN.md" not in text and "STYLE.md" not in text
