"""Time tickets in bulk (`coursereg tickets`): rows as a registrar's spreadsheet gives them,
checked all before any is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.catalog import require_aware
from domain.errors import BadInput
from domain.model import Semester
from domain.rule_records import TimeTicket

MAX_PROBLEMS = 1000


FIELDS = ("student_number", "opens_at", "closes_at")


@dataclass(frozen=True, slots=True)
class TicketRow:
    """One record of the file as read (its fields unchecked), and the line it starts on."""

    line: int
    fields: tuple[str, ...]

    @property
    def student_number(self) -> str:
        return self.fields[0].strip() if self.fields else ""


class BadRows(BadInput):
    """Rows that cannot be applied, each as (line, what is wrong)."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(problems)} bad rows; nothing was changed")
        self.problems = problems


def check_window(
    ticket: TimeTicket, semester: Semester, opens: str = "opensAt", closes: str = "closesAt"
) -> None:
    """A ticket is a window inside the semester's registration window (bounds included)."""
    if ticket.closes_at <= ticket.opens_at:
        raise BadInput(f"{closes} must be after {opens}", field=closes)
    start, end = semester.registration_start, semester.registration_end
    if ticket.opens_at < start or ticket.closes_at > end:
        raise BadInput(
            "a time ticket must lie inside the semester's registration window "
            f"({start.isoformat()} to {end.isoformat()})",
            field=opens if ticket.opens_at < start else closes,
        )


def parse_moment(field: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{field} is not an ISO 8601 date and time: {text!r}") from None
    require_aware(field, moment)
    return moment


def plan_row(semester: Semester, row: TicketRow, student_id: UUID | None) -> TimeTicket:
    if len(row.fields) != len(FIELDS):
        raise BadInput(f"expected {len(FIELDS)} fields ({','.join(FIELDS)}), got {len(row.fields)}")
    if student_id is None:
        raise BadInput(f"no student with number {row.student_number!r}")
    opens = parse_moment("opens_at", row.fields[1])
    closes = parse_moment("closes_at", row.fields[2])
    ticket = TimeTicket(student_id, semester.id, opens, closes)
    check_window(ticket, semester, "opens_at", "closes_at")
    return ticket


def plan_tickets(
    semester: Semester, rows: Sequence[TicketRow], known: Mapping[str, UUID | None]
) -> list[TimeTicket]:
    """One ticket per row, or BadRows naming every row that cannot be one (a student given
    twice included: which window would win is not for us to guess)."""
    tickets: list[TimeTicket] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for row in rows:
        number = row.student_number
        try:
            if number in first_line:
                raise BadInput(f"student {number!r} already has a row on line {first_line[number]}")
            first_line[number] = row.line
            tickets.append(plan_row(semester, row, known.get(number)))
        except BadInput as exc:
            problems.append((row.line, exc.message))
    if problems:
        raise BadRows(problems[:MAX_PROBLEMS])
    return tickets
