"""The import's checks and plans (domain/imports.py) on a hand-made record: every kind of bad
row is named with its physical line, and a file that matches the record plans nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from domain.imports import (
    CATALOG_COLUMNS,
    STUDENT_COLUMNS,
    CatalogWorld,
    KnownCourse,
    KnownSection,
    KnownSemester,
    KnownStudent,
    Record,
    meeting_text,
    parse_meeting,
    plan_catalog,
    plan_students,
)
from domain.rules import Meeting, WaitlistMode
from domain.time_tickets import BadRows

FALL = KnownSemester(uuid.uuid4(), "Fall 2030")
TWINS = (KnownSemester(uuid.uuid4(), "Twin"), KnownSemester(uuid.uuid4(), "Twin"))
CS100 = KnownCourse(uuid.uuid4(), "CS100", "Intro", 3.0, frozenset())
TAKEN = KnownSection(
    id=uuid.uuid4(),
    semester_id=FALL.id,
    course_code="CS100",
    number="001",
    seats=20,
    taken=10,
    meetings=(Meeting(("MON", "WED"), "09:00", "09:50", "Room 1"),),
    linked=frozenset(),
    waitlist_capacity=None,
    waitlist_mode=WaitlistMode.AUTO_ENROLL,
    offer_hours=24,
    active=True,
)
WORLD = CatalogWorld([FALL, *TWINS], {"CS100": CS100}, {(FALL.id, "CS100", "001"): TAKEN})

Row = dict[str, str]


def catalog_row(**values: str) -> Row:
    row = dict.fromkeys(CATALOG_COLUMNS, "")
    row.update(
        semester="Fall 2030", course_code="CS200", title="Data", credits="4",
        section_number="001", seats="30",
    )  # fmt: skip
    row.update(values)
    return row


def records(rows: list[Row], columns: tuple[str, ...] = CATALOG_COLUMNS) -> list[Record]:
    """The header on line 1, then a blank line (skipped, as the reader does), the rows from
    line 3."""
    found = [Record(1, columns)]
    for n, row in enumerate(rows):
        found.append(Record(3 + n, tuple(row.get(c, "") for c in columns)))
    return found


def problems_of(check: Callable[[], object]) -> list[tuple[int, str]]:
    with pytest.raises(BadRows) as refused:
        check()
    return refused.value.problems


BAD_CATALOG_ROWS = [
    ("missing value", [catalog_row(title="")], "title is missing"),
    ("seats not a number", [catalog_row(seats="many")], "seats is not a whole number: 'many'"),
    ("credits not a number", [catalog_row(credits="three")], "credits is not a number"),
    ("negative credits", [catalog_row(credits="-1")], "credits must be at least 0"),
    ("credits finer than 0.5", [catalog_row(credits="3.2")], "multiple of 0.5"),
    ("zero seats", [catalog_row(seats="0")], "seats must be between 1 and 100000, not 0"),
    ("negative seats", [catalog_row(seats="-4")], "seats must be between 1 and 100000, not -4"),
    ("waitlist mode", [catalog_row(waitlist_mode="LOTTERY")], "unknown waitlist_mode 'LOTTERY'"),
    ("waitlist capacity", [catalog_row(waitlist_capacity="-1")], "waitlist_capacity must be"),
    ("offer hours", [catalog_row(offer_hours="0")], "offer_hours must be between 1 and 720"),
    ("malformed meeting", [catalog_row(meetings="Mondays at nine")], "is not like 'MWF"),
    ("day letter", [catalog_row(meetings="MX 09:00-10:00")], "unknown day letter(s) X"),
    ("bad time", [catalog_row(meetings="M 25:00-26:00")], "must be HH:MM"),
    ("end before start", [catalog_row(meetings="M 10:00-09:00")], "ends before it starts"),
    (
        "overlapping meetings",
        [catalog_row(meetings="M 09:00-10:00; MW 09:30-10:30")],
        "meetings must not overlap",
    ),
    ("unknown prerequisite", [catalog_row(prerequisites="NOPE")], "prerequisite NOPE is not"),
    ("own prerequisite", [catalog_row(prerequisites="CS200")], "cannot be its own prerequisite"),
    (
        "prerequisite cycle",
        [
            catalog_row(prerequisites="CS300"),
            catalog_row(course_code="CS300", title="More", prerequisites="CS200"),
        ],
        "prerequisites make a cycle: CS300 -> CS200 -> CS300",
    ),
    ("unknown linked section", [catalog_row(linked_sections="009")], "linked section 009 is not"),
    ("linked to itself", [catalog_row(linked_sections="001")], "cannot be linked to itself"),
    (
        "course fields disagree",
        [catalog_row(), catalog_row(section_number="002", title="Other")],
        "course CS200: title differs from line 3's",
    ),
    (
        "course credits disagree",
        [catalog_row(), catalog_row(section_number="002", credits="3")],
        "course CS200: credits differs from line 3's (3 here, 4 there)",
    ),
    ("duplicate key", [catalog_row(), catalog_row()], "is already on line 3"),
    ("unknown semester", [catalog_row(semester="Spring 1999")], "unknown semester 'Spring 1999'"),
    ("ambiguous semester", [catalog_row(semester="Twin")], "give the semester's id"),
    (
        "seats below those taken",
        [catalog_row(course_code="CS100", title="Intro", credits="3", seats="5")],
        "seats 5 is below the 10 seats taken in section CS100 001 of Fall 2030",
    ),
]


@pytest.mark.parametrize(
    ("rows", "message"),
    [(r, m) for _, r, m in BAD_CATALOG_ROWS],
    ids=[k for k, _, _ in BAD_CATALOG_ROWS],
)
def test_a_bad_catalog_row_is_named_with_its_line(rows: list[Row], message: str) -> None:
    found = problems_of(lambda: plan_catalog(records(rows), WORLD))
    line = 3 + len(rows) - 1
    assert any(at == line and message in text for at, text in found), found


def test_header_problems_are_on_line_1() -> None:
    columns = (*[c for c in CATALOG_COLUMNS if c != "seats"], "colour")
    found = problems_of(lambda: plan_catalog(records([catalog_row()], columns), WORLD))
    assert found == [(1, "unknown column 'colour'"), (1, "missing column(s): seats")]
    assert problems_of(lambda: plan_catalog([], WORLD)) == [
        (1, "the file is empty: a header row is expected")
    ]


def test_a_row_with_too_few_fields_is_bad() -> None:
    rows = [Record(1, CATALOG_COLUMNS), Record(2, ("Fall 2030", "CS200"))]
    assert problems_of(lambda: plan_catalog(rows, WORLD)) == [
        (2, "expected 12 fields as in the header, got 2")
    ]


def test_every_bad_row_is_listed_not_just_the_first() -> None:
    rows = [catalog_row(seats="x"), catalog_row(section_number="002"), catalog_row(credits="")]
    found = problems_of(lambda: plan_catalog(records(rows), WORLD))
    assert [line for line, _ in found] == [3, 5]


def test_a_file_matching_the_record_plans_nothing_and_prune_lists_what_it_leaves_out() -> None:
    same = catalog_row(
        course_code="CS100", title="Intro", credits="3", seats="20",
        meetings="MW 09:00-09:50 Room 1", waitlist_mode="AUTO_ENROLL", offer_hours="24",
    )  # fmt: skip
    plan = plan_catalog(records([same]), WORLD)
    assert (plan.added, plan.changed, plan.removed) == (0, 0, 0)
    other = plan_catalog(records([catalog_row()]), WORLD, prune=True)
    assert (other.added, other.changed, other.removed) == (2, 0, 1)
    assert other.describe()[-1] == "deactivate section CS100 001 of Fall 2030 (not in the file)"


def test_a_change_names_each_field_and_goes_to_the_use_cases_settings() -> None:
    changed = catalog_row(
        course_code="CS100", title="Intro", credits="3.5", seats="25",
        meetings="MW 09:00-09:50 Room 1", waitlist_mode="OFFER",
    )  # fmt: skip
    plan = plan_catalog(records([changed]), WORLD)
    (course,) = plan.course_updates
    assert (course.title, course.credits, course.prerequisites) == (None, 3.5, None)
    (section,) = plan.section_updates
    assert section.seats == 25
    assert section.rules is not None and section.rules.waitlist_mode is WaitlistMode.OFFER
    assert section.rules.meetings is None  # unchanged: not sent
    assert section.change.describe() == (
        "change section CS100 001 of Fall 2030 (line 3): seats 20 -> 25, "
        "waitlist_mode AUTO_ENROLL -> OFFER"
    )


def test_meetings_read_and_print_the_same() -> None:
    meeting = parse_meeting("TR 9:30-10:45 Hall B, room 2")
    assert meeting == Meeting(("TUE", "THU"), "09:30", "10:45", "Hall B, room 2")
    assert meeting_text(meeting) == "TR 09:30-10:45 Hall B, room 2"


# -- the roster ----------------------------------------------------------------------------

KNOWN = [KnownStudent(uuid.uuid4(), "K1", "Kay", "One", "k1@uni.edu", "active", 18.0)]


def student_row(**values: str) -> Row:
    row = {
        "student_number": "S1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@uni.edu",
        "status": "active",
        "credit_limit": "18",
    }
    row.update(values)
    return row


BAD_STUDENT_ROWS = [
    ("missing value", [student_row(first_name="")], "first_name is missing"),
    ("bad e-mail", [student_row(email="not-an-address")], "is not an e-mail address"),
    ("e-mail with a space", [student_row(email="a b@uni.edu")], "is not an e-mail address"),
    ("unknown status", [student_row(status="expelled")], "unknown status 'expelled'"),
    ("credit limit zero", [student_row(credit_limit="0")], "credit_limit must be above 0"),
    ("credit limit text", [student_row(credit_limit="lots")], "credit_limit is not a number"),
    ("duplicate number", [student_row(), student_row(email="b@uni.edu")], "already on line 3"),
    (
        "duplicate e-mail",
        [student_row(), student_row(student_number="S2", email="ADA@uni.edu")],
        "email ADA@uni.edu is also student S1's (line 3)",
    ),
    (
        "e-mail of another student",
        [student_row(email="k1@uni.edu")],
        "email k1@uni.edu belongs to student K1",
    ),
]


@pytest.mark.parametrize(
    ("rows", "message"),
    [(r, m) for _, r, m in BAD_STUDENT_ROWS],
    ids=[k for k, _, _ in BAD_STUDENT_ROWS],
)
def test_a_bad_student_row_is_named_with_its_line(rows: list[Row], message: str) -> None:
    found = problems_of(lambda: plan_students(records(rows, STUDENT_COLUMNS), KNOWN))
    line = 3 + len(rows) - 1
    assert any(at == line and message in text for at, text in found), found


def test_student_header_problems_and_prune_of_an_empty_file() -> None:
    columns = ("student_number", "first_name", "last_name", "mail")
    assert problems_of(lambda: plan_students(records([], columns), KNOWN)) == [
        (1, "unknown column 'mail'"),
        (1, "missing column(s): email"),
    ]
    assert problems_of(lambda: plan_students(records([], STUDENT_COLUMNS), KNOWN, True)) == [
        (1, "no rows: --prune would deactivate every student")
    ]


def test_an_address_moves_when_its_owner_moves_too() -> None:
    rows = [
        student_row(student_number="K1", first_name="Kay", last_name="One", email="k@uni.edu"),
        student_row(email="k1@uni.edu"),
    ]
    plan = plan_students(records(rows, STUDENT_COLUMNS), KNOWN)
    assert [s.number for s in plan.new] == ["S1"]
    (update,) = plan.updates
    assert update.email == "k@uni.edu" and update.status is None


def test_columns_left_out_keep_what_the_record_has() -> None:
    columns = ("student_number", "first_name", "last_name", "email")
    same = student_row(student_number="K1", first_name="Kay", last_name="One", email="k1@uni.edu")
    plan = plan_students(records([same], columns), KNOWN, prune=True)
    assert (plan.added, plan.changed, len(plan.removed)) == (0, 0, 0)
