"""Catalog and roster import (`coursereg import catalog|students FILE`): a registrar's CSV
files read as records, every row checked against the file and the record before anything is
written, and the plan of what the import adds, changes and (with prune) deactivates.

Natural keys: a course by its code; a section by semester + course code + section number
(section numbers are unique per course and semester: uq_sections_course_semester_number);
a student by student number. Rows that repeat a key, or a course whose fields differ
between its rows, are bad rows. New rows get their ids here, so a new section can name a
new section as linked, and a new course a new course as prerequisite, in the same file."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from domain.catalog import MAX_SEATS, require_seats, require_text
from domain.errors import BadInput
from domain.model import ACTIVE, ENROLLMENT_STATUSES
from domain.rule_records import KEEP, Keep, SectionRulesChange
from domain.rules import (
    DEFAULT_MAX_CREDITS,
    DEFAULT_OFFER_HOURS,
    WEEKDAYS,
    Meeting,
    WaitlistMode,
    minutes,
)
from domain.rules_admin import (
    MAX_COURSE_CREDITS,
    MAX_LINKED_SECTIONS,
    MAX_OFFER_HOURS,
    MAX_PREREQUISITES,
    MAX_STUDENT_CREDITS,
    checked_meetings,
    require_credits,
)
from domain.time_tickets import MAX_PROBLEMS, BadRows

CATALOG_COLUMNS = (
    "semester",
    "course_code",
    "title",
    "credits",
    "prerequisites",
    "section_number",
    "seats",
    "meetings",
    "linked_sections",
    "waitlist_capacity",
    "waitlist_mode",
    "offer_hours",
)
CATALOG_REQUIRED = ("semester", "course_code", "title", "credits", "section_number", "seats")
STUDENT_COLUMNS = ("student_number", "first_name", "last_name", "email", "status", "credit_limit")
STUDENT_REQUIRED = ("student_number", "first_name", "last_name", "email")

SEPARATOR = ";"  # between the items of prerequisites, meetings and linked_sections
DAY_LETTERS = {"M": "MON", "T": "TUE", "W": "WED", "R": "THU", "F": "FRI", "S": "SAT", "U": "SUN"}
LETTER_OF = {day: letter for letter, day in DAY_LETTERS.items()}
MEETING = re.compile(r"^([A-Za-z]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})(?:\s+(.*))?$")
EMAIL = re.compile(r"^[^@\s,;<>()\[\]\"]+@[^@\s,;<>()\[\]\"]+\.[^@\s,;<>()\[\]\".]+$")


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record as read (fields unchecked) and the physical line it starts on."""

    line: int
    fields: tuple[str, ...]


Problems = list[tuple[int, str]]
T = TypeVar("T")


def taker(line: int, problems: Problems) -> Callable[..., Any]:
    """A caller of parsers that notes a refusal as the row's problem and gives None."""

    def take(parse: Callable[..., T], *args: Any) -> T | None:
        try:
            return parse(*args)
        except BadInput as exc:
            problems.append((line, exc.message))
            return None

    return take


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each column of the header is; the file's rows are read through it."""

    index: Mapping[str, int]

    def has(self, name: str) -> bool:
        return name in self.index

    def value(self, record: Record, name: str) -> str:
        at = self.index.get(name)
        return record.fields[at].strip() if at is not None else ""


def read_header(
    header: Record, known: Sequence[str], required: Sequence[str], problems: Problems
) -> Columns:
    """Column names are matched without case, spaces and hyphens counting as underscores."""
    index: dict[str, int] = {}
    for at, raw in enumerate(header.fields):
        name = re.sub(r"[\s-]+", "_", raw.strip().lower())
        if name not in known:
            problems.append((header.line, f"unknown column {raw.strip()!r}"))
        elif name in index:
            problems.append((header.line, f"column {name!r} appears twice"))
        else:
            index[name] = at
    missing = [name for name in required if name not in index]
    if missing:
        problems.append((header.line, f"missing column(s): {', '.join(missing)}"))
    return Columns(index)


def split_header(records: Sequence[Record]) -> tuple[Record | None, list[Record]]:
    return (records[0], list(records[1:])) if records else (None, [])


def _required(columns: Columns, record: Record, name: str) -> str:
    text = columns.value(record, name)
    if not text:
        raise BadInput(f"{name} is missing")
    return text


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{name} is not a whole number: {text!r}") from None


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{name} is not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadInput(f"{name} is not a number: {text!r}")
    return value


