"""Every field name the Lua scripts write or read is owned by domain/wire.py: each XADD's
fields (in STREAM_FIELDS order, kinds from ChangeKind), each PUBLISHed event's fields and
kinds, and each JSON field of a holding, a section's rule data or a student's facts."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.changes import ChangeKind
from domain.model import SectionSetup
from domain.rules import Meeting, SectionRules, WaitlistMode
from domain.wire import (
    STREAM_FIELDS,
    EventField,
    EventKind,
    HoldingField,
    SectionField,
    StudentFact,
)
from infrastructure.redis.rules import decode_rules, rules_json
from infrastructure.redis.scripts import Scripts

FOLDER = Path(__file__).resolve().parents[2] / "infrastructure" / "redis"
SCRIPTS = sorted(FOLDER.rglob("*.lua"))
LIBRARIES = {"redis", "cjson", "string", "math", "table"}
JSON_FIELDS = {*HoldingField, *SectionField}
ORDER = [field.value for field in STREAM_FIELDS]
# A table that is an event: `event = {...}`, or a literal handed to PUBLISH.
EVENT_TABLE = re.compile(r"(\bevent\s*=|'PUBLISH',[^{]*cjson\.encode\()\s*$")
# append.lua writes the field/value pairs its caller passes (RedisRuleStore._log).
PASSED_THROUGH = ["unpack(ARGV, 3)"]


def _code(path: Path) -> str:
    """The script without its comments (no string in these scripts holds "--")."""
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _scan(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth after it) outside quoted strings."""
    depth, quote = 0, ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
            continue
        if char in "'\"":
            quote = char
            continue
        depth += (char in "({[") - (char in ")}]")
        yield i, char, depth


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at `start`."""
    for i, _, depth in _scan(text[start:]):
        if depth == 0:
            return start + i
    raise AssertionError(f"unbalanced brackets from {text[start : start + 40]!r}")


def _arguments(text: str) -> list[str]:
    """Top-level comma-separated parts of an argument list."""
    cuts = [i for i, char, depth in _scan(text) if char == "," and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)], strict=True)
    return [part for a, b in bounds if (part := text[a + 1 : b].strip())]


def _calls(code: str, command: str) -> Iterator[list[str]]:
    for match in re.finditer(rf"redis\.call\('{command}',", code):
        opening = match.start() + len("redis.call")
        yield _arguments(code[opening + 1 : _closing(code, opening)])[1:]


def _literal(text: str) -> str | None:
    found = re.fullmatch(r"'([^']*)'", text)
    return found.group(1) if found else None


def _table_keys(code: str, opening: int) -> list[str]:
    """The `name = value` keys of the table constructor opening at `opening`."""
    parts = _arguments(code[opening + 1 : _closing(code, opening)])
    return [m.group(1) for p in parts if (m := re.match(r"([A-Za-z_]\w*)\s*=(?!=)", p))]


def _xadds() -> Iterator[tuple[str, list[str]]]:
    for path in SCRIPTS:
        for args in _calls(_code(path), "XADD"):
            yield path.name, args[2:]  # after the key and the id '*'


def test_every_xadd_writes_the_stream_fields_in_their_order() -> None:
    seen = 0
    for script, pairs in _xadds():
        if pairs == PASSED_THROUGH:
            continue
        names = [name for name in map(_literal, pairs[::2]) if name is not None]
        assert len(names) == len(pairs) // 2, f"{script}: a field name not a literal: {pairs}"
        unknown = [n for n in names if n not in ORDER]
        assert not unknown, f"{script}: stream fields not in domain/wire.py: {unknown}"
        order = [ORDER.index(n) for n in names]
        assert order == sorted(order), f"{script}: fields out of STREAM_FIELDS order: {names}"
        kinds = [_literal(v) for n, v in zip(names, pairs[1::2], strict=True) if n == "k"]
        wrong = [k for k in kinds if k is not None and k not in set(ChangeKind)]
        assert not wrong, f"{script}: kinds not in domain.changes.ChangeKind: {wrong}"
        seen += 1
    assert seen >= 9, "the parser lost the XADD calls"


def _event_names(code: str) -> Iterator[str]:
    """The fields of every event the script builds: its `event` tables and their keys
    set later, and table literals handed straight to PUBLISH."""
    for match in re.finditer(r"\bevent\s*=\s*\{", code):
        yield from _table_keys(code, match.end() - 1)
    yield from re.findall(r"\bevent\.(\w+)", code)
    for args in _calls(code, "PUBLISH"):
        literal = re.match(r"cjson\.encode\(\{", args[1])
        if literal:
            yield from _table_keys(args[1], literal.end() - 1)


def _assigned(code: str, target: str) -> Iterator[str]:
    """The values assigned to `target`, also in a multiple assignment (`a, b = x, y`)."""
    for line in code.splitlines():
        statement = re.match(r"\s*(?:local\s+)?([\w.,\s]+?)\s*=(?!=)(.*)", line)
        if statement:
            targets = [t.strip() for t in statement.group(1).split(",")]
            values = _arguments(statement.group(2))
            yield from (v for t, v in zip(targets, values, strict=False) if t == target)


def _event_kinds(code: str) -> Iterator[str | None]:
    yield from map(_literal, _assigned(code, "event.k"))
    for match in re.finditer(r"\bevent\s*=\s*\{", code):
        table = code[match.end() - 1 : _closing(code, match.end() - 1) + 1]
        yield from re.findall(r"\bk\s*=\s*'(\w+)'", table)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_published_event_field_and_kind_is_owned(path: Path) -> None:
    code = _code(path)
    unknown = {n for n in _event_names(code) if n not in set(EventField)}
    assert not unknown, f"{path.name}: event fields not in domain/wire.py: {unknown}"
    kinds = {k for k in _event_kinds(code) if k is not None and k not in set(EventKind)}
    assert not kinds, f"{path.name}: event kinds not in domain/wire.py: {kinds}"


def _json_names(code: str) -> Iterator[tuple[str, str]]:
    """(owner, name) of every field read or written on a decoded JSON value: dotted
    accesses, and the keys of table constructors that are not events."""
    for owner, name in re.findall(r"(?<![\w.])([A-Za-z_]\w*|[\])])\.([A-Za-z_]\w*)", code):
        if owner not in LIBRARIES and owner != "event":
            yield owner, name
    for match in re.finditer(r"\{", code):
        if not EVENT_TABLE.search(code[: match.start()]):
            yield from (("{}", key) for key in _table_keys(code, match.start()))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_json_field_is_owned(path: Path) -> None:
    """Holdings, section rule data (domain/wire.py HoldingField, SectionField) and the
    student facts load_student.lua takes (StudentFact)."""
    unknown = set()
    for owner, name in _json_names(_code(path)):
        owned = set(StudentFact) if owner == "facts" else JSON_FIELDS
        if name not in owned:
            unknown.add(f"{owner}.{name}")
    assert not unknown, f"{path.name}: JSON fields not in domain/wire.py: {unknown}"


def test_scripts_lists_every_script_of_the_folder_once() -> None:
    assert sorted(Scripts.NAMES) == sorted(p.stem for p in FOLDER.glob("*.lua"))


def test_the_rules_fingerprint_survives_the_cached_json_and_tells_what_holdings_copy() -> None:
    """register.lua compares the fingerprint a request's cached setup gives (decoded from the
    section's JSON) with the one staff's open_section wrote (from Postgres): the same rules
    must give the same one, or every register would be refused. Only what a holding copies
    (course, credits, meeting minutes, links) changes it."""
    rules = SectionRules(
        uuid.uuid4(),
        uuid.uuid4(),
        3.0,
        (Meeting(("WED", "MON"), "09:00", "10:15", "Hall 1"),),
        (uuid.uuid4(), uuid.uuid4()),
    )
    now = datetime.now(UTC)
    setup = SectionSetup(uuid.uuid4(), 10, True, now, now, 1, rules)
    assert decode_rules(rules_json(setup)).fingerprint() == rules.fingerprint()
    same = [
        dataclasses.replace(rules, linked_sections=rules.linked_sections[::-1]),
        dataclasses.replace(rules, waitlist_capacity=5, waitlist_mode=WaitlistMode.OFFER),
        dataclasses.replace(rules, meetings=(Meeting(("MON", "WED"), "09:00", "10:15"),)),
    ]
    assert {r.fingerprint() for r in same} == {rules.fingerprint()}
    other = [
        dataclasses.replace(rules, credits=4.0),
        dataclasses.replace(rules, meetings=(Meeting(("MON",), "09:00", "10:15"),)),
        dataclasses.replace(rules, linked_sections=()),
        dataclasses.replace(rules, course_id=uuid.uuid4()),
    ]
    assert rules.fingerprint() not in {r.fingerprint() for r in other}
