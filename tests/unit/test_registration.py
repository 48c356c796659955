"""Register and drop rules, on fakes of the ports."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from domain.errors import BadInput, Forbidden, NotEligible, NotFound, Unavailable
from domain.model import Actor, DropOutcome, RegisterOutcome, Role
from domain.promotion import PlainPromoter
from domain.registration import Registrar
from domain.seating import PlainSeating
from tests.unit.fakes import (
    FakeAnswers,
    FakeSeatStore,
    FakeSection,
    FakeStudents,
    RecordedOutcomes,
)

STAFF = Actor("staff", Role.STAFF)


@pytest.fixture
def world() -> tuple[Registrar, FakeSeatStore, FakeAnswers, FakeStudents, uuid.UUID, uuid.UUID]:
    student, section = uuid.uuid4(), uuid.uuid4()
    seats = FakeSeatStore({section: FakeSection(total=1)})
    answers = FakeAnswers()
    students = FakeStudents({student: "active"})
    registrar = Registrar(answers, students, PlainSeating(seats), PlainPromoter(seats))
    return registrar, seats, answers, students, student, section


async def test_a_student_may_not_act_for_another(world):
    registrar, seats, *_, section = world
    other = Actor(str(uuid.uuid4()), Role.STUDENT)
    with pytest.raises(Forbidden):
        await registrar.register(other, uuid.uuid4(), [section])
    with pytest.raises(Forbidden):
        await registrar.drop(other, uuid.uuid4(), section)
    assert seats.calls == 0


async def test_a_student_acts_for_themself(world):
    registrar, _, _, _, student, section = world
    me = Actor(str(student), Role.STUDENT)
    answer = await registrar.register(me, student, [section])
    assert answer.results[0].outcome is RegisterOutcome.ENROLLED


@pytest.mark.parametrize("count", [0, 11])
async def test_section_lists_must_hold_one_to_ten(world, count):
    registrar, seats, _, _, student, _ = world
    with pytest.raises(BadInput):
        await registrar.register(STAFF, student, [uuid.uuid4() for _ in range(count)])
    assert seats.calls == 0


async def test_repeated_sections_are_refused(world):
    registrar, seats, _, _, student, section = world
    with pytest.raises(BadInput):
        await registrar.register(STAFF, student, [section, section])
    assert seats.calls == 0


async def test_unknown_and_inactive_students_are_refused_before_any_seat(world):
    registrar, seats, _, students, student, section = world
    with pytest.raises(NotFound):
        await registrar.register(STAFF, uuid.uuid4(), [section])
    students.statuses[student] = "suspended"
    with pytest.raises(NotEligible):
        await registrar.register(STAFF, student, [section])
    assert seats.calls == 0


async def test_a_replay_returns_the_first_answer_without_new_work(world):
    registrar, seats, _, _, student, section = world
    first = await registrar.register(STAFF, student, [section], "k1")
    await registrar.drop(STAFF, student, section)
    again = await registrar.register(STAFF, student, [section], "k1")
    assert again == first
    assert seats.calls == 1


async def test_a_key_reused_with_other_input_is_bad_input(world):
    registrar, _, _, _, student, section = world
    await registrar.register(STAFF, student, [section], "k1")
    with pytest.raises(BadInput):
        await registrar.register(STAFF, student, [uuid.uuid4()], "k1")
    with pytest.raises(BadInput):
        await registrar.drop(STAFF, student, section, "k1")


async def test_a_failed_request_releases_its_claim(world):
    registrar, _, answers, students, student, section = world
    students.statuses[student] = "inactive"
    with pytest.raises(NotEligible):
        await registrar.register(STAFF, student, [section], "k2")
    assert answers.claims == set()


async def test_over_long_keys_are_refused(world):
    registrar, _, _, _, student, section = world
    with pytest.raises(BadInput):
        await registrar.register(STAFF, student, [section], "x" * 129)


async def test_a_store_being_rebuilt_answers_unavailable(world):
    registrar, seats, _, _, student, section = world
    seats.unavailable = True
    with pytest.raises(Unavailable):
        await registrar.register(STAFF, student, [section])


async def test_dropping_an_unknown_section_is_not_found(world):
    registrar, _, _, _, student, _ = world
    with pytest.raises(NotFound):
        await registrar.drop(STAFF, student, uuid.uuid4())


async def test_dropping_promotes_the_head_of_the_line(world):
    registrar, seats, _, students, student, section = world
    waiting = uuid.uuid4()
    students.statuses[waiting] = "active"
    await registrar.register(STAFF, student, [section])
    await registrar.register(STAFF, waiting, [section])
    answer = await registrar.drop(STAFF, student, section)
    assert answer.outcome is DropOutcome.DROPPED
    assert seats.sections[section].enrolled == [waiting]


async def test_outcomes_are_told_for_work_done_not_for_replays(world):
    registrar, _, _, _, student, section = world
    outcomes = RecordedOutcomes()
    registrar = replace(registrar, outcomes=outcomes)
    first = await registrar.register(STAFF, student, [section], "k1")
    await registrar.register(STAFF, student, [section], "k1")
    with pytest.raises(NotFound):
        await registrar.drop(STAFF, student, uuid.uuid4())
    with pytest.raises(NotFound):
        await registrar.drop(STAFF, uuid.uuid4(), section)
    await registrar.drop(STAFF, student, section)
    assert outcomes.registers == [first]
    assert outcomes.drops == [None, None, DropOutcome.DROPPED]
