"""RulesAdmin on small fakes: validation refuses before anything is written; a write reaches
the live state after the record (sections opened again with their fresh setup and announced
once; students' rule state mirrored); bulk time tickets are checked whole."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.errors import BadInput, Forbidden, NotFound
from domain.model import Actor, Course, Role, Section, SectionSetup, Semester, Student
from domain.ports import CapacityChange, CatalogReads, RuleMirror, SectionDirectory, SectionSeats
from domain.rule_records import KEEP, Hold, RuleWrites, SectionRulesChange, TimeTicket
from domain.rules import HeldSection, Holder, Meeting, SectionRules, StudentRules
from domain.rules_admin import RulesAdmin, check_change, checked_meetings, require_credits
from domain.time_tickets import BadRows, TicketRow, plan_tickets

STAFF = Actor("staff", Role.STAFF)
NOW = datetime(2026, 8, 1, 8, 0, tzinfo=UTC)
SEMESTER = Semester(
    uuid.uuid4(), "Fall", date(2026, 9, 1), date(2026, 12, 20), NOW, NOW + timedelta(days=10), True
)


@dataclass
class FakeRecords(CatalogReads, RuleWrites):
    """Catalog reads and the rules' writes in one: what the service asks of the record."""

    courses_by_id: dict[UUID, Course] = field(default_factory=dict)
    sections_by_id: dict[UUID, Section] = field(default_factory=dict)
    students_by_id: dict[UUID, Student] = field(default_factory=dict)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    holds_by_id: dict[UUID, UUID] = field(default_factory=dict)

    async def courses(self, ids: Sequence[UUID]) -> list[Course | None]:
        return [self.courses_by_id.get(i) for i in ids]

    async def sections(self, ids: Sequence[UUID]) -> list[Section | None]:
        return [self.sections_by_id.get(i) for i in ids]

    async def students(self, ids: Sequence[UUID]) -> list[Student | None]:
        return [self.students_by_id.get(i) for i in ids]

    async def semesters(self, ids: Sequence[UUID]) -> list[Semester | None]:
        return [SEMESTER if i == SEMESTER.id else None for i in ids]

    def setup(self, section: Section) -> SectionSetup:
        return SectionSetup(
            section.id,
            section.total_seats,
            True,
            NOW,
            NOW + timedelta(days=10),
            rules=SectionRules(section.course_id, section.semester_id, credits=len(self.writes)),
        )

    async def section_setup(self, section_id: UUID) -> SectionSetup | None:
        return self.setup(self.sections_by_id[section_id])

    async def set_course_rules(
        self, course_id: UUID, credits: float | None, prerequisites: Sequence[UUID] | None
    ) -> Course | None:
        self.writes.append(("course", (course_id, credits, prerequisites)))
        return self.courses_by_id.get(course_id)

    async def setups_of_course(self, course_id: UUID) -> list[SectionSetup]:
        return [self.setup(s) for s in self.sections_by_id.values() if s.course_id == course_id]

    async def set_section_rules(self, section_id: UUID, change: SectionRulesChange) -> None:
        self.writes.append(("section", (section_id, change)))

    async def place_hold(self, student_id: UUID, reason: str) -> Hold:
        self.writes.append(("hold", (student_id, reason)))
        hold = Hold(uuid.uuid4(), student_id, reason, NOW)
        self.holds_by_id[hold.id] = student_id
        return hold

    async def lift_hold(self, hold_id: UUID) -> UUID | None:
        return self.holds_by_id.pop(hold_id, None)

    async def set_time_tickets(self, tickets: Sequence[TimeTicket]) -> None:
        self.writes.append(("tickets", list(tickets)))

    async def set_max_credits(self, student_id: UUID, max_credits: float) -> Student | None:
        self.writes.append(("max_credits", (student_id, max_credits)))
        return self.students_by_id.get(student_id)

    async def record_completed(self, student_id: UUID, course_id: UUID) -> None:
        self.writes.append(("completed", (student_id, course_id)))

    async def student_rules(self, ids: Sequence[UUID]) -> list[StudentRules | None]:
        return [StudentRules(i, holds=len(self.holds_by_id)) for i in ids]

    async def students_by_number(self, numbers: Sequence[str]) -> list[UUID | None]:
        by_number = {s.student_number: s.id for s in self.students_by_id.values()}
        return [by_number.get(n) for n in numbers]