def items(text: str) -> list[str]:
    return [part.strip() for part in text.split(SEPARATOR) if part.strip()]


def hhmm(text: str) -> str:
    hours, mins = text.split(":")
    return f"{int(hours):02d}:{mins}"


def parse_meeting(text: str) -> Meeting:
    """`MWF 09:00-09:50 Room 101`: day letters (M T W R F S U), a 24-hour time range and an
    optional location."""
    match = MEETING.match(text)
    if match is None:
        raise BadInput(f"meeting {text!r} is not like 'MWF 09:00-09:50 Room 101'")
    letters, start, end, location = match.groups()
    unknown = sorted({c for c in letters.upper() if c not in DAY_LETTERS})
    if unknown:
        raise BadInput(
            f"meeting {text!r}: unknown day letter(s) {''.join(unknown)} (use M T W R F S U)"
        )
    days = tuple(sorted({DAY_LETTERS[c] for c in letters.upper()}, key=WEEKDAYS.index))
    start, end = hhmm(start), hhmm(end)
    try:
        if minutes(end, "end") <= minutes(start, "start"):
            raise BadInput(f"meeting {text!r} ends before it starts")
    except BadInput as exc:
        raise BadInput(f"meeting {text!r}: {exc.message}") from None
    return Meeting(days, start, end, (location or "").strip() or None)


def meeting_text(meeting: Meeting) -> str:
    days = "".join(LETTER_OF[d] for d in sorted(meeting.days, key=WEEKDAYS.index))
    where = f" {meeting.location}" if meeting.location else ""
    return f"{days} {meeting.start_time}-{meeting.end_time}{where}"


def meetings_key(meetings: Iterable[Meeting]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        sorted((m.start_time, m.end_time, meeting_text(m), m.location or "") for m in meetings)
    )


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list, frozenset, set)):
        return SEPARATOR.join(str(v) for v in value) or "none"
    return str(value)


@dataclass(frozen=True, slots=True)
class Change:
    """An entity the import changes: what it is, the row, and each field's old and new."""

    what: str
    line: int
    fields: tuple[tuple[str, str, str], ...]

    def describe(self) -> str:
        changed = ", ".join(f"{name} {old} -> {new}" for name, old, new in self.fields)
        return f"change {self.what} (line {self.line}): {changed}"


def changed_fields(pairs: Iterable[tuple[str, object, object]]) -> tuple[tuple[str, str, str], ...]:
    return tuple((name, _text(old), _text(new)) for name, old, new in pairs)


def raise_problems(problems: Problems) -> None:
    if problems:
        problems.sort(key=lambda p: p[0])
        raise BadRows(problems[:MAX_PROBLEMS])


# -- the catalog ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownSemester:
    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class KnownCourse:
    id: UUID
    code: str
    title: str
    credits: float
    prerequisites: frozenset[UUID]


@dataclass(frozen=True, slots=True)
class KnownSection:
    """A section in the record, its seats as the live state has them (the record trails a
    capacity change until the stream is applied) and the seats taken (enrolled or held)."""

    id: UUID
    semester_id: UUID
    course_code: str
    number: str
    seats: int
    taken: int
    meetings: tuple[Meeting, ...]
    linked: frozenset[UUID]
    waitlist_capacity: int | None
    waitlist_mode: WaitlistMode
    offer_hours: int
    active: bool


@dataclass(frozen=True, slots=True)
class CatalogWorld:
    semesters: Sequence[KnownSemester]
    courses: Mapping[str, KnownCourse]  # every course, by code
    # the sections of the semesters the file names, by (semester id, course code, number)
    sections: Mapping[tuple[UUID, str, str], KnownSection]


@dataclass(frozen=True, slots=True)
class CatalogLine:
    """One row of a catalog file, its values checked one by one."""

    line: int
    semester_id: UUID
    course_code: str
    title: str
    credits: float
    prerequisites: tuple[str, ...] | None  # None: the column is not in the file
    section_number: str
    seats: int
    meetings: tuple[Meeting, ...] | None
    linked: tuple[str, ...] | None
    waitlist_capacity: int | Keep | None
    waitlist_mode: WaitlistMode | None
    offer_hours: int | None


@dataclass(frozen=True, slots=True)
class NewCourse:
    id: UUID
    code: str
    title: str
    credits: float
    prerequisites: tuple[UUID, ...]
    line: int


@dataclass(frozen=True, slots=True)
class CourseUpdate:
    """None: that setting stays. Title is the record's alone; credits and prerequisites are
    rules, applied through the staff use case (RulesAdmin.set_course_rules)."""

    id: UUID
    title: str | None
    credits: float | None
    prerequisites: tuple[UUID, ...] | None
    change: Change


