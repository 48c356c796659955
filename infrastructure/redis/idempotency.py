"""RedisIdempotencyStore: answers remembered per (student, key) for 24 hours.

The first request claims the key (claim.lua) for a short lease, renewed while it works; a
concurrent request with the same key waits for the answer instead of doing the work again.
The answer is stored only while the claim is still the request's own (answer.lua). A request
that dies before answering leaves only the lease, which lapses; its retry runs the same
operation (domain/registration.py `operation`), whose steps answer what they did.
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
CLAIM_TTL_MS = 15_000
POLL_SECONDS = 0.02
RENEWALS_PER_LEASE = 3
# How long a duplicate waits for the answer of the request holding the key (a live one
# renews its claim, a dead one's claim lapses and the duplicate takes over).
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
        self, redis: RedisClient, scripts: Scripts, keys: Keys, claim_ms: int = CLAIM_TTL_MS
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.claim_ms = claim_ms
        # Per claimed key: the claim's value and the task renewing it while the work runs.
        self._claims: dict[tuple[UUID, str], tuple[str, asyncio.Task[None]]] = {}

    def _key(self, student_id: UUID, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.keys.idempotency(student_id, digest)

    async def begin(self, student_id: UUID, key: str, fingerprint: str) -> Answer | None:
        redis_key = self._key(student_id, key)
        deadline = time.monotonic() + max(WAIT_SECONDS, self.claim_ms / 1000)
        while True:
            claim = json.dumps({"fp": fingerprint, "claim": uuid.uuid4().hex})
            existing = await self._claim(redis_key, claim)
            if existing is None or existing == claim:  # ours: a retry after a lost reply
                owner = asyncio.current_task()
                renewal = asyncio.create_task(self._renew(redis_key, claim, owner))
                self._claims[(student_id, key)] = (claim, renewal)
                return None
            record = json.loads(existing)
            if record["fp"] != fingerprint:
                raise BadInput("idempotencyKey was already used with different input")
            if "answer" in record:
                return decode_answer(record)
            if time.monotonic() > deadline:
                raise Unavailable("an earlier request with this idempotencyKey is still running")
            await asyncio.sleep(POLL_SECONDS)

    async def _claim(self, redis_key: str, claim: str) -> str | None:
        """claim.lua; when its reply is lost the claim may stand, and the client's retry
        (another claim value) would wait for it to lapse: so it is taken back, if it is
        there, before the failure goes on to the client."""
        try:
            existing: str | None = await self.scripts.claim(
                keys=[redis_key], args=[claim, self.claim_ms]
            )
        except REDIS_DOWN:
            with contextlib.suppress(*REDIS_DOWN):
                await self.scripts.release(keys=[redis_key], args=[claim])
            raise
        return existing

    async def _renew(self, redis_key: str, claim: str, owner: asyncio.Task[object] | None) -> None:
        """Keep the claim while the work runs, however slow: a duplicate must keep waiting
        for this answer rather than run the work a second time. Ends with the request's
        task, however that ends."""
        pause = self.claim_ms / 1000 / RENEWALS_PER_LEASE
        while True:
            if owner is None:
                await asyncio.sleep(pause)
            elif (await asyncio.wait({owner}, timeout=pause))[0]:
                return
            try:
                if not await self.scripts.renew(keys=[redis_key], args=[claim, self.claim_ms]):
                    return
            except REDIS_DOWN as exc:  # the next renewal may get through
                log.warning("renewing an idempotency claim failed: %s", exc)

    async def _release(self, student_id: UUID, key: str) -> str | None:
        found = self._claims.pop((student_id, key), None)
        if found is None:
            return None
        claim, renewal = found
        await cancel_and_wait([renewal])
        return claim

    async def finish(self, student_id: UUID, key: str, fingerprint: str, answer: Answer) -> None:
        claim = await self._release(student_id, key)
        record = encode_answer(fingerprint, answer)
        stored = await self.scripts.answer(
            keys=[self._key(student_id, key)], args=[claim or "", record, ANSWER_TTL_MS]
        )
        if not stored:
            log.warning("idempotency claim of %s was lost before its answer was stored", student_id)

    async def abandon(self, student_id: UUID, key: str) -> None:
        claim = await self._release(student_id, key)
        if claim is not None:
            await self.scripts.release(keys=[self._key(student_id, key)], args=[claim])