@dataclass
class FakeLive(SectionSeats, RuleMirror, SectionDirectory):
    """The live state's side of staff's changes, recorded: sections opened (and read back),
    capacities set, students' rule state mirrored or loaded, announcements."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def open_section(self, setup: SectionSetup) -> None:
        self.calls.append(("open", setup))

    async def holders(self, section_id: UUID) -> list[UUID]:
        return []

    async def set_capacity(
        self, section_id: UUID, total_seats: int, request_id: str, checked: bool
    ) -> tuple[CapacityChange, list[Holder]] | None:
        self.calls.append(("capacity", (section_id, total_seats)))
        return CapacityChange(True, 0, total_seats, 0), []

    async def setups(self, section_ids: Sequence[UUID]) -> list[SectionSetup | None]:
        opened = {setup.section_id: setup for kind, setup in self.calls if kind == "open"}
        return [opened.get(sid) for sid in section_ids]

    async def announce(self, section_ids: Sequence[UUID]) -> None:
        self.calls.append(("announce", list(section_ids)))

    async def mirror(self, rules: StudentRules) -> None:
        self.calls.append(("mirror", rules))

    async def load(
        self, rules: StudentRules, held: Mapping[UUID, Sequence[HeldSection]], generation: str
    ) -> None:
        self.calls.append(("load", rules))

    async def refresh_holdings(self, setup: SectionSetup, student_ids: Sequence[UUID]) -> int:
        self.calls.append(("refresh", setup))
        return 0


def course() -> Course:
    return Course(uuid.uuid4(), f"C{uuid.uuid4().hex[:4]}", "A course", True)


def section(of: Course, semester_id: UUID = SEMESTER.id) -> Section:
    return Section(uuid.uuid4(), of.id, semester_id, "001", 10, True)


def student(number: str = "") -> Student:
    return Student(uuid.uuid4(), number or uuid.uuid4().hex[:8], "A", "B", "a@b.c", "active")


def admin(records: FakeRecords, live: FakeLive) -> RulesAdmin:
    return RulesAdmin(records, records, live, live, live)


async def test_course_rules_reopen_every_section_of_the_course_then_announce_them_once() -> None:
    records, live = FakeRecords(), FakeLive()
    c, other = course(), course()
    records.courses_by_id = {c.id: c, other.id: other}
    mine = [section(c), section(c, uuid.uuid4())]
    records.sections_by_id = {s.id: s for s in [*mine, section(other)]}
    await admin(records, live).set_course_rules(STAFF, c.id, 4.0, [other.id])
    assert records.writes == [("course", (c.id, 4.0, (other.id,)))]
    opened = [setup.section_id for kind, setup in live.calls if kind == "open"]
    assert opened == [s.id for s in mine]
    announced = [kind for kind, _ in live.calls].index("announce")
    assert live.calls[announced] == ("announce", [s.id for s in mine])
    refreshed = [setup.section_id for kind, setup in live.calls[announced:] if kind == "refresh"]
    assert refreshed == opened, "then the holdings of each, after every process was told"
    assert all(setup.rules.credits == 1 for kind, setup in live.calls if kind == "open")


@pytest.mark.parametrize(
    ("credits", "prerequisites", "error"),
    [
        (30.5, None, BadInput),
        (2.2, None, BadInput),
        (None, "itself", BadInput),
        (None, "unknown", NotFound),
        (None, "twice", BadInput),
    ],
)
async def test_course_rules_refused_write_nothing(
    credits: float | None, prerequisites: str | None, error: type[Exception]
) -> None:
    records, live = FakeRecords(), FakeLive()
    c, other = course(), course()
    records.courses_by_id = {c.id: c, other.id: other}
    ids = {
        None: None,
        "itself": [c.id],
        "unknown": [uuid.uuid4()],
        "twice": [other.id, other.id],
    }[prerequisites]
    with pytest.raises(error):
        await admin(records, live).set_course_rules(STAFF, c.id, credits, ids)
    assert records.writes == [] and live.calls == []


async def test_section_rules_write_then_reopen_the_section_with_its_fresh_setup() -> None:
    records, live = FakeRecords(), FakeLive()
    c = course()
    lecture, lab = section(c), section(c)
    records.sections_by_id = {lecture.id: lecture, lab.id: lab}
    change = SectionRulesChange(linked_sections=(lab.id,), offer_hours=2)
    await admin(records, live).set_section_rules(STAFF, lecture.id, change)
    assert records.writes == [("section", (lecture.id, change))]
    (kind, setup), announced, refreshed = live.calls
    assert (kind, setup.section_id) == ("open", lecture.id)
    assert setup.rules.credits == 1, "read after the write"
    assert announced == ("announce", [lecture.id])
    assert refreshed == ("refresh", setup)


@pytest.mark.parametrize(
    "linked",
    ["itself", "elsewhere", "unknown"],
)
async def test_links_to_itself_another_semester_or_nowhere_are_refused(linked: str) -> None:
    records, live = FakeRecords(), FakeLive()
    c = course()
    lecture, elsewhere = section(c), section(c, uuid.uuid4())
    records.sections_by_id = {lecture.id: lecture, elsewhere.id: elsewhere}
    target = {"itself": lecture.id, "elsewhere": elsewhere.id, "unknown": uuid.uuid4()}[linked]
    error = NotFound if linked == "unknown" else BadInput
    with pytest.raises(error):
        await admin(records, live).set_section_rules(
            STAFF, lecture.id, SectionRulesChange(linked_sections=(target,))
        )
    assert records.writes == [] and live.calls == []


async def test_student_changes_mirror_the_fresh_rule_state_and_staff_only() -> None:
    records, live = FakeRecords(), FakeLive()
    s = student()
    records.students_by_id = {s.id: s}
    rules = admin(records, live)
    hold = await rules.place_hold(STAFF, s.id, "  fees ")
    assert records.writes == [("hold", (s.id, "fees"))]
    assert live.calls == [("mirror", StudentRules(s.id, holds=1))]
    await rules.lift_hold(STAFF, hold.id)
    assert live.calls[-1] == ("mirror", StudentRules(s.id, holds=0))
    with pytest.raises(NotFound):
        await rules.lift_hold(STAFF, hold.id)
    with pytest.raises(Forbidden):
        await rules.place_hold(Actor(str(s.id), Role.STUDENT), s.id, "x")
    assert len(live.calls) == 2


def test_meetings_are_trimmed_deduplicated_and_must_not_overlap() -> None:
    (meeting,) = checked_meetings([Meeting(("FRI", "MON", "MON"), "09:00", "10:00", "  ")])
    assert meeting == Meeting(("MON", "FRI"), "09:00", "10:00", None)
    back_to_back = [
        Meeting(("MON",), "09:00", "10:00"),
        Meeting(("MON",), "10:00", "11:00"),
    ]
    assert len(checked_meetings(back_to_back)) == 2
    with pytest.raises(BadInput):
        checked_meetings([*back_to_back, Meeting(("WED", "MON"), "10:59", "11:30")])
    with pytest.raises(BadInput):
        checked_meetings([Meeting(("MON",), f"{h:02d}:00", f"{h:02d}:30") for h in range(11)])


@pytest.mark.parametrize(
    ("value", "low_open", "ok"),
    [
        (0.0, False, True),
        (0.0, True, False),
        (30.0, False, True),
        (30.5, False, False),
        (1.5, False, True),
        (1.25, False, False),
        (-0.5, False, False),
    ],
)
def test_credits_go_in_half_steps_within_bounds(value: float, low_open: bool, ok: bool) -> None:
    if ok:
        require_credits("credits", value, 0.0, 30.0, low_open)
    else:
        with pytest.raises(BadInput):
            require_credits("credits", value, 0.0, 30.0, low_open)


def test_a_section_change_keeps_what_it_leaves_out() -> None:
    checked = check_change(SectionRulesChange(waitlist_capacity=None))
    assert checked.waitlist_capacity is None and checked.meetings is None
    assert check_change(SectionRulesChange()).waitlist_capacity is KEEP
    for bad in (
        SectionRulesChange(waitlist_capacity=-1),
        SectionRulesChange(offer_hours=0),
        SectionRulesChange(offer_hours=721),
    ):
        with pytest.raises(BadInput):
            check_change(bad)


def test_bulk_tickets_name_every_bad_row_by_line() -> None:
    ada, bob = uuid.uuid4(), uuid.uuid4()
    known: dict[str, UUID | None] = {"ada": ada, "bob": bob}
    opens, closes = (NOW + timedelta(days=1)).isoformat(), (NOW + timedelta(days=2)).isoformat()
    rows = [
        TicketRow(2, ("ada", opens, closes)),
        TicketRow(3, ("bob", opens)),
        TicketRow(5, ("eve", opens, closes)),
        TicketRow(6, ("ada", opens, closes)),
        TicketRow(7, ("bob", closes, opens)),
    ]
    with pytest.raises(BadRows) as refused:
        plan_tickets(SEMESTER, rows, known)
    problems = dict(refused.value.problems)
    assert list(problems) == [3, 5, 6, 7]
    assert "expected 3 fields" in problems[3] and "'eve'" in problems[5]
    assert "line 2" in problems[6] and "line 3" in problems[7]
    good = [rows[0], replace(rows[4], fields=("bob", opens, closes))]
    assert plan_tickets(SEMESTER, good, known) == [
        TimeTicket(ada, SEMESTER.id, NOW + timedelta(days=1), NOW + timedelta(days=2)),
        TimeTicket(bob, SEMESTER.id, NOW + timedelta(days=1), NOW + timedelta(days=2)),
    ]


async def test_bulk_tickets_write_nothing_when_a_row_is_bad_and_mirror_each_student() -> None:
    records, live = FakeRecords(), FakeLive()
    a, b = student("ada"), student("bob")
    records.students_by_id = {a.id: a, b.id: b}
    window = ((NOW + timedelta(hours=1)).isoformat(), (NOW + timedelta(hours=2)).isoformat())
    rows = [TicketRow(1, ("ada", *window)), TicketRow(2, ("bob", window[1], window[0]))]
    with pytest.raises(BadRows):
        await admin(records, live).set_time_tickets(STAFF, SEMESTER.id, rows)
    assert records.writes == [] and live.calls == []
    done: list[int] = []
    rows[1] = TicketRow(2, ("bob", *window))
    assert await admin(records, live).set_time_tickets(STAFF, SEMESTER.id, rows, done.append) == 2
    assert [kind for kind, _ in live.calls] == ["mirror", "mirror"] and done == [2]
