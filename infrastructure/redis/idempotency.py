"""RedisIdempotencyStore: answers remembered per (student, key) for 24 hours.

The first request claims the key (claim.lua) for a short lease; a concurrent request with
the same key waits for the answer instead of doing the work again. A request that dies
before answering leaves only the lease, which lapses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import Scripts

ANSWER_TTL_MS = 24 * 3600 * 1000
CLAIM_TTL_MS = 15_000
POLL_SECONDS = 0.02

Answer = RegisterAnswer | DropAnswer | SwapAnswer


KINDS = {RegisterAnswer: "register", DropAnswer: "drop", SwapAnswer: "swap"}


def encode_answer(fingerprint: str, answer: Answer) -> str:
    kind = KINDS[type(answer)]
    return json.dumps({"fp": fingerprint, "kind": kind, "answer": asdict(answer)}, default=str)


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
    def __init__(self, redis: RedisClient, scripts: Scripts, keys: Keys) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self._claims: dict[tuple[UUID, str], str] = {}

    def _key(self, student_id: UUID, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.keys.idempotency(student_id, digest)

    async def begin(self, student_id: UUID, key: str, fingerprint: str) -> Answer | None:
        redis_key = self._key(student_id, key)
        deadline = time.monotonic() + CLAIM_TTL_MS / 1000
        while True:
            claim = json.dumps({"fp": fingerprint, "claim": uuid.uuid4().hex})
            existing = await self.scripts.claim(keys=[redis_key], args=[claim, CLAIM_TTL_MS])
            if existing is None or existing == claim:  # ours: a retry after a lost reply
                self._claims[(student_id, key)] = claim
                return None
            record = json.loads(existing)
            if record["fp"] != fingerprint:
                raise BadInput("idempotencyKey was already used with different input")
            if "answer" in record:
                return decode_answer(record)
            if time.monotonic() > deadline:
                raise Unavailable("an earlier request with this idempotencyKey is still running")
            await asyncio.sleep(POLL_SECONDS)

    async def finish(self, student_id: UUID, key: str, fingerprint: str, answer: Answer) -> None:
        self._claims.pop((student_id, key), None)
        await self.redis.set(
            self._key(student_id, key), encode_answer(fingerprint, answer), px=ANSWER_TTL_MS
        )

    async def abandon(self, student_id: UUID, key: str) -> None:
        claim = self._claims.pop((student_id, key), None)
        if claim is not None:
            await self.scripts.release(keys=[self._key(student_id, key)], args=[claim])
