"""The rules' saga (CheckedSeating) on fakes of its ports: a rule's refusal reserves nothing,
takes no seat and is logged; a reservation is held, then settled to where the seat step put
the student; a seat refused forgets the holding; a drop leaves, gives up and hands the seat
on; a swap moves the student or is refused keeping the old section."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from domain.errors import Unavailable
from domain.model import (
    Actor,
    DropOutcome,
    RegisterOutcome,
    Rejection,
    Role,
    SectionSetup,
    SwapOutcome,
)
from domain.promotion import Promoter
from domain.registration import Registrar
from domain.rules import Attempt, Holding, SectionRules
from domain.seating import CheckedSeating
from tests.unit.fakes import (
    FakeAnswers,
    FakeRuleStore,
    FakeSeatStore,
    FakeSection,
    FakeSections,
    FakeStudents,
)

STAFF = Actor("staff", Role.STAFF)
NOW = datetime(2026, 9, 1, tzinfo=UTC)
SEMESTER = uuid.uuid4()


@dataclass
class World:
    registrar: Registrar
    seats: FakeSeatStore
    rules: FakeRuleStore
    sections: FakeSections
    students: FakeStudents

    def section(self, total: int) -> UUID:
        sid = uuid.uuid4()
        self.seats.sections[sid] = FakeSection(total)
        rules = SectionRules(uuid.uuid4(), SEMESTER)
        setup = SectionSetup(sid, total, True, NOW, NOW + timedelta(days=9), rules=rules)
        self.sections.by_id[sid] = setup
        return sid

    def student(self) -> UUID:
        student = uuid.uuid4()
        self.students.statuses[student] = "active"
        return student


@pytest.fixture
def world() -> World:
    seats, rules, sections = FakeSeatStore(), FakeRuleStore(), FakeSections()
    students = FakeStudents()
    promoter = Promoter(seats, sections, rules)
    seating = CheckedSeating(seats, students, sections, rules, promoter)
    registrar = Registrar(FakeAnswers(), students, seating, promoter)
    return World(registrar, seats, rules, sections, students)


async def test_a_rule_refusal_takes_no_seat_reserves_nothing_and_is_logged(world: World) -> None:
    section, student = world.section(5), world.student()
    world.rules.refusals[section] = Rejection.TIME_CONFLICT
    (result,) = (await world.registrar.register(STAFF, student, [section])).results
    assert (result.outcome, result.reason) == (RegisterOutcome.REJECTED, "TIME_CONFLICT")
    assert world.seats.sections[section].enrolled == []
    assert world.rules.holding(student, section) is None
    assert world.rules.attempts == [Attempt(student, section, Rejection.TIME_CONFLICT)]


async def test_a_reservation_settles_to_the_seat_or_the_place_in_line_taken(world: World) -> None:
    section, first, second = world.section(1), world.student(), world.student()
    (taken,) = (await world.registrar.register(STAFF, first, [section])).results
    (waiting,) = (await world.registrar.register(STAFF, second, [section])).results
    assert taken.outcome is RegisterOutcome.ENROLLED
    assert waiting.outcome is RegisterOutcome.WAITLISTED
    assert world.rules.holding(first, section) is Holding.ENROLLED
    assert world.rules.holding(second, section) is Holding.WAITING
    assert world.rules.attempts == []


async def test_a_seat_refused_forgets_the_holding_and_logs_why(world: World) -> None:
    section, student = world.section(5), world.student()
    world.seats.sections[section].closed = True
    (result,) = (await world.registrar.register(STAFF, student, [section])).results
    assert result.reason == Rejection.REGISTRATION_CLOSED
    assert world.rules.holding(student, section) is None
    assert world.rules.attempts == [Attempt(student, section, Rejection.REGISTRATION_CLOSED)]


async def test_a_section_the_slot_holds_is_answered_from_the_seats(world: World) -> None:
    section, student = world.section(5), world.student()
    await world.registrar.register(STAFF, student, [section])
    (again,) = (await world.registrar.register(STAFF, student, [section])).results
    assert again.outcome is RegisterOutcome.ALREADY_ENROLLED
    assert world.seats.sections[section].enrolled == [student]


async def test_a_slot_not_loaded_answers_try_again(world: World) -> None:
    section, student = world.section(5), world.student()
    world.rules.refusals[section] = Rejection.UNAVAILABLE
    with pytest.raises(Unavailable):
        await world.registrar.register(STAFF, student, [section])
    assert world.rules.attempts == []


async def test_a_drop_gives_the_holding_up_and_hands_the_seat_on_after_a_check(
    world: World,
) -> None:
    section, first, second = world.section(1), world.student(), world.student()
    await world.registrar.register(STAFF, first, [section])
    await world.registrar.register(STAFF, second, [section])
    answer = await world.registrar.drop(STAFF, first, section)
    assert answer.outcome is DropOutcome.DROPPED
    assert world.rules.holding(first, section) is None
    assert world.seats.sections[section].enrolled == [second]
    assert world.rules.holding(second, section) is Holding.ENROLLED


async def test_a_seat_held_for_a_student_who_now_breaks_a_rule_is_not_theirs(
    world: World,
) -> None:
    section, first, second = world.section(1), world.student(), world.student()
    await world.registrar.register(STAFF, first, [section])
    await world.registrar.register(STAFF, second, [section])
    world.rules.refusals[section] = Rejection.HOLD
    await world.registrar.drop(STAFF, first, section)
    assert world.seats.sections[section].enrolled == []
    assert world.rules.holding(second, section) is None


async def test_a_swap_with_a_seat_free_moves_the_student(world: World) -> None:
    old, new, student = world.section(5), world.section(5), world.student()
    await world.registrar.register(STAFF, student, [old])
    answer = await world.registrar.swap(STAFF, student, old, new)
    assert answer.outcome is SwapOutcome.SWAPPED
    assert world.seats.sections[old].enrolled == []
    assert world.seats.sections[new].enrolled == [student]
    assert world.rules.holding(student, old) is None
    assert world.rules.holding(student, new) is Holding.ENROLLED


async def test_a_swap_into_a_full_section_waits_keeping_the_old_one(world: World) -> None:
    old, new, student = world.section(5), world.section(1), world.student()
    await world.registrar.register(STAFF, world.student(), [new])
    await world.registrar.register(STAFF, student, [old])
    answer = await world.registrar.swap(STAFF, student, old, new)
    assert (answer.outcome, answer.waitlist_position) == (
        SwapOutcome.WAITLISTED_KEEPING_CURRENT,
        1,
    )
    assert world.rules.holding(student, old) is Holding.ENROLLED
    assert world.rules.holding(student, new) is Holding.WAITING


async def test_a_swap_a_rule_refuses_keeps_the_old_section_and_is_logged(world: World) -> None:
    old, new, student = world.section(5), world.section(5), world.student()
    await world.registrar.register(STAFF, student, [old])
    world.rules.refusals[new] = Rejection.CREDIT_LIMIT
    answer = await world.registrar.swap(STAFF, student, old, new)
    assert (answer.outcome, answer.reason) == (SwapOutcome.REJECTED, Rejection.CREDIT_LIMIT)
    assert world.seats.sections[old].enrolled == [student]
    assert world.rules.holding(student, old) is Holding.ENROLLED
    assert world.rules.attempts == [Attempt(student, new, Rejection.CREDIT_LIMIT)]


async def test_a_swap_into_a_section_already_held_is_refused(world: World) -> None:
    old, new, student = world.section(5), world.section(5), world.student()
    await world.registrar.register(STAFF, student, [old, new])
    answer = await world.registrar.swap(STAFF, student, old, new)
    assert (answer.outcome, answer.reason) == (SwapOutcome.REJECTED, "ALREADY_ENROLLED")
    assert world.seats.sections[old].enrolled == [student]
