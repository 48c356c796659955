"""The invariants of DESIGN.md, checked against Redis after every step (and at rest).

Each check returns violations rather than raising, so a run can stop at the first or, in
the named finding tests, collect every one the interleaving breaks."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any
from uuid import UUID

from tests.explorer.model import ENROLLED_NOW, Model
from tests.explorer.snapshot import SectionState, Snapshot
from tests.explorer.world import CREDITS, World

# Holding states that count credits and meeting time: enrolled, reserved by a request, and
# (main's new states) promotion in flight and drop in flight. W (waiting) does not count.
COUNTING = frozenset({"E", "R", "P", "D"})
# Where a holding may go from these states (besides gone): nowhere backwards.
ONWARD = {"E": frozenset({"E", "D"}), "D": frozenset({"D"})}
AT_REST = frozenset({"E", "W"})


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} [{self.subject}]: {self.detail}"


def check_sections(snap: Snapshot, world: World, model: Model) -> list[Violation]:
    found = []
    for s in world.sections:
        state = snap.sections[s.id]
        if state.total is None:
            if snap.shard_ready(s.id):
                found.append(Violation("section-missing", s.name, "its shard is ready"))
            continue
        found += _section(
            s.name, state, model.total[s.id], model.enrolled[s.id], model.line_order(s.id)
        )
    return found


def _section(
    name: str, state: SectionState, total: int, enrolled: set[str], line: tuple[str, ...]
) -> list[Violation]:
    found = []
    assert state.total is not None
    taken = len(state.enrolled)
    if taken > state.total:
        found.append(Violation("oversold", name, f"{taken} enrolled, {state.total} seats"))
    if state.seats < 0 or state.seats != state.total - taken - len(state.held):
        found.append(
            Violation(
                "seat-count",
                name,
                f"available {state.seats} != total "
                f"{state.total} - enrolled {taken} - held {len(state.held)}",
            )
        )
    if state.enrolled & set(state.line):
        found.append(
            Violation("enrolled-and-waiting", name, str(sorted(state.enrolled & set(state.line))))
        )
    if set(state.held) != set(state.line[: len(state.held)]):
        found.append(
            Violation(
                "held-not-head", name, f"held for {sorted(state.held)}, line {list(state.line)}"
            )
        )
    unheld = [u for u in state.line if u not in state.held]
    if state.seats > 0 and unheld:
        found.append(
            Violation(
                "seat-free-while-waiting",
                name,
                f"{state.seats} available while {unheld} wait unheld",
            )
        )
    if (state.total, set(state.enrolled), state.line) != (total, enrolled, line):
        found.append(
            Violation(
                "live-differs-from-streams",
                name,
                f"Redis total {state.total} enrolled {sorted(state.enrolled)} "
                f"line {list(state.line)}; the streams say total {total} "
                f"enrolled {sorted(enrolled)} line {list(line)}",
            )
        )
    return found


def check_students(snap: Snapshot, world: World, model: Model) -> list[Violation]:
    found = []
    for st in world.students:
        if st.id not in snap.loaded:
            # Lost with a node: every student script refuses until the rebuild reloads it
            # (then the invariants judge what was reloaded, not a move).
            for s in world.sections:
                model.holding.pop((st.id, str(s.id)), None)
            continue
        held = snap.holdings[st.id]
        for s in world.sections:
            state = snap.sections[s.id]
            if str(st.id) not in state.enrolled:
                continue
            entry = held.get(str(s.id))
            if entry is None:
                found.append(
                    Violation(
                        "holding-missing",
                        f"{st.name} {s.name}",
                        "enrolled, but no holding counts its credits or time",
                    )
                )
            elif entry["h"] not in COUNTING:
                found.append(
                    Violation(
                        "holding-not-counting",
                        f"{st.name} {s.name}",
                        f"enrolled, but the holding is {entry['h']}",
                    )
                )
        found += _moves(st.id, st.name, held, model, world)
        enrolled = {str(s.id) for s in world.sections if str(st.id) in snap.sections[s.id].enrolled}
        found += _limits(st.name, st.max_credits, held, enrolled, world)
    return found


def _moves(
    student: UUID, name: str, held: dict[str, dict[str, Any]], model: Model, world: World
) -> list[Violation]:
    found = []
    for s in world.sections:
        key = (student, str(s.id))
        before, now = model.holding.get(key), held.get(str(s.id), {}).get("h")
        if before in ONWARD and now is not None and now not in ONWARD[before]:
            found.append(Violation("holding-backwards", f"{name} {s.name}", f"{before} -> {now}"))
        if now is None:
            model.holding.pop(key, None)
        else:
            model.holding[key] = now
    return found


def _limits(
    name: str, limit: float, held: dict[str, dict[str, Any]], enrolled: set[str], world: World
) -> list[Violation]:
    """What the student occupies (holdings that count, and sections they are enrolled in
    whatever their holding says) stays within the limit and never clashes. A holding whose
    drop is in flight (D) is on its way out; a swap in flight counts its new section in
    place of the one it replaces."""
    states = {sid: e["h"] for sid, e in held.items()}
    mine = {sid for sid, h in states.items() if h in COUNTING} | {
        sid for sid in enrolled if states.get(sid) not in (None, "D")
    }
    replaced = {e["sw"] for e in held.values() if e["h"] in COUNTING and e.get("sw")}
    sections = [world.section(UUID(sid)) for sid in mine - replaced if states.get(sid) != "D"]
    found = []
    credits = CREDITS * len(sections)
    if credits > limit + 1e-9:
        shown = sorted(s.name for s in sections)
        found.append(
            Violation("credit-limit", name, f"{credits} credits in {shown}, limit {limit}")
        )
    for a, b in combinations(sorted(sections, key=lambda s: s.index), 2):
        if a.interval[0] < b.interval[1] and b.interval[0] < a.interval[1]:
            found.append(Violation("time-clash", name, f"{a.name} and {b.name} both held"))
    return found


def check_answers(model: Model) -> list[Violation]:
    """Every answer given is in the streams (or was, and is persisted: see vanished), and
    no answer denies what its own request did (a re-sent script answers ALREADY_*)."""
    found = []
    for answer in model.unchecked:
        for kind, section, student in answer.needs:
            if kind == ENROLLED_NOW:  # an answer about a seat taken before: it was taken
                there = "ENROLLED" in model.history[(student, str(section))]
            else:
                there = (answer.request_id, kind, str(section), student) in model.changes
                # A drop is made once per operation (lib/once.lua), by whoever gets there
                # first (the sweeper, another drop of it met on the way): made meanwhile.
                there = there or (
                    kind == "drop" and model.made_since(kind, str(section), student, answer.since)
                )
            if not there:
                found.append(
                    Violation(
                        "answer-without-change",
                        answer.action,
                        f"{answer.text}: no {kind} of {student} in {section} in the streams",
                    )
                )
        for kind, section, student in answer.denies:
            if (answer.request_id, kind, str(section), student) in model.changes:
                found.append(
                    Violation(
                        "answer-denies-change",
                        answer.action,
                        f"{answer.text}, but the request made the {kind} of {student} in {section}",
                    )
                )
    model.unchecked.clear()
    return found


def _stale_rules(
    name: str, held: dict[str, dict[str, Any]], world: World, model: Model
) -> list[Violation]:
    """Each holding counts its course's credits as staff last set them."""
    found = []
    for sid, entry in held.items():
        section = world.section(UUID(sid))
        want = model.credits[section.course_id]
        if float(entry.get("cr", -1)) != want:
            found.append(
                Violation(
                    "holding-stale-rules",
                    f"{name} {section.name}",
                    f"holds {entry.get('cr')} credits, the course has {want}",
                )
            )
    return found