@dataclass(frozen=True, slots=True)
class NewSection:
    id: UUID
    course_id: UUID
    semester_id: UUID
    number: str
    seats: int
    meetings: tuple[Meeting, ...]
    linked: tuple[UUID, ...]
    waitlist_capacity: int | None
    waitlist_mode: WaitlistMode
    offer_hours: int
    line: int
    what: str


@dataclass(frozen=True, slots=True)
class SectionUpdate:
    """seats: through the capacity use case (a raise promotes from the line); rules: through
    RulesAdmin.set_section_rules; active: True reopens a section the import had closed."""

    id: UUID
    seats: int | None
    rules: SectionRulesChange | None
    active: bool | None
    change: Change


@dataclass(frozen=True, slots=True)
class Removal:
    id: UUID
    what: str


@dataclass
class CatalogPlan:
    new_courses: list[NewCourse] = field(default_factory=list)
    course_updates: list[CourseUpdate] = field(default_factory=list)
    new_sections: list[NewSection] = field(default_factory=list)
    section_updates: list[SectionUpdate] = field(default_factory=list)
    removed_sections: list[Removal] = field(default_factory=list)

    @property
    def added(self) -> int:
        return len(self.new_courses) + len(self.new_sections)

    @property
    def changed(self) -> int:
        return len(self.course_updates) + len(self.section_updates)

    @property
    def removed(self) -> int:
        return len(self.removed_sections)

    def describe(self) -> list[str]:
        return [
            *(f"add course {c.code} (line {c.line})" for c in self.new_courses),
            *(f"add {s.what} (line {s.line})" for s in self.new_sections),
            *(u.change.describe() for u in self.course_updates),
            *(u.change.describe() for u in self.section_updates),
            *(f"deactivate {r.what} (not in the file)" for r in self.removed_sections),
        ]

    def summary(self) -> str:
        return (
            f"{len(self.new_courses)} courses and {len(self.new_sections)} sections added, "
            f"{len(self.course_updates)} courses and {len(self.section_updates)} sections "
            f"changed, {len(self.removed_sections)} sections deactivated"
        )


def find_semester(text: str, semesters: Sequence[KnownSemester]) -> UUID:
    """By id, or else by name (which must name exactly one semester)."""
    try:
        wanted = UUID(text)
    except ValueError:
        wanted = None
    if wanted is not None and any(s.id == wanted for s in semesters):
        return wanted
    named = [s for s in semesters if s.name == text]
    if len(named) == 1:
        return named[0].id
    if named:
        raise BadInput(f"{len(named)} semesters are named {text!r}: give the semester's id")
    raise BadInput(f"unknown semester {text!r}")


def catalog_semesters(records: Sequence[Record], semesters: Sequence[KnownSemester]) -> set[UUID]:
    """The semesters a catalog file names (those it names rightly), to load their sections."""
    header, rows = split_header(records)
    if header is None:
        return set()
    columns = read_header(header, CATALOG_COLUMNS, CATALOG_REQUIRED, [])
    found = set()
    for text in {columns.value(r, "semester") for r in rows if columns.has("semester")}:
        try:
            found.add(find_semester(text, semesters))
        except BadInput:
            continue
    return found


def _width_problem(record: Record, width: int) -> str | None:
    if len(record.fields) != width:
        return f"expected {width} fields as in the header, got {len(record.fields)}"
    return None


def parse_catalog_line(
    record: Record, columns: Columns, semesters: Sequence[KnownSemester], problems: Problems
) -> CatalogLine | None:
    """The row's values, or None with each wrong value in `problems`."""
    before = len(problems)

    take = taker(record.line, problems)

    def value(name: str) -> str:
        return columns.value(record, name)

    def required(name: str) -> str | None:
        return take(_required, columns, record, name)

    semester_text = required("semester")
    semester = take(find_semester, semester_text, semesters) if semester_text else None
    code = required("course_code")
    code = take(require_text, "course_code", code.upper(), 20) if code else None
    title = required("title")
    title = take(require_text, "title", title, 200) if title else None
    credits_text = required("credits")
    credits = take(_credits, credits_text) if credits_text else None
    number = required("section_number")
    number = take(require_text, "section_number", number, 10) if number else None
    seats_text = required("seats")
    seats = take(_seats, seats_text) if seats_text else None

    def optional(name: str, parse: Callable[[str], T], absent: Any = None) -> Any:
        """A column the header may leave out: `absent` then (the stored value is kept)."""
        return take(parse, value(name)) if columns.has(name) else absent

    prerequisites = optional("prerequisites", _prerequisites)
    meetings = optional("meetings", _meetings)
    linked = optional("linked_sections", _linked)
    capacity: int | Keep | None = optional("waitlist_capacity", _waitlist_capacity, KEEP)
    mode = optional("waitlist_mode", _waitlist_mode)
    offer_hours = optional("offer_hours", _offer_hours)
    if len(problems) > before:
        return None
    assert semester and code and title and number and credits is not None and seats
    return CatalogLine(
        record.line,
        semester,
        code,
        title,
        credits,
        prerequisites,
        number,
        seats,
        meetings,
        linked,
        capacity,
        mode,
        offer_hours,
    )


