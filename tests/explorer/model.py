"""The plain Python model a run is checked against: what the streams say happened (the
record Postgres will hold), replayed into enrolled sets, lines and totals; the answers
clients were given; and each holding as last seen, to tell a move backwards."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from domain.changes import parse_position
from tests.explorer.snapshot import Entry, Snapshot
from tests.explorer.world import CREDITS, World

Position = tuple[int, int]
# A change an answer stands for: (stream entry kind, section, student or "" for a
# section's), made by the answering request; or (ENROLLED_NOW, section, student): the
# streams enrolled the student there (a claim answers ENROLLED for a seat taken before,
# and a concurrent drop of theirs may since have freed it).
Need = tuple[str, UUID, str]
ENROLLED_NOW = "enrolled"
# What a pair's last change means for check_answers_persisted (tests/invariants.py).
OUTCOME_OF_CHANGE = {
    "enroll": "ENROLLED",
    "promote": "ENROLLED",
    "join": "WAITLISTED",
    "drop": "DROPPED",
    "leave": "LEFT_WAITLIST",
}


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An answer a client was given, the changes it stands for, and those it denies (an
    ALREADY_ENROLLED or NOT_REGISTERED must not come with the request's own change)."""

    action: str
    request_id: str
    text: str
    needs: tuple[Need, ...]
    denies: tuple[Need, ...] = ()
    since: dict[int, Position] = field(default_factory=dict)  # the streams when it began


@dataclass
class Model:
    world: World
    total: dict[UUID, int] = field(default_factory=dict)
    enrolled: dict[UUID, set[str]] = field(default_factory=lambda: defaultdict(set))
    line: dict[UUID, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    # Every entry ever seen, by (request id, kind, section, student): (shard, position).
    changes: dict[tuple[str, str, str, str], tuple[int, Position]] = field(default_factory=dict)
    present: dict[int, set[Position]] = field(default_factory=lambda: defaultdict(set))
    cursor: dict[int, Position] = field(default_factory=dict)
    history: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    answers: list[Acknowledged] = field(default_factory=list)
    unchecked: list[Acknowledged] = field(default_factory=list)
    holding: dict[tuple[UUID, str], str] = field(default_factory=dict)
    credits: dict[UUID, float] = field(default_factory=dict)  # per course, as staff set it

    def __post_init__(self) -> None:
        self.total = {s.id: s.seats for s in self.world.sections}
        self.credits = {s.course_id: CREDITS for s in self.world.sections}

    def acknowledge(self, answer: Acknowledged) -> None:
        self.answers.append(answer)
        self.unchecked.append(answer)

    def vanished(self, snap: Snapshot) -> dict[int, list[Position]]:
        """Entries seen before and gone from their stream now (trimmed, or lost)."""
        gone = {}
        for shard, entries in snap.streams.items():
            now = {parse_position(i) for i, _ in entries}
            missing = sorted(self.present[shard] - now)
            if missing:
                gone[shard] = missing
            self.present[shard] = now
        return gone

    def replay(self, snap: Snapshot) -> None:
        for shard, entries in snap.streams.items():
            for entry_id, fields in entries:
                position = parse_position(entry_id)
                if position > self.cursor.get(shard, (0, 0)):
                    self.cursor[shard] = position
                    self._apply(shard, position, (entry_id, fields))

    def _apply(self, shard: int, position: Position, entry: Entry) -> None:
        _, f = entry
        kind, student, section = f["k"], f.get("u", ""), UUID(f["s"])
        self.changes[(f.get("rid", ""), kind, str(section), student)] = (shard, position)
        if kind in ("enroll", "promote"):
            self.enrolled[section].add(student)
        if kind == "drop":
            self.enrolled[section].discard(student)
        if kind in ("leave", "promote"):
            self.line[section].pop(student, None)
        if kind == "join":
            self.line[section][student] = int(f["q"])
        if kind == "capacity":
            self.total[section] = int(f["n"])
        if kind in OUTCOME_OF_CHANGE:
            self.history[(student, str(section))].append(OUTCOME_OF_CHANGE[kind])

    def made_since(self, kind: str, section: str, student: str, since: dict[int, Position]) -> bool:
        """A change of this kind for (section, student) by any request after `since`."""
        return any(
            key[1:] == (kind, section, student) and position > since.get(shard, (0, 0))
            for key, (shard, position) in self.changes.items()
        )

    def line_order(self, section: UUID) -> tuple[str, ...]:
        waiting = self.line[section]
        return tuple(sorted(waiting, key=waiting.__getitem__))
