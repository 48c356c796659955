"""A worker's hold on one shard, and the refusal a worker meets once it lost it.

Leases in Redis lapse by time, so a worker that stalled can go on working a shard another
worker has taken over. Each grant of a shard carries a larger epoch than the one before;
the new owner raises the shard's epoch in Postgres before it adopts or reads anything, and
a batch commits only under the epoch Postgres holds. Reads are refused in Redis unless the
lease is still the reader's. So a worker that lost its shard can neither take new entries
nor commit the ones in hand: it meets `Fenced` and stops.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """A grant of `shard` to `consumer`. `token` is what the lease store holds for it
    (renew and release compare it); `epoch` orders the grants of one shard."""

    shard: int
    consumer: str
    epoch: int
    token: str


class Fenced(Exception):
    """The shard is no longer this lease's: its read or its batch was refused. `current`
    is the epoch the record holds when the record refused it (None when the lease store
    did), which a later lease of this shard must exceed."""

    def __init__(self, lease: Lease, current: int | None = None) -> None:
        held = "lease lost" if current is None else f"shard at epoch {current}"
        super().__init__(f"shard {lease.shard}: epoch {lease.epoch} fenced off ({held})")
        self.lease = lease
        self.current = current