def _credits(text: str) -> float:
    value = _number("credits", text)
    require_credits("credits", value, 0.0, MAX_COURSE_CREDITS, low_open=False)
    return value


def _seats(text: str) -> int:
    value = _integer("seats", text)
    try:
        require_seats(value)
    except BadInput:
        raise BadInput(f"seats must be between 1 and {MAX_SEATS}, not {value}") from None
    return value


def _prerequisites(text: str) -> tuple[str, ...]:
    codes = [code.upper() for code in items(text)]
    if len(set(codes)) != len(codes):
        raise BadInput("prerequisites name a course twice")
    if len(codes) > MAX_PREREQUISITES:
        raise BadInput(f"prerequisites may name at most {MAX_PREREQUISITES} courses")
    return tuple(codes)


def _meetings(text: str) -> tuple[Meeting, ...]:
    parsed = [parse_meeting(part) for part in items(text)]
    try:
        return checked_meetings(parsed)
    except BadInput as exc:
        raise BadInput(f"meetings: {exc.message}") from None


def _linked(text: str) -> tuple[str, ...]:
    numbers = items(text)
    if len(set(numbers)) != len(numbers):
        raise BadInput("linked_sections name a section twice")
    if len(numbers) > MAX_LINKED_SECTIONS:
        raise BadInput(f"linked_sections may name at most {MAX_LINKED_SECTIONS}")
    return tuple(numbers)


def _waitlist_capacity(text: str) -> int | None:
    if not text:
        return None  # no limit
    value = _integer("waitlist_capacity", text)
    if not 0 <= value <= MAX_SEATS:
        raise BadInput(f"waitlist_capacity must be between 0 and {MAX_SEATS}, or empty")
    return value


def _waitlist_mode(text: str) -> WaitlistMode:
    if not text:
        return WaitlistMode.AUTO_ENROLL
    try:
        return WaitlistMode(text.upper())
    except ValueError:
        allowed = ", ".join(m.value for m in WaitlistMode)
        raise BadInput(f"unknown waitlist_mode {text!r} (one of {allowed})") from None


def _offer_hours(text: str) -> int:
    if not text:
        return DEFAULT_OFFER_HOURS
    value = _integer("offer_hours", text)
    if not 1 <= value <= MAX_OFFER_HOURS:
        raise BadInput(f"offer_hours must be between 1 and {MAX_OFFER_HOURS}")
    return value


@dataclass
class _CourseSeen:
    line: CatalogLine
    id: UUID
    known: KnownCourse | None


def _shown(value: object) -> str:
    return _text(sorted(value) if isinstance(value, set) else value)


