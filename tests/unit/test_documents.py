"""The trusted documents' build (infrastructure/http/documents.py): the committed manifest and
operations.js are what `make documents` makes of webapp/operations today, and the build
refuses a file that is not one valid operation named like the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from infrastructure.http.documents import APP, MANIFEST, OPERATIONS_JS, build, main

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "webapp" / "operations"


def test_the_committed_manifest_and_operations_js_are_up_to_date(tmp_path: Path) -> None:
    build(SOURCE, tmp_path)
    for name in (MANIFEST.name, OPERATIONS_JS):
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = (APP / name).read_text(encoding="utf-8")
        assert committed == fresh, f"{APP / name} is stale: run `make documents` and commit it"


def test_every_operation_is_listed_by_the_sha256_of_its_text() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    texts = {path.read_text(encoding="utf-8").strip() + "\n" for path in SOURCE.glob("*.graphql")}
    assert set(manifest.values()) == texts
    for key, text in manifest.items():
        assert key == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("Other", "query Mine { me { id } }", "one operation named Other"),
        ("Two", "query Two { me { id } }\nquery Three { me { id } }", "one operation named Two"),
        ("Anonymous", "{ me { id } }", "one operation named Anonymous"),
        ("Stale", "query Stale { me { noSuchField } }", "noSuchField"),
    ],
)
def test_the_build_refuses_a_file_that_is_not_one_valid_operation_of_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, problem: str
) -> None:
    source = tmp_path / "operations"
    source.mkdir()
    (source / f"{name}.graphql").write_text(text)
    assert main(["build", str(source), str(tmp_path / "out")]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "out" / MANIFEST.name).exists()
