"""COURSEREG_RULES=false: the container's other choice (no rules checked, a freed seat goes
to the next in line at once) registers, drops, promotes the waitlist and refuses swaps."""

from __future__ import annotations

from typing import Any

from tests.client import CAPACITY, SWAP, drop, registered
from tests.conftest import Api, Catalog


async def register(api: Api, student: Any, section: Any) -> dict[str, Any]:
    (result,) = await registered(api, student, section)
    return {"outcome": result["outcome"], "waitlistPosition": result["waitlistPosition"]}


async def standing(api: Api, student: Any, section: Any) -> str:
    found = await api.container.seats.standing(student.id, section.id)
    assert found is not None
    return found.status.value


async def test_with_the_rules_off_a_freed_seat_goes_to_the_next_in_line_at_once(
    rules_off_api: Api,
) -> None:
    api, catalog = rules_off_api, Catalog(rules_off_api.container)
    section = await catalog.section(1)
    first, second, third = await catalog.students(3)
    assert await register(api, first, section) == {"outcome": "ENROLLED", "waitlistPosition": None}
    assert await register(api, second, section) == {"outcome": "WAITLISTED", "waitlistPosition": 1}
    assert await register(api, third, section) == {"outcome": "WAITLISTED", "waitlistPosition": 2}

    assert (await drop(api, first, section))["outcome"] == "DROPPED"
    assert await standing(api, second, section) == "ENROLLED"

    await api.staff(CAPACITY, s=str(section.id), n=2)
    assert await standing(api, third, section) == "ENROLLED"
    assert await api.container.promoter.sweep(list(range(api.container.keys.shards))) == 0


async def test_with_the_rules_off_a_swap_is_unavailable(rules_off_api: Api) -> None:
    api, catalog = rules_off_api, Catalog(rules_off_api.container)
    old, new = await catalog.section(5), await catalog.section(5)
    student = await catalog.student()
    assert (await register(api, student, old))["outcome"] == "ENROLLED"
    i = {"studentId": str(student.id), "dropSectionId": str(old.id), "addSectionId": str(new.id)}
    body = await api.gql(SWAP, api.student_token(student.id), i=i)
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE", body
    assert await standing(api, student, old) == "ENROLLED"