class _CatalogPlanner:
    """plan_catalog's steps, each adding to `problems` what it finds wrong."""

    def __init__(self, world: CatalogWorld, lines: list[CatalogLine], problems: Problems) -> None:
        self.world, self.lines, self.problems = world, lines, problems
        self.names = {s.id: s.name for s in world.semesters}
        self.courses: dict[str, _CourseSeen] = {}
        self.required_of: dict[UUID, frozenset[UUID]] = {}
        self.code_of = {c.id: c.code for c in world.courses.values()}
        self.keys: dict[tuple[UUID, str, str], tuple[CatalogLine, UUID]] = {}
        self.number_of = {s.id: s.number for s in world.sections.values()}

    def problem(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def where(self, row: CatalogLine) -> str:
        return f"section {row.course_code} {row.section_number} of {self.names[row.semester_id]}"

    def gather_courses(self) -> None:
        """One course per code, its fields the same on every row."""
        for row in self.lines:
            seen = self.courses.get(row.course_code)
            if seen is None:
                known = self.world.courses.get(row.course_code)
                made = known.id if known else uuid.uuid4()
                self.courses[row.course_code] = _CourseSeen(row, made, known)
                self.code_of[made] = row.course_code
                continue
            first = seen.line
            for name, mine, theirs in (
                ("title", row.title, first.title),
                ("credits", row.credits, first.credits),
                ("prerequisites", _as_set(row.prerequisites), _as_set(first.prerequisites)),
            ):
                if mine != theirs:
                    self.problem(
                        row.line,
                        f"course {row.course_code}: {name} differs from line {first.line}'s "
                        f"({_shown(mine)} here, {_shown(theirs)} there)",
                    )

    def course_id(self, code: str) -> UUID | None:
        if code in self.courses:
            return self.courses[code].id
        known = self.world.courses.get(code)
        return known.id if known else None

    def check_prerequisites(self) -> None:
        """Known courses, not the course itself, and no chain leading back to it."""
        for code, seen in self.courses.items():
            if seen.line.prerequisites is None:
                continue
            ids = []
            for wanted in seen.line.prerequisites:
                found = self.course_id(wanted)
                if wanted == code:
                    self.problem(seen.line.line, f"course {code} cannot be its own prerequisite")
                elif found is None:
                    self.problem(
                        seen.line.line,
                        f"prerequisite {wanted} is not a course in the file or the catalog",
                    )
                else:
                    ids.append(found)
            self.required_of[seen.id] = frozenset(ids)
        graph = {c.id: c.prerequisites for c in self.world.courses.values()}
        graph.update(self.required_of)
        for seen in self.courses.values():
            if seen.id in self.required_of:
                cycle = _cycle_through(seen.id, graph)
                if cycle:
                    path = " -> ".join(self.code_of.get(c, str(c)) for c in cycle)
                    self.problem(seen.line.line, f"prerequisites make a cycle: {path}")

    def gather_sections(self) -> None:
        for row in self.lines:
            key = (row.semester_id, row.course_code, row.section_number)
            if key in self.keys:
                first = self.keys[key][0].line
                self.problem(row.line, f"{self.where(row)} is already on line {first}")
                continue
            known = self.world.sections.get(key)
            made = known.id if known else uuid.uuid4()
            self.keys[key] = (row, made)
            self.number_of[made] = row.section_number

    def section_id(self, semester: UUID, code: str, number: str) -> UUID | None:
        key = (semester, code, number)
        if key in self.keys:
            return self.keys[key][1]
        known = self.world.sections.get(key)
        return known.id if known else None

    def linked_of(self, row: CatalogLine) -> tuple[UUID, ...]:
        linked: list[UUID] = []
        for number in row.linked or ():
            found = self.section_id(row.semester_id, row.course_code, number)
            if number == row.section_number:
                self.problem(row.line, f"{self.where(row)} cannot be linked to itself")
            elif found is None:
                self.problem(
                    row.line,
                    f"linked section {number} is not a section of {row.course_code} in "
                    f"{self.names[row.semester_id]} (in the file or the catalog)",
                )
            else:
                linked.append(found)
        return tuple(linked)

    def plan_sections(self, plan: CatalogPlan) -> None:
        for key, (row, sid) in self.keys.items():
            linked = self.linked_of(row)
            known = self.world.sections.get(key)
            if known is not None and row.seats < known.taken:
                self.problem(
                    row.line,
                    f"seats {row.seats} is below the {known.taken} seats taken in "
                    f"{self.where(row)}",
                )
            if known is None:
                plan.new_sections.append(self.new_section(row, sid, linked))
                continue
            update = _section_update(row, known, linked, self.where(row), self.number_of)
            if update is not None:
                plan.section_updates.append(update)

    def new_section(self, row: CatalogLine, sid: UUID, linked: tuple[UUID, ...]) -> NewSection:
        capacity = row.waitlist_capacity
        return NewSection(
            sid,
            self.courses[row.course_code].id,
            row.semester_id,
            row.section_number,
            row.seats,
            row.meetings or (),
            linked,
            None if isinstance(capacity, Keep) else capacity,
            row.waitlist_mode or WaitlistMode.AUTO_ENROLL,
            row.offer_hours or DEFAULT_OFFER_HOURS,
            row.line,
            self.where(row),
        )

    def plan_courses(self, plan: CatalogPlan) -> None:
        for code, seen in self.courses.items():
            row = seen.line
            required = self.required_of.get(seen.id)
            if seen.known is None:
                prerequisites = tuple(sorted(required or ()))
                plan.new_courses.append(
                    NewCourse(seen.id, code, row.title, row.credits, prerequisites, row.line)
                )
                continue
            update = _course_update(row, seen.known, required, self.code_of)
            if update is not None:
                plan.course_updates.append(update)

    def plan_removals(self, plan: CatalogPlan) -> None:
        semesters = {row.semester_id for row in self.lines}
        for key, known in sorted(self.world.sections.items()):
            if known.semester_id in semesters and known.active and key not in self.keys:
                name = self.names.get(known.semester_id, str(known.semester_id))
                what = f"section {known.course_code} {known.number} of {name}"
                plan.removed_sections.append(Removal(known.id, what))


def _as_set(codes: tuple[str, ...] | None) -> set[str] | None:
    return None if codes is None else set(codes)


def catalog_lines(records: Sequence[Record], world: CatalogWorld) -> list[CatalogLine]:
    """Each row's values checked one by one; BadRows for a bad header at once."""
    problems: Problems = []
    header, rows = split_header(records)
    if header is None:
        raise BadRows([(1, "the file is empty: a header row is expected")])
    columns = read_header(header, CATALOG_COLUMNS, CATALOG_REQUIRED, problems)
    raise_problems(problems)
    lines: list[CatalogLine] = []
    for record in rows:
        wrong = _width_problem(record, len(header.fields))
        if wrong:
            problems.append((record.line, wrong))
            continue
        parsed = parse_catalog_line(record, columns, world.semesters, problems)
        if parsed is not None:
            lines.append(parsed)
    if problems:
        raise _Partial(lines, problems)
    return lines


class _Partial(Exception):
    """The rows that parsed, and the problems of those that did not."""

    def __init__(self, lines: list[CatalogLine], problems: Problems) -> None:
        super().__init__(f"{len(problems)} bad rows")
        self.lines, self.problems = lines, problems


def plan_catalog(
    records: Sequence[Record], world: CatalogWorld, prune: bool = False
) -> CatalogPlan:
    """The plan, or BadRows naming every bad row (line, what is wrong): the rows that parse
    are checked against one another and the record too, so one run lists them all."""
    try:
        lines, problems = catalog_lines(records, world), []
    except _Partial as partial:
        lines, problems = partial.lines, partial.problems
    planner = _CatalogPlanner(world, lines, problems)
    planner.gather_courses()
    planner.check_prerequisites()
    planner.gather_sections()
    plan = CatalogPlan()
    planner.plan_sections(plan)
    raise_problems(problems)
    planner.plan_courses(plan)
    if prune:
        planner.plan_removals(plan)
    return plan


def _cycle_through(start: UUID, graph: Mapping[UUID, frozenset[UUID]]) -> list[UUID]:
    """A chain of prerequisites from `start` back to it, or []."""
    stack: list[tuple[UUID, list[UUID]]] = [(p, [start, p]) for p in graph.get(start, ())]
    seen: set[UUID] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((p, [*path, p]) for p in graph.get(node, ()))
    return []


def _course_update(
    row: CatalogLine,
    known: KnownCourse,
    required: frozenset[UUID] | None,
    code_of: Mapping[UUID, str],
) -> CourseUpdate | None:
    title = row.title if row.title != known.title else None
    credits = row.credits if row.credits != known.credits else None
    prerequisites = None
    if required is not None and required != known.prerequisites:
        prerequisites = tuple(sorted(required))
    if title is None and credits is None and prerequisites is None:
        return None
    pairs: list[tuple[str, object, object]] = []
    if title is not None:
        pairs.append(("title", repr(known.title), repr(title)))
    if credits is not None:
        pairs.append(("credits", known.credits, credits))
    if prerequisites is not None:
        pairs.append(
            (
                "prerequisites",
                sorted(code_of.get(c, str(c)) for c in known.prerequisites),
                sorted(code_of.get(c, str(c)) for c in prerequisites),
            )
        )
    change = Change(f"course {known.code}", row.line, changed_fields(pairs))
    return CourseUpdate(known.id, title, credits, prerequisites, change)


def _section_update(
    row: CatalogLine,
    known: KnownSection,
    linked: tuple[UUID, ...],
    what: str,
    number_of: Mapping[UUID, str],
) -> SectionUpdate | None:
    pairs: list[tuple[str, object, object]] = []
    seats = row.seats if row.seats != known.seats else None
    if seats is not None:
        pairs.append(("seats", known.seats, seats))
    meetings = None
    if row.meetings is not None and meetings_key(row.meetings) != meetings_key(known.meetings):
        meetings = row.meetings
        pairs.append(
            (
                "meetings",
                [meeting_text(m) for m in known.meetings],
                [meeting_text(m) for m in row.meetings],
            )
        )
    links = None
    if row.linked is not None and set(linked) != known.linked:
        links = linked
        pairs.append(
            (
                "linked_sections",
                sorted(number_of.get(s, str(s)) for s in known.linked),
                sorted(row.linked),
            )
        )
    capacity: int | Keep | None = KEEP
    if row.waitlist_capacity is not KEEP and row.waitlist_capacity != known.waitlist_capacity:
        capacity = row.waitlist_capacity
        pairs.append(("waitlist_capacity", known.waitlist_capacity, capacity))
    mode = None
    if row.waitlist_mode is not None and row.waitlist_mode != known.waitlist_mode:
        mode = row.waitlist_mode
        pairs.append(("waitlist_mode", known.waitlist_mode.value, mode.value))
    hours = None
    if row.offer_hours is not None and row.offer_hours != known.offer_hours:
        hours = row.offer_hours
        pairs.append(("offer_hours", known.offer_hours, hours))
    active = None if known.active else True
    if active:
        pairs.append(("active", "no", "yes"))
    if not pairs:
        return None
    rules = None
    if meetings is not None or links is not None or capacity is not KEEP or mode or hours:
        rules = SectionRulesChange(meetings, links, capacity, mode, hours)
    return SectionUpdate(
        known.id, seats, rules, active, Change(what, row.line, changed_fields(pairs))
    )


# -- the roster ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownStudent:
    id: UUID
    number: str
    first_name: str
    last_name: str
    email: str
    status: str
    max_credits: float


@dataclass(frozen=True, slots=True)
class StudentLine:
    line: int
    number: str
    first_name: str
    last_name: str
    email: str
    status: str | None  # None: the column is not in the file
    max_credits: float | None


@dataclass(frozen=True, slots=True)
class NewStudent:
    id: UUID
    number: str
    first_name: str
    last_name: str
    email: str
    status: str
    max_credits: float
    line: int


@dataclass(frozen=True, slots=True)
class StudentUpdate:
    """Names and e-mail are the record's alone; status and the credit limit reach the live
    state through the staff use cases (setStudentStatus, setMaxCredits)."""

    id: UUID
    first_name: str | None
    last_name: str | None
    email: str | None
    status: str | None
    max_credits: float | None
    change: Change


@dataclass
class StudentPlan:
    new: list[NewStudent] = field(default_factory=list)
    updates: list[StudentUpdate] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)  # made inactive

    @property
    def added(self) -> int:
        return len(self.new)

    @property
    def changed(self) -> int:
        return len(self.updates)

    def describe(self) -> list[str]:
        return [
            *(f"add student {s.number} (line {s.line})" for s in self.new),
            *(u.change.describe() for u in self.updates),
            *(
                f"deactivate {r.what} (not in the file): status active -> inactive"
                for r in self.removed
            ),
        ]

    def summary(self) -> str:
        return (
            f"{len(self.new)} students added, {len(self.updates)} changed, "
            f"{len(self.removed)} deactivated"
        )


