"""A rush of concurrent clients against a `coursereg serve` process, and the ledger of what
they were told, to prove afterwards that no acknowledged answer was lost.

Each client owns its students, so a (student, section) pair's requests are sequential and the
last definite answer for it states where the student must be. A request that got no answer
(connection refused or cut, UNAVAILABLE) may or may not have acted: the pair is uncertain
until the next definite answer. A retried request carries its idempotency key.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from domain.model import Role
from infrastructure.auth import TokenService
from infrastructure.container import Container
from tests.client import DROP, REGISTER
from tests.waiting import wait_until

Pair = tuple[UUID, UUID]


# Where a definite answer says the student stands. "in": enrolled or waiting (REST's
# already_registered does not say which).
STATE_OF = {
    "ENROLLED": "enrolled",
    "ALREADY_ENROLLED": "enrolled",
    "WAITLISTED": "waiting",
    "ALREADY_WAITLISTED": "waiting",
    "DROPPED": "out",
    "LEFT_WAITLIST": "out",
    "NOT_REGISTERED": "out",
    "enrolled": "enrolled",
    "waitlisted": "waiting",
    "already_registered": "in",
}
# The states a record may show for each told state: a waiting student may have been promoted.
ALLOWED = {
    "enrolled": {"enrolled"},
    "waiting": {"waiting", "enrolled"},
    "in": {"waiting", "enrolled"},
    "out": {"out"},
}


@dataclass
class Ledger:
    last: dict[Pair, str] = field(default_factory=dict)
    uncertain: set[Pair] = field(default_factory=set)
    requests: int = 0
    answers: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)
    internal: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    # Requests sent but not yet recorded, and pairs sent since `touched` was cleared: a
    # check during the rush skips them (Redis may already show what the client is told next).
    inflight: Counter[Pair] = field(default_factory=Counter)
    touched: set[Pair] = field(default_factory=set)

    def told(self, pair: Pair, outcome: str) -> None:
        self.answers += 1
        self.answered_at.append(time.monotonic())
        state = STATE_OF.get(outcome)
        if state is not None:
            self.last[pair] = state
            self.uncertain.discard(pair)

    def unsure(self, pairs: Sequence[Pair], why: str) -> None:
        self.unanswered[why] += 1
        for pair in pairs:
            self.last.pop(pair, None)
            self.uncertain.add(pair)

    def answers_since(self, moment: float) -> int:
        return sum(1 for t in self.answered_at if t >= moment)

    async def more(self, count: int, timeout: float = 60.0) -> None:
        """Wait until the clients have been told `count` more answers (a loaded machine
        makes a fixed sleep too short)."""
        target = self.answers + count
        await wait_until(lambda: self.answers >= target, timeout, f"{target} answers in all")

    def lost(
        self, observed: dict[Pair, str], busy: set[Pair] | None = None
    ) -> list[tuple[Pair, str, str]]:
        """Pairs whose record contradicts their last definite answer (`busy` ones aside)."""
        found = []
        for pair, told in self.last.items():
            if busy and pair in busy:
                continue
            seen = observed.get(pair, "out")
            if seen not in ALLOWED[told]:
                found.append((pair, told, seen))
        return found


async def redis_standing(container: Container, sections: Sequence[UUID]) -> dict[Pair, str]:
    pipe = container.redis.pipeline(transaction=False)
    for sid in sections:
        keys = container.keys.section(sid)
        pipe.smembers(keys.enrolled)
        pipe.zrange(keys.waitlist, 0, -1)
    replies = await pipe.execute()
    standing: dict[Pair, str] = {}
    for i, sid in enumerate(sections):
        enrolled, waiting = replies[2 * i], replies[2 * i + 1]
        standing.update({(UUID(s), sid): "waiting" for s in waiting})
        standing.update({(UUID(s), sid): "enrolled" for s in enrolled})
    return standing


async def postgres_standing(database_url: str) -> dict[Pair, str]:
    connection = await asyncpg.connect(database_url)
    try:
        enrolled = await connection.fetch(
            "SELECT student_id, section_id FROM registrations WHERE status = 'enrolled'"
        )
        waiting = await connection.fetch("SELECT student_id, section_id FROM waitlist")
    finally:
        await connection.close()
    standing = {(r[0], r[1]): "waiting" for r in waiting}
    standing.update({(r[0], r[1]): "enrolled" for r in enrolled})
    return standing


@dataclass
class Request:
    """One register or drop, kept to be sent again (same idempotency key) if unanswered."""

    student: UUID
    sections: list[UUID]
    drop: bool
    rest: bool
    key: str | None
    tries: int = 0

    @property
    def pairs(self) -> list[Pair]:
        return [(self.student, s) for s in self.sections]


class Rush:
    """`clients` concurrent clients, each with its own students, registering (1 to 3
    sections) and dropping at random over GraphQL and, one request in five, REST."""

    def __init__(
        self,
        url: str,
        tokens: TokenService,
        students: Sequence[UUID],
        sections: Sequence[UUID],
        ledger: Ledger,
        clients: int = 16,
        pause: float = 0.01,
        seed: int = 6,
    ) -> None:
        self.url = url
        self.tokens = tokens
        self.sections = list(sections)
        self.ledger = ledger
        self.pause = pause
        self.rng = random.Random(seed)
        self.mine = [list(students[i::clients]) for i in range(clients)]
        self._headers = {s: {"Authorization": f"Bearer {tokens.issue(Role.STUDENT, str(s))}"}
                         for s in students}  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._client(students, stop) for students in self.mine if students))

    def _next(self, students: list[UUID]) -> Request:
        rng = self.rng
        student = rng.choice(students)
        key = uuid.uuid4().hex if rng.random() < 0.5 else None
        rest = rng.random() < 0.2
        if rng.random() < 0.65:
            chosen = rng.sample(self.sections, rng.randint(1, min(3, len(self.sections))))
            return Request(student, chosen, False, rest, key)
        return Request(student, [rng.choice(self.sections)], True, rest, key)

    async def _client(self, students: list[UUID], stop: asyncio.Event) -> None:
        retry: Request | None = None
        async with httpx.AsyncClient(base_url=self.url, timeout=20) as client:
            while not stop.is_set():
                request = retry or self._next(students)
                retry = None
                if await self._send(client, request):
                    await asyncio.sleep(self.pause * self.rng.random())
                    continue
                if request.key is not None and request.tries < 5:
                    retry = request
                await asyncio.sleep(0.2)  # the server is away: do not spin

    async def _send(self, client: httpx.AsyncClient, request: Request) -> bool:
        """Send one request and record what it was told; False if it got no answer."""
        self.ledger.requests += 1
        request.tries += 1
        self.ledger.inflight.update(request.pairs)
        self.ledger.touched.update(request.pairs)
        try:
            if request.rest:
                response = await self._rest(client, request)
            else:
                response = await self._graphql(client, request)
        except httpx.TransportError as exc:
            self.ledger.unsure(request.pairs, f"transport:{type(exc).__name__}")
            return False
        else:
            return self._record(request, response)
        finally:
            self.ledger.inflight.subtract(request.pairs)

    async def _graphql(self, client: httpx.AsyncClient, request: Request) -> httpx.Response:
        variables: dict[str, Any] = {"studentId": str(request.student)}
        if request.drop:
            variables["sectionId"] = str(request.sections[0])
        else:
            variables["sectionIds"] = [str(s) for s in request.sections]
        if request.key:
            variables["idempotencyKey"] = request.key
        body = {"query": DROP if request.drop else REGISTER, "variables": {"i": variables}}
        return await client.post("/graphql", json=body, headers=self._headers[request.student])

    async def _rest(self, client: httpx.AsyncClient, request: Request) -> httpx.Response:
        body: dict[str, Any] = {"student_id": str(request.student)}
        if request.drop:
            body["section_id"] = str(request.sections[0])
        else:
            body["section_ids"] = [str(s) for s in request.sections]
        if request.key:
            body["idempotency_key"] = request.key
        path = "/api/v1/register/drop" if request.drop else "/api/v1/register"
        return await client.post(path, json=body, headers=self._headers[request.student])

    def _record(self, request: Request, response: httpx.Response) -> bool:
        ledger = self.ledger
        if response.status_code >= 500 and response.status_code != 503:
            ledger.internal.append(f"{response.status_code}: {response.text[:300]}")
            ledger.unsure(request.pairs, "5xx")
            return False
        body = response.json()
        if request.rest:
            return self._record_rest(request, response.status_code, body)
        if body.get("errors"):
            return self._refused(request, body["errors"][0].get("extensions", {}).get("code"))
        data = body["data"]
        if request.drop:
            ledger.told(request.pairs[0], data["drop"]["outcome"])
        else:
            for result in data["register"]["results"]:
                ledger.told((request.student, UUID(result["sectionId"])), result["outcome"])
        return True

    def _record_rest(self, request: Request, status: int, body: dict[str, Any]) -> bool:
        if status == 404 and request.drop:
            self.ledger.told(request.pairs[0], "NOT_REGISTERED")
            return True
        if status != 200:
            return self._refused(request, (body.get("errors") or [{}])[0].get("code"))
        if request.drop:
            self.ledger.told(request.pairs[0], "DROPPED")
        else:
            for result in body["data"]["results"]:
                self.ledger.told((request.student, UUID(result["section_id"])), result["status"])
        return True

    def _refused(self, request: Request, code: str | None) -> bool:
        if code in ("UNAVAILABLE", "RATE_LIMITED"):
            self.ledger.unsure(request.pairs, code)
            return False
        if code == "INTERNAL":
            self.ledger.internal.append(f"INTERNAL for {request}")
        else:
            self.ledger.surprises.append(f"{code} for {request}")
        self.ledger.unsure(request.pairs, str(code))
        return False
