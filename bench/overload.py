"""The overload row of `make bench`: an open-loop driver offering register requests at a fixed
rate (3x the capacity the run measured) for a fixed time, whatever the server answers.

Open loop: request i is due at start + i / rate, and its latency runs from then, not from
when a connection was free to send it, so a slow server cannot slow the offer down
(coordinated omission; wrk is closed loop: each connection waits for its answer). A request
whose connection is busy goes out on another one, opened as needed.

Written here rather than taken from a tool: wrk2 (wrk with -R) is not packaged for this
machine, and the check needs every answer's body (admitted, refused, what it asked for).
A plain asyncio Protocol with requests encoded ahead keeps the driver to a fraction of a core.

What it reports: the admitted requests' latency (target p99 < 1 s), every refusal's latency
(target < 50 ms, each), time-outs (none may happen), and then, from Postgres once drained,
answers lost, places oversold, and refused requests that changed anything (each student's
requests ask for sections no other request of theirs asks for, so any row of a refused
(student, section) is a refusal that changed state).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from bench.http import DOCUMENTS
from bench.measure import Result, latency_fields
from tests.client import register_input

PER_REQUEST = 5
TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 4096


@dataclass
class Sent:
    index: int
    due: float  # loop time it was due
    answered: float = 0.0
    status: int = 0
    body: bytes = b""


@dataclass
class Plan:
    """Request i: student i mod len(students), their (i // len(students))-th group of
    sections, a window of the sections from the student's own offset (disjoint per student
    while i // len(students) < len(sections) / PER_REQUEST)."""

    students: Sequence[UUID]
    sections: Sequence[UUID]
    tokens: Callable[[UUID], str]
    host: str
    _encoded_tokens: dict[UUID, bytes] = field(default_factory=dict)

    def asked(self, index: int) -> tuple[UUID, list[UUID]]:
        student = self.students[index % len(self.students)]
        round_ = index // len(self.students)
        start = (hash(student) % len(self.sections)) + round_ * PER_REQUEST
        return student, [
            self.sections[(start + k) % len(self.sections)] for k in range(PER_REQUEST)
        ]

    def capacity(self) -> int:
        return len(self.students) * (len(self.sections) // PER_REQUEST)

    def request(self, index: int) -> bytes:
        student, sections = self.asked(index)
        token = self._encoded_tokens.get(student)
        if token is None:
            token = self._encoded_tokens[student] = self.tokens(student).encode()
        variables = {"input": register_input(student, sections, f"overload-{index}")}
        body = json.dumps(  # the student app's trusted Register, as bench/http.py sends it
            {"query": DOCUMENTS["Register"], "variables": variables}, separators=(",", ":")
        ).encode()
        return (
            b"POST /graphql HTTP/1.1\r\nHost: " + self.host.encode() + b"\r\n"
            b"Authorization: Bearer " + token + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; Content-Length framed answers."""

    def __init__(self, driver: OpenLoop) -> None:
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: Sent | None = None
        self.status = 0
        self.need: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, sent: Sent, data: bytes) -> None:
        assert self.transport is not None
        self.current = sent
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:  # not framed by length (chunked): not what the API sends
                    self._fail()
                    return
                line_end = head.find(b"\r\n", at + 2)
                self.need = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
                del self.buffer[: end + 4]
            if len(self.buffer) < self.need:
                return
            body = bytes(self.buffer[: self.need])
            del self.buffer[: self.need]
            self.need = None
            sent, self.current = self.current, None
            if sent is not None:
                sent.answered, sent.status, sent.body = self.driver.now(), self.status, body
                self.driver.done(sent, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost(self)
        if self.current is not None:
            self.current.status = -1
            self.current.answered = self.driver.now()
            self.driver.done(self.current, None)
            self.current = None

    def _fail(self) -> None:
        if self.transport is not None:
            self.transport.close()


class OpenLoop:
    def __init__(self, url: str, plan: Plan, rate: float, seconds: float) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.plan, self.rate, self.seconds = plan, rate, seconds
        self.loop = asyncio.get_running_loop()
        self.idle: collections.deque[_Connection] = collections.deque()
        self.connections = 0
        self.waiting: collections.deque[Sent] = collections.deque()  # no connection to go on
        self.sent: list[Sent] = []
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.late_max = 0.0  # how far behind its schedule the driver itself fell

    def now(self) -> float:
        return self.loop.time()

    async def run(self) -> list[Sent]:
        total = int(self.rate * self.seconds)
        if total > self.plan.capacity():
            raise ValueError(f"{total} requests asked, the plan has {self.plan.capacity()}")
        start = self.now() + 0.05
        index = 0
        while index < total:
            now = self.now()
            due_now = min(total, int((now - start) * self.rate) + 1)
            while index < due_now:
                due = start + index / self.rate
                self.late_max = max(self.late_max, now - due)
                sent = Sent(index, due)
                self.sent.append(sent)
                self.outstanding += 1
                self._dispatch(sent)
                index += 1
            await asyncio.sleep(0.001)
        if self.outstanding:
            deadline = self.sent[-1].due + TIMEOUT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), max(0.1, deadline - self.now()))
        for connection in list(self.idle):
            connection._fail()
        return self.sent

    def _dispatch(self, sent: Sent) -> None:
        if self.idle:
            connection = self.idle.popleft()
            connection.send(sent, self.plan.request(sent.index))
        elif self.connections < MAX_CONNECTIONS:
            self.connections += 1
            self.loop.create_task(self._open(sent))
        else:
            self.waiting.append(sent)

    async def _open(self, sent: Sent) -> None:
        try:
            _, connection = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError:
            self.connections -= 1
            sent.status, sent.answered = -2, self.now()
            self.done(sent, None)
            return
        connection.send(sent, self.plan.request(sent.index))

    def done(self, sent: Sent, connection: _Connection | None) -> None:
        self.outstanding -= 1
        if connection is not None:
            if self.waiting:
                following = self.waiting.popleft()
                connection.send(following, self.plan.request(following.index))
            else:
                self.idle.append(connection)
        if self.outstanding == 0:
            self.all_done.set()

    def lost(self, connection: _Connection) -> None:
        self.connections -= 1
        if connection in self.idle:
            self.idle.remove(connection)


@dataclass
class Figures:
    offered_per_s: float
    sent: int
    admitted: list[float]
    refused: list[float]
    timeouts: int
    errors: dict[str, int]
    answers: dict[tuple[UUID, UUID], str]
    refused_pairs: list[tuple[UUID, UUID]]
    outcomes: dict[str, int]
    driver_late_ms: float
    connections: int


def classify(plan: Plan, sent: list[Sent], rate: float, late: float, opened: int) -> Figures:
    admitted: list[float] = []
    refused: list[float] = []
    timeouts = 0
    errors: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    answers: dict[tuple[UUID, UUID], str] = {}
    refused_pairs: list[tuple[UUID, UUID]] = []
    for s in sent:
        latency = s.answered - s.due
        if s.status == 0 or latency > TIMEOUT_SECONDS:
            timeouts += 1
            continue
        if s.status < 0:
            errors["connection"] += 1
            continue
        body: dict[str, Any] = json.loads(s.body) if s.body else {}
        student, sections = plan.asked(s.index)
        codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
        if s.status == 503 and codes == ["UNAVAILABLE"]:
            refused.append(latency)
            refused_pairs += [(student, section) for section in sections]
            continue
        register = (body.get("data") or {}).get("register")
        if s.status != 200 or not register:
            errors[str(codes[0] if codes else s.status)] += 1
            continue
        admitted.append(latency)
        for r in register["results"]:
            outcomes[r["outcome"]] += 1
            if r["outcome"] in ("ENROLLED", "WAITLISTED"):
                answers[(student, UUID(r["sectionId"]))] = r["outcome"]
    return Figures(
        rate,
        len(sent),
        admitted,
        refused,
        timeouts,
        dict(errors),
        answers,
        refused_pairs,
        dict(outcomes),
        round(late * 1000, 1),
        opened,
    )


async def refused_that_changed(database_url: str, pairs: list[tuple[UUID, UUID]]) -> int:
    """Refused (student, section) pairs with a registration or waitlist row."""
    if not pairs:
        return 0
    connection = await asyncpg.connect(database_url)
    try:
        students = [s for s, _ in pairs]
        sections = [x for _, x in pairs]
        found = await connection.fetchval(
            """SELECT count(*) FROM unnest($1::uuid[], $2::uuid[]) AS p(student_id, section_id)
               WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.student_id = p.student_id
                               AND r.section_id = p.section_id)
                  OR EXISTS (SELECT 1 FROM waitlist w WHERE w.student_id = p.student_id
                               AND w.section_id = p.section_id)""",
            students,
            sections,
        )
    finally:
        await connection.close()
    return int(found)


def result(figures: Figures, seconds: float, capacity: float, cpu: float | None) -> Result:
    """The row: throughput is the admitted answers per second; latency is the admitted ones';
    the refusals' own latency, time-outs and the checks go in the invariants."""
    refusals = latency_fields(figures.refused) if figures.refused else None
    admitted = latency_fields(figures.admitted) if figures.admitted else None
    row = Result(
        key="overload",
        title=(
            f"Overload: open loop at {figures.offered_per_s:,.0f} req/s "
            f"(3 x {capacity:,.0f}) for {seconds:g} s, 5 of 200 sections"
        ),
        layer="overload",
        throughput=round(len(figures.admitted) / seconds, 1),
        unit="admitted/s",
        count=figures.sent,
        seconds=seconds,
        errors=figures.timeouts + sum(figures.errors.values()),
        p50_ms=admitted["p50_ms"] if admitted else None,
        p95_ms=admitted["p95_ms"] if admitted else None,
        p99_ms=admitted["p99_ms"] if admitted else None,
        max_ms=admitted["max_ms"] if admitted else None,
        cpu_ms_per_op=round(cpu * 1000 / figures.sent, 4) if cpu else None,
        outcomes={
            **figures.outcomes,
            "refused": len(figures.refused),
            **{f"error:{k}": v for k, v in figures.errors.items()},
        },
        invariants={
            "sent": figures.sent,
            "admitted": len(figures.admitted),
            "refused": len(figures.refused),
            "timeouts": figures.timeouts,
            "refusal_p99_ms": refusals["p99_ms"] if refusals else 0,
            "refusal_max_ms": refusals["max_ms"] if refusals else 0,
        },
        notes=(
            f"the driver opened {figures.connections} connections and fell at most "
            f"{figures.driver_late_ms} ms behind its schedule; latency runs from each "
            "request's due time"
        ),
    )
    return row


async def offer(url: str, plan: Plan, rate: float, seconds: float) -> tuple[Figures, list[Sent]]:
    driver = OpenLoop(url, plan, rate, seconds)
    sent = await driver.run()
    return classify(plan, sent, rate, driver.late_max, driver.connections), sent