def _status(text: str) -> str:
    if not text:
        return ACTIVE
    status = text.lower()
    if status not in ENROLLMENT_STATUSES:
        raise BadInput(f"unknown status {text!r} (one of {', '.join(ENROLLMENT_STATUSES)})")
    return status


def _credit_limit(text: str) -> float:
    if not text:
        return DEFAULT_MAX_CREDITS
    value = _number("credit_limit", text)
    require_credits("credit_limit", value, 0.0, MAX_STUDENT_CREDITS, low_open=True)
    return value


def _email(text: str) -> str:
    address = require_text("email", text, 255)
    if not EMAIL.match(address):
        raise BadInput(f"email {text!r} is not an e-mail address")
    return address


def parse_student_line(record: Record, columns: Columns, problems: Problems) -> StudentLine | None:
    before = len(problems)

    take = taker(record.line, problems)

    def required(name: str, length: int) -> str | None:
        text = take(_required, columns, record, name)
        return take(require_text, name, text, length) if text else None

    number = required("student_number", 20)
    first = required("first_name", 100)
    last = required("last_name", 100)
    email_text = take(_required, columns, record, "email")
    email = take(_email, email_text) if email_text else None
    status = None
    if columns.has("status"):
        status = take(_status, columns.value(record, "status"))
    limit = None
    if columns.has("credit_limit"):
        limit = take(_credit_limit, columns.value(record, "credit_limit"))
    if len(problems) > before:
        return None
    assert number and first and last and email
    return StudentLine(record.line, number, first, last, email, status, limit)