def check_at_rest(snap: Snapshot, world: World, model: Model) -> list[Violation]:
    """No live request, every deadline past and swept: holdings are exactly the sections'
    state (E enrolled, W waiting), each with its course's credits as staff last set them,
    and nothing is held or reserved any more."""
    found = []
    for st in world.students:
        held = snap.holdings[st.id]
        found += _stale_rules(st.name, held, world, model)
        for s in world.sections:
            state = snap.sections[s.id]
            me = str(st.id)
            want = "E" if me in state.enrolled else "W" if me in state.line else None
            have = held.get(str(s.id), {}).get("h")
            if have != want:
                found.append(
                    Violation(
                        "not-at-rest",
                        f"{st.name} {s.name}",
                        f"holding {have}, the section says {want}",
                    )
                )
        for sid, entry in held.items():
            if entry["h"] not in AT_REST:
                found.append(Violation("not-at-rest", st.name, f"{sid} left in {entry['h']}"))
    for s in world.sections:
        if snap.sections[s.id].held:
            found.append(
                Violation("not-at-rest", s.name, f"seats still held for {snap.sections[s.id].held}")
            )
    if snap.reservations:
        found.append(
            Violation(
                "not-at-rest", "sweeper", f"{snap.reservations} reservations left in the index"
            )
        )
    return found
