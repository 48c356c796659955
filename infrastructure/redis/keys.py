"""Every Redis key shape, stream and channel name, in one place.

Keys of one section share the hash tag of its shard, so a section script, the shard's job
stream and its worker lease live in one Redis Cluster slot. Student keys carry the
student's own tag. A prefix gives each deployment (or test run) its own key space.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from uuid import UUID

CONSUMER_GROUP = "persist"


def shard_of(section_id: UUID, shards: int) -> int:
    """Stable across processes and releases: CRC32 of the id's 16 bytes."""
    return zlib.crc32(section_id.bytes) % shards


@dataclass(frozen=True, slots=True)
class SectionKeys:
    base: str
    seats: str
    enrolled: str
    waitlist: str
    meta: str
    stream: str
    ready: str
    channel: str
    held: str
    held_index: str

    @property
    def script_keys(self) -> list[str]:
        """KEYS of every section script, in the order the .lua headers state."""
        return [
            self.seats,
            self.enrolled,
            self.waitlist,
            self.meta,
            self.stream,
            self.ready,
            self.held,
            self.held_index,
        ]

    def memo(self, op: str) -> str:
        """A script's reply for one operation on this section (lib/once.lua)."""
        return f"{self.base}:op:{op}"

    def logged(self, op: str) -> str:
        """That an operation logged its refusal of this section (append.lua)."""
        return f"{self.base}:op:{op}:log"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str
    shards: int

    def section(self, section_id: UUID) -> SectionKeys:
        tag = self._tag(shard_of(section_id, self.shards))
        base = f"{self.prefix}sec:{tag}:{section_id}"
        shard = shard_of(section_id, self.shards)
        return SectionKeys(
            base=base,
            seats=f"{base}:seats",
            enrolled=f"{base}:enrolled",
            waitlist=f"{base}:waitlist",
            meta=f"{base}:meta",
            stream=self.stream(shard),
            ready=self.shard_ready(shard),
            channel=self.section_channel(section_id),
            held=f"{base}:held",
            held_index=self.held_index(shard),
        )

    def stream(self, shard: int) -> str:
        return f"{self.prefix}jobs:{self._tag(shard)}"

    def dead_letters(self, shard: int) -> str:
        return f"{self.prefix}dead:{self._tag(shard)}"

    def attempts(self, shard: int) -> str:
        return f"{self.prefix}attempts:{self._tag(shard)}"

    def lease(self, shard: int) -> str:
        """The worker holding the shard and the epoch of its grant ("<consumer>#<epoch>")."""
        return f"{self.prefix}lease:{self._tag(shard)}"

    def lease_epoch(self, shard: int) -> str:
        """The shard's last lease epoch (a counter; Postgres keeps the owner's in
        stream_offsets.epoch)."""
        return f"{self.prefix}lease:{self._tag(shard)}:epoch"

    def held_index(self, shard: int) -> str:
        """Seats held for students in line (pending a rules check, or offered), by expiry:
        what the sweeper settles when a request died or an offer lapsed."""
        return f"{self.prefix}sec:{self._tag(shard)}:held"

    def shard_ready(self, shard: int) -> str:
        """Set once the shard's sections are loaded; scripts refuse to act without it."""
        return f"{self.prefix}sec:{self._tag(shard)}:ready"

    def section_channel(self, section_id: UUID) -> str:
        return f"{self.prefix}section:{section_id}"

    @property
    def catalog_channel(self) -> str:
        """Cache invalidations between API processes (student status changes)."""
        return f"{self.prefix}catalog"

    def student(self, student_id: UUID) -> str:
        return f"{self.prefix}stu:{{stu-{student_id}}}"

    def completed(self, student_id: UUID) -> str:
        return f"{self.prefix}stu:{{stu-{student_id}}}:done"

    def holdings(self, student_id: UUID, semester_id: UUID) -> str:
        """The student's sections of one semester, with what the rules count of them."""
        return f"{self.prefix}stu:{{stu-{student_id}}}:sem:{semester_id}"

    def reservations(self, shard: int) -> str:
        """Saga steps in flight (reservations, promotions, drops), one entry per operation by
        when the sweeper may settle it ("<student>|<operation>|<semester>:<section>,..."),
        in the shard of the student's id, so the shard's owner settles those whose request
        died between the saga's steps."""
        return f"{self.prefix}sec:{self._tag(shard)}:reservations"

    def student_bucket(self, student_id: str) -> str:
        """The student's rate-limit bucket (bucket.lua), in their slot: a script of the
        student's keys could take its token in the same call."""
        return f"{self.prefix}stu:{{stu-{student_id}}}:rate"

    def address_bucket(self, address: str) -> str:
        """A client address's rate-limit bucket, in a slot of its own."""
        return f"{self.prefix}rate:{{ip-{address}}}"

    def idempotency(self, student_id: UUID, key_digest: str) -> str:
        return f"{self.prefix}idem:{{stu-{student_id}}}:{key_digest}"

    @property
    def rebuild_lock(self) -> str:
        return f"{self.prefix}rebuild:lock"

    @property
    def recovery(self) -> str:
        """The last rebuild's report (JSON), shown in /health."""
        return f"{self.prefix}recovery"

    @property
    def students_loaded(self) -> str:
        """Set once the rebuild has loaded every student's status and rule state (each slot
        marked, lib/holding.lua): until then a student missing from Redis may exist, so the
        hot path answers UNAVAILABLE, not NOT_FOUND. (Named anew when the slot marks came:
        a key space of before has its unmarked students loaded once.)"""
        return f"{self.prefix}students:ready"

    @property
    def workers(self) -> str:
        """Sorted set of live worker ids, scored by when their heartbeat lapses."""
        return f"{self.prefix}workers"

    @staticmethod
    def _tag(shard: int) -> str:
        return "{shard-" + str(shard) + "}"