def student_lines(records: Sequence[Record], prune: bool, problems: Problems) -> list[StudentLine]:
    header, rows = split_header(records)
    if header is None:
        raise BadRows([(1, "the file is empty: a header row is expected")])
    columns = read_header(header, STUDENT_COLUMNS, STUDENT_REQUIRED, problems)
    raise_problems(problems)
    if prune and not rows:
        raise BadRows([(header.line, "no rows: --prune would deactivate every student")])
    lines: list[StudentLine] = []
    for record in rows:
        wrong = _width_problem(record, len(header.fields))
        if wrong:
            problems.append((record.line, wrong))
            continue
        parsed = parse_student_line(record, columns, problems)
        if parsed is not None:
            lines.append(parsed)
    return lines


def unique_students(lines: Sequence[StudentLine], problems: Problems) -> list[StudentLine]:
    """The rows whose student number and e-mail (without case) no earlier row has."""
    by_number: dict[str, int] = {}
    by_email: dict[str, StudentLine] = {}
    unique: list[StudentLine] = []
    for row in lines:
        if row.number in by_number:
            first = by_number[row.number]
            problems.append((row.line, f"student {row.number} is already on line {first}"))
            continue
        by_number[row.number] = row.line
        other = by_email.get(row.email.lower())
        if other is not None:
            problems.append(
                (
                    row.line,
                    f"email {row.email} is also student {other.number}'s (line {other.line})",
                )
            )
            continue
        by_email[row.email.lower()] = row
        unique.append(row)
    return unique


