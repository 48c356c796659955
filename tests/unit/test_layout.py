"""The README's "where things live" (## Layout) matches the tree: every file it names
exists, and infrastructure/'s top level holds only what it lists there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_every_file_the_request_path_names_exists() -> None:
    named = re.findall(r"`([\w./*-]+\.(?:py|lua))`", layout())
    assert len(named) >= 15
    for name in named:
        found = [ROOT / name] if "/" in name else list(ROOT.rglob(name))
        assert any(path.exists() for path in found), name


def test_infrastructure_top_level_is_what_the_layout_lists() -> None:
    tree = layout().split("```")[1]
    block = tree.split("infrastructure/\n", 1)[1].split("\nmigrations/", 1)[0]
    listed = {
        word.rstrip("/")
        for line in block.splitlines()
        if line.startswith("  ") and not line.startswith("    ")
        for word in line.split("   ")[0].split()
    }
    present = {
        path.stem if path.suffix == ".py" else path.name
        for path in (ROOT / "infrastructure").iterdir()
        if path.name != "__init__.py" and not path.name.startswith((".", "__pycache__"))
    }
    assert {name.removesuffix(".py") for name in listed} == present
