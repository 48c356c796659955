"""The student app's files (infrastructure/http/pages/static/app/, webapp/): every code the
API can answer has words in the app; the vendored libraries are the locked versions, byte
for byte as their integrity list says, and the page's import map carries the same hashes;
each operation the app sends is one named operation, valid against the served schema."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from enum import StrEnum
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse, validate

from domain.errors import ErrorCode
from domain.live import WaitlistStatus
from domain.model import DropOutcome, RegisterOutcome, SwapOutcome
from domain.rules import Rejection
from resolvers.root import build_schema

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "infrastructure/http/pages/static/app"
WEBAPP = ROOT / "webapp"
VENDORED = [APP / "vendor", ROOT / "tests/browser/vendor"]


def js_object_keys(source: str, name: str) -> set[str]:
    """The keys of `export const NAME = { KEY: ..., ... };` in a JS module."""
    match = re.search(rf"export const {name} = \{{(.*?)\n\}};", source, re.DOTALL)
    assert match, f"words.js has no {name}"
    return set(re.findall(r"^  ([A-Z_]+):", match.group(1), re.MULTILINE))


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        ("REJECTIONS", Rejection),
        ("REGISTER_OUTCOMES", RegisterOutcome),
        ("DROP_OUTCOMES", DropOutcome),
        ("SWAP_OUTCOMES", SwapOutcome),
        ("WAITLIST_STATUSES", WaitlistStatus),
        ("ERRORS", ErrorCode),
    ],
)
def test_every_answer_of_the_api_has_words_in_the_app(table: str, enum: type[StrEnum]) -> None:
    words = js_object_keys((APP / "words.js").read_text(), table)
    missing = {member.value for member in enum} - words
    assert not missing, f"words.js {table} says nothing for {sorted(missing)}"


def sha384(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


@pytest.mark.parametrize("folder", VENDORED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_vendored_file_matches_its_integrity_hash(folder: Path) -> None:
    listed = json.loads((folder / "integrity.json").read_text())
    on_disk = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "integrity.json"
    }
    assert on_disk == set(listed), "files and integrity.json differ: run `make webapp`"
    for name, integrity in listed.items():
        assert sha384(folder / name) == integrity, f"{name} is not the vendored file"


def test_the_vendored_versions_are_the_locked_ones() -> None:
    lock = json.loads((WEBAPP / "package-lock.json").read_text())["packages"]
    for folder in VENDORED:
        for name in json.loads((folder / "integrity.json").read_text()):
            package, _, version = name.split("/", 1)[0].rpartition("@")
            assert lock[f"node_modules/{package}"]["version"] == version, name


def test_the_import_map_names_the_vendored_modules_with_their_hashes() -> None:
    page = (APP / "index.html").read_text()
    match = re.search(r'<script type="importmap">(.*?)</script>', page, re.DOTALL)
    assert match
    import_map = json.loads(match.group(1))
    listed = json.loads((APP / "vendor/integrity.json").read_text())
    modules = {f"/static/app/vendor/{n}": h for n, h in listed.items() if n.endswith(("js", "mjs"))}
    assert import_map["integrity"] == modules
    assert set(import_map["imports"].values()) <= set(modules)
    assert set(import_map["imports"]) == {
        "preact",
        "preact/hooks",
        "htm",
        "graphql-ws",
        "oidc-client-ts",
        "jwt-decode",  # oidc-client-ts's ESM build imports it by this bare name
    }


def test_the_app_imports_only_its_own_modules_and_the_import_map() -> None:
    page = (APP / "index.html").read_text()
    mapped = set(
        json.loads(re.findall(r'importmap">(.*?)</script>', page, re.DOTALL)[0])["imports"]
    )
    for module in APP.glob("*.js"):
        for name in re.findall(r'^import .*? from "([^"]+)";', module.read_text(), re.MULTILINE):
            if name.startswith("./"):
                assert (APP / name).is_file(), f"{module.name} imports missing {name}"
            else:
                assert name in mapped, f"{module.name} imports {name}, not in the import map"


OPERATIONS = sorted((WEBAPP / "operations").glob("*.graphql"))


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_each_operation_file_is_one_named_operation_valid_against_the_schema(path: Path) -> None:
    document = parse(path.read_text())
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1 and operations[0].name is not None
    assert operations[0].name.value == path.stem
    assert validate(build_schema()._schema, document) == []


def test_every_operation_the_app_sends_has_its_file() -> None:
    sent: set[str] = set()
    for module in APP.glob("*.js"):
        text = module.read_text()
        sent |= set(re.findall(r'request\(\s*"([A-Za-z]+)"', text))
        sent |= set(re.findall(r'subscribe\(\s*\w+,\s*"([A-Za-z]+)"', text))
        sent |= set(re.findall(r'answerOffer\(\w+, "([A-Za-z]+)"\)', text))
    assert sent and sent <= {p.stem for p in OPERATIONS}, sent - {p.stem for p in OPERATIONS}
    generated = (APP / "operations.js").read_text()
    for name in sent:
        assert f'"{name}": {{' in generated, f"operations.js lacks {name}: run `make webapp`"