def check_emails(
    rows: Sequence[StudentLine], known: Sequence[KnownStudent], problems: Problems
) -> None:
    """An address the record gives another student stays theirs unless the file moves
    that student to another address."""
    by_email = {row.email.lower(): row for row in rows}
    in_file = {row.number: row for row in rows}
    for student in known:
        address = student.email.lower()
        row = by_email.get(address)
        if row is None or row.number == student.number:
            continue
        moved = in_file.get(student.number)
        if moved is None or moved.email.lower() == address:
            problems.append((row.line, f"email {row.email} belongs to student {student.number}"))


def plan_students(
    records: Sequence[Record], known: Sequence[KnownStudent], prune: bool = False
) -> StudentPlan:
    """The plan, or BadRows naming every bad row. An e-mail address belongs to one student
    (compared without case)."""
    problems: Problems = []
    rows = unique_students(student_lines(records, prune, problems), problems)
    check_emails(rows, known, problems)
    raise_problems(problems)
    by_number = {s.number: s for s in known}
    plan = StudentPlan()
    for row in rows:
        was = by_number.get(row.number)
        if was is None:
            plan.new.append(_new_student(row))
            continue
        update = _student_update(row, was)
        if update is not None:
            plan.updates.append(update)
    if prune:
        listed = {row.number for row in rows}
        for student in sorted(known, key=lambda s: s.number):
            if student.number not in listed and student.status == ACTIVE:
                plan.removed.append(Removal(student.id, f"student {student.number}"))
    return plan


def _new_student(row: StudentLine) -> NewStudent:
    return NewStudent(
        uuid.uuid4(),
        row.number,
        row.first_name,
        row.last_name,
        row.email,
        row.status or ACTIVE,
        DEFAULT_MAX_CREDITS if row.max_credits is None else row.max_credits,
        row.line,
    )


def _student_update(row: StudentLine, was: KnownStudent) -> StudentUpdate | None:
    first = row.first_name if row.first_name != was.first_name else None
    last = row.last_name if row.last_name != was.last_name else None
    email = row.email if row.email != was.email else None
    status = row.status if row.status is not None and row.status != was.status else None
    limit = None
    if row.max_credits is not None and row.max_credits != was.max_credits:
        limit = row.max_credits
    pairs: list[tuple[str, object, object]] = [
        (name, old, new)
        for name, old, new in (
            ("first_name", was.first_name, first),
            ("last_name", was.last_name, last),
            ("email", was.email, email),
            ("status", was.status, status),
            ("credit_limit", was.max_credits, limit),
        )
        if new is not None
    ]
    if not pairs:
        return None
    change = Change(f"student {was.number}", row.line, changed_fields(pairs))
    return StudentUpdate(was.id, first, last, email, status, limit, change)
