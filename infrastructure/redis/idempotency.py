"""RedisIdempotencyStore: answers remembered per (student, key) for 24 hours.

The first request takes the key (begin.lua) with its own token, for a short lease renewed
while it works; a concurrent request with the same key waits for the answer instead of doing
the work again. The answer is stored only while the key still holds the request's token
(answer.lua). A request that dies before answering leaves only the lease, which lapses; its
retry runs the same operation (domain/registration.py `operation`), whose steps answer what
they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from dataclasses import asdict
from typing import Any
from uuid import UUID

from domain.errors import BadInput, Unavailable
from domain.model import (
    DropAnswer,
    DropOutcome,
    RegisterAnswer,
    RegisterOutcome,
    SectionResult,
    SwapAnswer,
    SwapOutcome,
)
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys
from infrastructure.redis.outage import REDIS_DOWN, unavailable_when_down
from infrastructure.redis.scripts import Scripts
from infrastructure.tasks import cancel_and_wait

log = logging.getLogger(__name__)

ANSWER_TTL_MS = 24 * 3600 * 1000
LEASE_MS = 15_000
POLL_SECONDS = 0.02
RENEWALS_PER_LEASE = 3
# How long a duplicate waits for the answer of the request holding the key (a live one
# renews its lease, a dead one's lapses and the duplicate takes over).
WAIT_SECONDS = 30.0

Answer = RegisterAnswer | DropAnswer | SwapAnswer


KINDS = {RegisterAnswer: "register", DropAnswer: "drop", SwapAnswer: "swap"}


def encode_answer(fingerprint: str, answer: Answer) -> str:
    kind = KINDS[type(answer)]
    body = asdict(answer)
    for result in body.get("results", ()):
        del result["now"]  # where the student stands now is not part of the answer
    return json.dumps({"fp": fingerprint, "kind": kind, "answer": body}, default=str)


def decode_answer(record: dict[str, Any]) -> Answer:
    body = record["answer"]
    if record["kind"] == "swap":
        return SwapAnswer(
            student_id=UUID(body["student_id"]),
            outcome=SwapOutcome(body["outcome"]),
            reason=body["reason"],
            waitlist_position=body["waitlist_position"],
        )
    if record["kind"] == "drop":
        return DropAnswer(
            student_id=UUID(body["student_id"]),
            section_id=UUID(body["section_id"]),
            outcome=DropOutcome(body["outcome"]),
            available_seats=body["available_seats"],
        )
    results = tuple(
        SectionResult(
            section_id=UUID(r["section_id"]),
            outcome=RegisterOutcome(r["outcome"]),
            available_seats=r["available_seats"],
            waitlist_position=r["waitlist_position"],
            reason=r["reason"],
        )
        for r in body["results"]
    )
    return RegisterAnswer(UUID(body["student_id"]), results)


@unavailable_when_down
class RedisIdempotencyStore:
    def __init__(
        self, redis: RedisClient, scripts: Scripts, keys: Keys, lease_ms: int = LEASE_MS
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.lease_ms = lease_ms
        # Per key taken: this request's token and the task renewing its lease while it works.
        self._taken: dict[tuple[UUID, str], tuple[str, asyncio.Task[None]]] = {}

    def _key(self, student_id: UUID, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.keys.idempotency(student_id, digest)

    async def begin(self, student_id: UUID, key: str, fingerprint: str) -> Answer | None:
        redis_key = self._key(student_id, key)
        deadline = time.monotonic() + max(WAIT_SECONDS, self.lease_ms / 1000)
        while True:
            token = json.dumps({"fp": fingerprint, "token": uuid.uuid4().hex})
            existing = await self._take(redis_key, token)
            if existing is None or existing == token:  # ours: a retry after a lost reply
                owner = asyncio.current_task()
                renewal = asyncio.create_task(self._renew(redis_key, token, owner))
                self._taken[(student_id, key)] = (token, renewal)
                return None
            record = json.loads(existing)
            if record["fp"] != fingerprint:
                raise BadInput("idempotencyKey was already used with different input")
            if "answer" in record:
                return decode_answer(record)
            if time.monotonic() > deadline:
                raise Unavailable("an earlier request with this idempotencyKey is still running")
            await asyncio.sleep(POLL_SECONDS)

    async def _take(self, redis_key: str, token: str) -> str | None:
        """begin.lua; when its reply is lost the key may be taken, and the client's retry
        (another token) would wait for its lease to lapse: so it is given back, if it is
        there, before the failure goes on to the client."""
        try:
            existing: str | None = await self.scripts.begin(
                keys=[redis_key], args=[token, self.lease_ms]
            )
        except REDIS_DOWN:
            with contextlib.suppress(*REDIS_DOWN):
                await self.scripts.release(keys=[redis_key], args=[token])
            raise
        return existing

    async def _renew(self, redis_key: str, token: str, owner: asyncio.Task[object] | None) -> None:
        """Keep the key while the work runs, however slow: a duplicate must keep waiting
        for this answer rather than run the work a second time. Ends with the request's
        task, however that ends."""
        pause = self.lease_ms / 1000 / RENEWALS_PER_LEASE
        while True:
            if owner is None:
                await asyncio.sleep(pause)
            elif (await asyncio.wait({owner}, timeout=pause))[0]:
                return
            try:
                if not await self.scripts.renew(keys=[redis_key], args=[token, self.lease_ms]):
                    return
            except REDIS_DOWN as exc:  # the next renewal may get through
                log.warning("renewing an idempotency key's lease failed: %s", exc)

    async def _stop_renewing(self, student_id: UUID, key: str) -> str | None:
        """This request's token of the key, its renewal stopped; None if it holds none."""
        found = self._taken.pop((student_id, key), None)
        if found is None:
            return None
        token, renewal = found
        await cancel_and_wait([renewal])
        return token

    async def finish(self, student_id: UUID, key: str, fingerprint: str, answer: Answer) -> None:
        token = await self._stop_renewing(student_id, key)
        record = encode_answer(fingerprint, answer)
        stored = await self.scripts.answer(
            keys=[self._key(student_id, key)], args=[token or "", record, ANSWER_TTL_MS]
        )
        if not stored:
            log.warning("idempotency key of %s was lost before its answer was stored", student_id)

    async def abandon(self, student_id: UUID, key: str) -> None:
        token = await self._stop_renewing(student_id, key)
        if token is not None:
            await self.scripts.release(keys=[self._key(student_id, key)], args=[token])
