"""The rush of rush.py with swaps, over a catalog with rules (timetable.py): students register
for one or two sections, drop what they hold, and swap a section for another (often its
clashing partner), every request with an idempotency key so a retry is safe.

The ledger learns two things the rule-free rush never meets. A swap that waits for its new
section keeps the old one only until the promotion drops it, so the old pair is unsure from
then until that wait ends. And a waiting student may be taken off the line for a rule when
their turn comes (promotion skips them): that is no lost answer if the attempts log shows
the removal after the request that put them in line was sent.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from infrastructure.auth import TokenService
from tests.faults.rush import STATE_OF, Ledger, Pair, Request, Rush
from tests.faults.timetable import Timetable
from tests.integration.test_rules import SWAP

# Refusals this catalog makes possible (no holds, prerequisites, links, tickets or
# capacities; every section its own course; the window open); any other is a wrong answer.
RIGHT_REFUSALS = {"TIME_CONFLICT", "CREDIT_LIMIT", "UNAVAILABLE"}
RIGHT_SWAP_REFUSALS = RIGHT_REFUSALS | {"NOT_ENROLLED", "ALREADY_ENROLLED", "ALREADY_WAITLISTED"}


@dataclass
class SwapLedger(Ledger):
    outcomes: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    # (student, new section) -> the section a waiting swap will drop when it is promoted
    swapping: dict[Pair, UUID] = field(default_factory=dict)
    # When the request behind each pair's last definite answer was sent (epoch seconds).
    since: dict[Pair, float] = field(default_factory=dict)
    asked_at: float = 0.0

    def told(self, pair: Pair, outcome: str) -> None:
        super().told(pair, outcome)
        self.outcomes[outcome] += 1
        if outcome in STATE_OF:
            self.since[pair] = self.asked_at
        if pair in self.swapping and self.last.get(pair) != "waiting":
            del self.swapping[pair]
        if any(old == pair[1] and new[0] == pair[0] for new, old in self.swapping.items()):
            self.last.pop(pair, None)  # a waiting swap may still drop it

    def refused(self, request: str, reason: str | None, right: set[str]) -> None:
        self.refusals[str(reason)] += 1
        if reason not in right:
            self.wrong.append(f"{request} refused {reason}")

    def unexplained(
        self, observed: dict[Pair, str], removed: dict[Pair, datetime]
    ) -> list[tuple[Pair, str, str]]:
        """lost(), less the waiting students a promotion later took off the line for a rule."""
        return [
            (pair, told, seen)
            for pair, told, seen in self.lost(observed)
            if not (
                told == "waiting"
                and seen == "out"
                and pair in removed
                and removed[pair].timestamp() >= self.since.get(pair, 0.0)
            )
        ]


@dataclass
class Move(Request):
    """A register, a drop, or (swap) `sections` = [old, new]."""

    swap: bool = False
    sent_at: float = 0.0


class SwapRush(Rush):
    def __init__(
        self,
        url: str,
        tokens: TokenService,
        table: Timetable,
        ledger: SwapLedger,
        clients: int = 10,
        pause: float = 0.03,
        seed: int = 0,
    ) -> None:
        super().__init__(url, tokens, table.students, table.sections, ledger, clients, pause, seed)
        self.table = table
        self.swap_ledger = ledger

    def _key(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _held(self, student: UUID, *states: str) -> list[UUID]:
        last = self.ledger.last
        return [s for s in self.sections if last.get((student, s)) in states]

    def _next(self, students: list[UUID]) -> Request:
        """What a student after two sections does: register for sections they do not hold
        yet, leave a line when in several, drop or swap what they hold. One choice in ten
        ignores what they were told (a stale page), so the refusals are exercised too."""
        rng = self.rng
        student = rng.choice(students)
        enrolled, waiting = self._held(student, "enrolled"), self._held(student, "waiting")
        stale = rng.random() < 0.1
        roll = rng.random()
        if roll < 0.3 and (enrolled or stale):
            old = rng.choice(enrolled or self.sections)
            others = [s for s in self.sections if s != old]
            new = self.table.partner(old) if rng.random() < 0.4 else rng.choice(others)
            return Move(student, [old, new], False, False, self._key(), swap=True)
        if roll < 0.6 and (enrolled or waiting or stale):
            crowded = len(waiting) > 2 or not enrolled
            mine = (waiting if waiting and crowded else enrolled) or self.sections
            return Move(student, [rng.choice(mine)], True, False, self._key())
        free = [s for s in self.sections if s not in enrolled and s not in waiting]
        pool = free if free and not stale else self.sections
        chosen = rng.sample(pool, min(len(pool), 1 + (rng.random() < 0.3)))
        return Move(student, chosen, False, False, self._key())

    async def _send(self, client: httpx.AsyncClient, request: Request) -> bool:
        if isinstance(request, Move) and not request.sent_at:
            request.sent_at = time.time()  # a retry may be answered as the first send was
        return await super()._send(client, request)

    async def _graphql(self, client: httpx.AsyncClient, request: Request) -> httpx.Response:
        if not (isinstance(request, Move) and request.swap):
            return await super()._graphql(client, request)
        old, new = request.sections
        variables: dict[str, Any] = {
            "studentId": str(request.student),
            "dropSectionId": str(old),
            "addSectionId": str(new),
            "idempotencyKey": request.key,
        }
        body = {"query": SWAP, "variables": {"i": variables}}
        return await client.post("/graphql", json=body, headers=self._headers[request.student])

    def _record(self, request: Request, response: httpx.Response) -> bool:
        ledger = self.swap_ledger
        # Synchronous from here on: no other client records in between.
        ledger.asked_at = request.sent_at if isinstance(request, Move) else time.time()
        body: dict[str, Any] = response.json() if response.status_code < 500 else {}
        data = body.get("data") or {}
        if isinstance(request, Move) and request.swap and "swap" in data:
            self._record_swap(request, data["swap"])
            return True
        for result in (data.get("register") or {}).get("results", []):
            if result["outcome"] == "REJECTED":
                ledger.refused(f"register {result['sectionId']}", result["reason"], RIGHT_REFUSALS)
        return super()._record(request, response)

    def _record_swap(self, request: Move, answer: dict[str, Any]) -> None:
        ledger = self.swap_ledger
        old, new = request.pairs
        outcome = answer["outcome"]
        ledger.outcomes[f"swap:{outcome}"] += 1
        if outcome == "SWAPPED":
            ledger.told(new, "ENROLLED")
            ledger.told(old, "DROPPED")
        elif outcome == "WAITLISTED_KEEPING_CURRENT":
            ledger.swapping[new] = old[1]
            ledger.told(new, "WAITLISTED")
            ledger.last.pop(old, None)
        else:
            ledger.answers += 1
            ledger.refused(f"swap to {new[1]}", answer["reason"], RIGHT_SWAP_REFUSALS)
